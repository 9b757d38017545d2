"""H.264 access units to RTP payloads and back, RFC 6184 packetization-mode 1.

Also the two NAL unit framings seen on the RTMP/FLV side: Annex B byte
streams (start codes, H.264 Annex B) and length-prefixed AVCC samples
(ISO/IEC 14496-15 §5.3.4.2).  NAL units are always handled without start
codes or length prefixes, header byte included.

Packetizer (RFC 6184 §5.6-5.8)
------------------------------
:class:`H264Packetizer` turns one access unit into ``(payload, marker)``
pairs; the caller writes the RTP header (one timestamp per access unit).
NAL units are taken in order:

* a NAL unit larger than the MTU is cut into FU-A fragments (§5.8): FU
  indicator with the NAL unit's F and NRI bits and type 28, FU header with
  S on the first and E on the last fragment and the NAL unit's type;
* consecutive NAL units that fit are aggregated into a STAP-A (§5.7.1) as long
  as the aggregate fits in the MTU; its F bit is the OR and its NRI the
  maximum of the aggregated units' (§5.7.1);
* a NAL unit that fits alone but not with its neighbours goes as a single
  NAL unit packet (§5.6).

The SPS and PPS are sent in-band before each IDR, as the RTMP ingest must
(RTMP carries them once, in the AVC sequence header): :meth:`H264Packetizer.packetize`
inserts the last parameter sets given to
:meth:`H264Packetizer.set_parameter_sets` (or seen in-band) at the head of an
access unit that has an IDR slice but lacks them (before its SEI, so that the
access unit opens with an SPS), and drops access unit delimiters.
The marker bit is set on the last packet of the access unit (§5.1).

Depacketizer
------------
:class:`H264Depacketizer` is fed packets in arrival order (a jitter buffer,
if any, sits before it); gaps in the sequence number are losses.  Theory of
operation:

* packets of one access unit share a timestamp; the marker closes it, and a
  new timestamp with no gap before it also closes the previous one (some
  senders omit the marker);
* an access unit is emitted only if no packet of it was lost: no sequence gap
  inside it, its first packet starts an access unit (an AU-opening NAL unit or
  a slice with first_mb_in_slice 0, see :mod:`interlive.codecs.h264`), and every
  FU-A ran from S to E;
* when a gap (or the start of the stream) precedes an access unit, the lost
  packets may have been its head (e.g. the STAP-A with SPS/PPS before an IDR
  slice that itself looks like a start).  Such an access unit is kept only if
  it opens with an SPS or an access unit delimiter, which nothing in an access
  unit can precede (H.264 §7.4.1.2.3); senders put SPS/PPS in-band before each
  IDR (libwebrtc does, and so does :class:`H264Packetizer`), so recovery
  happens at the next keyframe;
* after any loss or malformed packet the decoder's references are gone:
  nothing more is emitted until an access unit containing an IDR slice (5)
  arrives complete.  A depacketizer also starts in that state.

A packet older than or equal to the last one (a duplicate or reordered
packet) is counted and ignored.  Counters are in :class:`DepacketizerStats`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from interlive.codecs.descriptor import PayloadError
from interlive.codecs.h264 import H264Packet
from interlive.rtp.packet import RtpPacket
from interlive.rtp.seq import seq_diff

from .errors import H264RtpError, NalFramingError

__all__ = [
    "AccessUnit",
    "DepacketizerStats",
    "H264Depacketizer",
    "H264Packetizer",
    "annexb_to_nals",
    "avcc_to_nals",
    "nal_type",
    "nals_to_annexb",
    "nals_to_avcc",
]

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
STAP_A = 24
FU_A = 28
# NAL unit types that nothing in an access unit precedes: SPS, AUD.
_HEAD_TYPES = (NAL_SPS, NAL_AUD)


def nal_type(nal: bytes) -> int:
    """The nal_unit_type (low 5 bits of the header byte)."""
    return nal[0] & 0x1F


# -- framing -------------------------------------------------------------------------


def annexb_to_nals(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream on 3- and 4-byte start codes.

    Bytes before the first start code and trailing zero bytes of each unit
    (trailing_zero_8bits) are dropped, as are empty units.  Raises
    :class:`NalFramingError` if there is data but no start code.
    """
    nals: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    if pos < 0:
        if data.strip(b"\x00"):
            raise NalFramingError("Annex B data without a start code")
        return nals
    start = pos + 3
    while True:
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        nal = data[start:end].rstrip(b"\x00")
        if nal:
            nals.append(bytes(nal))
        if nxt < 0:
            return nals
        start = nxt + 3


def nals_to_annexb(nals: Iterable[bytes]) -> bytes:
    """Join NAL units with 4-byte start codes."""
    return b"".join(b"\x00\x00\x00\x01" + bytes(nal) for nal in nals)


def avcc_to_nals(data: bytes, length_size: int = 4) -> list[bytes]:
    """Split a length-prefixed (AVCC) sample; raises :class:`NalFramingError` if malformed."""
    if length_size not in (1, 2, 4):
        raise NalFramingError(f"NAL length size {length_size}, expected 1, 2 or 4")
    nals: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + length_size > n:
            raise NalFramingError(f"NAL length at offset {pos} truncated")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > n:
            raise NalFramingError(f"NAL length {size} at offset {pos - length_size} overruns")
        nals.append(bytes(data[pos : pos + size]))
        pos += size
    return nals


def nals_to_avcc(nals: Iterable[bytes], length_size: int = 4) -> bytes:
    """Prefix each NAL unit with its big-endian length."""
    if length_size not in (1, 2, 4):
        raise NalFramingError(f"NAL length size {length_size}, expected 1, 2 or 4")
    limit = 1 << (8 * length_size)
    parts: list[bytes] = []
    for nal in nals:
        if not 0 < len(nal) < limit:
            raise NalFramingError(f"NAL unit of {len(nal)} bytes for {length_size}-byte lengths")
        parts.append(len(nal).to_bytes(length_size, "big"))
        parts.append(bytes(nal))
    return b"".join(parts)


# -- packetizer ----------------------------------------------------------------------


class H264Packetizer:
    """Access units to RFC 6184 packetization-mode 1 payloads (see module doc)."""

    __slots__ = ("_pps", "_sps", "mtu")

    def __init__(self, mtu: int = 1200) -> None:
        if mtu < 3:
            raise ValueError(f"MTU {mtu} leaves no room for an FU-A fragment")
        self.mtu = mtu
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    def set_parameter_sets(self, sps: bytes, pps: bytes) -> None:
        """Remember the SPS and PPS to send before each IDR (from the AVC sequence header)."""
        self._sps = bytes(sps)
        self._pps = bytes(pps)

    def packetize(self, nals: Sequence[bytes]) -> list[tuple[bytes, bool]]:
        """Payloads for one access unit, the marker set on the last.

        Raises :class:`H264RtpError` for an empty NAL unit or one whose type
        is not 1..23; an access unit with no NAL units gives no packets.
        """
        units = self._with_parameter_sets(nals)
        out: list[tuple[bytes, bool]] = []
        pending: list[bytes] = []
        pending_size = 1  # STAP-A header
        mtu = self.mtu
        for nal in units:
            if len(nal) > mtu:
                self._flush(pending, out)
                pending, pending_size = [], 1
                self._fragment(nal, out)
                continue
            if pending and pending_size + 2 + len(nal) > mtu:
                self._flush(pending, out)
                pending, pending_size = [], 1
            pending.append(nal)
            pending_size += 2 + len(nal)
        self._flush(pending, out)
        if out:
            out[-1] = (out[-1][0], True)
        return out

    def _with_parameter_sets(self, nals: Sequence[bytes]) -> list[bytes]:
        units: list[bytes] = []
        have_sps = have_pps = idr = False
        for nal in nals:
            if not nal:
                raise H264RtpError("empty NAL unit")
            t = nal[0] & 0x1F
            if not 0 < t < STAP_A:
                raise H264RtpError(f"NAL unit type {t} cannot be packetized")
            if t == NAL_AUD:
                continue
            if t == NAL_SPS:
                self._sps, have_sps = bytes(nal), True
            elif t == NAL_PPS:
                self._pps, have_pps = bytes(nal), True
            elif t == NAL_IDR:
                idr = True
            units.append(bytes(nal))
        if idr and not (have_sps and have_pps):
            # at the head of the access unit (before any SEI): an SPS opens an access
            # unit unambiguously, so a depacketizer resuming after loss can start here
            head = [
                ps
                for ps, have in ((self._sps, have_sps), (self._pps, have_pps))
                if ps is not None and not have
            ]
            units[:0] = head
        return units

    @staticmethod
    def _flush(pending: list[bytes], out: list[tuple[bytes, bool]]) -> None:
        if not pending:
            return
        if len(pending) == 1:
            out.append((pending[0], False))
            return
        f = 0
        nri = 0
        parts: list[bytes] = []
        for nal in pending:
            f |= nal[0] & 0x80
            nri = max(nri, nal[0] & 0x60)
            parts.append(len(nal).to_bytes(2, "big"))
            parts.append(nal)
        out.append((bytes((f | nri | STAP_A,)) + b"".join(parts), False))

    def _fragment(self, nal: bytes, out: list[tuple[bytes, bool]]) -> None:
        indicator = bytes(((nal[0] & 0xE0) | FU_A,))
        t = nal[0] & 0x1F
        step = self.mtu - 2
        body = memoryview(nal)[1:]
        last = len(body) - 1
        for pos in range(0, len(body), step):
            header = t | (0x80 if pos == 0 else 0) | (0x40 if pos + step > last else 0)
            out.append((indicator + bytes((header,)) + body[pos : pos + step], False))


# -- depacketizer --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One complete access unit: NAL units without start codes, RTP timestamp, IDR flag."""

    nals: tuple[bytes, ...]
    timestamp: int
    is_keyframe: bool


@dataclass(slots=True)
class DepacketizerStats:
    """Counters of :class:`H264Depacketizer`."""

    packets: int = 0
    lost_packets: int = 0
    late_packets: int = 0
    malformed_packets: int = 0
    frames_emitted: int = 0
    frames_incomplete: int = 0
    """Access units dropped because a packet of theirs was lost or malformed."""
    frames_waiting_keyframe: int = 0
    """Complete access units dropped while waiting for an IDR after a loss."""
    frames_oversized: int = 0


class H264Depacketizer:
    """RFC 6184 packetization-mode 1 payloads to complete access units (see module doc)."""

    __slots__ = (
        "_fu",
        "_intact",
        "_last_seq",
        "_max_frame_bytes",
        "_nals",
        "_need_keyframe",
        "_size",
        "_ts",
        "stats",
    )

    def __init__(self, *, max_frame_bytes: int = 8 << 20) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._last_seq: int | None = None
        self._ts: int | None = None
        self._nals: list[bytes] = []
        self._fu: bytearray | None = None
        self._intact = True
        self._need_keyframe = True
        self._size = 0
        self.stats = DepacketizerStats()

    @property
    def waiting_for_keyframe(self) -> bool:
        """True until an IDR access unit is emitted, and again after each loss."""
        return self._need_keyframe

    def push_packet(self, packet: RtpPacket) -> list[AccessUnit]:
        """:meth:`push` with the fields of a parsed :class:`RtpPacket`."""
        return self.push(packet.sequence_number, packet.timestamp, packet.marker, packet.payload)

    def push(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes
    ) -> list[AccessUnit]:
        """Feed one packet; returns the access units it completes (zero, one or two)."""
        stats = self.stats
        stats.packets += 1
        gap = self._last_seq is None  # the stream may have begun earlier
        if self._last_seq is not None:
            d = seq_diff(sequence_number, self._last_seq)
            if d <= 0:
                stats.late_packets += 1
                return []
            if d > 1:
                stats.lost_packets += d - 1
                gap = True
        out: list[AccessUnit] = []
        if self._ts is not None and timestamp != self._ts:
            # The previous access unit had no marker: complete if nothing was lost.
            if gap:
                self._intact = False
            self._finish(out)
        elif gap and self._ts is not None:
            self._intact = False
        if gap and self._last_seq is not None:
            self._need_keyframe = True
        self._last_seq = sequence_number
        starting = self._ts is None
        self._ts = timestamp
        try:
            info = H264Packet.parse(payload)
        except PayloadError:
            stats.malformed_packets += 1
            self._intact = False
            self._need_keyframe = True
        else:
            if starting and (
                not info.start_of_frame or (gap and info.nal_types[0] not in _HEAD_TYPES)
            ):
                self._intact = False
            if self._intact:
                self._add(payload, info)
        if marker:
            self._finish(out)
        return out

    def _add(self, payload: bytes, info: H264Packet) -> None:
        if self._size + len(payload) > self._max_frame_bytes:
            self._intact = False
            self.stats.frames_oversized += 1
            return
        self._size += len(payload)
        first = payload[0]
        t = first & 0x1F
        if t == FU_A:
            fu = self._fu
            if info.fu_start:
                if fu is not None:
                    self._intact = False
                    return
                fu = self._fu = bytearray(((first & 0xE0) | (payload[1] & 0x1F),))
            elif fu is None:
                self._intact = False
                return
            fu += payload[2:]
            if info.fu_end:
                self._nals.append(bytes(fu))
                self._fu = None
            return
        if self._fu is not None:  # a new NAL unit before the fragmented one ended
            self._intact = False
            return
        if t == STAP_A:
            pos = 1
            while pos < len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                self._nals.append(bytes(payload[pos + 2 : pos + 2 + size]))
                pos += 2 + size
        else:
            self._nals.append(bytes(payload))

    def _finish(self, out: list[AccessUnit]) -> None:
        stats = self.stats
        nals = self._nals
        if not self._intact or self._fu is not None or not nals:
            stats.frames_incomplete += 1
            self._need_keyframe = True
        else:
            key = any(nal[0] & 0x1F == NAL_IDR for nal in nals)
            if self._need_keyframe and not key:
                stats.frames_waiting_keyframe += 1
            else:
                assert self._ts is not None
                self._need_keyframe = False
                stats.frames_emitted += 1
                out.append(AccessUnit(tuple(nals), self._ts, key))
        self._ts = None
        self._nals = []
        self._fu = None
        self._intact = True
        self._size = 0
