"""Sans-IO network impairment: loss, bursts, delay, jitter, reordering, duplication, rate.

A user-space stand-in for Linux netem (absent on this machine's kernel, see
DESIGN.md), built on the pattern of str0m's ``netem`` crate: datagrams go in
with the time they were sent, come out when their delivery time has come, and
:meth:`Impairment.get_timer` says when to look again.  No clock, socket or
asyncio inside; the caller owns time (:mod:`interlive.lab.proxy` drives it
from the event loop, tests step it by hand).

Theory of operation
-------------------
Each datagram given to :meth:`Impairment.send` goes through these stages, in
the order a real path applies them:

1. *Loss.*  Either independent loss with probability ``loss``, or the
   Gilbert-Elliott two-state chain (:class:`GilbertElliott`): each datagram is
   lost with the probability of the current state (``loss_good`` or
   ``loss_bad``), then the chain moves good→bad with probability ``p`` and
   bad→good with probability ``r``.  With ``loss_good=0, loss_bad=1`` (the
   simple Gilbert model) losses come in runs of mean length ``1/r`` and the
   long-run loss rate is ``p / (p + r)``; :meth:`GilbertElliott.from_mean`
   builds the chain from those two numbers.
2. *Duplication.*  With probability ``duplicate`` a second copy follows the
   same path (its own queueing, delay and jitter), so it can arrive later.
3. *Rate cap.*  A serialisation queue: the bottleneck sends one datagram at a
   time at ``rate`` bits/s, so a datagram leaves at ``max(now, link free) +
   8 * size / rate``.  The backlog counts every byte not yet fully sent (the
   datagram in service included); one that would take it past
   ``queue_limit`` bytes is dropped (tail drop), as a router queue does.
4. *Propagation.*  ``delay`` plus jitter: a sample of standard deviation
   ``jitter`` from a normal distribution or from a uniform one (``±√3·jitter``,
   the same standard deviation), never below zero.  With ``reorder=False``
   (the default) delivery times are made monotonic, so jitter alone never
   reorders: a datagram that drew a short delay waits for the one before it,
   as on a path whose delay varies but whose queue is FIFO.
5. *Explicit reordering.*  With probability ``reorder_probability`` a datagram
   is held back ``reorder_delay`` seconds beyond its delivery time, and the
   datagrams sent meanwhile overtake it (it does not hold them up).

Delivery is in delivery-time order, ties in send order.  Every random draw
comes from the one ``random.Random`` given, and only for features that are on,
so a seeded run is reproducible.  :meth:`Impairment.set_config` changes the
conditions mid-run (scenario phases) without touching datagrams in flight.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "Chain",
    "GilbertElliott",
    "Impairment",
    "ImpairmentConfig",
    "ImpairmentLike",
    "ImpairmentStats",
    "JitterDistribution",
]

JitterDistribution = Literal["uniform", "normal"]
_JITTER_DISTRIBUTIONS: tuple[str, ...] = ("uniform", "normal")
_SQRT3 = math.sqrt(3.0)


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _check_probability(name: str, value: object) -> None:
    number = _check_number(name, value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_non_negative(name: str, value: object) -> None:
    if _check_number(name, value) < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain stepped once per datagram.

    ``p`` is the probability of moving good→bad, ``r`` of moving bad→good;
    a datagram is lost with probability ``loss_good`` in the good state and
    ``loss_bad`` in the bad state.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        _check_probability("gilbert_elliott.p", self.p)
        _check_probability("gilbert_elliott.r", self.r)
        _check_probability("gilbert_elliott.loss_good", self.loss_good)
        _check_probability("gilbert_elliott.loss_bad", self.loss_bad)
        if self.r == 0.0 and self.p > 0.0:
            raise ValueError("gilbert_elliott.r must be > 0 when p > 0 (bursts would never end)")

    @classmethod
    def from_mean(cls, loss: float, mean_burst: float) -> GilbertElliott:
        """The simple Gilbert chain with long-run ``loss`` in runs of mean ``mean_burst``.

        ``r = 1 / mean_burst`` and ``p = loss * r / (1 - loss)``.  Independent
        loss is the special case ``mean_burst = 1 / (1 - loss)``; shorter
        means are anti-correlated (losses avoid each other).
        """
        _check_probability("loss", loss)
        if loss >= 1.0:
            raise ValueError(f"loss must be < 1 for bursty loss, got {loss!r}")
        if _check_number("mean_burst", mean_burst) < 1.0:
            raise ValueError(f"mean_burst must be >= 1 datagram, got {mean_burst!r}")
        r = 1.0 / mean_burst
        p = loss * r / (1.0 - loss)
        if p > 1.0:
            raise ValueError(
                f"mean_burst {mean_burst!r} is too short for loss {loss!r}: "
                f"it must be at least loss / (1 - loss) = {loss / (1.0 - loss):.3g}"
            )
        return cls(p=p, r=r)

    @property
    def bad_fraction(self) -> float:
        """Long-run share of datagrams sent in the bad state."""
        total = self.p + self.r
        return 0.0 if total == 0.0 else self.p / total

    @property
    def mean_loss(self) -> float:
        """Long-run loss rate."""
        bad = self.bad_fraction
        return (1.0 - bad) * self.loss_good + bad * self.loss_bad


@dataclass(frozen=True, slots=True)
class ImpairmentConfig:
    """What one direction of a path does to datagrams (times in seconds).

    ``loss`` and ``gilbert_elliott`` are alternative loss models; set one.
    ``rate`` is in bits/s (None: no cap) and ``queue_limit`` in bytes.
    """

    loss: float = 0.0
    gilbert_elliott: GilbertElliott | None = None
    delay: float = 0.0
    jitter: float = 0.0
    jitter_distribution: JitterDistribution = "normal"
    reorder: bool = False
    reorder_probability: float = 0.0
    reorder_delay: float = 0.02
    duplicate: float = 0.0
    rate: float | None = None
    queue_limit: int = 64_000

    def __post_init__(self) -> None:
        _check_probability("loss", self.loss)
        if self.gilbert_elliott is not None:
            if not isinstance(self.gilbert_elliott, GilbertElliott):
                raise ValueError(
                    f"gilbert_elliott must be a GilbertElliott, got {self.gilbert_elliott!r}"
                )
            if self.loss > 0.0:
                raise ValueError("set either loss or gilbert_elliott, not both")
        _check_non_negative("delay", self.delay)
        _check_non_negative("jitter", self.jitter)
        if self.jitter_distribution not in _JITTER_DISTRIBUTIONS:
            raise ValueError(
                f"jitter_distribution must be one of {', '.join(_JITTER_DISTRIBUTIONS)}, "
                f"got {self.jitter_distribution!r}"
            )
        if not isinstance(self.reorder, bool):
            raise ValueError(f"reorder must be a bool, got {self.reorder!r}")
        _check_probability("reorder_probability", self.reorder_probability)
        _check_non_negative("reorder_delay", self.reorder_delay)
        _check_probability("duplicate", self.duplicate)
        if self.rate is not None and _check_number("rate", self.rate) <= 0.0:
            raise ValueError(f"rate must be > 0 bits/s (None for no cap), got {self.rate!r}")
        if (
            isinstance(self.queue_limit, bool)
            or not isinstance(self.queue_limit, int)
            or self.queue_limit < 1
        ):
            raise ValueError(
                f"queue_limit must be a positive number of bytes, got {self.queue_limit!r}"
            )

    @property
    def mean_loss(self) -> float:
        """Long-run loss rate of the loss stage alone (queue drops come on top)."""
        if self.gilbert_elliott is not None:
            return self.gilbert_elliott.mean_loss
        return self.loss


@dataclass(frozen=True, slots=True)
class ImpairmentStats:
    """Counters of one :class:`Impairment` (a snapshot).

    ``sent`` datagrams were offered; ``lost`` were dropped by the loss model,
    ``queue_dropped`` by the rate cap's full queue; ``duplicated`` extra
    copies were made; ``reordered`` were held back on purpose and
    ``out_of_order`` were delivered after a datagram sent later than them
    (from any cause); ``delivered`` came out, ``delayed`` of them later than
    they were sent, by ``delay_total`` seconds in all.
    """

    sent: int = 0
    sent_bytes: int = 0
    lost: int = 0
    queue_dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    out_of_order: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    delayed: int = 0
    delay_total: float = 0.0

    @property
    def mean_delay(self) -> float:
        """Mean time from send to delivery over delivered datagrams."""
        return self.delay_total / self.delivered if self.delivered else 0.0

    def __str__(self) -> str:
        return (
            f"sent {self.sent} ({self.sent_bytes} B), lost {self.lost}, "
            f"queue-dropped {self.queue_dropped}, duplicated {self.duplicated}, "
            f"reordered {self.reordered}, out-of-order {self.out_of_order}, "
            f"delivered {self.delivered} ({self.delivered_bytes} B), delayed {self.delayed}, "
            f"mean delay {self.mean_delay * 1000:.1f} ms"
        )


class ImpairmentLike(Protocol):
    """What :class:`interlive.lab.proxy.ImpairmentProxy` drives."""

    def send(self, datagram: bytes, now: float) -> None: ...

    def receive_ready(self, now: float) -> list[bytes]: ...

    def get_timer(self) -> float | None: ...


class Impairment:
    """One direction of an impaired path (see the module docstring)."""

    def __init__(self, config: ImpairmentConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._bad = False
        # (delivery time, send order, sent at, datagram)
        self._in_flight: list[tuple[float, int, float, bytes]] = []
        self._order = 0
        self._last_delivery = -math.inf
        self._highest_delivered = -1
        # Bottleneck: (time fully sent, size) of datagrams not yet fully sent.
        self._link: deque[tuple[float, int]] = deque()
        self._link_free_at = -math.inf
        self._backlog = 0
        self._sent = 0
        self._sent_bytes = 0
        self._lost = 0
        self._queue_dropped = 0
        self._duplicated = 0
        self._reordered = 0
        self._out_of_order = 0
        self._delivered = 0
        self._delivered_bytes = 0
        self._delayed = 0
        self._delay_total = 0.0

    @property
    def config(self) -> ImpairmentConfig:
        return self._config

    def set_config(self, config: ImpairmentConfig) -> None:
        """Change the conditions for datagrams sent from now on.

        Datagrams in flight keep their delivery times and the bottleneck's
        backlog carries over; a bursty chain keeps its state if the new
        configuration is bursty too.
        """
        if config.gilbert_elliott is None:
            self._bad = False
        self._config = config

    @property
    def in_flight(self) -> int:
        """Datagrams sent and not yet delivered."""
        return len(self._in_flight)

    @property
    def backlog(self) -> int:
        """Bytes in the rate cap's queue as of the last :meth:`send`."""
        return self._backlog

    def stats(self) -> ImpairmentStats:
        return ImpairmentStats(
            sent=self._sent,
            sent_bytes=self._sent_bytes,
            lost=self._lost,
            queue_dropped=self._queue_dropped,
            duplicated=self._duplicated,
            reordered=self._reordered,
            out_of_order=self._out_of_order,
            delivered=self._delivered,
            delivered_bytes=self._delivered_bytes,
            delayed=self._delayed,
            delay_total=self._delay_total,
        )

    def send(self, datagram: bytes, now: float) -> None:
        """Offer ``datagram``, sent at ``now``; it is lost, or delivered later."""
        self._sent += 1
        self._sent_bytes += len(datagram)
        if self._is_lost():
            self._lost += 1
            return
        config = self._config
        self._enqueue(datagram, now)
        if config.duplicate > 0.0 and self._rng.random() < config.duplicate:
            self._duplicated += 1
            self._enqueue(datagram, now)

    def receive_ready(self, now: float) -> list[bytes]:
        """Datagrams whose delivery time is ``<= now``, in delivery order."""
        return [datagram for _, datagram in self.receive_ready_timed(now)]

    def receive_ready_timed(self, now: float) -> list[tuple[float, bytes]]:
        """As :meth:`receive_ready`, each with its delivery time."""
        ready: list[tuple[float, bytes]] = []
        heap = self._in_flight
        while heap and heap[0][0] <= now:
            delivery, order, sent_at, datagram = heapq.heappop(heap)
            if order < self._highest_delivered:
                self._out_of_order += 1
            else:
                self._highest_delivered = order
            self._delivered += 1
            self._delivered_bytes += len(datagram)
            if delivery > sent_at:
                self._delayed += 1
                self._delay_total += delivery - sent_at
            ready.append((delivery, datagram))
        return ready

    def get_timer(self) -> float | None:
        """The next delivery time, or None when nothing is in flight."""
        return self._in_flight[0][0] if self._in_flight else None

    def _is_lost(self) -> bool:
        config = self._config
        chain = config.gilbert_elliott
        if chain is None:
            return config.loss > 0.0 and self._rng.random() < config.loss
        probability = chain.loss_bad if self._bad else chain.loss_good
        lost = probability > 0.0 and self._rng.random() < probability
        if self._bad:
            if self._rng.random() < chain.r:
                self._bad = False
        elif chain.p > 0.0 and self._rng.random() < chain.p:
            self._bad = True
        return lost

    def _enqueue(self, datagram: bytes, now: float) -> None:
        config = self._config
        departure = now
        if config.rate is not None:
            link = self._link
            while link and link[0][0] <= now:
                self._backlog -= link.popleft()[1]
            size = len(datagram)
            if self._backlog + size > config.queue_limit:
                self._queue_dropped += 1
                return
            departure = max(now, self._link_free_at) + 8.0 * size / config.rate
            self._link_free_at = departure
            link.append((departure, size))
            self._backlog += size
        delivery = departure + config.delay
        if config.jitter > 0.0:
            if config.jitter_distribution == "normal":
                delivery += self._rng.gauss(0.0, config.jitter)
            else:
                spread = _SQRT3 * config.jitter
                delivery += self._rng.uniform(-spread, spread)
            delivery = max(delivery, departure)
        if config.reorder_probability > 0.0 and self._rng.random() < config.reorder_probability:
            self._reordered += 1
            delivery += config.reorder_delay
        else:
            if not config.reorder:
                delivery = max(delivery, self._last_delivery)
            self._last_delivery = max(self._last_delivery, delivery)
        heapq.heappush(self._in_flight, (delivery, self._order, now, datagram))
        self._order += 1


class Chain:
    """Impairments in series: what leaves ``first`` enters ``second``.

    Each datagram enters ``second`` at its delivery time from ``first``
    (not at the time it was drained), so the result does not depend on how
    often the caller polls.
    """

    def __init__(self, first: Impairment, second: Impairment) -> None:
        self.first = first
        self.second = second

    def send(self, datagram: bytes, now: float) -> None:
        self.first.send(datagram, now)

    def receive_ready(self, now: float) -> list[bytes]:
        for delivered_at, datagram in self.first.receive_ready_timed(now):
            self.second.send(datagram, delivered_at)
        return self.second.receive_ready(now)

    def get_timer(self) -> float | None:
        timers = [t for t in (self.first.get_timer(), self.second.get_timer()) if t is not None]
        return min(timers) if timers else None
