"""VP8 payload descriptor, RFC 7741 §4.2-4.3.

Vectors are built bit by bit from the layouts of RFC 7741 §4.2 (descriptor) and
§4.3 (payload header ``|Size0|H| VER |P|``, P the least significant bit).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.codecs.descriptor import FrameInfo, TruncatedPayloadError
from interlive.codecs.vp8 import Vp8Descriptor, parse_vp8, rewrite_vp8_descriptor

# Payload header of a key frame: 0xb0 = Size0 101, H 1, VER 000, P 0; then the
# first-partition size octets and the key frame start code 9d 01 2a (RFC 6386 §9.1).
KEY_HEADER = bytes.fromhex("b02a009d012a")
# Inter frame: 0x31 = Size0 001, H 1, VER 000, P 1.
DELTA_HEADER = bytes.fromhex("310300")


def test_minimal_keyframe() -> None:
    # |X=0|R|N=0|S=1|R|PID=000| -> 0x10
    payload = b"\x10" + KEY_HEADER
    d = Vp8Descriptor.parse(payload)
    assert d == Vp8Descriptor(
        extended=False,
        non_reference=False,
        start_of_partition=True,
        partition_index=0,
        picture_id=None,
        picture_id_bits=0,
        tl0_pic_idx=None,
        temporal_id=None,
        layer_sync=False,
        key_idx=None,
        header_size=1,
        is_keyframe=True,
    )
    assert parse_vp8(payload) == FrameInfo(
        is_keyframe=True,
        start_of_frame=True,
        temporal_id=None,
        spatial_id=None,
        tl0_pic_idx=None,
        picture_id=None,
        layer_sync=False,
        end_of_frame=None,
    )
    assert bytes(d) == b"\x10"


def test_minimal_delta_frame() -> None:
    info = parse_vp8(b"\x10" + DELTA_HEADER)
    assert info.start_of_frame
    assert not info.is_keyframe


def test_seven_bit_picture_id() -> None:
    # 0x90: X=1 S=1; 0x80: I=1; 0x25: M=0, PictureID 0x25.
    payload = bytes.fromhex("908025") + KEY_HEADER
    d = Vp8Descriptor.parse(payload)
    assert (d.picture_id, d.picture_id_bits, d.header_size) == (0x25, 7, 3)
    assert d.is_keyframe
    assert bytes(d) == payload[:3]
    assert parse_vp8(payload).picture_id == 0x25


def test_fifteen_bit_picture_id() -> None:
    # 0x92 0x34: M=1, PictureID 0x1234.
    payload = bytes.fromhex("90809234") + DELTA_HEADER
    d = Vp8Descriptor.parse(payload)
    assert (d.picture_id, d.picture_id_bits, d.header_size) == (0x1234, 15, 4)
    assert not d.is_keyframe
    assert bytes(d) == payload[:4]


def test_all_extensions() -> None:
    # X=1 N=1 S=1 PID=0 | I L T K | M=1 PictureID 0x7fff | TL0PICIDX 0x56 |
    # TID=2 Y=1 KEYIDX=5 -> 10 1 00101 = 0xa5
    payload = bytes.fromhex("b0f0ffff56a5") + KEY_HEADER
    d = Vp8Descriptor.parse(payload)
    assert d == Vp8Descriptor(
        extended=True,
        non_reference=True,
        start_of_partition=True,
        partition_index=0,
        picture_id=0x7FFF,
        picture_id_bits=15,
        tl0_pic_idx=0x56,
        temporal_id=2,
        layer_sync=True,
        key_idx=5,
        header_size=6,
        is_keyframe=True,
    )
    assert bytes(d) == payload[:6]
    assert parse_vp8(payload) == FrameInfo(True, True, 2, None, 0x56, 0x7FFF, True, None)


def test_tk_without_l() -> None:
    # X=1 S=1 | T=1 K=1 (0x30) | TID=1 Y=0 KEYIDX=5 -> 01 0 00101 = 0x45
    payload = bytes.fromhex("903045") + DELTA_HEADER
    d = Vp8Descriptor.parse(payload)
    assert (d.tl0_pic_idx, d.temporal_id, d.layer_sync, d.key_idx) == (None, 1, False, 5)
    assert d.header_size == 3
    assert bytes(d) == payload[:3]
    info = parse_vp8(payload)
    assert (info.temporal_id, info.tl0_pic_idx, info.layer_sync) == (1, None, False)


def test_t_only_layer_sync() -> None:
    # T=1 (0x20) | TID=3 Y=1 -> 11 1 00000 = 0xe0; K=0 so KEYIDX is ignored.
    d = Vp8Descriptor.parse(bytes.fromhex("9020e0") + DELTA_HEADER)
    assert (d.temporal_id, d.layer_sync, d.key_idx) == (3, True, None)


def test_k_only_ignores_tid_and_y() -> None:
    # K=1 (0x10) | TID=3 Y=1 KEYIDX=3 -> 0xe3; T=0 so TID and Y are ignored.
    payload = bytes.fromhex("9010e3") + DELTA_HEADER
    d = Vp8Descriptor.parse(payload)
    assert (d.temporal_id, d.layer_sync, d.key_idx) == (None, False, 3)
    info = parse_vp8(payload)
    assert (info.temporal_id, info.layer_sync) == (None, False)


def test_x_with_no_optional_fields() -> None:
    payload = bytes.fromhex("9000") + KEY_HEADER
    d = Vp8Descriptor.parse(payload)
    assert d.extended
    assert d.header_size == 2
    assert bytes(d) == b"\x90\x00"


def test_continuation_packet_is_never_a_keyframe() -> None:
    # 0x23: N=1, S=0, PID=3; the next octet would read as P=0 but is mid-partition data.
    d = Vp8Descriptor.parse(b"\x23\x00\x00")
    assert (d.non_reference, d.start_of_partition, d.partition_index) == (True, False, 3)
    info = parse_vp8(b"\x23\x00\x00")
    assert not info.is_keyframe
    assert not info.start_of_frame
    # S=0, PID=0: a middle packet of the first partition.
    assert not parse_vp8(b"\x00\x00").start_of_frame


def test_start_of_later_partition_is_not_start_of_frame() -> None:
    # S=1, PID=1: P is not present at the start of partition 1.
    info = parse_vp8(b"\x11\x00\x00")
    assert not info.start_of_frame
    assert not info.is_keyframe


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x80",  # X=1, no extension octet
        b"\x90\x80",  # I=1, no PictureID
        b"\x90\x80\x80",  # M=1, second PictureID octet missing
        b"\x90\x40",  # L=1, no TL0PICIDX
        b"\x90\x20",  # T=1, no TID octet
        b"\x90\x10",  # K=1, no KEYIDX octet
        b"\x90\xf0\x80\x01\x02\x03",  # everything present, no payload
        b"\x10",  # no payload header
    ],
)
def test_truncated(payload: bytes) -> None:
    with pytest.raises(TruncatedPayloadError):
        Vp8Descriptor.parse(payload)
    with pytest.raises(TruncatedPayloadError):
        parse_vp8(payload)


def test_rewrite_fifteen_bit_and_tl0() -> None:
    payload = bytes.fromhex("90c09234560a") + DELTA_HEADER  # I L: PictureID 0x1234, TL0 0x56
    out = rewrite_vp8_descriptor(payload, picture_id=0x1_0005, tl0_pic_idx=0x1FF)
    assert out == bytes.fromhex("90c08005ff0a") + DELTA_HEADER
    d = Vp8Descriptor.parse(out)
    assert (d.picture_id, d.picture_id_bits, d.tl0_pic_idx) == (0x0005, 15, 0xFF)


def test_rewrite_seven_bit_masks() -> None:
    payload = bytes.fromhex("90c02a07") + KEY_HEADER
    out = rewrite_vp8_descriptor(payload, picture_id=0x1FE, tl0_pic_idx=8)
    assert out == bytes.fromhex("90c07e08") + KEY_HEADER


def test_rewrite_one_field_only() -> None:
    payload = bytes.fromhex("90c02a07") + KEY_HEADER
    assert rewrite_vp8_descriptor(payload, picture_id=None, tl0_pic_idx=9)[:4] == bytes.fromhex(
        "90c02a09"
    )
    assert rewrite_vp8_descriptor(payload, picture_id=3, tl0_pic_idx=None)[:4] == bytes.fromhex(
        "90c00307"
    )


def test_rewrite_never_adds_fields() -> None:
    payload = bytes.fromhex("903045") + DELTA_HEADER
    assert rewrite_vp8_descriptor(payload, picture_id=1, tl0_pic_idx=2) == payload
    assert rewrite_vp8_descriptor(b"\x10" + KEY_HEADER, picture_id=1, tl0_pic_idx=2) == (
        b"\x10" + KEY_HEADER
    )


def test_rewrite_rejects_truncated() -> None:
    with pytest.raises(TruncatedPayloadError):
        rewrite_vp8_descriptor(b"\x90\x80", picture_id=1, tl0_pic_idx=None)


def test_serialise_rejects_out_of_range() -> None:
    base = Vp8Descriptor.parse(bytes.fromhex("908025") + KEY_HEADER)
    for bad in (
        dataclasses.replace(base, picture_id=0x80),
        dataclasses.replace(base, picture_id=0x8000, picture_id_bits=15),
        dataclasses.replace(base, picture_id_bits=8),
        dataclasses.replace(base, tl0_pic_idx=256),
        dataclasses.replace(base, temporal_id=4),
        dataclasses.replace(base, key_idx=32),
        dataclasses.replace(base, partition_index=8),
    ):
        with pytest.raises(ValueError):
            bytes(bad)


@st.composite
def descriptors(draw: st.DrawFn) -> Vp8Descriptor:
    bits = draw(st.sampled_from([0, 7, 15]))
    picture_id = draw(st.integers(0, (1 << bits) - 1)) if bits else None
    tid = draw(st.none() | st.integers(0, 3))
    extended = draw(st.booleans())
    tl0 = draw(st.none() | st.integers(0, 255))
    key_idx = draw(st.none() | st.integers(0, 31))
    extended = extended or any(v is not None for v in (picture_id, tl0, tid, key_idx))
    start = draw(st.booleans())
    pid = draw(st.integers(0, 7))
    key = draw(st.booleans()) and start and pid == 0
    header = 1 + (1 if extended else 0) + (bits + 7) // 8 + (tl0 is not None)
    header += tid is not None or key_idx is not None
    return Vp8Descriptor(
        extended=extended,
        non_reference=draw(st.booleans()),
        start_of_partition=start,
        partition_index=pid,
        picture_id=picture_id,
        picture_id_bits=bits,
        tl0_pic_idx=tl0,
        temporal_id=tid,
        layer_sync=tid is not None and draw(st.booleans()),
        key_idx=key_idx,
        header_size=header,
        is_keyframe=key,
    )


@given(descriptors())
def test_round_trip(d: Vp8Descriptor) -> None:
    payload = bytes(d) + (KEY_HEADER if d.is_keyframe else DELTA_HEADER)
    assert Vp8Descriptor.parse(payload) == d
    info = parse_vp8(payload)
    assert info.is_keyframe == d.is_keyframe
    assert (info.picture_id, info.tl0_pic_idx, info.temporal_id) == (
        d.picture_id,
        d.tl0_pic_idx,
        d.temporal_id,
    )


@given(descriptors(), st.integers(0, 1 << 20), st.integers(0, 1 << 12))
def test_rewrite_round_trip(d: Vp8Descriptor, picture_id: int, tl0: int) -> None:
    payload = bytes(d) + DELTA_HEADER
    out = rewrite_vp8_descriptor(payload, picture_id=picture_id, tl0_pic_idx=tl0)
    assert len(out) == len(payload)
    assert out[d.header_size :] == DELTA_HEADER
    r = Vp8Descriptor.parse(out)
    assert r.picture_id == (None if d.picture_id is None else picture_id % (1 << d.picture_id_bits))
    assert r.tl0_pic_idx == (None if d.tl0_pic_idx is None else tl0 % 256)
    assert (r.temporal_id, r.key_idx, r.layer_sync) == (d.temporal_id, d.key_idx, d.layer_sync)
