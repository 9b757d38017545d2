"""RED: redundant audio data in RTP (RFC 2198), as WebRTC uses it for Opus.

Implements the RED payload format of RFC 2198 §3 (block headers, block data,
primary last) with the encoder and receiver behaviour of §4 and §5 (the
redundant copies are earlier frames, identified by their timestamp offset).
Browsers negotiate it as ``red/48000/2`` with ``fmtp <red> 111/111`` for Opus
and as ``red/90000`` carrying video and ULPFEC (:mod:`.ulpfec`) blocks.

Wire format (RFC 2198 §3)
-------------------------
Every block but the last has a 4-byte header: ``F=1`` (another header
follows), the block's 7-bit payload type, a 14-bit unsigned timestamp offset
(subtracted from the RTP timestamp of the packet) and a 10-bit block length.
The last header is one byte, ``F=0`` and the primary's payload type; the
primary's length is whatever remains.  The block data follow the headers in
the same order, so the primary comes last.

Theory of operation
-------------------
:class:`RedEncoder` keeps the last few primaries and wraps each new one with
up to ``distance`` of them, newest nearest to the primary.  A candidate whose
offset does not fit 14 bits (after an Opus DTX gap) ends the list, since older
ones are further still; one longer than 1023 bytes is left out.

:class:`RedDecoder` delivers each packet's primary once and, for sequence
numbers that never arrived, builds the frame from a later packet's redundant
copy.  RED carries timestamps, not sequence numbers, so a redundant block is
placed by its timestamp ``ts - offset`` between the two nearest known packets
(received or recovered): when the packet's redundant timestamps that fall in
that gap are as many as the missing sequence numbers, they fill it in order
(exact with DTX and mixed frame sizes); otherwise the block is placed by the
frame duration, learned from consecutive packets (960 ticks = 20 ms at 48 kHz
until learned).  A block that fits neither way is not used.  A packet that
arrives after its frame was recovered is reported as nothing (a duplicate).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from interlive.rtp.packet import RtpPacket
from interlive.rtp.seq import SequenceUnwrapper, TimestampUnwrapper

__all__ = [
    "MAX_BLOCK_LENGTH",
    "MAX_RED_DISTANCE",
    "MAX_TIMESTAMP_OFFSET",
    "RedBlock",
    "RedDecoder",
    "RedEncoder",
    "RedError",
    "RedFrame",
    "decode_red",
    "encode_red",
    "red_primary",
    "strip_red",
    "unpadded",
    "wrap_red",
]

#: Largest timestamp offset of a redundant block (14 bits, RFC 2198 §3).
MAX_TIMESTAMP_OFFSET = 0x3FFF
#: Largest redundant block (10-bit length field, RFC 2198 §3).
MAX_BLOCK_LENGTH = 0x3FF
#: Largest ``distance`` a :class:`RedEncoder` accepts.
MAX_RED_DISTANCE = 8

_WORD = struct.Struct("!I")
_unpack_word = _WORD.unpack_from
_pack_word = _WORD.pack


class RedError(ValueError):
    """A malformed RED payload, or a block that cannot be encoded (RFC 2198 §3)."""


@dataclass(frozen=True, slots=True)
class RedBlock:
    """One block of a RED payload; the primary has ``timestamp_offset`` 0."""

    payload_type: int
    #: Subtracted from the RTP timestamp to give this block's (14 bits).
    timestamp_offset: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class RedFrame:
    """A frame delivered by :class:`RedDecoder`: a primary or a recovered copy."""

    sequence_number: int
    timestamp: int
    payload_type: int
    payload: bytes
    #: True when rebuilt from a later packet's redundancy.
    recovered: bool


def encode_red(primary_pt: int, primary: bytes, redundant: Sequence[RedBlock]) -> bytes:
    """Build a RED payload: ``redundant`` blocks (oldest first, as sent), then the primary.

    Raises :class:`RedError` if a payload type is not 0..127 or a redundant
    block's offset or length does not fit its field.
    """
    if not 0 <= primary_pt <= 0x7F:
        raise RedError(f"primary payload type must be 0..127, got {primary_pt}")
    headers: list[bytes] = []
    for block in redundant:
        pt = block.payload_type
        offset = block.timestamp_offset
        size = len(block.payload)
        if not 0 <= pt <= 0x7F:
            raise RedError(f"block payload type must be 0..127, got {pt}")
        if not 0 <= offset <= MAX_TIMESTAMP_OFFSET:
            raise RedError(f"timestamp offset must be 0..{MAX_TIMESTAMP_OFFSET}, got {offset}")
        if size > MAX_BLOCK_LENGTH:
            raise RedError(f"redundant block of {size} bytes exceeds {MAX_BLOCK_LENGTH}")
        headers.append(_pack_word(0x8000_0000 | pt << 24 | offset << 10 | size))
    headers.append(bytes((primary_pt,)))
    headers.extend(block.payload for block in redundant)
    headers.append(primary)
    return b"".join(headers)


def decode_red(payload: bytes) -> list[RedBlock]:
    """Split a RED payload into its blocks, the primary last (offset 0).

    Raises :class:`RedError` when a header is truncated or the block lengths
    run past the end of the payload.
    """
    size = len(payload)
    pos = 0
    headers: list[tuple[int, int, int]] = []
    while True:
        if pos >= size:
            raise RedError(f"RED payload of {size} bytes ends before the primary's header")
        if payload[pos] < 0x80:
            primary_pt = payload[pos]
            pos += 1
            break
        if pos + 4 > size:
            raise RedError(f"RED block header at offset {pos} needs 4 bytes, payload has {size}")
        (word,) = _unpack_word(payload, pos)
        headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        pos += 4
    blocks: list[RedBlock] = []
    for pt, offset, length in headers:
        end = pos + length
        if end > size:
            raise RedError(
                f"RED block of {length} bytes at offset {pos} runs past the payload's {size} bytes"
            )
        blocks.append(RedBlock(pt, offset, payload[pos:end]))
        pos = end
    blocks.append(RedBlock(primary_pt, 0, payload[pos:]))
    return blocks


def _primary_span(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(primary payload type, offset of the primary's data) in ``data[start:end]``."""
    pos = start
    skip = 0
    while True:
        if pos >= end:
            raise RedError(f"RED payload of {end - start} bytes ends before the primary's header")
        if data[pos] < 0x80:
            pt = data[pos]
            break
        if pos + 4 > end:
            raise RedError(
                f"RED block header at offset {pos - start} needs 4 bytes, payload has {end - start}"
            )
        skip += _unpack_word(data, pos)[0] & 0x3FF
        pos += 4
    first = pos + 1 + skip
    if first > end:
        raise RedError(
            f"RED redundant blocks of {skip} bytes run past the payload's {end - start} bytes"
        )
    return pt, first


def red_primary(payload: bytes) -> tuple[int, bytes]:
    """The primary's payload type and data, without building the redundant blocks."""
    pt, first = _primary_span(payload, 0, len(payload))
    return pt, payload[first:]


def strip_red(packet: bytes) -> bytes:
    """Turn a whole RED RTP packet into the primary's plain RTP packet.

    For a subscriber that did not negotiate RED: the payload type becomes the
    primary's, the payload the primary's data; the fixed header, CSRCs and
    header extension are kept byte for byte and RTP padding is dropped (P
    cleared).  Raises :class:`~interlive.rtp.errors.RtpError` for a malformed
    RTP packet and :class:`RedError` for a malformed RED payload.
    """
    pkt = RtpPacket.parse(packet)
    pt, first = _primary_span(packet, pkt.payload_offset, pkt.payload_end)
    head = bytes((packet[0] & 0xDF, (packet[1] & 0x80) | pt))
    return b"".join((head, packet[2 : pkt.payload_offset], packet[first : pkt.payload_end]))


class RedEncoder:
    """Wraps each new primary with up to ``distance`` earlier ones (RFC 2198 §4).

    ``distance`` may be changed between packets (0 sends the primary alone
    in RED framing); the encoder always remembers the last
    :data:`MAX_RED_DISTANCE` primaries, so raising it takes effect at once.
    """

    __slots__ = ("_distance", "_history")

    def __init__(self, distance: int = 1) -> None:
        self._distance = 0
        self.distance = distance
        self._history: deque[tuple[int, int, bytes]] = deque(maxlen=MAX_RED_DISTANCE)

    @property
    def distance(self) -> int:
        """How many earlier primaries each packet repeats (0..MAX_RED_DISTANCE)."""
        return self._distance

    @distance.setter
    def distance(self, value: int) -> None:
        if not 0 <= value <= MAX_RED_DISTANCE:
            raise ValueError(f"RED distance must be 0..{MAX_RED_DISTANCE}, got {value}")
        self._distance = value

    def reset(self) -> None:
        """Forget the history (e.g. after an SSRC or timestamp discontinuity)."""
        self._history.clear()

    def encode(self, payload_type: int, payload: bytes, timestamp: int) -> bytes:
        """The RED payload for this primary; ``timestamp`` is its RTP timestamp."""
        redundant: list[RedBlock] = []
        if self._distance:
            for pt, ts, data in reversed(self._history):
                offset = (timestamp - ts) & 0xFFFF_FFFF
                if offset == 0 or offset > MAX_TIMESTAMP_OFFSET:
                    break
                if len(data) <= MAX_BLOCK_LENGTH:
                    redundant.append(RedBlock(pt, offset, data))
                    if len(redundant) == self._distance:
                        break
            redundant.reverse()
        out = encode_red(payload_type, payload, redundant)
        self._history.append((payload_type, timestamp & 0xFFFF_FFFF, payload))
        return out


class RedDecoder:
    """Delivers primaries and recovers lost frames from redundancy (see module doc).

    ``window`` bounds the memory: sequence numbers more than ``window`` behind
    the newest are forgotten, and a packet that old is dropped as too late.
    ``frame_duration`` is the initial guess of ticks per packet (960 = 20 ms
    of Opus at 48 kHz), replaced by what consecutive packets show.
    """

    __slots__ = ("_by_ts", "_duration", "_known", "_seq", "_ts", "_window")

    def __init__(self, *, frame_duration: int = 960, window: int = 64) -> None:
        if frame_duration <= 0:
            raise ValueError(f"frame duration must be positive, got {frame_duration}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self._duration = frame_duration
        self._window = window
        self._seq = SequenceUnwrapper()
        self._ts = TimestampUnwrapper()
        #: Extended sequence number -> extended timestamp of delivered frames.
        self._known: dict[int, int] = {}
        #: The reverse map, to skip redundant copies of frames already delivered.
        self._by_ts: dict[int, int] = {}

    @property
    def frame_duration(self) -> int:
        """Ticks per packet, as last learned from consecutive packets."""
        return self._duration

    def push(self, sequence_number: int, timestamp: int, payload: bytes) -> list[RedFrame]:
        """Frames to deliver for one received RED packet: recovered ones first, in order.

        Returns ``[]`` for a duplicate, for a packet whose frame was already
        recovered and for one older than the window.  Raises :class:`RedError`
        for a malformed payload (the state is then unchanged).
        """
        blocks = decode_red(payload)
        seq = self._seq.unwrap(sequence_number & 0xFFFF)
        known = self._known
        highest = self._seq.highest
        assert highest is not None
        if seq in known or seq <= highest - self._window:
            return []
        ts = self._ts.unwrap(timestamp & 0xFFFF_FFFF)
        self._remember(seq, ts)
        previous = known.get(seq - 1)
        if previous is not None and 0 < ts - previous <= MAX_TIMESTAMP_OFFSET:
            self._duration = ts - previous
        primary = blocks[-1]
        recovered: list[tuple[int, RedFrame]] = []
        if len(blocks) > 1:
            by_ts = self._by_ts
            times = sorted({ts - b.timestamp_offset for b in blocks[:-1] if b.timestamp_offset})
            for block in blocks[:-1]:
                when = ts - block.timestamp_offset
                if not block.timestamp_offset or when in by_ts:
                    continue
                place = self._place(seq, ts, when, times)
                if place is None or place in known:
                    continue
                self._remember(place, when)
                frame = RedFrame(
                    place & 0xFFFF, when & 0xFFFF_FFFF, block.payload_type, block.payload, True
                )
                recovered.append((place, frame))
            recovered.sort(key=lambda item: item[0])
        out = [frame for _, frame in recovered]
        out.append(
            RedFrame(
                sequence_number & 0xFFFF,
                timestamp & 0xFFFF_FFFF,
                primary.payload_type,
                primary.payload,
                False,
            )
        )
        if len(known) > 2 * self._window:
            self._prune()
        return out

    def _remember(self, seq: int, ts: int) -> None:
        self._known[seq] = ts
        self._by_ts[ts] = seq

    def _prune(self) -> None:
        highest = self._seq.highest
        assert highest is not None
        floor = highest - self._window
        self._known = {s: t for s, t in self._known.items() if s > floor}
        self._by_ts = {t: s for s, t in self._known.items()}

    def _place(self, seq: int, ts: int, when: int, times: list[int]) -> int | None:
        """The extended sequence number of the frame at ``when``, or None if unsure."""
        upper_seq, upper_ts = seq, ts
        lower: tuple[int, int] | None = None
        for s in sorted((s for s in self._known if s < seq), reverse=True):
            t = self._known[s]
            if t < when:
                lower = (s, t)
                break
            upper_seq, upper_ts = s, t
        if lower is None:
            return None  # before the first frame seen: nothing to anchor it
        lower_seq, lower_ts = lower
        gap = upper_seq - lower_seq - 1
        if gap <= 0:
            return None
        inside = [t for t in times if lower_ts < t < upper_ts]
        if len(inside) == gap:
            return lower_seq + 1 + inside.index(when)
        duration = self._duration
        steps, rest = divmod(upper_ts - when, duration)
        if not rest and 1 <= steps <= gap:
            return upper_seq - steps
        steps, rest = divmod(when - lower_ts, duration)
        if not rest and 1 <= steps <= gap:
            return lower_seq + steps
        return None


def unpadded(packet: bytes) -> bytes:
    """A whole RTP packet without its padding (P cleared); the packet itself if it has none.

    What a RED receiver rebuilds from a RED packet is the packet without
    padding, so this is the packet ULPFEC must protect (RFC 5109 §7.3 XORs
    the bytes the receiver will hold).  Raises
    :class:`~interlive.rtp.errors.RtpError` for a malformed packet.
    """
    if not packet[0] & 0x20:
        return packet
    pkt = RtpPacket.parse(packet)
    return bytes((packet[0] & 0xDF,)) + packet[1 : pkt.payload_end]


def wrap_red(packet: bytes, red_payload_type: int) -> bytes:
    """Carry a whole RTP packet as the only block of a RED packet (:func:`strip_red` undone).

    The fixed header, CSRCs and header extension are kept byte for byte; the
    payload type becomes ``red_payload_type`` and the payload a one-byte
    primary header (F=0, the packet's payload type) before the original
    payload (RFC 2198 §3); padding is dropped.  ``strip_red(wrap_red(p, pt))``
    is ``unpadded(p)``.
    """
    pkt = RtpPacket.parse(packet)
    head = bytes((packet[0] & 0xDF, (packet[1] & 0x80) | red_payload_type))
    return b"".join(
        (
            head,
            packet[2 : pkt.payload_offset],
            bytes((packet[1] & 0x7F,)),
            packet[pkt.payload_offset : pkt.payload_end],
        )
    )
