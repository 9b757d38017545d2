"""Every payload parser, on any bytes, returns a FrameInfo or raises PayloadError."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.codecs.descriptor import FrameInfo, PayloadError
from interlive.codecs.h264 import H264Packet, parse_h264
from interlive.codecs.vp8 import Vp8Descriptor, parse_vp8, rewrite_vp8_descriptor
from interlive.codecs.vp9 import Vp9Descriptor, parse_vp9

# Short payloads with every first octet, plus STAP-A-shaped ones, reach the
# flag combinations and length fields quickly.
payloads = (
    st.binary(max_size=48)
    | st.tuples(st.integers(0, 255), st.binary(max_size=24)).map(lambda t: bytes((t[0],)) + t[1])
    | st.lists(st.binary(max_size=6).map(lambda b: len(b).to_bytes(2, "big") + b), max_size=4).map(
        lambda parts: b"\x78" + b"".join(parts)
    )
)


@pytest.mark.parametrize(
    "parse",
    [parse_vp8, parse_vp9, parse_h264, Vp8Descriptor.parse, Vp9Descriptor.parse, H264Packet.parse],
)
@settings(max_examples=400)
@given(payload=payloads)
def test_parser_total(parse: Callable[[bytes], object], payload: bytes) -> None:
    try:
        result = parse(payload)
    except PayloadError:
        return
    if parse in (parse_vp8, parse_vp9, parse_h264):
        assert isinstance(result, FrameInfo)


@settings(max_examples=400)
@given(payload=payloads, picture_id=st.integers(-(1 << 20), 1 << 20), tl0=st.integers(0, 1 << 9))
def test_rewrite_total(payload: bytes, picture_id: int, tl0: int) -> None:
    try:
        out = rewrite_vp8_descriptor(payload, picture_id=picture_id, tl0_pic_idx=tl0)
    except PayloadError:
        return
    assert len(out) == len(payload)
    assert parse_vp8(out).start_of_frame == parse_vp8(payload).start_of_frame


@settings(max_examples=400)
@given(payload=payloads)
def test_full_and_fast_parsers_agree(payload: bytes) -> None:
    for fast, full in ((parse_vp8, Vp8Descriptor.parse), (parse_vp9, Vp9Descriptor.parse)):
        try:
            info = fast(payload)
        except PayloadError:
            with pytest.raises(PayloadError):
                full(payload)
            continue
        d = full(payload)
        assert info.is_keyframe == d.is_keyframe
        assert info.picture_id == d.picture_id
        assert info.tl0_pic_idx == d.tl0_pic_idx
        assert info.temporal_id == d.temporal_id
    try:
        info = parse_h264(payload)
    except PayloadError:
        return
    packet = H264Packet.parse(payload)
    assert (info.is_keyframe, info.start_of_frame) == (packet.is_keyframe, packet.start_of_frame)
