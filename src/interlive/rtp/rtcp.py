"""RTCP packets: compound parsing and the report and feedback messages an SFU uses.

Implements:

* the common header and compound packets, RFC 3550 §6.4 and §6.1, with
  padding per §6.4.1 (the P bit and trailing count byte);
* SR and RR with report blocks, RFC 3550 §6.4.1 and §6.4.2;
* SDES, RFC 3550 §6.5, and BYE, RFC 3550 §6.6;
* generic NACK, RFC 4585 §6.2.1, and PLI, RFC 4585 §6.3.1;
* FIR, RFC 5104 §4.3.1;
* REMB, draft-alvestrand-rmcat-remb-03 §2.2;
* transport-wide congestion control feedback,
  draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1;
* demultiplexing of RTP and RTCP on one port, RFC 5761 §4.

APP (204), XR (207), unknown packet types and unknown feedback formats are
kept as :class:`UnknownRtcp` and re-serialised byte for byte.

Each message is a dataclass with a ``parse(data)`` classmethod taking exactly
one RTCP packet and ``__bytes__``.  :func:`parse_rtcp` splits a compound
packet.  Padding is validated and removed on parse; ``__bytes__`` never adds
padding (SRTCP needs none), so only unpadded packets re-serialise identically.
Trailing bytes after the structures a type defines (SR/RR profile extensions,
TWCC zero padding) are ignored.  Malformed input raises :class:`RtcpError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeAlias

from .errors import RtcpError

__all__ = [
    "RTCP_APP",
    "RTCP_BYE",
    "RTCP_PSFB",
    "RTCP_RR",
    "RTCP_RTPFB",
    "RTCP_SDES",
    "RTCP_SR",
    "RTCP_XR",
    "SDES_CNAME",
    "Bye",
    "Fir",
    "Nack",
    "Pli",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "TransportCcFeedback",
    "UnknownRtcp",
    "is_rtcp",
    "parse_rtcp",
    "serialize_rtcp",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
RTCP_RTPFB = 205
RTCP_PSFB = 206
RTCP_XR = 207

_FMT_NACK = 1  # RTPFB, RFC 4585 §6.2.1
_FMT_TWCC = 15  # RTPFB, transport-wide-cc-extensions-01 §3.1
_FMT_PLI = 1  # PSFB, RFC 4585 §6.3.1
_FMT_FIR = 4  # PSFB, RFC 5104 §4.3.1
_FMT_AFB = 15  # PSFB application layer feedback, RFC 4585 §6.4; REMB lives here

#: SDES item type of the canonical name, RFC 3550 §6.5.1.
SDES_CNAME = 1

_HEADER = struct.Struct("!BBH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_I16 = struct.Struct("!h")
_FB_HEADER = struct.Struct("!II")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SR_INFO = struct.Struct("!IQIII")
_FIR_ENTRY = struct.Struct("!IB3x")
_REMB_HEAD = struct.Struct("!II4sBBH")
_TWCC_HEAD = struct.Struct("!IIHHI")


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: an RTCP packet has a second byte in 192..223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def _header(packet_type: int, count: int, body_len: int) -> bytes:
    """Common header, RFC 3550 §6.4.1: length is in 32-bit words minus one."""
    if body_len & 3:
        raise RtcpError(f"RTCP body must be a multiple of 4 bytes, got {body_len}")
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count/format must be 0..31, got {count}")
    words = body_len >> 2
    if words > 0xFFFF:
        raise RtcpError(f"RTCP packet too long: {body_len} bytes")
    return _HEADER.pack(0x80 | count, packet_type, words)


def _pad4(data: bytes | bytearray) -> bytes:
    return bytes(data) + bytes(-len(data) & 3)


def _pack(st: struct.Struct, what: str, *values: int | bytes) -> bytes:
    try:
        return st.pack(*values)
    except struct.error as exc:
        raise RtcpError(f"{what} field out of range: {exc}") from exc


class _Parseable:
    """``parse(data)`` for one RTCP packet, shared by every message class."""

    __slots__ = ()

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Decode exactly one RTCP packet of this type."""
        packets = parse_rtcp(data)
        if len(packets) != 1:
            raise RtcpError(f"expected one RTCP packet, found {len(packets)}")
        packet = packets[0]
        if not isinstance(packet, cls):
            raise RtcpError(f"expected {cls.__name__}, found {type(packet).__name__}")
        return packet


# --- reports (RFC 3550 §6.4) -----------------------------------------------------


@dataclass(slots=True)
class ReportBlock:
    """Reception report block, RFC 3550 §6.4.1 (24 bytes).

    ``packets_lost`` is the signed 24-bit cumulative count (negative with
    duplicates), ``highest_sequence`` the 32-bit extended highest sequence
    number, ``lsr``/``dlsr`` compact NTP (see :mod:`interlive.rtp.ntp`).
    """

    SIZE: ClassVar[int] = 24

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        """Decode the 24-byte block at ``data[offset:]``."""
        if len(data) - offset < 24:
            raise RtcpError(f"report block needs 24 bytes, got {len(data) - offset}")
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        if not -0x800000 <= self.packets_lost <= 0x7FFFFF:
            raise RtcpError(f"packets_lost must fit signed 24 bits, got {self.packets_lost}")
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpError(f"fraction_lost must be 0..255, got {self.fraction_lost}")
        return _pack(
            _REPORT_BLOCK,
            "report block",
            self.ssrc,
            (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF),
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _parse_blocks(count: int, body: bytes, offset: int, kind: str) -> list[ReportBlock]:
    if len(body) < offset + 24 * count:
        raise RtcpError(
            f"{kind} with {count} report blocks needs {offset + 24 * count} body bytes, "
            f"got {len(body)}"
        )
    return [ReportBlock.parse(body, offset + 24 * i) for i in range(count)]


def _blocks_bytes(reports: Sequence[ReportBlock]) -> bytes:
    if len(reports) > 31:
        raise RtcpError(f"at most 31 report blocks per packet, got {len(reports)}")
    return b"".join(bytes(r) for r in reports)


@dataclass(slots=True)
class SenderReport(_Parseable):
    """SR, RFC 3550 §6.4.1."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def _decode(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < 24:
            raise RtcpError(f"SR body needs 24 bytes of sender info, got {len(body)}")
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body, 0)
        return cls(ssrc, ntp, rtp_ts, packets, octets, _parse_blocks(count, body, 24, "SR"))

    def __bytes__(self) -> bytes:
        body = _pack(
            _SR_INFO,
            "SR",
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        ) + _blocks_bytes(self.reports)
        return _header(RTCP_SR, len(self.reports), len(body)) + body


@dataclass(slots=True)
class ReceiverReport(_Parseable):
    """RR, RFC 3550 §6.4.2."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def _decode(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise RtcpError(f"RR body needs 4 bytes of SSRC, got {len(body)}")
        return cls(_U32.unpack_from(body, 0)[0], _parse_blocks(count, body, 4, "RR"))

    def __bytes__(self) -> bytes:
        body = _pack(_U32, "RR", self.ssrc) + _blocks_bytes(self.reports)
        return _header(RTCP_RR, len(self.reports), len(body)) + body


# --- SDES and BYE (RFC 3550 §6.5, §6.6) ---------------------------------------


@dataclass(slots=True)
class SdesChunk:
    """One SDES chunk: a source and its ``(item type, value)`` list, RFC 3550 §6.5."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        """The CNAME item (UTF-8, RFC 3550 §6.5.1) or None."""
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        buf = bytearray(_pack(_U32, "SDES chunk", self.ssrc))
        for item_type, value in self.items:
            if not 1 <= item_type <= 255:
                raise RtcpError(f"SDES item type must be 1..255, got {item_type}")
            if len(value) > 255:
                raise RtcpError(f"SDES item must be at most 255 bytes, got {len(value)}")
            buf.append(item_type)
            buf.append(len(value))
            buf += value
        # Item list ends with at least one null octet, then pads to 32 bits.
        buf += bytes(4 - (len(buf) & 3))
        return bytes(buf)


@dataclass(slots=True)
class Sdes(_Parseable):
    """SDES, RFC 3550 §6.5."""

    chunks: list[SdesChunk] = field(default_factory=list)

    @classmethod
    def from_cname(cls, ssrc: int, cname: str) -> Sdes:
        """The usual SDES: one chunk carrying only the CNAME."""
        return cls([SdesChunk(ssrc, [(SDES_CNAME, cname.encode("utf-8"))])])

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Sdes:
        chunks: list[SdesChunk] = []
        size = len(body)
        pos = 0
        for index in range(count):
            if pos + 4 > size:
                raise RtcpError(f"SDES chunk {index} of {count} truncated at offset {pos}")
            chunk = SdesChunk(_U32.unpack_from(body, pos)[0])
            pos += 4
            while True:
                if pos >= size:
                    raise RtcpError(f"SDES chunk {index} has no terminating null item")
                item_type = body[pos]
                if item_type == 0:
                    pos = (pos + 4) & ~3  # skip the null octet and pad to 32 bits
                    break
                if pos + 2 > size or pos + 2 + body[pos + 1] > size:
                    raise RtcpError(f"SDES item type {item_type} in chunk {index} truncated")
                end = pos + 2 + body[pos + 1]
                chunk.items.append((item_type, body[pos + 2 : end]))
                pos = end
            chunks.append(chunk)
        return cls(chunks)

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(c) for c in self.chunks)
        return _header(RTCP_SDES, len(self.chunks), len(body)) + body


@dataclass(slots=True)
class Bye(_Parseable):
    """BYE, RFC 3550 §6.6; ``reason`` None when absent."""

    sources: list[int] = field(default_factory=list)
    reason: bytes | None = None

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Bye:
        end = 4 * count
        if len(body) < end:
            raise RtcpError(f"BYE with {count} sources needs {end} bytes, got {len(body)}")
        sources = list(struct.unpack_from(f"!{count}I", body, 0))
        reason = None
        if len(body) > end:
            length = body[end]
            if end + 1 + length > len(body):
                raise RtcpError(f"BYE reason of {length} bytes runs past the packet")
            reason = body[end + 1 : end + 1 + length]
        return cls(sources, reason)

    def __bytes__(self) -> bytes:
        try:
            body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        except struct.error as exc:
            raise RtcpError(f"BYE source out of range: {exc}") from exc
        if self.reason is not None:
            if len(self.reason) > 255:
                raise RtcpError(f"BYE reason must be at most 255 bytes, got {len(self.reason)}")
            body = _pad4(body + bytes((len(self.reason),)) + self.reason)
        return _header(RTCP_BYE, len(self.sources), len(body)) + body


# --- feedback (RFC 4585 §6, RFC 5104 §4.3.1, REMB, TWCC) ---------------------------


def _fb_ssrcs(body: bytes, kind: str, minimum: int = 8) -> tuple[int, int]:
    if len(body) < minimum:
        raise RtcpError(f"{kind} body needs {minimum} bytes, got {len(body)}")
    sender, media = _FB_HEADER.unpack_from(body, 0)
    return sender, media


@dataclass(slots=True)
class Nack(_Parseable):
    """Generic NACK, RFC 4585 §6.2.1.

    ``lost`` holds 16-bit sequence numbers.  Serialisation orders them by
    serial-number distance from the first entry (so a list may straddle the
    65535 -> 0 wrap, spanning less than 32768), drops duplicates and packs
    them greedily into PID + BLP pairs, which is minimal for a 17-wide window.
    Parsing expands the pairs in packet order.
    """

    sender_ssrc: int
    media_ssrc: int
    lost: list[int] = field(default_factory=list)

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Nack:
        sender, media = _fb_ssrcs(body, "NACK", 12)
        if len(body) & 3:
            raise RtcpError(f"NACK FCI must be whole 4-byte entries, body is {len(body)} bytes")
        lost: list[int] = []
        for pos in range(8, len(body), 4):
            pid = (body[pos] << 8) | body[pos + 1]
            blp = (body[pos + 2] << 8) | body[pos + 3]
            lost.append(pid)
            bit = 0
            while blp:
                if blp & 1:
                    lost.append((pid + bit + 1) & 0xFFFF)
                blp >>= 1
                bit += 1
        return cls(sender, media, lost)

    def fci(self) -> list[tuple[int, int]]:
        """The ``(PID, BLP)`` pairs this NACK serialises to."""
        if not self.lost:
            return []
        ref = self.lost[0]
        for seq in self.lost:
            if not 0 <= seq <= 0xFFFF:
                raise RtcpError(f"NACK sequence number must be 0..65535, got {seq}")
        offsets = sorted({((seq - ref + 0x8000) & 0xFFFF) - 0x8000 for seq in self.lost})
        pairs: list[tuple[int, int]] = []
        pid_offset = offsets[0]
        blp = 0
        for offset in offsets[1:]:
            distance = offset - pid_offset
            if distance <= 16:
                blp |= 1 << (distance - 1)
            else:
                pairs.append(((ref + pid_offset) & 0xFFFF, blp))
                pid_offset = offset
                blp = 0
        pairs.append(((ref + pid_offset) & 0xFFFF, blp))
        return pairs

    def __bytes__(self) -> bytes:
        pairs = self.fci()
        if not pairs:
            raise RtcpError("a NACK needs at least one lost sequence number")
        body = _pack(_FB_HEADER, "NACK", self.sender_ssrc, self.media_ssrc) + b"".join(
            _U32.pack((pid << 16) | blp) for pid, blp in pairs
        )
        return _header(RTCP_RTPFB, _FMT_NACK, len(body)) + body


@dataclass(slots=True)
class Pli(_Parseable):
    """Picture Loss Indication, RFC 4585 §6.3.1 (no FCI)."""

    sender_ssrc: int
    media_ssrc: int

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Pli:
        return cls(*_fb_ssrcs(body, "PLI"))

    def __bytes__(self) -> bytes:
        body = _pack(_FB_HEADER, "PLI", self.sender_ssrc, self.media_ssrc)
        return _header(RTCP_PSFB, _FMT_PLI, 8) + body


@dataclass(slots=True)
class Fir(_Parseable):
    """Full Intra Request, RFC 5104 §4.3.1.

    ``entries`` are ``(media SSRC, command sequence number)``.  The common
    media source field SHALL be 0 (§4.3.1.2); a received value is kept in
    ``media_ssrc`` so the packet re-serialises identically.
    """

    sender_ssrc: int
    entries: list[tuple[int, int]] = field(default_factory=list)
    media_ssrc: int = 0

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Fir:
        sender, media = _fb_ssrcs(body, "FIR", 16)
        if (len(body) - 8) & 7:
            raise RtcpError(f"FIR FCI must be whole 8-byte entries, got {len(body) - 8} bytes")
        entries = [(ssrc, seq) for ssrc, seq in _FIR_ENTRY.iter_unpack(memoryview(body)[8:])]
        return cls(sender, entries, media)

    def __bytes__(self) -> bytes:
        if not self.entries:
            raise RtcpError("a FIR needs at least one entry")
        body = _pack(_FB_HEADER, "FIR", self.sender_ssrc, self.media_ssrc) + b"".join(
            _pack(_FIR_ENTRY, "FIR entry", ssrc, seq) for ssrc, seq in self.entries
        )
        return _header(RTCP_PSFB, _FMT_FIR, len(body)) + body


@dataclass(slots=True)
class Remb(_Parseable):
    """Receiver Estimated Maximum Bitrate, draft-alvestrand-rmcat-remb-03 §2.2.

    The bitrate travels as an 18-bit mantissa and 6-bit exponent.
    Serialisation picks the smallest exponent whose mantissa fits and so
    rounds down to the nearest representable value.  Parsing is exact: Python
    integers do not overflow, so the largest encodable value,
    ``(2**18 - 1) * 2**63`` bit/s, decodes as such; callers cap it as needed.
    """

    sender_ssrc: int
    bitrate: int
    ssrcs: list[int] = field(default_factory=list)

    @classmethod
    def _decode(cls, count: int, body: bytes) -> Remb:
        if len(body) < 16:
            raise RtcpError(f"REMB body needs 16 bytes, got {len(body)}")
        sender, _media, _ident, num, exp_hi, mantissa_lo = _REMB_HEAD.unpack_from(body, 0)
        exponent = exp_hi >> 2
        mantissa = ((exp_hi & 3) << 16) | mantissa_lo
        if len(body) < 16 + 4 * num:
            raise RtcpError(f"REMB lists {num} SSRCs but the body has {len(body)} bytes")
        ssrcs = list(struct.unpack_from(f"!{num}I", body, 16))
        return cls(sender, mantissa << exponent, ssrcs)

    def __bytes__(self) -> bytes:
        bitrate = self.bitrate
        if bitrate < 0:
            raise RtcpError(f"REMB bitrate must not be negative, got {bitrate}")
        exponent = max(0, bitrate.bit_length() - 18)
        if exponent > 63:
            raise RtcpError(f"REMB bitrate {bitrate} exceeds (2**18 - 1) * 2**63")
        mantissa = bitrate >> exponent
        if len(self.ssrcs) > 255:
            raise RtcpError(f"REMB carries at most 255 SSRCs, got {len(self.ssrcs)}")
        head = _pack(
            _REMB_HEAD,
            "REMB",
            self.sender_ssrc,
            0,
            b"REMB",
            len(self.ssrcs),
            (exponent << 2) | (mantissa >> 16),
            mantissa & 0xFFFF,
        )
        try:
            tail = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        except struct.error as exc:
            raise RtcpError(f"REMB SSRC out of range: {exc}") from exc
        body = head + tail
        return _header(RTCP_PSFB, _FMT_AFB, len(body)) + body


# Packet status symbols, transport-wide-cc-extensions-01 §3.1.1.
_NOT_RECEIVED = 0
_SMALL_DELTA = 1
_LARGE_DELTA = 2
_DELTA_TICK_US = 250
_REFERENCE_TICK_US = 64_000
_MAX_RUN = 0x1FFF


def _encode_chunks(symbols: list[int]) -> bytes:
    """Greedy chunk encoding: at each point use whichever chunk covers most.

    Candidates are a run-length chunk (up to 8191 equal symbols), a 1-bit
    status vector (14 symbols, only if none of them is a large delta) and a
    2-bit status vector (7 symbols).  A vector at the end of the list covers
    the remaining symbols and is padded with "not received".
    """
    out = bytearray()
    total = len(symbols)
    i = 0
    while i < total:
        symbol = symbols[i]
        j = i + 1
        limit = min(total, i + _MAX_RUN)
        while j < limit and symbols[j] == symbol:
            j += 1
        run = j - i
        window = symbols[i : i + 14]
        one_bit = _LARGE_DELTA not in window
        vector = len(window) if one_bit else min(7, len(window))
        if run >= vector:
            chunk = (symbol << 13) | run
            i += run
        elif one_bit:
            chunk = 0x8000
            for k, s in enumerate(window):
                chunk |= s << (13 - k)
            i += 14
        else:
            chunk = 0xC000
            for k, s in enumerate(symbols[i : i + 7]):
                chunk |= s << (12 - 2 * k)
            i += 7
        out += _U16.pack(chunk)
    return bytes(out)


@dataclass(slots=True)
class TransportCcFeedback(_Parseable):
    """Transport-wide CC feedback, draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.

    ``packets`` lists ``(sequence number, delta_us)`` for ``base_sequence``
    onwards, consecutively modulo 2**16; ``delta_us`` is None for a packet not
    received, else its arrival time minus the previous received packet's (the
    first one's relative to ``reference_time``), a multiple of 250 us.
    ``reference_time`` is the signed 24-bit field in units of 64 ms.  Deltas
    of 0..63750 us use the 1-byte form, others the signed 2-byte form
    (-8192000..8191750 us); anything else raises on serialisation.

    Feedback must cover at least one packet: libwebrtc drops empty feedback,
    so an empty ``packets`` list raises on serialisation and a status count
    of 0 raises on parsing.  Feedback without receive deltas (a libwebrtc
    extension for transport-wide-cc-02) is not accepted: a missing delta
    raises.
    """

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    feedback_count: int
    reference_time: int
    packets: list[tuple[int, int | None]] = field(default_factory=list)

    @classmethod
    def _decode(cls, count: int, body: bytes) -> TransportCcFeedback:
        size = len(body)
        if size < 16:
            raise RtcpError(f"TWCC body needs 16 bytes, got {size}")
        sender, media, base, status_count, ref_word = _TWCC_HEAD.unpack_from(body, 0)
        if status_count == 0:
            raise RtcpError("TWCC feedback with packet status count 0")
        reference = ref_word >> 8
        if reference & 0x800000:
            reference -= 0x1000000
        symbols: list[int] = []
        pos = 16
        while len(symbols) < status_count:
            if pos + 2 > size:
                raise RtcpError(
                    f"TWCC chunks end after {len(symbols)} of {status_count} packet statuses"
                )
            chunk = (body[pos] << 8) | body[pos + 1]
            pos += 2
            if not chunk & 0x8000:
                symbol = (chunk >> 13) & 3
                symbols.extend([symbol] * min(chunk & _MAX_RUN, status_count - len(symbols)))
            elif not chunk & 0x4000:
                symbols.extend((chunk >> shift) & 1 for shift in range(13, -1, -1))
            else:
                symbols.extend((chunk >> shift) & 3 for shift in range(12, -1, -2))
        del symbols[status_count:]
        if 3 in symbols:
            raise RtcpError(f"TWCC status symbol 3 (reserved) for packet {symbols.index(3)}")
        packets: list[tuple[int, int | None]] = []
        for index, symbol in enumerate(symbols):
            seq = (base + index) & 0xFFFF
            if symbol == _NOT_RECEIVED:
                packets.append((seq, None))
            elif symbol == _SMALL_DELTA:
                if pos >= size:
                    raise RtcpError(f"TWCC receive delta of packet {seq} missing")
                packets.append((seq, body[pos] * _DELTA_TICK_US))
                pos += 1
            else:
                if pos + 2 > size:
                    raise RtcpError(f"TWCC receive delta of packet {seq} missing")
                packets.append((seq, _I16.unpack_from(body, pos)[0] * _DELTA_TICK_US))
                pos += 2
        return cls(sender, media, base, ref_word & 0xFF, reference, packets)

    def __bytes__(self) -> bytes:
        if not -0x800000 <= self.reference_time <= 0x7FFFFF:
            raise RtcpError(f"reference_time must fit signed 24 bits, got {self.reference_time}")
        if not 0 <= self.feedback_count <= 255:
            raise RtcpError(f"feedback_count must be 0..255, got {self.feedback_count}")
        if not 1 <= len(self.packets) <= 0xFFFF:
            raise RtcpError(f"TWCC needs 1..65535 packet statuses, got {len(self.packets)}")
        symbols: list[int] = []
        deltas = bytearray()
        base = self.base_sequence
        for index, (seq, delta) in enumerate(self.packets):
            if seq != (base + index) & 0xFFFF:
                raise RtcpError(
                    f"TWCC packet {index} has sequence {seq}, expected {(base + index) & 0xFFFF}"
                )
            if delta is None:
                symbols.append(_NOT_RECEIVED)
                continue
            ticks, rest = divmod(delta, _DELTA_TICK_US)
            if rest:
                raise RtcpError(f"TWCC delta {delta} us is not a multiple of 250 us")
            if 0 <= ticks <= 255:
                symbols.append(_SMALL_DELTA)
                deltas.append(ticks)
            elif -0x8000 <= ticks <= 0x7FFF:
                symbols.append(_LARGE_DELTA)
                deltas += _I16.pack(ticks)
            else:
                raise RtcpError(f"TWCC delta {delta} us does not fit 16 bits of 250 us")
        head = _pack(
            _TWCC_HEAD,
            "TWCC",
            self.sender_ssrc,
            self.media_ssrc,
            base,
            len(self.packets),
            ((self.reference_time & 0xFFFFFF) << 8) | self.feedback_count,
        )
        body = _pad4(head + _encode_chunks(symbols) + deltas)
        return _header(RTCP_RTPFB, _FMT_TWCC, len(body)) + body

    def arrival_times_us(self) -> list[tuple[int, int | None]]:
        """``(sequence number, arrival time in us)``, times on the feedback sender's clock.

        The clock is ``reference_time * 64 ms`` plus the running sum of the
        deltas; the reference wraps every 2**24 * 64 ms (about 12.4 days),
        so compare times across feedback packets only after unwrapping it.
        """
        now = self.reference_time * _REFERENCE_TICK_US
        out: list[tuple[int, int | None]] = []
        for seq, delta in self.packets:
            if delta is None:
                out.append((seq, None))
            else:
                now += delta
                out.append((seq, now))
        return out

    @classmethod
    def from_arrival_times(
        cls,
        *,
        sender_ssrc: int,
        media_ssrc: int,
        base_sequence: int,
        feedback_count: int,
        arrivals_us: Iterable[int | None],
    ) -> TransportCcFeedback:
        """Build feedback from absolute arrival times (us, or None if lost).

        ``arrivals_us[i]`` is for sequence ``base_sequence + i``.  Times are
        rounded to 250 us on the absolute clock, so rounding errors do not
        accumulate across deltas; the reference time is the first arrival
        floored to 64 ms, wrapped into the signed 24-bit field.
        """
        packets: list[tuple[int, int | None]] = []
        reference: int | None = None
        previous_ticks = 0
        for index, arrival in enumerate(arrivals_us):
            seq = (base_sequence + index) & 0xFFFF
            if arrival is None:
                packets.append((seq, None))
                continue
            if reference is None:
                reference = arrival // _REFERENCE_TICK_US
                previous_ticks = reference * (_REFERENCE_TICK_US // _DELTA_TICK_US)
            ticks = (arrival + _DELTA_TICK_US // 2) // _DELTA_TICK_US
            packets.append((seq, (ticks - previous_ticks) * _DELTA_TICK_US))
            previous_ticks = ticks
        wrapped = 0 if reference is None else ((reference + 0x800000) & 0xFFFFFF) - 0x800000
        return cls(sender_ssrc, media_ssrc, base_sequence, feedback_count, wrapped, packets)


# --- opaque packets --------------------------------------------------------------


@dataclass(slots=True)
class UnknownRtcp(_Parseable):
    """Any RTCP packet not decoded here (APP, XR, other types and formats), kept raw."""

    packet_type: int
    count_or_fmt: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(self.packet_type, self.count_or_fmt, len(self.body)) + self.body


RtcpPacket: TypeAlias = (
    SenderReport
    | ReceiverReport
    | Sdes
    | Bye
    | Nack
    | Pli
    | Fir
    | Remb
    | TransportCcFeedback
    | UnknownRtcp
)

_Decoder = Callable[[int, bytes], RtcpPacket]

_DECODERS: dict[int, _Decoder] = {
    RTCP_SR: SenderReport._decode,
    RTCP_RR: ReceiverReport._decode,
    RTCP_SDES: Sdes._decode,
    RTCP_BYE: Bye._decode,
}
_RTPFB_DECODERS: dict[int, _Decoder] = {
    _FMT_NACK: Nack._decode,
    _FMT_TWCC: TransportCcFeedback._decode,
}
_PSFB_DECODERS: dict[int, _Decoder] = {
    _FMT_PLI: Pli._decode,
    _FMT_FIR: Fir._decode,
}


def _decode(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    decoder: _Decoder | None
    if packet_type == RTCP_RTPFB:
        decoder = _RTPFB_DECODERS.get(count)
    elif packet_type == RTCP_PSFB:
        if count == _FMT_AFB and body[8:12] == b"REMB":
            decoder = Remb._decode
        else:
            decoder = _PSFB_DECODERS.get(count)
    else:
        decoder = _DECODERS.get(packet_type)
    if decoder is None:
        return UnknownRtcp(packet_type, count, body)
    return decoder(count, body)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split and decode a compound RTCP packet (RFC 3550 §6.1)."""
    size = len(data)
    if size == 0:
        raise RtcpError("empty RTCP packet")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < size:
        if pos + 4 > size:
            raise RtcpError(f"RTCP header at offset {pos} truncated: {size - pos} bytes")
        b0, packet_type, words = _HEADER.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version is {b0 >> 6} at offset {pos}, expected 2")
        end = pos + 4 + 4 * words
        if end > size:
            raise RtcpError(
                f"RTCP packet at offset {pos} claims {4 + 4 * words} bytes, {size - pos} remain"
            )
        body_end = end
        if b0 & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > 4 * words:
                raise RtcpError(f"RTCP padding count {padding} invalid for a {4 * words}-byte body")
            body_end = end - padding
        packets.append(_decode(packet_type, b0 & 0x1F, data[pos + 4 : body_end]))
        pos = end
    return packets


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound RTCP packet."""
    return b"".join(bytes(p) for p in packets)
