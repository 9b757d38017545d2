"""Codec-neutral view of a video RTP payload, for forwarding without decoding.

The SFU needs a handful of facts about each video packet: does it start a frame,
is it a keyframe, which temporal/spatial layer it belongs to, and the picture
numbering that a layer switch has to keep continuous.  Each payload format
carries these differently:

* VP8 in the payload descriptor of RFC 7741 §4.2 plus the first payload header
  byte (§4.3), see :mod:`interlive.codecs.vp8`;
* VP9 in the payload descriptor of RFC 9628 §4.2, see :mod:`interlive.codecs.vp9`;
* H.264 in the NAL unit headers of RFC 6184 §5.2-5.8, see :mod:`interlive.codecs.h264`.

Each module exposes a ``parse_*`` function from the RTP payload (the bytes after
the RTP header, extensions and before padding) to a :class:`FrameInfo`.
:func:`descriptor_parser_for` picks the parser from the negotiated MIME type, once
per track.  A malformed payload raises a :class:`PayloadError` subclass, which the
ingress counts and drops; nothing else is raised for any input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "FrameInfo",
    "MalformedPayloadError",
    "PayloadError",
    "TruncatedPayloadError",
    "UnsupportedPayloadError",
    "descriptor_parser_for",
]


class PayloadError(ValueError):
    """A video RTP payload that cannot be interpreted."""


class TruncatedPayloadError(PayloadError):
    """The payload ends before a field its own flags say is present."""


class MalformedPayloadError(PayloadError):
    """A field holds a value the payload format forbids (e.g. a zero STAP-A NALU size)."""


class UnsupportedPayloadError(PayloadError):
    """A well-formed structure this SFU does not forward (e.g. H.264 STAP-B, MTAP, FU-B)."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What the forwarder needs to know about one video RTP packet.

    ``start_of_frame`` is true when the packet begins a (layer) frame, i.e. a
    forwarder may start or switch a stream at this packet if it is also a keyframe.
    ``end_of_frame`` is None when the payload format does not say (VP8, H.264:
    use the RTP marker bit).  Layer fields are None when the packet does not
    carry them.
    """

    is_keyframe: bool
    start_of_frame: bool
    temporal_id: int | None
    spatial_id: int | None
    tl0_pic_idx: int | None
    picture_id: int | None
    layer_sync: bool
    end_of_frame: bool | None


def descriptor_parser_for(mime: str) -> Callable[[bytes], FrameInfo] | None:
    """Return the payload parser for a ``type/subtype`` MIME name, or None.

    Matching is case-insensitive ("video/vp8" and "video/VP8" are the same, as in
    SDP).  Audio, RTX, FEC and unknown video formats return None.
    """
    from interlive.codecs.h264 import parse_h264
    from interlive.codecs.vp8 import parse_vp8
    from interlive.codecs.vp9 import parse_vp9

    parsers: dict[str, Callable[[bytes], FrameInfo]] = {
        "video/vp8": parse_vp8,
        "video/vp9": parse_vp9,
        "video/h264": parse_h264,
    }
    return parsers.get(mime.strip().lower())
