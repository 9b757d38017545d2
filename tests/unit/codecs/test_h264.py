"""H.264 RTP payload structures, RFC 6184 §5.6 (single NAL), §5.7.1 (STAP-A), §5.8 (FU-A).

NAL unit header ``|F|NRI| Type |``; FU header ``|S|E|R| Type |``.
"""

from __future__ import annotations

import pytest

from interlive.codecs.descriptor import (
    FrameInfo,
    MalformedPayloadError,
    TruncatedPayloadError,
    UnsupportedPayloadError,
)
from interlive.codecs.h264 import H264Packet, H264PacketKind, parse_h264

# SPS: NRI 3 type 7, profile_idc 0x42, constraint flags 0xc0, level_idc 0x1f, then
# seq_parameter_set_id etc.  PPS: NRI 3 type 8.
SPS = bytes.fromhex("6742c01fda014016e806d0a135")
PPS = bytes.fromhex("68ce3c80")
# IDR slice: NRI 3 type 5; 0x88 = 1000 1000: first_mb_in_slice ue(v) "1" = 0.
IDR = bytes.fromhex("65888400335f")
# Non-IDR slice: NRI 2 type 1; 0x9a: first_mb_in_slice 0.
SLICE = bytes.fromhex("419a3849")
# Second slice of a picture: 0x1a = 0001 1010: first_mb_in_slice ue(v) "00011" = 2.
SLICE_2 = bytes.fromhex("411a3849")


def _stap_a(*nals: bytes) -> bytes:
    return b"\x78" + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def test_single_nal_idr() -> None:
    assert parse_h264(IDR) == FrameInfo(
        is_keyframe=True,
        start_of_frame=True,
        temporal_id=None,
        spatial_id=None,
        tl0_pic_idx=None,
        picture_id=None,
        layer_sync=False,
        end_of_frame=None,
    )
    assert H264Packet.parse(IDR) == H264Packet(
        kind=H264PacketKind.SINGLE,
        nal_types=(5,),
        fu_start=False,
        fu_end=False,
        is_keyframe=True,
        start_of_frame=True,
    )


def test_single_nal_non_idr_slice() -> None:
    info = parse_h264(SLICE)
    assert not info.is_keyframe
    assert info.start_of_frame


def test_second_slice_is_not_start_of_frame() -> None:
    info = parse_h264(SLICE_2)
    assert not info.is_keyframe
    assert not info.start_of_frame
    # A later slice of an IDR picture is still a keyframe packet.
    info = parse_h264(bytes.fromhex("651a3849"))
    assert info.is_keyframe
    assert not info.start_of_frame


@pytest.mark.parametrize(
    ("payload", "key", "start"),
    [
        (SPS, True, True),
        (PPS, False, True),
        (bytes.fromhex("0910"), False, True),  # access unit delimiter
        (bytes.fromhex("0605ff"), False, True),  # SEI
        (bytes.fromhex("0b"), False, False),  # end of stream, header only
        (bytes.fromhex("0c00ff"), False, False),  # filler data
        (bytes.fromhex("65"), True, False),  # IDR header with no slice data
    ],
)
def test_single_nal_other_types(payload: bytes, key: bool, start: bool) -> None:
    info = parse_h264(payload)
    assert (info.is_keyframe, info.start_of_frame) == (key, start)


def test_stap_a_sps_pps_idr() -> None:
    payload = _stap_a(SPS, PPS, IDR)
    assert payload[:3] == bytes.fromhex("78000d")
    assert payload[16:18] == bytes.fromhex("0004")
    assert payload[22:24] == bytes.fromhex("0006")
    info = parse_h264(payload)
    assert info.is_keyframe
    assert info.start_of_frame
    packet = H264Packet.parse(payload)
    assert packet.kind is H264PacketKind.STAP_A
    assert packet.nal_types == (7, 8, 5)


def test_stap_a_without_keyframe() -> None:
    info = parse_h264(_stap_a(bytes.fromhex("0605ff"), SLICE))
    assert not info.is_keyframe
    assert info.start_of_frame
    info = parse_h264(_stap_a(SLICE_2, SLICE_2))
    assert not info.start_of_frame


def test_fu_a_idr_fragments() -> None:
    # FU indicator: F 0, NRI 3, type 28 = 0x7c.  FU headers for original type 5:
    # start 0x85 (S=1), middle 0x05, end 0x45 (E=1).
    start = bytes.fromhex("7c85") + IDR[1:3]
    middle = bytes.fromhex("7c05") + IDR[3:5]
    end = bytes.fromhex("7c45") + IDR[5:]
    assert parse_h264(start) == FrameInfo(True, True, None, None, None, None, False, None)
    assert parse_h264(middle) == FrameInfo(False, False, None, None, None, None, False, None)
    assert parse_h264(end) == FrameInfo(False, False, None, None, None, None, False, None)
    packets = [H264Packet.parse(p) for p in (start, middle, end)]
    assert [p.kind for p in packets] == [H264PacketKind.FU_A] * 3
    assert [(p.fu_start, p.fu_end, p.nal_types) for p in packets] == [
        (True, False, (5,)),
        (False, False, (5,)),
        (False, True, (5,)),
    ]


def test_fu_a_start_of_later_slice() -> None:
    info = parse_h264(bytes.fromhex("7c85") + SLICE_2[1:])
    assert info.is_keyframe
    assert not info.start_of_frame


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", TruncatedPayloadError),
        (b"\x78", TruncatedPayloadError),  # STAP-A with no NAL unit
        (_stap_a(SPS) + b"\x00", TruncatedPayloadError),  # half a NALU size
        (b"\x78\x00\x10" + SPS, TruncatedPayloadError),  # size 16 > 13 octets left
        (_stap_a(SPS)[:-1], TruncatedPayloadError),  # last NAL unit cut short
        (b"\x78\x00\x00" + _stap_a(SPS)[1:], MalformedPayloadError),  # NALU size 0
        (_stap_a(SPS, _stap_a(PPS)), MalformedPayloadError),  # nested STAP-A
        (_stap_a(bytes.fromhex("7c8588")), MalformedPayloadError),  # FU-A inside STAP-A
        (_stap_a(b"\x00\x01"), MalformedPayloadError),  # type 0 inside STAP-A
        (b"\x7c\x85", TruncatedPayloadError),  # FU-A with no fragment
        (b"\x7c", TruncatedPayloadError),
        (b"\x7c\x98\x00", MalformedPayloadError),  # FU-A of a STAP-A
        (b"\x7c\x80\x00", MalformedPayloadError),  # FU-A of type 0
        (b"\x79\x00\x00\x00\x04" + PPS, UnsupportedPayloadError),  # STAP-B
        (b"\x7a\x00\x00\x00\x04", UnsupportedPayloadError),  # MTAP16
        (b"\x7b\x00\x00\x00\x04", UnsupportedPayloadError),  # MTAP24
        (b"\x7d\x85\x00\x00\x88", UnsupportedPayloadError),  # FU-B
        (b"\x00\x00", UnsupportedPayloadError),  # reserved type 0
        (b"\x7e\x00", UnsupportedPayloadError),  # reserved type 30
        (b"\x7f\x00", UnsupportedPayloadError),  # reserved type 31
    ],
)
def test_rejected(payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_h264(payload)
    with pytest.raises(error):
        H264Packet.parse(payload)
