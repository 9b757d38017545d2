"""Sequence-number and timestamp translation for one subscriber's down-track.

Theory of operation. A down-track carries one source at a time (a publisher's
track; later a simulcast layer or a relayed stream). The subscriber must see
one RTP stream: contiguous sequence numbers and a timestamp that advances with
wall time, across pauses and source switches. On every (re)start the
forwarder anchors the new source: the first packet forwarded gets
``last_seq + 1`` and a timestamp ``elapsed * clock_rate`` after the last one.
Later packets of the same source keep their spacing through fixed offsets.
Video restarts only on a keyframe's first packet, so a decoder never starts
from a delta frame.

The output may differ from the input by more than offsets: the down-track
*inserts* packets of its own (ULPFEC for this viewer) and *skips* input
sequence numbers it consumed (a publisher's FEC, recovered from and not
forwarded). Each is a shift of the output for every input sequence number
above a boundary (the highest input forwarded when inserting, the consumed
number when skipping). Packets arriving late, below a boundary, are
translated with the shifts in force when they were sent, so a reordered
packet never collides with an inserted one. The last ``MAX_SHIFTS`` shifts
are remembered; older late packets are dropped as too old.

``translate`` decides and returns plain numbers; the down-track applies them
(STYLE: decide, then apply). Sequence numbers here are extended (unwrapped)
on input and output; the caller truncates to 16 bits on the wire.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

#: Shifts remembered for late packets: at 30 frames/s with one FEC packet per
#: frame, about two seconds, longer than any packet is still useful.
MAX_SHIFTS = 64


class Drop(Enum):
    WAITING_KEYFRAME = "waiting_keyframe"
    PAUSED = "paused"
    TOO_OLD = "too_old"


@dataclass(frozen=True, slots=True)
class Translation:
    sequence_number: int  # extended, output space
    timestamp: int  # 32-bit
    #: the source (re)started with this packet; a new decoder state downstream
    restarted: bool


_TS_MASK = 0xFFFFFFFF


class Forwarder:
    def __init__(self, clock_rate: int, *, is_video: bool, initial_sequence: int = 0) -> None:
        self.clock_rate = clock_rate
        self.is_video = is_video
        self.paused = False
        self._need_anchor = True
        self._source: object | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        #: first output sequence of the current source: older packets are from before the switch
        self._floor = initial_sequence
        self._last_seq = initial_sequence - 1
        self._last_ts: int | None = None
        self._last_time: float | None = None
        #: highest input sequence translated from the current source
        self._max_in = -1
        #: (input boundary, output shift for inputs above it), oldest first
        self._shifts: deque[tuple[int, int]] = deque(maxlen=MAX_SHIFTS)
        self._oldest_boundary = -1

    @property
    def last_sequence(self) -> int:
        return self._last_seq

    @property
    def waiting_for_keyframe(self) -> bool:
        return self.is_video and self._need_anchor and not self.paused

    def anchored_to(self, source: object) -> bool:
        """Whether packets of ``source`` are flowing with the current offsets."""
        return source is self._source and not self._need_anchor

    @property
    def timestamp_offset(self) -> int:
        """input timestamp - output timestamp (mod 2**32) for the current source."""
        return self._ts_offset

    def switch_source(self, source: object) -> None:
        """Carry ``source`` from its next (key)frame on."""
        self._source = source
        self._need_anchor = True

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._need_anchor = True

    def translate(
        self,
        source: object,
        ext_seq: int,
        timestamp: int,
        now: float,
        *,
        keyframe_start: bool = False,
    ) -> Translation | Drop:
        if self.paused or source is not self._source:
            return Drop.PAUSED
        restarted = False
        if self._need_anchor:
            if self.is_video and not keyframe_start:
                return Drop.WAITING_KEYFRAME
            self._anchor(ext_seq, timestamp, now)
            restarted = True
        out_seq = ext_seq - self._seq_offset
        if ext_seq > self._max_in:
            self._max_in = ext_seq
        elif self._shifts and ext_seq <= self._shifts[-1][0]:
            if ext_seq <= self._oldest_boundary:
                return Drop.TOO_OLD  # its shifts are forgotten: it cannot be placed
            # a late packet: undo the shifts made after it was due
            for boundary, shift in reversed(self._shifts):
                if ext_seq > boundary:
                    break
                out_seq -= shift
        if out_seq < self._floor:
            return Drop.TOO_OLD
        out_ts = (timestamp - self._ts_offset) & _TS_MASK
        if out_seq > self._last_seq:
            self._last_seq = out_seq
            self._last_ts = out_ts
            self._last_time = now
        return Translation(out_seq, out_ts, restarted)

    def insert(self) -> int | None:
        """Claim the next output sequence number for a packet of the down-track's own.

        Input packets after the ones already forwarded move up by one.  None
        while nothing of the current source has been forwarded (no place yet).
        """
        if self._need_anchor or self._max_in < 0:
            return None
        self._last_seq += 1
        self._seq_offset -= 1
        self._add_shift(self._max_in, 1)
        return self._last_seq

    def skip(self, source: object, ext_seq: int) -> None:
        """Input ``ext_seq`` of ``source`` will never be forwarded: close its gap.

        Only numbers above everything forwarded so far can be closed; an older
        one has had its successors numbered already.
        """
        if source is not self._source or self._need_anchor or ext_seq <= self._max_in:
            return
        self._seq_offset += 1
        self._add_shift(ext_seq, -1)
        # treat the consumed number as seen, so a later packet is not "late" by it
        self._max_in = ext_seq

    def _add_shift(self, boundary: int, shift: int) -> None:
        shifts = self._shifts
        if len(shifts) == shifts.maxlen:
            self._oldest_boundary = shifts[0][0]
        shifts.append((boundary, shift))

    def _anchor(self, ext_seq: int, timestamp: int, now: float) -> None:
        next_seq = self._last_seq + 1
        self._seq_offset = ext_seq - next_seq
        self._floor = next_seq
        self._max_in = ext_seq
        self._shifts.clear()
        self._oldest_boundary = -1
        if self._last_ts is None or self._last_time is None:
            self._ts_offset = 0  # first source: keep its timestamps as they are
        else:
            gap = max(1, round((now - self._last_time) * self.clock_rate))
            self._ts_offset = (timestamp - (self._last_ts + gap)) & _TS_MASK
        self._need_anchor = False
