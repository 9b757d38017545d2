"""descriptor_parser_for and the shared error hierarchy."""

from __future__ import annotations

import dataclasses

import pytest

from interlive.codecs.descriptor import (
    FrameInfo,
    MalformedPayloadError,
    PayloadError,
    TruncatedPayloadError,
    UnsupportedPayloadError,
    descriptor_parser_for,
)
from interlive.codecs.h264 import parse_h264
from interlive.codecs.vp8 import parse_vp8
from interlive.codecs.vp9 import parse_vp9


@pytest.mark.parametrize(
    ("mime", "parser"),
    [
        ("video/VP8", parse_vp8),
        ("video/vp8", parse_vp8),
        ("VIDEO/VP9", parse_vp9),
        ("video/H264", parse_h264),
        ("video/h264", parse_h264),
    ],
)
def test_parser_for_video(mime: str, parser: object) -> None:
    assert descriptor_parser_for(mime) is parser


@pytest.mark.parametrize(
    "mime", ["audio/opus", "audio/PCMU", "video/rtx", "video/red", "video/AV1", "video/H265", ""]
)
def test_no_parser_for_others(mime: str) -> None:
    assert descriptor_parser_for(mime) is None


def test_errors_are_value_errors() -> None:
    for cls in (TruncatedPayloadError, MalformedPayloadError, UnsupportedPayloadError):
        assert issubclass(cls, PayloadError)
    assert issubclass(PayloadError, ValueError)


def test_frame_info_is_frozen_and_slotted() -> None:
    info = FrameInfo(True, True, None, None, None, None, False, None)
    assert not hasattr(info, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.is_keyframe = False  # type: ignore[misc]
