"""HTTP-FLV of the mix: one player's muxer fed by the mixer's encoded packets."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import numpy as np

from interlive.media.flv import TagType, parse_flv
from interlive.mix.job import Encoding
from interlive.mix.outputs import EncodedPacket, Encoders
from interlive.server.live_api import FlvPlayer


def _packets(count: int) -> tuple[Encoders, list[EncodedPacket]]:
    enc = Encoders(Encoding(width=320, height=180, fps=30, video_bitrate=300_000))
    out: list[EncodedPacket] = []
    for k in range(count):
        picture = np.full((270, 320), 16 + k, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts, frame.time_base = k * 3000, Fraction(1, 90_000)
        out += enc.encode_video(frame)
        if k % 2 == 0:
            samples = np.zeros((2, 1024), dtype=np.float32)
            audio = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            audio.sample_rate, audio.pts = 48_000, k // 2 * 1024
            audio.time_base = Fraction(1, 48_000)
            out += enc.encode_audio(audio)
    return enc, out


def _config(enc: Encoders) -> tuple[bytes, bytes]:
    video = bytes(enc.video.codec_context.extradata or b"")
    audio = bytes(enc.audio.codec_context.extradata or b"")
    return video, audio


def test_a_player_gets_a_parseable_flv_from_the_first_keyframe() -> None:
    async def run() -> bytes:
        enc, packets = _packets(40)
        player = FlvPlayer(*_config(enc))
        for p in packets:
            player.feed(p)
        player.close()
        chunks = []
        while (chunk := await player.queue.get()) is not None:
            chunks.append(chunk)
        enc.close()
        return b"".join(chunks)

    header, tags = parse_flv(asyncio.run(run()))
    assert header.has_video and header.has_audio
    video = [t for t in tags if t.tag_type == TagType.VIDEO]
    audio = [t for t in tags if t.tag_type == TagType.AUDIO]
    assert video[0].data[:2] == b"\x17\x00"  # AVC keyframe, sequence header
    assert video[1].data[:2] == b"\x17\x01"  # the first frame is a keyframe
    assert len(video) == 41 and len(audio) >= 18
    assert [t.timestamp for t in video[1:4]] == [0, 33, 66]


def test_a_player_that_falls_behind_is_cut_off() -> None:
    async def run() -> tuple[bool, int]:
        enc, packets = _packets(20)
        player = FlvPlayer(*_config(enc))
        player.queue = asyncio.Queue(5)
        for p in packets:
            player.feed(p)
        items = []
        while (chunk := await player.queue.get()) is not None:
            items.append(chunk)
        enc.close()
        return player.closed, len(items)

    closed, kept = asyncio.run(run())
    assert closed and kept <= 4
