"""Packets back in sequence order, waiting a bounded time for the missing ones.

Consumers that cannot use a packet out of order, and for which a missing
packet costs a lot, sit behind this buffer: the H.264 depacketizer of FLV
playback and the mixer's video decoders.  For them one lost packet means
"wait for the next keyframe" (seconds of frozen or no video).  The worker
already repairs a publisher's losses with NACK/RTX, but the repaired packet
arrives a round trip late, after the packets that followed it; consumed in
arrival order, the gap is declared lost before the repair arrives.

Theory of operation
-------------------
Sequence numbers are unwrapped (:class:`~interlive.rtp.seq.SequenceUnwrapper`).
Packets at the next expected number go out at once, with every held packet
that follows contiguously.  A packet after a hole is held; the hole is waited
for until ``max_wait`` seconds after the earliest held packet arrived
(:meth:`ReorderBuffer.get_timer`), then given up: the buffer moves past it,
so the consumer sees the gap it would have seen without the buffer, only
later.  Holding more than ``capacity`` packets gives up at once (a long
outage).  A packet older than the next expected number (a late repair of a
hole given up, or a duplicate) is dropped and counted: the consumer already
moved on.  With no loss nothing waits: the buffer adds no delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .seq import SequenceUnwrapper

__all__ = ["REPAIR_WAIT", "ReorderBuffer", "ReorderStats"]

T = TypeVar("T")

#: the default wait for a missing packet: a NACK repair across a path of up to
#: ~250 ms round trip, well under the seconds a lost keyframe costs
REPAIR_WAIT: Final = 0.3


@dataclass(slots=True)
class ReorderStats:
    released: int = 0
    #: packets that arrived after later ones and were put back in order
    reordered: int = 0
    #: sequence numbers given up on (the consumer sees them as lost)
    given_up: int = 0
    #: packets that came after their place was given up, or twice
    late_or_duplicate: int = 0


class ReorderBuffer(Generic[T]):
    """In-order release of ``T`` items keyed by 16-bit sequence number (see module doc)."""

    __slots__ = ("_arrival", "_held", "_next", "_unwrap", "capacity", "max_wait", "stats")

    def __init__(self, max_wait: float = REPAIR_WAIT, capacity: int = 1024) -> None:
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0 s, got {max_wait!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.max_wait = max_wait
        self.capacity = capacity
        self.stats = ReorderStats()
        self._unwrap = SequenceUnwrapper()
        self._next: int | None = None
        self._held: dict[int, T] = {}
        #: arrival time of each held packet (insertion order is arrival order)
        self._arrival: dict[int, float] = {}

    @property
    def held(self) -> int:
        return len(self._held)

    def push(self, sequence_number: int, item: T, now: float) -> list[T]:
        """One packet arrived at ``now``; the items that can go out now, in order."""
        ext = self._unwrap.unwrap(sequence_number)
        if self._next is None:
            self._next = ext
        if ext < self._next or ext in self._held:
            self.stats.late_or_duplicate += 1
            return []
        if ext != self._next:
            self._held[ext] = item
            self._arrival[ext] = now
            if len(self._held) > self.capacity:
                return self._give_up()
            return []
        if self._held:
            self.stats.reordered += 1
        out = [item]
        self._next = ext + 1
        self._release(out)
        return out

    def get_timer(self) -> float | None:
        """When the oldest hole is given up on; None when nothing is held."""
        if not self._arrival:
            return None
        return next(iter(self._arrival.values())) + self.max_wait

    def poll(self, now: float) -> list[T]:
        """Give up on holes waited for long enough; the items that go out."""
        out: list[T] = []
        while (timer := self.get_timer()) is not None and now >= timer:
            out += self._give_up()
        return out

    def _give_up(self) -> list[T]:
        """Move past the first hole to the oldest held packet."""
        assert self._next is not None
        first = min(self._held)
        self.stats.given_up += first - self._next
        self._next = first
        out: list[T] = []
        self._release(out)
        return out

    def _release(self, out: list[T]) -> None:
        assert self._next is not None
        held, arrival = self._held, self._arrival
        while self._next in held:
            out.append(held.pop(self._next))
            del arrival[self._next]
            self._next += 1
        self.stats.released += len(out)
