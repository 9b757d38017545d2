"""VP9 payload descriptor, RFC 9628 §4.2 and §4.2.1 (scalability structure).

Vectors are built bit by bit from the RFC 9628 layouts; octet 0 is
``|I|P|L|F|B|E|V|Z|`` (0x80 0x40 0x20 0x10 0x08 0x04 0x02 0x01).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.codecs.descriptor import FrameInfo, PayloadError, TruncatedPayloadError
from interlive.codecs.vp9 import (
    Vp9Descriptor,
    Vp9PictureGroupEntry,
    Vp9ReferenceError,
    Vp9ScalabilityStructure,
    parse_vp9,
)

FRAME = b"\x82\x49\x83"  # VP9 frame marker, profile 0, key frame (uncompressed header)


def test_non_flexible_keyframe_with_tl0picidx() -> None:
    # I L B E = 0xac | M=1 PICTURE ID 0x0123 | TID 0 U 0 SID 0 D 0 | TL0PICIDX 0x2a
    payload = bytes.fromhex("ac8123002a") + FRAME
    d = Vp9Descriptor.parse(payload)
    assert d == Vp9Descriptor(
        inter_predicted=False,
        flexible=False,
        start_of_frame=True,
        end_of_frame=True,
        not_upper_reference=False,
        picture_id=0x0123,
        picture_id_bits=15,
        temporal_id=0,
        switching_up=False,
        spatial_id=0,
        inter_layer_dependency=False,
        tl0_pic_idx=0x2A,
        p_diffs=(),
        ss=None,
        header_size=5,
    )
    assert d.is_keyframe
    assert bytes(d) == payload[:5]
    assert parse_vp9(payload) == FrameInfo(
        is_keyframe=True,
        start_of_frame=True,
        temporal_id=0,
        spatial_id=0,
        tl0_pic_idx=0x2A,
        picture_id=0x0123,
        layer_sync=False,
        end_of_frame=True,
    )


def test_non_flexible_delta_upper_layers() -> None:
    # I P L B = 0xe8 | M=0 PICTURE ID 5 | TID 2 U 1 SID 1 D 1 = 010 1 001 1 = 0x53 | TL0 7
    payload = bytes.fromhex("e8055307") + FRAME
    d = Vp9Descriptor.parse(payload)
    assert (d.picture_id, d.picture_id_bits) == (5, 7)
    assert (d.temporal_id, d.switching_up, d.spatial_id, d.inter_layer_dependency) == (
        2,
        True,
        1,
        True,
    )
    assert d.tl0_pic_idx == 7
    assert d.p_diffs == ()
    assert not d.is_keyframe
    assert bytes(d) == payload[:4]
    assert parse_vp9(payload) == FrameInfo(False, True, 2, 1, 7, 5, True, False)


def test_flexible_with_three_references() -> None:
    # I P L F B E = 0xfc | M=1 PICTURE ID 0x4567 | TID 1 U 0 SID 0 D 0 = 0x20 |
    # P_DIFF 1 N=1 (0x03), P_DIFF 2 N=1 (0x05), P_DIFF 4 N=0 (0x08); no TL0PICIDX.
    payload = bytes.fromhex("fcc5672003050800") + FRAME
    d = Vp9Descriptor.parse(payload)
    assert d.flexible
    assert d.inter_predicted
    assert d.picture_id == 0x4567
    assert d.tl0_pic_idx is None
    assert d.p_diffs == (1, 2, 4)
    assert d.header_size == 7
    assert bytes(d) == payload[:7]
    assert parse_vp9(payload) == FrameInfo(False, True, 1, 0, None, 0x4567, False, True)


def test_flexible_single_reference_without_layers() -> None:
    # I P F = 0xd0 | PICTURE ID 0x11 | P_DIFF 1 N=0 (0x02)
    payload = bytes.fromhex("d01102") + FRAME
    d = Vp9Descriptor.parse(payload)
    assert d.p_diffs == (1,)
    assert (d.temporal_id, d.spatial_id) == (None, None)
    assert d.header_size == 3
    assert bytes(d) == payload[:3]


def test_flexible_four_references_rejected() -> None:
    payload = bytes.fromhex("d0110305070900") + FRAME
    with pytest.raises(Vp9ReferenceError):
        Vp9Descriptor.parse(payload)
    with pytest.raises(Vp9ReferenceError):
        parse_vp9(payload)


# SS for two spatial layers, 320x180 and 640x360, with a two-picture group:
# N_S=1 Y=1 G=1 = 001 1 1 000 = 0x38 | 0140 00b4 | 0280 0168 | N_G=2 |
# TID 0 U 0 R 1 = 000 0 01 00 = 0x04, P_DIFF 2 | TID 1 U 1 R 1 = 001 1 01 00 = 0x34, P_DIFF 1
SS_TWO_LAYERS = bytes.fromhex("38014000b40280016802040234" + "01")


def test_scalability_structure_two_spatial_layers() -> None:
    # I L B V = 0xaa | PICTURE ID 1 | TID 0 SID 0 | TL0 0 | SS
    payload = bytes.fromhex("aa010000") + SS_TWO_LAYERS + FRAME
    d = Vp9Descriptor.parse(payload)
    assert d.ss == Vp9ScalabilityStructure(
        spatial_layers=2,
        resolutions=((320, 180), (640, 360)),
        picture_group=(
            Vp9PictureGroupEntry(temporal_id=0, switching_up=False, p_diffs=(2,)),
            Vp9PictureGroupEntry(temporal_id=1, switching_up=True, p_diffs=(1,)),
        ),
    )
    assert d.header_size == 4 + len(SS_TWO_LAYERS)
    assert d.is_keyframe
    assert bytes(d) == payload[: d.header_size]
    info = parse_vp9(payload)
    assert info.is_keyframe
    assert info.end_of_frame is False


def test_scalability_structure_without_resolutions_or_group() -> None:
    # V only: N_S=2 Y=0 G=0 = 010 0 0 000 = 0x40
    payload = bytes.fromhex("0a40") + FRAME
    d = Vp9Descriptor.parse(payload)
    assert d.ss == Vp9ScalabilityStructure(spatial_layers=3, resolutions=None, picture_group=None)
    assert d.header_size == 2
    assert bytes(d) == payload[:2]


def test_ss_parse_alone() -> None:
    ss, end = Vp9ScalabilityStructure.parse(b"\xff" + SS_TWO_LAYERS, 1)
    assert end == 1 + len(SS_TWO_LAYERS)
    assert ss.spatial_layers == 2
    assert bytes(ss) == SS_TWO_LAYERS


def test_keyframe_needs_base_spatial_layer_and_start() -> None:
    # P=0, B=1 but SID=1: an intra upper-layer frame of an inter-layer predicted picture.
    assert not parse_vp9(bytes.fromhex("a8010200") + FRAME).is_keyframe
    # P=0, SID=0 but B=0: a continuation packet.
    assert not parse_vp9(bytes.fromhex("a0010000") + FRAME).is_keyframe
    # P=0, B=1, no layer indices: SID is 0.
    assert parse_vp9(b"\x08" + FRAME).is_keyframe


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x80",  # I=1, no PICTURE ID
        b"\x80\x80",  # 15-bit PICTURE ID truncated
        b"\x20",  # L=1, no layer octet
        b"\x20\x00",  # non-flexible L=1, no TL0PICIDX
        b"\x50",  # flexible P=1, no P_DIFF
        b"\x50\x03",  # P_DIFF N=1 but nothing follows
        b"\x02",  # V=1, no SS
        b"\x02\x10\x01\x40\x00",  # SS Y=1, resolution truncated
        b"\x02\x08",  # SS G=1, no N_G
        b"\x02\x08\x02\x04\x01",  # SS picture group truncated
        b"\x02\x08\x01\x0c\x01",  # picture group entry R=3, one P_DIFF present
        b"\xac\x81\x23\x00\x2a",  # complete descriptor, no payload
    ],
)
def test_truncated(payload: bytes) -> None:
    with pytest.raises(TruncatedPayloadError):
        Vp9Descriptor.parse(payload)
    with pytest.raises(TruncatedPayloadError):
        parse_vp9(payload)


def test_serialise_rejects_out_of_range() -> None:
    d = Vp9Descriptor.parse(bytes.fromhex("d01102") + FRAME)
    with pytest.raises(ValueError):
        bytes(dataclasses.replace(d, p_diffs=(1, 2, 3, 4)))
    with pytest.raises(ValueError):
        bytes(dataclasses.replace(d, picture_id=0x80))
    with pytest.raises(ValueError):
        bytes(Vp9ScalabilityStructure(spatial_layers=9, resolutions=None, picture_group=None))


@st.composite
def descriptors(draw: st.DrawFn) -> Vp9Descriptor:
    bits = draw(st.sampled_from([0, 7, 15]))
    picture_id = draw(st.integers(0, (1 << bits) - 1)) if bits else None
    flexible = draw(st.booleans())
    inter = draw(st.booleans())
    layered = draw(st.booleans())
    tid = draw(st.integers(0, 7)) if layered else None
    sid = draw(st.integers(0, 7)) if layered else None
    tl0 = draw(st.integers(0, 255)) if layered and not flexible else None
    p_diffs = (
        tuple(draw(st.lists(st.integers(0, 127), min_size=1, max_size=3)))
        if flexible and inter
        else ()
    )
    ss = None
    if draw(st.booleans()):
        layers = draw(st.integers(1, 8))
        resolutions = draw(
            st.none()
            | st.lists(
                st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
                min_size=layers,
                max_size=layers,
            ).map(tuple)
        )
        group = draw(
            st.none()
            | st.lists(
                st.builds(
                    Vp9PictureGroupEntry,
                    temporal_id=st.integers(0, 7),
                    switching_up=st.booleans(),
                    p_diffs=st.lists(st.integers(0, 255), max_size=3).map(tuple),
                ),
                max_size=8,
            ).map(tuple)
        )
        ss = Vp9ScalabilityStructure(layers, resolutions, group)
    d = Vp9Descriptor(
        inter_predicted=inter,
        flexible=flexible,
        start_of_frame=draw(st.booleans()),
        end_of_frame=draw(st.booleans()),
        not_upper_reference=draw(st.booleans()),
        picture_id=picture_id,
        picture_id_bits=bits,
        temporal_id=tid,
        switching_up=layered and draw(st.booleans()),
        spatial_id=sid,
        inter_layer_dependency=layered and draw(st.booleans()),
        tl0_pic_idx=tl0,
        p_diffs=p_diffs,
        ss=ss,
        header_size=0,
    )
    return dataclasses.replace(d, header_size=len(bytes(d)))


@given(descriptors())
def test_round_trip(d: Vp9Descriptor) -> None:
    payload = bytes(d) + FRAME
    assert Vp9Descriptor.parse(payload) == d
    info = parse_vp9(payload)
    assert info.is_keyframe == d.is_keyframe
    assert (info.temporal_id, info.spatial_id, info.tl0_pic_idx, info.picture_id) == (
        d.temporal_id,
        d.spatial_id,
        d.tl0_pic_idx,
        d.picture_id,
    )
    assert (info.start_of_frame, info.end_of_frame, info.layer_sync) == (
        d.start_of_frame,
        d.end_of_frame,
        d.switching_up,
    )


@given(descriptors(), st.data())
def test_every_truncation_raises(d: Vp9Descriptor, data: st.DataObject) -> None:
    header = bytes(d)
    cut = data.draw(st.integers(0, len(header)))
    with pytest.raises(PayloadError):
        parse_vp9(header[:cut])
