"""What the loss benchmark measures, as pure functions of what the viewers saw.

* :func:`detect_freezes`: video freezes from the times frames were rendered,
  as libwebrtc counts them for ``freezeCount`` / ``totalFreezesDuration``
  (``video/video_quality_observer2.cc``; W3C webrtc-stats): an interval
  between two frames is a freeze when it is at least
  ``max(3 * avg, avg + 150 ms)``, ``avg`` being the mean of the last 30
  intervals *including this one*, once 5 intervals are known.  libwebrtc
  works in whole milliseconds and rounds the mean down; here times stay in
  seconds.  A freeze lasts the whole interval.
* :func:`frame_loss`: which test-pattern frames never showed, from the frame
  indices read back by :func:`interlive.client.decode_frame_index`.
* :func:`packet_residual`: media packets neither received nor repaired by a
  retransmission (the SDK viewer's packet tap sees both).
* :func:`redirect_answer`: the server's WHEP answer with its candidates, m=
  ports and c= lines pointed at an impairment proxy, so the viewer's media
  crosses the proxy; :func:`payload_classes` and :func:`classify` name the
  datagrams the proxy carries (SRTP keeps the RTP header in the clear).
* :class:`CountingImpairment`: an impairment that counts what it carried and
  dropped per class of datagram.
* :func:`stats_delta`: the difference of two ``getStats()`` snapshots.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from interlive.lab.impair import Impairment
from interlive.rtp.seq import seq_diff
from interlive.sdp import Candidate, SessionDescription, is_rtx

__all__ = [
    "CLASSES",
    "OPEN_FREEZE_THRESHOLD",
    "ClassCounts",
    "CountingImpairment",
    "FrameLoss",
    "Freeze",
    "PacketResidual",
    "SeqLog",
    "classify",
    "detect_freezes",
    "extend_seq",
    "frame_loss",
    "freeze_threshold",
    "freezes_in",
    "frozen_time",
    "packet_residual",
    "payload_classes",
    "redirect_answer",
    "snapshot_delta",
    "stats_delta",
]

#: Interval samples averaged, samples needed before a freeze can be seen, and the margin.
FREEZE_WINDOW: Final = 30
FREEZE_MIN_SAMPLES: Final = 5
FREEZE_MARGIN: Final = 0.150


def freeze_threshold(mean_interval: float) -> float:
    """The shortest interval that is a freeze when frames come every ``mean_interval`` s."""
    return max(3.0 * mean_interval, mean_interval + FREEZE_MARGIN)


#: A stall at least this long at 30 frames/s is a freeze (183 ms).
OPEN_FREEZE_THRESHOLD: Final = freeze_threshold(1.0 / 30.0)

Address = tuple[str, int]


# --- freezes and frames ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Freeze:
    """The frame before a freeze was rendered at ``start``, the next at ``end``."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def detect_freezes(times: Sequence[float]) -> list[Freeze]:
    """The freezes in a sequence of render times (seconds, non-decreasing)."""
    intervals: deque[float] = deque(maxlen=FREEZE_WINDOW)
    total = 0.0
    freezes: list[Freeze] = []
    for previous, current in itertools.pairwise(times):
        interval = current - previous
        if len(intervals) == FREEZE_WINDOW:
            total -= intervals[0]
        intervals.append(interval)
        total += interval
        if len(intervals) < FREEZE_MIN_SAMPLES:
            continue
        if interval >= freeze_threshold(total / len(intervals)):
            freezes.append(Freeze(previous, current))
    return freezes


def freezes_in(freezes: Iterable[Freeze], start: float, end: float) -> list[Freeze]:
    """The freezes that ended inside ``(start, end]`` (as a stats delta over that window counts)."""
    return [f for f in freezes if start < f.end <= end]


def frozen_time(times: Sequence[float], start: float, end: float) -> tuple[int, float]:
    """(freezes, seconds frozen) inside the window ``[start, end]`` of a render timeline.

    A freeze counts for the part of it inside the window; a stall still going
    on at ``end`` is judged as if a frame came at ``end``.
    """
    timeline = list(times)
    if not timeline or timeline[-1] < end:
        timeline.append(end)
    count, seconds = 0, 0.0
    for freeze in detect_freezes(timeline):
        overlap = min(freeze.end, end) - max(freeze.start, start)
        if overlap > 0:
            count += 1
            seconds += overlap
    return count, seconds


@dataclass(frozen=True, slots=True)
class FrameLoss:
    """Test-pattern frames in a window: ``expected`` from the first index to the last.

    ``shown`` distinct indices were read back, ``unreadable`` frames carried
    no valid code (a picture decoded from a broken reference usually).
    """

    expected: int
    shown: int
    unreadable: int

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.shown)

    @property
    def missing_fraction(self) -> float | None:
        return self.missing / self.expected if self.expected else None


def frame_loss(indices: Iterable[int | None]) -> FrameLoss:
    readable: set[int] = set()
    unreadable = 0
    for index in indices:
        if index is None:
            unreadable += 1
        else:
            readable.add(index)
    if not readable:
        return FrameLoss(0, 0, unreadable)
    expected = max(readable) - min(readable) + 1
    return FrameLoss(expected, len(readable), unreadable)


# --- packets ---------------------------------------------------------------------------


def extend_seq(seq: int, reference: int) -> int:
    """The extended sequence number nearest ``reference`` whose low 16 bits are ``seq``."""
    return reference + seq_diff(seq, reference & 0xFFFF)


@dataclass(frozen=True, slots=True)
class PacketResidual:
    """Media packets in a window: ``expected`` from the first received to the last."""

    expected: int
    received: int
    repaired: int

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.received - self.repaired)

    @property
    def missing_fraction(self) -> float | None:
        return self.missing / self.expected if self.expected else None

    @property
    def lost_fraction(self) -> float | None:
        """Before repair: the packets that did not come the first time."""
        return (self.expected - self.received) / self.expected if self.expected else None


def packet_residual(received: Iterable[int], repaired: Iterable[int] = ()) -> PacketResidual:
    """Extended sequence numbers received directly and recovered (by RTX) in a window.

    The window's range is that of the direct arrivals; repairs outside it
    and duplicates do not count.
    """
    direct = set(received)
    if not direct:
        return PacketResidual(0, 0, 0)
    low, high = min(direct), max(direct)
    fixed = {s for s in repaired if low <= s <= high} - direct
    return PacketResidual(high - low + 1, len(direct), len(fixed))


class SeqLog:
    """One RTP stream's packets as a receiver saw them: direct arrivals and repairs, timed.

    Sequence numbers are extended as they come (:func:`extend_seq` against the
    highest so far); a repair is a retransmission's original sequence number
    (RFC 4588's OSN), extended against the same reference.
    """

    def __init__(self) -> None:
        self._highest: int | None = None
        self.direct: list[tuple[float, int]] = []
        self.repaired: list[tuple[float, int]] = []

    def add(self, seq: int, now: float) -> None:
        ext = seq if self._highest is None else extend_seq(seq, self._highest)
        self._highest = ext if self._highest is None else max(self._highest, ext)
        self.direct.append((now, ext))

    def add_repair(self, seq: int, now: float) -> None:
        if self._highest is not None:
            self.repaired.append((now, extend_seq(seq, self._highest)))

    def window(self, start: float, end: float, repair_grace: float = 0.0) -> PacketResidual:
        """Packets first come in ``(start, end]``; repairs count until ``end + repair_grace``."""
        received = [s for t, s in self.direct if start < t <= end]
        repaired = [s for t, s in self.repaired if start < t <= end + repair_grace]
        return packet_residual(received, repaired)


# --- SDP --------------------------------------------------------------------------------


def redirect_answer(sdp: str, to: Address) -> tuple[str, Address]:
    """Point ``sdp``'s media at ``to``; returns the new SDP and the server's media address.

    Every UDP candidate gets ``to``'s address (TCP ones are dropped: the
    proxy carries UDP), every accepted m= line ``to``'s port and every c=
    line its IP.  The server's address is its first UDP candidate's.
    Raises ``ValueError`` when the answer has no UDP candidate.
    """
    session = SessionDescription.parse(sdp)
    host, port = to
    family = "IP6" if ":" in host else "IP4"
    original: Address | None = None
    for media in session.media:
        if media.port == 0:
            continue
        media.port = port
        media.connection = f"IN {family} {host}"
        candidates: list[str] = []
        for text in media.candidates:
            candidate = Candidate.parse(text)
            if candidate.transport.lower() != "udp":
                continue
            if original is None:
                original = (candidate.ip, candidate.port)
            moved = Candidate(
                candidate.foundation,
                candidate.component,
                candidate.transport,
                candidate.priority,
                host,
                port,
                candidate.type,
                extensions=candidate.extensions,
            )
            candidates.append(str(moved))
        media.candidates = candidates
    if session.connection is not None:
        session.connection = f"IN {family} {host}"
    if original is None:
        raise ValueError("the answer has no UDP candidate to redirect")
    return str(session), original


#: Classes of datagrams the proxy counts.
CLASSES: Final = ("audio", "audio_red", "video", "rtx", "rtcp", "other")


def payload_classes(sdp: str) -> dict[int, str]:
    """Payload type → class for an answer's RTP media (``red`` audio apart; video's is video)."""
    session = SessionDescription.parse(sdp)
    classes: dict[int, str] = {}
    for media in session.media:
        if media.port == 0 or media.kind not in ("audio", "video"):
            continue
        for codec in media.codecs:
            if is_rtx(codec):
                name = "rtx"
            elif media.kind == "audio" and codec.name.lower() == "red":
                name = "audio_red"
            else:
                name = media.kind
            classes[int(codec.payload_type)] = name
    return classes


def classify(datagram: bytes, classes: Mapping[int, str]) -> str:
    """One of :data:`CLASSES`; RTP and RTCP told apart as RFC 5761 §4 does."""
    if len(datagram) < 12 or not 128 <= datagram[0] <= 191:
        return "other"  # STUN, DTLS, or not RTP
    if 192 <= datagram[1] <= 223:
        return "rtcp"
    return classes.get(datagram[1] & 0x7F, "other")


@dataclass(slots=True)
class ClassCounts:
    sent: int = 0
    lost: int = 0
    sent_bytes: int = 0

    @property
    def loss_fraction(self) -> float | None:
        return self.lost / self.sent if self.sent else None


@dataclass(slots=True)
class CountingImpairment:
    """An :class:`Impairment` counting, per :func:`classify` class, what it got and dropped."""

    inner: Impairment
    classes: dict[int, str] = field(default_factory=dict)
    counts: dict[str, ClassCounts] = field(
        default_factory=lambda: {c: ClassCounts() for c in CLASSES}
    )

    def send(self, datagram: bytes, now: float) -> None:
        counts = self.counts[classify(datagram, self.classes)]
        before = self.inner.stats().lost
        self.inner.send(datagram, now)
        counts.sent += 1
        counts.sent_bytes += len(datagram)
        if self.inner.stats().lost != before:
            counts.lost += 1

    def receive_ready(self, now: float) -> list[bytes]:
        return self.inner.receive_ready(now)

    def get_timer(self) -> float | None:
        return self.inner.get_timer()

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """(sent, lost, sent bytes) per class, for a window's difference."""
        return {name: (c.sent, c.lost, c.sent_bytes) for name, c in self.counts.items()}


def snapshot_delta(
    before: Mapping[str, tuple[int, int, int]], after: Mapping[str, tuple[int, int, int]]
) -> dict[str, ClassCounts]:
    out: dict[str, ClassCounts] = {}
    for name, (sent, lost, size) in after.items():
        s0, l0, b0 = before.get(name, (0, 0, 0))
        out[name] = ClassCounts(sent - s0, lost - l0, size - b0)
    return out


# --- getStats ---------------------------------------------------------------------------


def stats_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """``after - before`` for every numeric counter in ``after`` (missing before: 0)."""
    return {key: float(value) - float(before.get(key, 0.0)) for key, value in after.items()}
