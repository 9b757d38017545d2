"""Receive-side generic NACK generation (RFC 4585 §6.2.1), one per published stream.

The SFU receives a publisher's stream and asks for what it lost with the
transport-layer feedback message "Generic NACK" (RFC 4585 §6.2.1, serialised
by :class:`interlive.rtp.rtcp.Nack`); the publisher answers with RTX
(RFC 4588, see :mod:`interlive.protection.rtx`) or a plain retransmission.
RFC 4585 §3.5 leaves the timing to the receiver; this module decides it.

Theory of operation
-------------------
The generator is fed every received packet's extended sequence number
(:class:`interlive.rtp.seq.SequenceUnwrapper`) and polled with the time; it
keeps a list of *missing* entries in sequence order and never does I/O.

*Detection.*  A packet more than one beyond the highest seen opens a gap;
each missing number gets an entry with the time it should have arrived,
interpolated between the arrivals of the packets either side of the gap
(packets of a gap were sent evenly spaced as far as we can know).

*Reorder grace.*  The first NACK for an entry waits ``reorder_grace``
seconds (default 5 ms) after detection, time-based only: a packet one or two
places out of order normally arrives within a millisecond or two, and a
sequence-distance rule would split one burst into several NACKs (the last
packets of a burst are never two behind the newest).  A packet that arrives
within the grace removes its entry and is counted in ``reordered``, never as
lost.  ``reorder_grace=0`` NACKs at the first poll after detection.

*Retries.*  An entry is requested again every ``max(rtt + processing,
min_interval)`` seconds: one round trip plus the sender's processing is the
earliest a retransmission can be back, so asking sooner only duplicates.  RTT
is 100 ms until :meth:`NackGenerator.set_rtt` says otherwise (libwebrtc's
default); ``processing`` (default 5 ms) covers the sender's lookup and pacing.
At most ``max_retries`` requests are made per packet (default 10, as
libwebrtc does for video).

*Deadline.*  A packet is useful until ``deadline`` seconds after it should
have arrived (default 1.0 s for video, 0.2 s for audio: the jitter buffer's
patience).  A request is sent only if its answer can come back in time,
``now + rtt + processing <= expected + deadline``, so the attempts that fit
after the first request at time *d* are ``floor((expected + deadline - d) /
(rtt + processing))``, the formula of DESIGN.md.  An entry is given up (and
counted in ``given_up``) once no further request is allowed and the answer
to the last one is overdue, or once its deadline has passed.

*Bounds.*  A single gap larger than ``max_gap`` or more than ``max_missing``
entries at once means a retransmission storm would not repair the picture in
time: the list is cleared and the next :meth:`NackGenerator.poll` asks for a
keyframe instead (``keyframe=True``; audio callers ignore it).  Cleared
entries are not counted as given up: ``keyframes_requested`` counts those
events.

*Holes.*  A packet given up leaves a hole no later packet fills: every frame
that references it is lost until the next keyframe.  With
``keyframe_on_give_up`` (video whose every sequence number is media) the
same poll that gives a packet up asks for a keyframe, instead of leaving the
viewers' decoders frozen until their own NACKs fail and their keyframe
requests come back through the SFU a second or more later.

*Arrivals.*  A packet that fills an entry (late, reordered or retransmitted)
removes it; one that was NACKed counts in ``recovered`` and is remembered
(the last :data:`REPAIRED_MEMORY`), so :meth:`NackGenerator.repaired` can
tell a caller that a second copy is a duplicate: the original arriving after
its retransmission, or a second answer to a repeated request.  Plain
retransmissions (audio has no RTX) look like any packet, so only this memory
tells them apart.  A retransmitted
packet (``retransmitted=True``, e.g. unwrapped from RTX) never opens a gap or
moves the highest sequence number, so a stray retransmission cannot make the
generator NACK the packets between.  Duplicates and packets older than every
entry are ignored.

:meth:`NackGenerator.get_timer` returns the next time :meth:`poll` has work
(a first request, a retry or a give-up), or None when there is nothing to do;
polling at that time always makes progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AUDIO_DEADLINE",
    "DEFAULT_RTT",
    "REPAIRED_MEMORY",
    "VIDEO_DEADLINE",
    "NackGenerator",
    "NackRequest",
]

#: Playout deadline for video: how long after its expected arrival a packet still helps.
VIDEO_DEADLINE = 1.0
#: Playout deadline for audio (a shorter jitter buffer).
AUDIO_DEADLINE = 0.2
#: Round-trip time assumed until one is measured (seconds).
DEFAULT_RTT = 0.1
#: How many repaired sequence numbers are remembered to spot a second copy (a few
#: seconds of losses at 30 %: copies come within a few round trips).
REPAIRED_MEMORY = 512


@dataclass(frozen=True, slots=True)
class NackRequest:
    """What :meth:`NackGenerator.poll` decided to ask the publisher for.

    ``lost`` holds 16-bit sequence numbers in sequence order, ready for
    :class:`interlive.rtp.rtcp.Nack`; ``keyframe`` asks for a PLI instead of
    retransmissions the stream could not use.
    """

    lost: list[int] = field(default_factory=list)
    keyframe: bool = False

    def __bool__(self) -> bool:
        return bool(self.lost) or self.keyframe


class _Missing:
    __slots__ = ("expected", "ready_at", "sent_at", "tries")

    def __init__(self, expected: float, ready_at: float) -> None:
        #: when the packet should have arrived
        self.expected = expected
        #: earliest time of the first request (detection + reorder grace)
        self.ready_at = ready_at
        #: time of the last request, None before the first
        self.sent_at: float | None = None
        #: requests made so far
        self.tries = 0


class NackGenerator:
    """Decides which missing packets of one stream to NACK, and when (see module doc)."""

    def __init__(
        self,
        *,
        deadline: float = VIDEO_DEADLINE,
        max_retries: int = 10,
        reorder_grace: float = 0.005,
        min_interval: float = 0.01,
        processing: float = 0.005,
        max_missing: int = 1000,
        max_gap: int = 1000,
        rtt: float | None = None,
        keyframe_on_give_up: bool = False,
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be positive, got {deadline}")
        if max_retries < 1:
            raise ValueError(f"max_retries must be at least 1, got {max_retries}")
        if reorder_grace < 0 or min_interval < 0 or processing < 0:
            raise ValueError("reorder_grace, min_interval and processing must not be negative")
        if max_missing < 1 or max_gap < 1:
            raise ValueError("max_missing and max_gap must be at least 1")
        self.deadline = deadline
        self.max_retries = max_retries
        self.reorder_grace = reorder_grace
        self.min_interval = min_interval
        self.processing = processing
        self.max_missing = max_missing
        self.max_gap = max_gap
        self.keyframe_on_give_up = keyframe_on_give_up
        self.rtt = DEFAULT_RTT
        self._rtt_measured = False
        #: RTT samples taken from NACK -> retransmission round trips
        self.rtt_samples = 0
        if rtt is not None:
            self.set_rtt(rtt)
        # ext seq -> entry; insertion order is sequence order (gaps open above the highest)
        self._missing: dict[int, _Missing] = {}
        # ext seqs that arrived after being NACKed, oldest first
        self._repaired: dict[int, None] = {}
        self._highest: int | None = None
        self._last_arrival = 0.0
        self._keyframe_at: float | None = None
        #: sequence numbers requested, retries included
        self.nacks_sent = 0
        #: requests beyond the first for a packet
        self.retries = 0
        #: packets abandoned at their deadline or after the last retry
        self.given_up = 0
        #: packets that arrived after being NACKed
        self.recovered = 0
        #: seconds from when recovered packets should have arrived to when they did (sum, max)
        self.repair_delay_total = 0.0
        self.repair_delay_max = 0.0
        #: packets that arrived out of order before any NACK
        self.reordered = 0
        #: keyframes asked for: the list cleared, or (keyframe_on_give_up) a packet given up
        self.keyframes_requested = 0

    @classmethod
    def for_kind(cls, kind: str, **options: Any) -> NackGenerator:
        """A generator with the default deadline of ``kind`` ("audio" or "video")."""
        options.setdefault("deadline", AUDIO_DEADLINE if kind == "audio" else VIDEO_DEADLINE)
        return cls(**options)

    def __len__(self) -> int:
        """Number of packets currently missing."""
        return len(self._missing)

    def __contains__(self, ext_seq: object) -> bool:
        """Whether ``ext_seq`` is missing (e.g. to drop a duplicate retransmission)."""
        return ext_seq in self._missing

    def repaired(self, ext_seq: int) -> bool:
        """Whether ``ext_seq`` already arrived after being NACKed: another copy is a duplicate."""
        return ext_seq in self._repaired

    @property
    def missing(self) -> list[int]:
        """Extended sequence numbers currently missing, in order."""
        return list(self._missing)

    def describe(self) -> dict[str, object]:
        """Counters and the RTT in use, for the stats endpoint."""
        return {
            "rtt_ms": round(self.rtt * 1000, 1),
            "rtt_samples": self.rtt_samples,
            "missing": len(self._missing),
            "nacks_sent": self.nacks_sent,
            "retries": self.retries,
            "recovered": self.recovered,
            "repair_delay_mean_ms": round(
                1000 * self.repair_delay_total / (self.recovered or 1), 1
            ),
            "repair_delay_max_ms": round(1000 * self.repair_delay_max, 1),
            "reordered": self.reordered,
            "given_up": self.given_up,
            "keyframes_requested": self.keyframes_requested,
        }

    def set_rtt(self, rtt: float) -> None:
        """Use ``rtt`` (seconds) to space retries and judge what still fits the deadline."""
        if rtt < 0:
            raise ValueError(f"rtt must not be negative, got {rtt}")
        self.rtt = rtt
        self._rtt_measured = True

    def _rtt_sample(self, sample: float) -> None:
        """A repair asked for once answers that request: a clean RTT sample (Karn's rule).

        The server learns the publisher leg's RTT this way: as an ICE-lite
        receiver it sends no checks and gets no reports that would time it.
        """
        if not self._rtt_measured:
            self.rtt = sample
            self._rtt_measured = True
        else:
            self.rtt += (sample - self.rtt) / 8  # RFC 6298's smoothing gain
        self.rtt_samples += 1

    def on_packet(self, ext_seq: int, now: float, *, retransmitted: bool = False) -> None:
        """Record the arrival of extended sequence number ``ext_seq`` at ``now``."""
        entry = self._missing.pop(ext_seq, None)
        if entry is not None:
            if entry.tries:
                self.recovered += 1
                repaired = self._repaired
                repaired[ext_seq] = None
                if len(repaired) > REPAIRED_MEMORY:
                    del repaired[next(iter(repaired))]
                delay = now - entry.expected
                self.repair_delay_total += delay
                if delay > self.repair_delay_max:
                    self.repair_delay_max = delay
                if retransmitted and entry.tries == 1 and entry.sent_at is not None:
                    self._rtt_sample(now - entry.sent_at)
            else:
                self.reordered += 1
            return
        if retransmitted:
            return
        highest = self._highest
        if highest is None or ext_seq > highest + 1:
            if highest is not None:
                self._open_gap(highest, ext_seq, now)
            self._highest = ext_seq
            self._last_arrival = now
        elif ext_seq == highest + 1:
            self._highest = ext_seq
            self._last_arrival = now

    def _open_gap(self, highest: int, ext_seq: int, now: float) -> None:
        gap = ext_seq - highest - 1
        if gap > self.max_gap or len(self._missing) + gap > self.max_missing:
            self._missing.clear()
            if self._keyframe_at is None:
                self._keyframe_at = now
            return
        start = self._last_arrival
        step = (now - start) / (gap + 1)
        ready_at = now + self.reorder_grace
        missing = self._missing
        for k in range(1, gap + 1):
            missing[highest + k] = _Missing(start + step * k, ready_at)

    def get_timer(self) -> float | None:
        """When :meth:`poll` next has something to do, or None if nothing is pending."""
        if self._keyframe_at is not None:
            return self._keyframe_at
        trip = self.rtt + self.processing
        interval = max(trip, self.min_interval)
        deadline = self.deadline
        max_retries = self.max_retries
        best: float | None = None
        for entry in self._missing.values():
            sent_at = entry.sent_at
            due = entry.ready_at if sent_at is None else sent_at + interval
            if entry.tries < max_retries and due + trip <= entry.expected + deadline:
                when = due
            else:
                when = entry.ready_at if sent_at is None else sent_at + trip
            if best is None or when < best:
                best = when
        return best

    def poll(self, now: float) -> NackRequest:
        """Sequence numbers to NACK now (and whether to ask for a keyframe instead)."""
        keyframe = False
        if self._keyframe_at is not None and now >= self._keyframe_at:
            self._keyframe_at = None
            self.keyframes_requested += 1
            keyframe = True
        if not self._missing:
            return NackRequest([], keyframe)
        trip = self.rtt + self.processing
        interval = max(trip, self.min_interval)
        deadline = self.deadline
        max_retries = self.max_retries
        lost: list[int] = []
        gone: list[int] = []
        for seq, entry in self._missing.items():
            expiry = entry.expected + deadline
            if now > expiry:
                gone.append(seq)
                continue
            sent_at = entry.sent_at
            due = entry.ready_at if sent_at is None else sent_at + interval
            if now >= due and entry.tries < max_retries and now + trip <= expiry:
                lost.append(seq & 0xFFFF)
                if entry.tries:
                    self.retries += 1
                entry.tries += 1
                entry.sent_at = now
            elif entry.tries >= max_retries or max(now, due) + trip > expiry:
                # No request may follow: wait for the last one's answer, then give up.
                answer = entry.ready_at if sent_at is None else sent_at + trip
                if now >= answer:
                    gone.append(seq)
        for seq in gone:
            del self._missing[seq]
        if gone and self.keyframe_on_give_up:
            self.keyframes_requested += 1
            keyframe = True
        self.given_up += len(gone)
        self.nacks_sent += len(lost)
        return NackRequest(lost, keyframe)
