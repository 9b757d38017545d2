"""FLV players of the mix: the mixer's encoded packets muxed once, one PlayerQueue per player.

Real H.264 and AAC from the mixer's own encoders (``mix/outputs.py``), the
real muxer and queue; the players' sockets are the test: one that drains
what it is given, one that never does.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from interlive.media.flv import FlvTag, TagType, parse_flv
from interlive.media.flv_queue import QueueLimits
from interlive.media.rtp_flv import is_sequence_header, is_video_keyframe
from interlive.mix.job import Encoding
from interlive.mix.outputs import EncodedPacket, Encoders
from interlive.server.live_api import FlvPlayer, LiveJob, MixFlvSource
from interlive.server.playback import FLV_START, PlaybackStats

FPS = 30


def _mix(count: int, keyframe_interval: float = 2.0) -> tuple[MixFlvSource, list[EncodedPacket]]:
    """``count`` video frames at 30 fps and the AAC of the same time from the mixer's encoders.

    With the muxer a job makes of them (its SPS/PPS and AAC config from the encoders).
    """
    enc = Encoders(
        Encoding(
            width=320,
            height=180,
            fps=FPS,
            video_bitrate=300_000,
            keyframe_interval=keyframe_interval,
        )
    )
    out: list[EncodedPacket] = []
    samples = 0  # audio keeps pace with the video, as the mixer's output clock makes it
    for k in range(count):
        picture = np.full((270, 320), 16 + k % 200, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts, frame.time_base = k * 3000, Fraction(1, 90_000)
        out += enc.encode_video(frame)
        while samples < (k + 1) * 48_000 // FPS:
            silence = np.zeros((2, 1024), dtype=np.float32)
            audio = av.AudioFrame.from_ndarray(silence, format="fltp", layout="stereo")
            audio.sample_rate, audio.pts = 48_000, samples
            audio.time_base = Fraction(1, 48_000)
            out += enc.encode_audio(audio)
            samples += 1024
    source = MixFlvSource(
        bytes(enc.video.codec_context.extradata or b""),
        bytes(enc.audio.codec_context.extradata or b""),
    )
    enc.close()
    return source, out


def _job(source: MixFlvSource) -> LiveJob:
    """A live job with no mixer behind it: only its FLV fan-out is used."""
    none = cast(Any, None)
    return LiveJob("job", "room", none, none, none, Path("."), flv_source=source)


class Killed:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def _drain(player: FlvPlayer) -> list[FlvTag]:
    """What a socket that takes everything at once gets so far."""
    tags: list[FlvTag] = []
    while player.queue.queued_tags and (batch := await player.next_batch()) is not None:
        tags += batch
        player.delivered(sum(len(bytes(t)) for t in batch))
    return tags


def test_a_player_that_drains_gets_everything_from_the_first_keyframe() -> None:
    source, packets = _mix(40)

    async def run() -> tuple[FlvPlayer, bytes]:
        job = _job(source)
        player = FlvPlayer("http", "drains", Killed())
        job.flv_players.add(player)
        tags: list[FlvTag] = []
        for p in packets:
            job.flv_packet(p)
            tags += await _drain(player)
        player.close("ended")
        assert await player.next_batch() is None
        return player, FLV_START + b"".join(bytes(t) for t in tags)

    player, data = asyncio.run(run())
    header, tags = parse_flv(data)
    assert header.has_video and header.has_audio
    assert tags[0].tag_type == TagType.SCRIPT  # onMetaData first
    video = [t for t in tags if t.tag_type == TagType.VIDEO]
    audio = [t for t in tags if t.tag_type == TagType.AUDIO]
    assert video[0].data[:2] == b"\x17\x00"  # AVC keyframe, sequence header
    assert video[1].data[:2] == b"\x17\x01"  # the first frame is a keyframe
    assert len(video) == 41 and len(audio) >= 55  # every frame, none dropped
    assert [t.timestamp for t in video[1:4]] == [0, 33, 66]
    stats = player.queue.stats
    assert stats.gop_drops == 0 and stats.tags_dropped == 0
    assert player.closed == "ended"
    assert player.stats.bytes_sent == len(data) - len(FLV_START)


def test_a_player_that_does_not_drain_drops_to_a_keyframe_then_is_disconnected() -> None:
    """One player never takes anything: it drops to the next keyframe, then is cut off.

    Keyframes every 0.5 s; the queue drops above 0.6 s of media and cuts a player
    off 2.5 s behind.  The other player of the same job drains and loses nothing.
    """
    source, packets = _mix(4 * FPS, keyframe_interval=0.5)
    limits = QueueLimits(gop_drop_ms=600, disconnect_ms=2500)

    async def run() -> tuple[FlvPlayer, FlvPlayer, Killed, list[FlvTag], PlaybackStats, int]:
        job = _job(source)
        stats = PlaybackStats()  # the playback hub's counters
        killed = Killed()
        stuck = FlvPlayer("rtmp", "stuck", killed, limits, stats)
        fast = FlvPlayer("http", "fast", Killed(), limits, stats)
        job.flv_players.update((stuck, fast))
        received: list[FlvTag] = []
        dropped_at = cut_at = -1
        for i, p in enumerate(packets):
            job.flv_packet(p)
            received += await _drain(fast)
            if dropped_at < 0 and stuck.queue.stats.gop_drops:
                dropped_at = i
            if cut_at < 0 and stuck.closed is not None:
                cut_at = i
        assert 0 <= dropped_at < cut_at, (dropped_at, cut_at)
        return stuck, fast, killed, received, stats, cut_at

    stuck, fast, killed, received, stats, cut_at = asyncio.run(run())
    # the stuck player: dropped to a keyframe first, then disconnected and its socket killed
    assert stuck.closed == "slow" and killed.count == 1
    assert stats.slow_disconnects == 1
    assert stats.gop_drops == stuck.queue.stats.gop_drops >= 1
    assert stats.tags_dropped == stuck.queue.stats.tags_dropped > 0
    assert cut_at < len(packets) - 1  # it stayed behind: cut before the end of the stream
    left = stuck.queue.take(1 << 30)
    media = [t for t in left if not is_sequence_header(t)]
    assert left[0].tag_type == TagType.SCRIPT  # its start tags are kept through drops
    assert is_video_keyframe(media[0]) and media[0].timestamp >= 500  # a jump to a keyframe
    assert stuck.queue.queued_bytes == 0
    # the player that drains got every frame and is still playing
    assert fast.closed is None and fast.queue.stats.tags_dropped == 0
    frames = [t for t in received if t.tag_type == TagType.VIDEO and not is_sequence_header(t)]
    assert len(frames) == 4 * FPS
    assert sum(is_video_keyframe(t) for t in frames) == 8  # a keyframe every 0.5 s


def test_a_player_that_joins_late_starts_at_the_next_keyframe_with_the_start_tags() -> None:
    source, packets = _mix(FPS, keyframe_interval=0.5)

    async def run() -> list[FlvTag]:
        job = _job(source)
        late = FlvPlayer("http", "late", Killed())
        for i, p in enumerate(packets):
            if i == 5:  # a few frames in: between two keyframes
                job.flv_players.add(late)
            job.flv_packet(p)
        return await _drain(late)

    tags = asyncio.run(run())
    assert [t.tag_type for t in tags[:3]] == [TagType.SCRIPT, TagType.AUDIO, TagType.VIDEO]
    assert all(is_sequence_header(t) for t in tags[:3])
    assert is_video_keyframe(tags[3]) and tags[3].timestamp == 0  # its own time line
    frames = [t for t in tags if t.tag_type == TagType.VIDEO and not is_sequence_header(t)]
    assert len(frames) == FPS // 2  # from the keyframe at 0.5 s on
