"""The mixer in-process: RTP of each codec in, decoded and gated frames, a composed H.264 out.

No sockets are read: datagrams go straight to an input's ``on_datagram`` (the
job's own path: RTP parse, depacketize, PyAV decode, clear-frame gate, sync),
and output frames are produced by calling the mixer's frame methods.
"""

from __future__ import annotations

import asyncio
import io
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import pytest

from interlive.bench.mix import opus_packets, vp8_frames, vp8_packets
from interlive.media.h264_rtp import H264Packetizer, annexb_to_nals
from interlive.mix.clock import ClockConfig, OutputClock
from interlive.mix.job import Encoding, LiveSpec
from interlive.mix.layout import parse_layout
from interlive.mix.outputs import EncodedPacket
from interlive.mix.process import PT_H264, PT_OPUS, PT_VP9, Mixer
from interlive.rtp.packet import RtpPacket
from interlive.rtp.reorder import REPAIR_WAIT

W, H, FPS = 320, 180, 30
ADDR = ("127.0.0.1", 9)


def _mixer(out_dir: Path, layout: object = "grid") -> Mixer:
    """A mixer of W x H at FPS with no outputs, no HLS, no recording."""
    spec = LiveSpec(
        outputs=(),
        layout=parse_layout(layout),
        layout_json=layout if isinstance(layout, str) else json.dumps(layout),
        encoding=Encoding(width=W, height=H, fps=FPS, video_bitrate=300_000),
        hls=False,
        record=False,
    )
    return Mixer(spec, out_dir, "127.0.0.1")


def _encode(codec: str, count: int) -> list[tuple[bytes, bool]]:
    enc = cast(av.VideoCodecContext, av.CodecContext.create(codec, "w"))
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.time_base = Fraction(1, FPS)
    if codec == "libx264":
        enc.options = {"tune": "zerolatency", "preset": "ultrafast", "g": "30", "bf": "0"}
    else:
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": "30"}
    yy, xx = np.mgrid[0 : H * 3 // 2, 0:W]
    out: list[tuple[bytes, bool]] = []
    for k in range(count):
        picture = ((xx + yy + 3 * k) % 200 + 20).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = k
        out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]
    return out


def _rtp(pt: int, payloads: list[tuple[bytes, bool]], seq: int, ts: int) -> list[bytes]:
    return [
        bytes(
            RtpPacket(
                payload_type=pt,
                marker=marker,
                sequence_number=(seq + k) & 0xFFFF,
                timestamp=ts,
                ssrc=4321,
                payload=payload,
            )
        )
        for k, (payload, marker) in enumerate(payloads)
    ]


def _vp9_payloads(frame: bytes, key: bool) -> list[tuple[bytes, bool]]:
    chunks = [frame[i : i + 1000] for i in range(0, len(frame), 1000)]
    out = []
    for k, chunk in enumerate(chunks):
        first, last = k == 0, k == len(chunks) - 1
        descriptor = (0x00 if key else 0x40) | (0x08 if first else 0) | (0x04 if last else 0)
        out.append((bytes([descriptor]) + chunk, last))
    return out


def _datagrams(codec: str, frames: list[tuple[bytes, bool]]) -> list[list[bytes]]:
    per_frame: list[list[bytes]] = []
    seq = 0
    packetizer = H264Packetizer()
    for k, (data, key) in enumerate(frames):
        ts = k * 90_000 // FPS
        if codec == "vp8":
            packets = vp8_packets(data, seq, ts, 4321)
        elif codec == "vp9":
            packets = _rtp(PT_VP9, _vp9_payloads(data, key), seq, ts)
        else:
            packets = _rtp(PT_H264, packetizer.packetize(annexb_to_nals(data)), seq, ts)
        seq += len(packets)
        per_frame.append(packets)
    return per_frame


async def _mix(codec: str, tmp: Path) -> tuple[Mixer, list[EncodedPacket], int]:
    name = {"vp8": "libvpx", "vp9": "libvpx-vp9", "h264": "libx264"}[codec]
    frames = vp8_frames(W, H, FPS, 45, seed=1) if codec == "vp8" else _encode(name, 45)
    mixer = _mixer(tmp, "grid")
    mixer.clock = OutputClock(mixer.loop.time() + 1000.0, ClockConfig(fps=Fraction(FPS)))
    out: list[EncodedPacket] = []
    mixer.tap = out.append
    await mixer.add_input("alice")
    inp = mixer.inputs["alice"]
    opus = opus_packets(10, 440.0)
    for k, packets in enumerate(_datagrams(codec, frames)):
        for data in packets:
            inp.on_datagram(data, ADDR)
        audio = RtpPacket(
            payload_type=PT_OPUS,
            sequence_number=k,
            timestamp=k * 960,
            ssrc=99,
            payload=opus[k % len(opus)],
        )
        inp.on_datagram(bytes(audio), ADDR)
        mixer._video(mixer.clock.video_pts(k), mixer.loop.time())
        mixer._audio(mixer.clock.audio_pts(k))
    decoded = inp.frames_decoded
    mixer.remove_input("alice")
    mixer.close()
    return mixer, out, decoded


@pytest.mark.parametrize("codec", ["vp8", "vp9", "h264"])
def test_each_codec_is_decoded_composed_and_encoded(codec: str, tmp_path: Path) -> None:
    mixer, out, decoded = asyncio.run(_mix(codec, tmp_path))
    assert decoded == 45  # every frame: the first is a keyframe, nothing was lost
    video = [p for p in out if p.kind == "video"]
    audio = [p for p in out if p.kind == "audio"]
    assert video and video[0].keyframe
    assert len(audio) >= 40
    # the output is a decodable H.264 stream of the canvas size
    dec = av.CodecContext.create("h264", "r")
    dec.extradata = mixer.encoders.video.codec_context.extradata
    pictures = [f for p in video for f in dec.decode(av.Packet(p.data))]
    assert pictures and (pictures[-1].width, pictures[-1].height) == (W, H)


def test_a_lost_packet_holds_frames_until_a_keyframe_and_asks_for_one(tmp_path: Path) -> None:
    held, decoded, plis = asyncio.run(_lose_one_packet(tmp_path, repaired=False))
    # frames 10..39 depend on the broken chain (the next keyframe is frame 60); frame 10
    # itself never completes when it was a single packet
    assert decoded == 10 and held in (29, 30)
    assert plis == 1  # one PLI: the gate asks at most once a second


def test_a_packet_repaired_in_time_costs_no_frame(tmp_path: Path) -> None:
    held, decoded, plis = asyncio.run(_lose_one_packet(tmp_path, repaired=True))
    assert (decoded, held, plis) == (40, 0, 0)


async def _lose_one_packet(tmp_path: Path, *, repaired: bool) -> tuple[int, int, int]:
    """Frame 10's first packet is lost; its NACK repair comes after frame 12, or never."""
    frames = vp8_frames(W, H, FPS, 40, seed=2)
    mixer = _mixer(tmp_path, "grid")
    await mixer.add_input("bob")
    inp = mixer.inputs["bob"]
    sent: list[list[Any]] = []
    inp.send = sent.append  # type: ignore[method-assign,assignment]
    datagrams = _datagrams("vp8", frames)
    for k, packets in enumerate(datagrams):
        for j, data in enumerate(packets):
            if k == 10 and j == 0:
                continue  # lose the first packet of frame 10
            inp.on_datagram(data, ADDR)
        if k == 12 and repaired:
            inp.on_datagram(datagrams[10][0], ADDR)
    inp.poll(mixer.loop.time() + REPAIR_WAIT)  # an unrepaired hole is given up
    held = inp.gate.frames_held
    decoded = inp.frames_decoded
    mixer.close()
    return held, decoded, len(sent)


def test_the_speaker_layout_follows_the_active_speaker(tmp_path: Path) -> None:
    async def run() -> list[tuple[str, int]]:
        mixer = _mixer(tmp_path, "speaker")
        for name in ("ann", "ben", "cat"):
            await mixer.add_input(name)
        widths = []
        for speaker in (None, "cat"):
            mixer.set_speaker(speaker)
            mixer._video(0, mixer.loop.time())
            assert mixer._regions is not None
            main = max(mixer._regions, key=lambda r: r.cell.w * r.cell.h)
            widths.append((main.input_id, main.cell.w))
        mixer.close()
        return widths

    assert asyncio.run(run()) == [("ann", W), ("cat", W)]


def test_the_mixers_h264_slot_takes_every_profile_a_publisher_may_send() -> None:
    from interlive.codecs.h264 import h264_decodable
    from interlive.mix.process import SUBSCRIBE_MEDIA

    slot = next(m for m in SUBSCRIBE_MEDIA if m["mime"] == "video/H264")["fmtp"]
    # aiortc publishes Baseline (42001f); browsers Constrained Baseline, Main or High
    for profile in ("42001f", "42e01f", "4d001f", "64001f", "640c1f"):
        stream = {"packetization-mode": "1", "profile-level-id": profile}
        assert h264_decodable(stream, slot), profile


def test_the_preview_is_a_jpeg_of_the_last_composed_picture(tmp_path: Path) -> None:
    async def run() -> tuple[bool, bytes]:
        mixer = _mixer(tmp_path, {"type": "grid", "background": "#ffffff"})
        try:
            before = False
            try:
                mixer.preview()
            except LookupError:
                before = True  # nothing composed yet
            mixer._video(0, mixer.loop.time())
            return before, mixer.preview(width=160)
        finally:
            mixer.close()

    nothing_yet, jpeg = asyncio.run(run())
    assert nothing_yet
    assert jpeg[:3] == b"\xff\xd8\xff"  # a JPEG
    with av.open(io.BytesIO(jpeg)) as snapshot:
        picture = next(snapshot.decode(video=0))
    assert (picture.width, picture.height) == (160, round(160 * H / W / 2) * 2)
    assert int(picture.to_ndarray(format="gray").min()) > 240  # the white background, no input
