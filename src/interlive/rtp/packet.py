"""RTP packets: parse, build and the SFU's per-packet header rewrite.

Implements the RTP fixed header, CSRC list, header extension and padding of
RFC 3550 §5.1 and §5.3.1, with the extension block decoded per RFC 8285 §4
(see :mod:`interlive.rtp.extensions`).

Theory of operation
-------------------
:meth:`RtpPacket.parse` decodes the header once and keeps the received buffer
in ``data``; the payload is ``data[payload_offset:payload_end]`` and is never
copied unless asked for.  ``__bytes__`` rebuilds the packet from the fields, so
changing a field changes the output; an untouched parsed packet re-serialises
byte-identically (the received extension block and padding bytes are reused
while the fields still describe them).

Validation (each failure raises :class:`RtpError` naming the cause):

* at least the 12-byte fixed header, version 2;
* the CSRC list, the extension header word and the extension block fit;
* with the P bit set, the last byte (padding count, RFC 3550 §5.1) is 1..N
  where N is the number of bytes after the header and extension;
* RFC 8285 element lengths stay inside the block.

An empty payload is accepted, with or without padding: RFC 3550 sets no lower
bound, senders do emit padding-only probes (P bit) and header-only packets,
and whether to forward them is a policy decision for the caller.

:func:`rewrite_rtp` is the forwarding hot path: it works on the raw buffer and
rewrites the fixed header with one ``struct.pack`` and no parse; the extension
remapping variant rebuilds only the extension block.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import ClassVar

from .errors import RtpError
from .extensions import _parse_block, build_extension_block, is_rfc8285_profile

__all__ = ["RtpPacket", "rewrite_rtp"]

_FIXED = struct.Struct("!BBHII")
_unpack_fixed = _FIXED.unpack_from
_pack_fixed = _FIXED.pack
_EXT_HEADER = struct.Struct("!HH")
_unpack_ext_header = _EXT_HEADER.unpack_from
_CSRCS = tuple(struct.Struct(f"!{n}I") for n in range(16))


class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    Build one with keyword arguments, or decode received bytes with
    :meth:`parse`.  ``extensions`` holds RFC 8285 elements by local id;
    for any other extension profile the block is kept opaque in
    ``extension_raw`` and written back unchanged.
    """

    __slots__ = (
        "csrcs",
        "data",
        "extension_profile",
        "extension_raw",
        "extensions",
        "marker",
        "padding_size",
        "payload_end",
        "payload_offset",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    __hash__: ClassVar[None]  # type: ignore[assignment]

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    #: "defined by profile" word of the extension header, None when X is clear.
    extension_profile: int | None
    #: RFC 8285 elements by local id, in wire order.
    extensions: dict[int, bytes]
    #: The extension block as received (without profile/length word), or b"".
    extension_raw: bytes
    #: Number of padding bytes including the count byte; 0 means no P bit.
    padding_size: int
    #: The buffer the payload lives in (the whole datagram for parsed packets).
    data: bytes
    payload_offset: int
    payload_end: int

    def __init__(
        self,
        *,
        payload_type: int = 0,
        marker: bool = False,
        sequence_number: int = 0,
        timestamp: int = 0,
        ssrc: int = 0,
        csrcs: tuple[int, ...] = (),
        extension_profile: int | None = None,
        extensions: Mapping[int, bytes] | None = None,
        extension_raw: bytes = b"",
        padding_size: int = 0,
        payload: bytes = b"",
    ) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = tuple(csrcs)
        self.extension_profile = extension_profile
        if extensions is not None:
            self.extensions = dict(extensions)
        elif (
            extension_raw
            and extension_profile is not None
            and is_rfc8285_profile(extension_profile)
        ):
            self.extensions = _parse_block(extension_profile, extension_raw, 0, len(extension_raw))
        else:
            self.extensions = {}
        self.extension_raw = extension_raw
        self.padding_size = padding_size
        self.data = payload
        self.payload_offset = 0
        self.payload_end = len(payload)

    @property
    def payload(self) -> bytes:
        """The payload (a copy of the slice of ``data``)."""
        return self.data[self.payload_offset : self.payload_end]

    @payload.setter
    def payload(self, value: bytes) -> None:
        self.data = value
        self.payload_offset = 0
        self.payload_end = len(value)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one RTP packet; raises :class:`RtpError` if malformed."""
        size = len(data)
        if size < 12:
            raise RtpError(f"RTP packet too short: {size} bytes, fixed header needs 12")
        b0, b1, seq, ts, ssrc = _unpack_fixed(data, 0)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version is {b0 >> 6}, expected 2")
        offset = 12
        cc = b0 & 0x0F
        if cc:
            offset = 12 + 4 * cc
            if offset > size:
                raise RtpError(f"CSRC count {cc} needs {offset} bytes, packet has {size}")
            csrcs: tuple[int, ...] = _CSRCS[cc].unpack_from(data, 12)
        else:
            csrcs = ()
        profile: int | None = None
        raw = b""
        extensions: dict[int, bytes]
        if b0 & 0x10:
            profile, start, offset = _extension_span(data, offset, size)
            raw = data[start:offset]
            if profile == 0xBEDE or (profile & 0xFFF0) == 0x1000:
                extensions = _parse_block(profile, data, start, offset)
            else:
                extensions = {}
        else:
            extensions = {}
        end = size
        padding = 0
        if b0 & 0x20:
            padding = data[size - 1]
            if padding == 0:
                raise RtpError("padding bit set but padding count is 0")
            if padding > size - offset:
                raise RtpError(
                    f"padding count {padding} exceeds the {size - offset} bytes after the header"
                )
            end = size - padding
        pkt = object.__new__(cls)
        pkt.payload_type = b1 & 0x7F
        pkt.marker = b1 >= 0x80
        pkt.sequence_number = seq
        pkt.timestamp = ts
        pkt.ssrc = ssrc
        pkt.csrcs = csrcs
        pkt.extension_profile = profile
        pkt.extensions = extensions
        pkt.extension_raw = raw
        pkt.padding_size = padding
        pkt.data = data
        pkt.payload_offset = offset
        pkt.payload_end = end
        return pkt

    def _extension_block(self) -> tuple[int, bytes] | None:
        profile = self.extension_profile
        if profile is None:
            if not self.extensions:
                return None
            return build_extension_block(self.extensions)
        raw = self.extension_raw
        if not is_rfc8285_profile(profile):
            if len(raw) & 3:
                raise RtpError(f"extension_raw is {len(raw)} bytes, not a multiple of 4")
            return profile, raw
        if len(raw) & 3 == 0:
            try:
                unchanged = _parse_block(profile, raw, 0, len(raw)) == self.extensions
            except RtpError:
                unchanged = False
            if unchanged:
                return profile, raw
        if profile == 0xBEDE:
            # Upgrade to the two-byte form if an element no longer fits.
            return build_extension_block(self.extensions)
        return build_extension_block(self.extensions, profile=profile)

    def __bytes__(self) -> bytes:
        csrcs = self.csrcs
        cc = len(csrcs)
        if cc > 15:
            raise RtpError(f"at most 15 CSRCs fit in an RTP header, got {cc}")
        padding = self.padding_size
        if not 0 <= padding <= 255:
            raise RtpError(f"padding size must be 0..255, got {padding}")
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type must be 0..127, got {self.payload_type}")
        block = self._extension_block()
        b0 = 0x80 | cc | (0x20 if padding else 0) | (0x10 if block is not None else 0)
        try:
            parts = [
                _pack_fixed(
                    b0,
                    (0x80 if self.marker else 0) | self.payload_type,
                    self.sequence_number,
                    self.timestamp,
                    self.ssrc,
                )
            ]
            if cc:
                parts.append(_CSRCS[cc].pack(*csrcs))
            if block is not None:
                profile, body = block
                parts.append(_EXT_HEADER.pack(profile, len(body) >> 2))
                parts.append(body)
        except struct.error as exc:
            raise RtpError(f"RTP header field out of range: {exc}") from exc
        parts.append(self.payload)
        if padding:
            start = self.payload_end
            tail = self.data[start : start + padding]
            if len(tail) != padding or tail[-1] != padding:
                tail = bytes(padding - 1) + bytes((padding,))
            parts.append(tail)
        return b"".join(parts)

    def _key(self) -> tuple[object, ...]:
        profile = self.extension_profile
        opaque = profile is not None and not is_rfc8285_profile(profile)
        return (
            self.payload_type,
            self.marker,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
            self.csrcs,
            profile,
            self.extension_raw if opaque else self.extensions,
            self.padding_size,
            self.payload,
        )

    def __eq__(self, other: object) -> bool:
        """Equal when the fields match; RFC 8285 blocks compare by element."""
        if not isinstance(other, RtpPacket):
            return NotImplemented
        return self._key() == other._key()

    def __repr__(self) -> str:
        return (
            f"RtpPacket(payload_type={self.payload_type}, marker={self.marker}, "
            f"sequence_number={self.sequence_number}, timestamp={self.timestamp}, "
            f"ssrc={self.ssrc:#010x}, csrcs={self.csrcs}, "
            f"extension_profile={self.extension_profile}, extensions={self.extensions}, "
            f"padding_size={self.padding_size}, payload={self.payload_end - self.payload_offset}B)"
        )


def _extension_span(data: bytes, offset: int, size: int) -> tuple[int, int, int]:
    """The extension header at ``offset``: (profile, block start, block end), checked."""
    if offset + 4 > size:
        raise RtpError(f"extension header at offset {offset} needs 4 bytes, packet has {size}")
    profile, words = _unpack_ext_header(data, offset)
    start = offset + 4
    end = start + 4 * words
    if end > size:
        raise RtpError(f"extension block of {words} words ends at {end}, packet has {size} bytes")
    return profile, start, end


def rewrite_rtp(
    data: bytes,
    *,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    payload_type: int,
    extension_ids: Mapping[int, int] | None = None,
    set_extensions: Mapping[int, bytes] | None = None,
) -> bytes:
    """Return ``data`` with a new SSRC, sequence number, timestamp and payload type.

    The marker bit, CSRCs, payload and padding are left as they are.
    ``sequence_number`` and ``timestamp`` are taken modulo 2**16 and 2**32,
    so extended values may be passed directly.

    Without ``extension_ids`` and ``set_extensions`` only the fixed header is
    rewritten (one ``pack`` and one concatenation, no parse) and the extension
    block is kept verbatim.

    Otherwise the block is rebuilt: each RFC 8285 element whose id is a key of
    ``extension_ids`` is renumbered to the mapped id and elements absent from
    it are dropped (``extension_ids=None`` keeps every element with its id);
    if two ids map to the same subscriber id, the later element in the packet
    wins.  Then ``set_extensions`` (already in subscriber ids) are added or
    overwrite.  A block with a non-RFC 8285 profile is dropped.  If no element
    remains the X bit is cleared.  The form (one- or two-byte) is chosen by
    :func:`build_extension_block`.

    The input must be a valid RTP packet (it normally passed
    :meth:`RtpPacket.parse` at ingress); structural checks here are limited to
    what the rewrite needs.  Raises :class:`RtpError`.
    """
    if extension_ids is None and set_extensions is None:
        b0 = data[0] if data else 0
        if len(data) < 12 or b0 >> 6 != 2:
            raise RtpError("not an RTP packet: shorter than 12 bytes or version != 2")
        if payload_type >> 7:
            raise RtpError(f"payload type must be 0..127, got {payload_type}")
        try:
            header = _pack_fixed(
                b0,
                (data[1] & 0x80) | payload_type,
                sequence_number & 0xFFFF,
                timestamp & 0xFFFFFFFF,
                ssrc,
            )
        except struct.error as exc:
            raise RtpError(f"SSRC must be 0..2**32-1, got {ssrc}") from exc
        return header + data[12:]
    return _rewrite_extensions(
        data, ssrc, sequence_number, timestamp, payload_type, extension_ids, set_extensions
    )


def _rewrite_extensions(
    data: bytes,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    payload_type: int,
    extension_ids: Mapping[int, int] | None,
    set_extensions: Mapping[int, bytes] | None,
) -> bytes:
    size = len(data)
    if size < 12 or data[0] >> 6 != 2:
        raise RtpError("not an RTP packet: shorter than 12 bytes or version != 2")
    if payload_type >> 7:
        raise RtpError(f"payload type must be 0..127, got {payload_type}")
    b0 = data[0]
    csrc_end = 12 + 4 * (b0 & 0x0F)
    if csrc_end > size:
        raise RtpError(f"CSRC count {b0 & 0x0F} needs {csrc_end} bytes, packet has {size}")
    rest = csrc_end
    elements: dict[int, bytes]
    if b0 & 0x10:
        profile, start, rest = _extension_span(data, csrc_end, size)
        if profile == 0xBEDE or (profile & 0xFFF0) == 0x1000:
            elements = _parse_block(profile, data, start, rest)
        else:
            elements = {}
    else:
        elements = {}
    if extension_ids is not None:
        elements = {
            extension_ids[ext_id]: value
            for ext_id, value in elements.items()
            if ext_id in extension_ids
        }
    if set_extensions:
        elements.update(set_extensions)
    try:
        fixed = _pack_fixed(
            (b0 & 0xEF) | (0x10 if elements else 0),
            (data[1] & 0x80) | payload_type,
            sequence_number & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
    except struct.error as exc:
        raise RtpError(f"SSRC must be 0..2**32-1, got {ssrc}") from exc
    if not elements:
        return b"".join((fixed, data[12:csrc_end], data[rest:]))
    profile, body = build_extension_block(elements)
    return b"".join(
        (
            fixed,
            data[12:csrc_end],
            _EXT_HEADER.pack(profile, len(body) >> 2),
            body,
            data[rest:],
        )
    )
