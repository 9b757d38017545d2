"""RTP header extensions: the RFC 8285 element framing and common value codecs.

Framing (RFC 8285 §4):

* one-byte form (§4.2), profile ``0xBEDE``: each element is a byte
  ``ID(4) | L(4)`` followed by ``L + 1`` data bytes; ids 1..14, values 1..16
  bytes.  ID 15 is reserved: the parser stops at it and keeps only the elements
  before it.
* two-byte form (§4.3), profile ``0x100`` + 4 *appbits*: each element is
  ``ID(8) | length(8)`` followed by ``length`` data bytes; ids 1..255, values
  0..255 bytes.
* in both forms a zero byte between or after elements is padding (§4.1) and
  carries neither id nor length; the block is padded to a 32-bit boundary.

A block is represented as ``dict[int, bytes]`` in wire order.  When an id
appears twice (forbidden by the RFC) the last element wins.

Value codecs: audio level (RFC 6464 §3), absolute send time (webrtc.org
abs-send-time, 6.18 fixed point seconds), playout delay limits (webrtc.org
playout-delay: two 12-bit counts of 10 ms), transport-wide sequence number
(draft-holmer-rmcat-transport-wide-cc-extensions-01 §2), and the SDES items
carried as extensions per RFC 7941: MID (RFC 9143 §15.2) and RID / repaired
RID (RFC 8852 §3).  Those are handled as ASCII: RID is ASCII by definition,
and while MID is UTF-8 on the wire, SDP limits it to token characters.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from .errors import RtpError

__all__ = [
    "ABS_CAPTURE_TIME",
    "ABS_SEND_TIME",
    "ABS_SEND_TIME_UNITS_PER_SECOND",
    "AUDIO_LEVEL",
    "DEPENDENCY_DESCRIPTOR",
    "MID",
    "MUTABLE_EXTENSIONS",
    "ONE_BYTE_PROFILE",
    "PLAYOUT_DELAY",
    "PLAYOUT_DELAY_MAX",
    "REPAIRED_RID",
    "RID",
    "TOFFSET",
    "TRANSPORT_CC",
    "TWO_BYTE_PROFILE",
    "VIDEO_ORIENTATION",
    "abs_send_time_from_seconds",
    "build_abs_send_time",
    "build_audio_level",
    "build_extension_block",
    "build_mid",
    "build_playout_delay",
    "build_rid",
    "build_transport_cc",
    "is_rfc8285_profile",
    "parse_abs_send_time",
    "parse_audio_level",
    "parse_extension_block",
    "parse_mid",
    "parse_playout_delay",
    "parse_rid",
    "parse_transport_cc",
    "zero_extensions",
]

AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"
VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
DEPENDENCY_DESCRIPTOR = (
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)
ABS_CAPTURE_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

#: "defined by profile" value of the one-byte form (RFC 8285 §4.2).
ONE_BYTE_PROFILE = 0xBEDE
#: "defined by profile" value of the two-byte form with appbits 0 (RFC 8285 §4.3).
TWO_BYTE_PROFILE = 0x1000

#: The longest delay playout-delay can express: 4095 units of 10 ms (seconds).
PLAYOUT_DELAY_MAX = 40.95
_PLAYOUT_DELAY_UNITS_PER_SECOND = 100

#: abs-send-time is 6.18 fixed point seconds: 2**18 units per second.
ABS_SEND_TIME_UNITS_PER_SECOND = 1 << 18

_U16 = struct.Struct("!H")


def is_rfc8285_profile(profile: int) -> bool:
    """True for ``0xBEDE`` and ``0x1000``..``0x100F`` (RFC 8285 §4.2, §4.3)."""
    return profile == 0xBEDE or (profile & 0xFFF0) == 0x1000


def _parse_one_byte(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = start
    while i < end:
        b = data[i]
        ext_id = b >> 4
        if ext_id == 0:
            # RFC 8285 §4.1: a padding byte has no id and no length.
            i += 1
            continue
        if ext_id == 15:
            # RFC 8285 §4.2: reserved id, stop and keep what came before.
            break
        value_end = i + 2 + (b & 0x0F)
        if value_end > end:
            raise RtpError(
                f"one-byte extension id {ext_id} at offset {i - start} needs "
                f"{(b & 0x0F) + 1} bytes, block has {end - i - 1} left"
            )
        out[ext_id] = data[i + 1 : value_end]
        i = value_end
    return out


def _parse_two_byte(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = start
    while i < end:
        ext_id = data[i]
        if ext_id == 0:
            i += 1
            continue
        if i + 2 > end:
            raise RtpError(
                f"two-byte extension id {ext_id} at offset {i - start} has no length byte"
            )
        value_end = i + 2 + data[i + 1]
        if value_end > end:
            raise RtpError(
                f"two-byte extension id {ext_id} at offset {i - start} needs "
                f"{data[i + 1]} bytes, block has {end - i - 2} left"
            )
        out[ext_id] = data[i + 2 : value_end]
        i = value_end
    return out


def _parse_block(profile: int, data: bytes, start: int, end: int) -> dict[int, bytes]:
    """Parse ``data[start:end]`` without copying it; ``profile`` must be RFC 8285."""
    if profile == 0xBEDE:
        return _parse_one_byte(data, start, end)
    return _parse_two_byte(data, start, end)


def parse_extension_block(profile: int, data: bytes) -> dict[int, bytes]:
    """Parse an RFC 8285 extension block body (the bytes after profile and length).

    Raises :class:`RtpError` when ``profile`` is neither form or an element's
    length runs past the block.
    """
    if not is_rfc8285_profile(profile):
        raise RtpError(f"profile 0x{profile:04X} is not an RFC 8285 extension profile")
    return _parse_block(profile, data, 0, len(data))


def _try_one_byte(extensions: Mapping[int, bytes]) -> bytes | None:
    """The one-byte form body, or None if an element does not fit it."""
    buf = bytearray()
    for ext_id, value in extensions.items():
        size = len(value)
        if not (1 <= ext_id <= 14 and 1 <= size <= 16):
            return None
        buf.append((ext_id << 4) | (size - 1))
        buf += value
    buf += bytes(-len(buf) & 3)
    return bytes(buf)


def _build_two_byte(extensions: Mapping[int, bytes]) -> bytes:
    buf = bytearray()
    for ext_id, value in extensions.items():
        size = len(value)
        if not (1 <= ext_id <= 255 and size <= 255):
            raise RtpError(
                f"two-byte extension needs id 1..255 and 0..255 bytes, got id {ext_id}, "
                f"{size} bytes"
            )
        buf.append(ext_id)
        buf.append(size)
        buf += value
    buf += bytes(-len(buf) & 3)
    return bytes(buf)


def build_extension_block(
    extensions: Mapping[int, bytes], *, profile: int | None = None
) -> tuple[int, bytes]:
    """Serialise extension elements; returns ``(profile, body)``.

    ``body`` excludes the 4-byte profile/length word and is zero-padded to a
    multiple of 4 bytes (its length field is ``len(body) // 4``).  With
    ``profile=None`` the one-byte form is chosen when every id is 1..14 and
    every value 1..16 bytes, else the two-byte form ``0x1000``.  Passing
    ``0xBEDE`` or ``0x100X`` forces that form (keeping the appbits) and raises
    :class:`RtpError` if an element cannot be expressed in it.
    """
    if profile is None:
        body = _try_one_byte(extensions)
        if body is not None:
            return ONE_BYTE_PROFILE, body
        return TWO_BYTE_PROFILE, _build_two_byte(extensions)
    if profile == ONE_BYTE_PROFILE:
        body = _try_one_byte(extensions)
        if body is None:
            raise RtpError(
                "one-byte extension form needs ids 1..14 and values of 1..16 bytes, got "
                + ", ".join(f"id {i}: {len(v)} bytes" for i, v in extensions.items())
            )
        return profile, body
    if (profile & 0xFFF0) == 0x1000:
        return profile, _build_two_byte(extensions)
    raise RtpError(f"profile 0x{profile:04X} is not an RFC 8285 extension profile")


# --- value codecs ---------------------------------------------------------------


def parse_audio_level(value: bytes) -> tuple[bool, int]:
    """RFC 6464 §3: ``(voice_activity, level)``, level in -dBov, 0 (loud)..127."""
    if not value:
        raise RtpError("audio level extension is empty")
    b = value[0]
    return bool(b & 0x80), b & 0x7F


def build_audio_level(voice_activity: bool, level: int) -> bytes:
    """RFC 6464 §3: one byte, V flag then the 7-bit level in -dBov."""
    if not 0 <= level <= 127:
        raise RtpError(f"audio level must be 0..127 -dBov, got {level}")
    return bytes(((0x80 if voice_activity else 0) | level,))


def parse_abs_send_time(value: bytes) -> int:
    """abs-send-time: 24-bit 6.18 fixed point seconds (wraps every 64 s)."""
    if len(value) != 3:
        raise RtpError(f"abs-send-time extension must be 3 bytes, got {len(value)}")
    return (value[0] << 16) | (value[1] << 8) | value[2]


def build_abs_send_time(value: int) -> bytes:
    """Encode a 24-bit 6.18 fixed point value (``value`` is taken modulo 2**24)."""
    return (value & 0xFFFFFF).to_bytes(3, "big")


def abs_send_time_from_seconds(t: float) -> bytes:
    """Encode a time in seconds as abs-send-time (rounded to 2**-18 s, modulo 64 s)."""
    return build_abs_send_time(round(t * ABS_SEND_TIME_UNITS_PER_SECOND))


def parse_transport_cc(value: bytes) -> int:
    """Transport-wide sequence number (draft-holmer-...-01 §2): 16 bits."""
    if len(value) != 2:
        raise RtpError(f"transport-cc extension must be 2 bytes, got {len(value)}")
    return int(_U16.unpack(value)[0])


def build_transport_cc(seq: int) -> bytes:
    """Encode a transport-wide sequence number; ``seq`` is taken modulo 2**16."""
    return _U16.pack(seq & 0xFFFF)


def build_playout_delay(minimum: float, maximum: float) -> bytes:
    """playout-delay: the receiver's render delay limits in seconds, rounded to 10 ms.

    Three bytes: ``MIN(12) | MAX(12)``, each in units of 10 ms
    (webrtc.org/experiments/rtp-hdrext/playout-delay).  A receiver keeps its
    delay between them; libwebrtc reads ``0, 0`` as "render as soon as
    decoded", so a sender that only wants a floor gives a generous maximum.
    """
    low = round(minimum * _PLAYOUT_DELAY_UNITS_PER_SECOND)
    high = round(maximum * _PLAYOUT_DELAY_UNITS_PER_SECOND)
    if not 0 <= low <= high <= 0xFFF:
        raise RtpError(
            f"playout delay needs 0 <= min <= max <= {PLAYOUT_DELAY_MAX} s, "
            f"got min {minimum!r}, max {maximum!r}"
        )
    return ((low << 12) | high).to_bytes(3, "big")


def parse_playout_delay(value: bytes) -> tuple[float, float]:
    """playout-delay as ``(min, max)`` seconds; a max below the min is the sender's error."""
    if len(value) != 3:
        raise RtpError(f"playout-delay extension must be 3 bytes, got {len(value)}")
    word = int.from_bytes(value, "big")
    return (word >> 12) / _PLAYOUT_DELAY_UNITS_PER_SECOND, (
        word & 0xFFF
    ) / _PLAYOUT_DELAY_UNITS_PER_SECOND


def _parse_ascii(name: str, value: bytes) -> str:
    if not value:
        raise RtpError(f"{name} extension is empty")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RtpError(f"{name} extension is not ASCII: {value!r}") from exc


def _build_ascii(name: str, text: str) -> bytes:
    try:
        value = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise RtpError(f"{name} must be ASCII: {text!r}") from exc
    if not 1 <= len(value) <= 255:
        raise RtpError(f"{name} must be 1..255 bytes, got {len(value)}")
    return value


def parse_mid(value: bytes) -> str:
    """MID (RFC 9143 §15.2) as text."""
    return _parse_ascii("MID", value)


def build_mid(mid: str) -> bytes:
    """MID (RFC 9143 §15.2) as extension bytes."""
    return _build_ascii("MID", mid)


def parse_rid(value: bytes) -> str:
    """RtpStreamId or RepairedRtpStreamId (RFC 8852 §3) as text."""
    return _parse_ascii("RID", value)


def build_rid(rid: str) -> bytes:
    """RtpStreamId or RepairedRtpStreamId (RFC 8852 §3) as extension bytes."""
    return _build_ascii("RID", rid)


#: Extensions a sender writes after FEC is computed (pacing and send times): a
#: libwebrtc receiver zeroes them before ULPFEC recovery, so FEC must be computed
#: over packets with them zeroed (libwebrtc's ``RtpPacket::ZeroMutableExtensions``).
MUTABLE_EXTENSIONS = frozenset({ABS_SEND_TIME, TOFFSET, TRANSPORT_CC})


def zero_extensions(packet: bytes, ids: frozenset[int]) -> bytes:
    """``packet`` with the values of its header-extension elements ``ids`` set to zero.

    Returns ``packet`` itself when it has none of them.  Raises
    :class:`RtpError` when the extension block is malformed.
    """
    if not ids or not packet[0] & 0x10:
        return packet
    start = 12 + 4 * (packet[0] & 0x0F)
    if len(packet) < start + 4:
        raise RtpError(f"packet of {len(packet)} bytes ends inside its extension header")
    profile, words = struct.unpack_from("!HH", packet, start)
    begin, end = start + 4, start + 4 + 4 * words
    if end > len(packet):
        raise RtpError(f"extension block of {4 * words} bytes runs past the packet")
    if not is_rfc8285_profile(profile):
        return packet
    out: bytearray | None = None
    two_byte = profile != ONE_BYTE_PROFILE
    i = begin
    while i < end:
        ext_id = packet[i]
        if two_byte:
            if ext_id == 0:
                i += 1
                continue
            if i + 2 > end:
                break
            value, value_end = i + 2, i + 2 + packet[i + 1]
        else:
            ext_id >>= 4
            if ext_id == 0:
                i += 1
                continue
            if ext_id == 15:
                break
            value, value_end = i + 1, i + 2 + (packet[i] & 0x0F)
        if value_end > end:
            raise RtpError(f"extension id {ext_id} runs past its block")
        if ext_id in ids:
            if out is None:
                out = bytearray(packet)
            out[value:value_end] = bytes(value_end - value)
        i = value_end
    return packet if out is None else bytes(out)
