"""Errors raised by the media format parsers.

All are :class:`ValueError` subclasses sharing :class:`MediaFormatError`, so an
adapter can count and drop bad input with one ``except`` while tests can
assert which parser refused it.  Messages name the field and the values.
"""

from __future__ import annotations

__all__ = [
    "AacConfigError",
    "AvcConfigError",
    "FlvError",
    "H264RtpError",
    "MediaFormatError",
    "NalFramingError",
    "SpsError",
    "UnsupportedCodec",
]


class MediaFormatError(ValueError):
    """Base class of every error in :mod:`interlive.media`."""


class NalFramingError(MediaFormatError):
    """Malformed Annex B or length-prefixed (AVCC) NAL unit framing."""


class H264RtpError(MediaFormatError):
    """An H.264 access unit that cannot be packetized (RFC 6184)."""


class SpsError(MediaFormatError):
    """A malformed or unsupported H.264 sequence parameter set (H.264 §7.3.2.1.1)."""


class AvcConfigError(MediaFormatError):
    """A malformed AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1)."""


class AacConfigError(MediaFormatError):
    """A malformed or unsupported AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1)."""


class FlvError(MediaFormatError):
    """Malformed FLV data (FLV spec v10.1, Annex E)."""


class UnsupportedCodec(FlvError):
    """Well-formed FLV audio/video in a codec interlive does not carry (yet).

    ``codec`` is the FourCC for Enhanced RTMP (``"hvc1"``, ``"av01"``, ``"vp09"``)
    or a description of the legacy CodecID/SoundFormat.
    """

    def __init__(self, codec: str, message: str | None = None) -> None:
        self.codec = codec
        super().__init__(message or f"unsupported codec {codec!r}")
