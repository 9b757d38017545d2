"""Connection quality: a participant's loss and round-trip time as excellent, good or poor.

The media worker keeps per-stream statistics (``PeerSession.describe``, also
served at ``GET /{whip|whep}/{room}/sessions/{sid}/stats``): for each stream a
participant publishes, packets received and lost (from sequence gaps, RFC 3550
§6.4.1); for each stream it receives, the loss and round-trip time its receiver
reports give (RFC 3550 §6.4.2, ``fraction_lost``, RTT from LSR/DLSR).
:class:`QualityTracker` turns successive samples into
:class:`~interlive.stage.model.ConnectionQualityChanged` events.

Theory of operation
-------------------
1. *Loss.*  Upstream loss is measured over the interval between two samples
   (lost / expected, from the counters' differences); downstream loss is the
   worst ``fraction_lost`` the participant's receiver reports.  The sample's loss
   is the worse of the two.
2. *RTT.*  The largest RTT over its streams (``None`` until a report arrives).
3. *Grade* (:func:`grade`): ``excellent`` below 2 % loss and 150 ms RTT,
   ``good`` below 8 % and 400 ms, else ``poor`` (the bands where Opus/VP8 with
   NACK sound and look clean, degrade gracefully, and visibly break).
4. *Hysteresis.*  A new grade must hold for two samples in a row before it is
   announced (the first grade is announced at once), so a single bad interval
   does not flicker the indicator.  A sample with no traffic either way changes
   nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from interlive.stage.model import ConnectionQuality, ConnectionQualityChanged

__all__ = ["EXCELLENT", "GOOD", "LinkSample", "QualityTracker", "grade", "sample_from_stats"]

#: (max loss, max RTT in seconds) of each grade above poor
EXCELLENT: Final = (0.02, 0.150)
GOOD: Final = (0.08, 0.400)


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One participant's link at one moment: counters and the receivers' reports."""

    received: int  # packets received from it, all streams, cumulative
    lost: int  # packets lost from it, cumulative
    down_loss: float | None  # worst fraction lost its receivers report (0..1)
    rtt: float | None  # worst round-trip time, seconds


def grade(loss: float, rtt: float | None) -> ConnectionQuality:
    """The grade of a link with this loss (0..1) and round-trip time (seconds or None)."""
    for quality, (max_loss, max_rtt) in (
        (ConnectionQuality.EXCELLENT, EXCELLENT),
        (ConnectionQuality.GOOD, GOOD),
    ):
        if loss < max_loss and (rtt is None or rtt < max_rtt):
            return quality
    return ConnectionQuality.POOR


def sample_from_stats(stats: Sequence[Mapping[str, Any]]) -> LinkSample:
    """A sample from the worker's session statistics (one dict per session of the identity)."""
    received = lost = 0
    down: list[float] = []
    rtts: list[float] = []
    for session in stats:
        for up in session.get("published", ()):
            received += int(up.get("packets_received", 0))
            lost += max(0, int(up.get("packets_lost", 0)))
        for down_stream in session.get("subscribed", ()):
            if not down_stream.get("packets_sent"):
                continue
            down.append(float(down_stream.get("fraction_lost", 0.0)))
            rtt_ms = down_stream.get("rtt_ms")
            if rtt_ms is not None:
                rtts.append(float(rtt_ms) / 1000.0)
    return LinkSample(received, lost, max(down) if down else None, max(rtts) if rtts else None)


class _State:
    __slots__ = ("announced", "candidate", "last")

    def __init__(self) -> None:
        self.last: LinkSample | None = None
        self.announced: ConnectionQuality | None = None
        self.candidate: ConnectionQuality | None = None


class QualityTracker:
    """Grades per identity from successive samples.  See the module docstring."""

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}

    def observe(self, identity: str, sample: LinkSample) -> ConnectionQualityChanged | None:
        """Feed one sample; the event to announce, if the grade changed."""
        state = self._states.setdefault(identity, _State())
        last, state.last = state.last, sample
        up_loss: float | None = None
        if last is not None:
            received = sample.received - last.received
            lost = sample.lost - last.lost
            if received >= 0 and lost >= 0 and received + lost > 0:
                up_loss = lost / (received + lost)
        if up_loss is None and sample.down_loss is None:
            return None  # no traffic to judge by
        loss = max(x for x in (up_loss, sample.down_loss) if x is not None)
        quality = grade(loss, sample.rtt)
        if quality is state.announced:
            state.candidate = None
            return None
        if state.announced is not None and state.candidate is not quality:
            state.candidate = quality  # must hold for one more sample
            return None
        state.announced, state.candidate = quality, None
        return ConnectionQualityChanged(identity, quality)

    def forget(self, identity: str) -> None:
        self._states.pop(identity, None)

    def quality(self, identity: str) -> ConnectionQuality | None:
        state = self._states.get(identity)
        return None if state is None else state.announced
