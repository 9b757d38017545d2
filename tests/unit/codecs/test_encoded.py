"""Real encoder output: keyframe detection agrees with the encoder's key flag.

Frames come from PyAV's bundled libvpx (VP8, VP9) and libx264, and are
packetized here minimally (RFC 7741 §4, RFC 9628 §4, RFC 6184 §5.6-5.8).
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator

import av
import numpy as np
import pytest

from interlive.codecs.h264 import H264Packet, H264PacketKind, parse_h264
from interlive.codecs.vp8 import Vp8Descriptor, parse_vp8
from interlive.codecs.vp9 import Vp9Descriptor, parse_vp9

WIDTH, HEIGHT = 160, 96
MTU = 400  # small, so that frames span several packets


def _encode(codec: str, options: dict[str, str], count: int = 14) -> list[tuple[bytes, bool]]:
    """Encode ``count`` frames (noise every 7th, flat otherwise) with a GOP of 5."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width = WIDTH
    ctx.height = HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.framerate = 30
    ctx.gop_size = 5
    ctx.options = options
    rng = np.random.default_rng(7)
    frames: list[tuple[bytes, bool]] = []
    for i in range(count):
        shape = (HEIGHT * 3 // 2, WIDTH)
        if i % 7 == 3:
            plane = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            plane = np.full(shape, (i * 17) % 256, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
        frame.pts = i
        frames += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    frames += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    assert any(key for _, key in frames)
    assert not all(key for _, key in frames)
    return frames


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def test_vp8_keyframes() -> None:
    frames = _encode("libvpx", {"deadline": "realtime", "lag-in-frames": "0"})
    for picture_id, (frame, key) in enumerate(frames):
        packets = []
        for i, chunk in enumerate(_chunks(frame, MTU)):
            # X=1, S on the first packet, PID=0 | I=1 | M=1 15-bit PictureID
            first = 0x90 if i == 0 else 0x80
            pid = (0x8000 | picture_id).to_bytes(2, "big")
            packets.append(bytes((first, 0x80)) + pid + chunk)
        infos = [parse_vp8(p) for p in packets]
        assert infos[0].is_keyframe is key
        assert infos[0].start_of_frame
        assert not any(info.is_keyframe or info.start_of_frame for info in infos[1:])
        assert {info.picture_id for info in infos} == {picture_id}
        assert Vp8Descriptor.parse(packets[0]).header_size == 4


def _vp9_is_key(frame: bytes) -> bool:
    # Uncompressed header (VP9 bitstream §6.2), profile 0: frame_marker (2),
    # profile_low_bit, profile_high_bit, show_existing_frame, frame_type (0 = key).
    assert frame[0] >> 6 == 2
    return not frame[0] & 0x04


def test_vp9_keyframes_with_ss() -> None:
    frames = _encode("libvpx-vp9", {"deadline": "realtime", "lag-in-frames": "0"})
    for picture_id, (frame, key) in enumerate(frames):
        inter = not _vp9_is_key(frame)
        chunks = list(_chunks(frame, MTU))
        packets = []
        for i, chunk in enumerate(chunks):
            # I, P, B (first), E (last), V (first packet of a key frame): non-flexible, L=0.
            first = 0x80 | (0x40 if inter else 0)
            first |= (0x08 if i == 0 else 0) | (0x04 if i == len(chunks) - 1 else 0)
            header = bytes((first, picture_id & 0x7F))
            if i == 0 and not inter:
                # SS: N_S=0, Y=1, G=0, then WIDTH and HEIGHT.
                header = bytes((header[0] | 0x02, header[1], 0x10))
                header += WIDTH.to_bytes(2, "big") + HEIGHT.to_bytes(2, "big")
            packets.append(header + chunk)
        infos = [parse_vp9(p) for p in packets]
        assert infos[0].is_keyframe is key
        assert [info.start_of_frame for info in infos] == [True] + [False] * (len(infos) - 1)
        assert [info.end_of_frame for info in infos] == [False] * (len(infos) - 1) + [True]
        assert not any(info.is_keyframe for info in infos[1:])
        if key:
            ss = Vp9Descriptor.parse(packets[0]).ss
            assert ss is not None
            assert ss.resolutions == ((WIDTH, HEIGHT),)


def _annex_b_nals(data: bytes) -> list[bytes]:
    nals = []
    for part in data.split(b"\x00\x00\x01"):
        part = part.rstrip(b"\x00")  # the zero_byte of a following 4-octet start code
        if part:
            nals.append(part)
    return nals


def _packetize_h264(nals: list[bytes]) -> list[bytes]:
    """Mode 1: small NAL units aggregated into STAP-A, large ones fragmented in FU-A."""
    packets: list[bytes] = []
    pending: list[bytes] = []

    def flush() -> None:
        if len(pending) == 1:
            packets.append(pending[0])
        elif pending:
            nri = max(n[0] & 0x60 for n in pending)
            packets.append(
                bytes((nri | 24,)) + b"".join(len(n).to_bytes(2, "big") + n for n in pending)
            )
        pending.clear()

    for nal in nals:
        if len(nal) > MTU:
            flush()
            body = list(_chunks(nal[1:], MTU - 2))
            for i, chunk in enumerate(body):
                fu = (0x80 if i == 0 else 0) | (0x40 if i == len(body) - 1 else 0) | nal[0] & 0x1F
                packets.append(bytes((nal[0] & 0xE0 | 28, fu)) + chunk)
            continue
        if pending and 1 + sum(2 + len(n) for n in (*pending, nal)) > MTU:
            flush()
        pending.append(nal)
    flush()
    return packets


@pytest.mark.parametrize("slices", [1, 3])
def test_h264_keyframes(slices: int) -> None:
    frames = _encode(
        "libx264",
        {"preset": "ultrafast", "tune": "zerolatency", "x264-params": f"slices={slices}"},
    )
    kinds = set()
    for frame, key in frames:
        nals = _annex_b_nals(frame)
        packets = _packetize_h264(nals)
        infos = [parse_h264(p) for p in packets]
        parsed = [H264Packet.parse(p) for p in packets]
        kinds |= {p.kind for p in parsed}
        assert any(info.is_keyframe for info in infos) is key
        # The packet beginning the access unit, and the one beginning its first
        # slice, are starts (the parameter sets and SEI before the first slice
        # begin it too); nothing after the first slice is, however many slices.
        first_slice = next(
            i
            for i, p in enumerate(parsed)
            if {1, 5} & set(p.nal_types) and (p.kind is not H264PacketKind.FU_A or p.fu_start)
        )
        starts = [info.start_of_frame for info in infos]
        assert starts[0]
        assert starts[first_slice]
        assert not any(starts[first_slice + 1 :])
        if slices > 1:
            assert sum(n[0] & 0x1F in (1, 5) for n in nals) == slices
    assert kinds >= {H264PacketKind.STAP_A, H264PacketKind.FU_A}
