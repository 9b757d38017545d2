"""Residual-loss model: what NACK/RTX, ULPFEC, RED and Opus in-band FEC leave unrepaired.

The loss-protection policy (:mod:`interlive.protection.policy`) prices its
options with this model; it is also how the figures of DESIGN.md ("Facts
for loss protection") are reproduced.  It follows no standard: it is the
textbook Gilbert-Elliott channel (a hidden two-state Markov chain stepped
once per packet) applied to the packet layouts the project's encoders emit.

Theory of operation
-------------------
*Channel.*  :class:`LossProcess` is a Gilbert-Elliott chain: ``p`` good→bad,
``r`` bad→good, loss probability ``loss_good``/``loss_bad`` in each state.
The chain is stationary; ``k`` packets apart its transition matrix is
``T^k = Π + λ^k (I - Π)`` with ``λ = 1 - p - r`` (``Π`` has the stationary
distribution in every row), so the probability of any pattern of lost and
received packets at given positions is a product of 2x2 steps (the forward
algorithm) in :meth:`LossProcess.joint`.  Independent loss is ``λ = 0``.

*Layout.*  :class:`Protection` describes what is sent: frames of
``frame_packets`` media packets followed by their ``fec_packets`` ULPFEC
packets (masks from :func:`interlive.protection.ulpfec.group_masks`, so
"random" blocks/grid or "bursty" interleaving exactly as the encoder builds
them); RED (RFC 2198) copies of each packet in the ``red_distance`` packets
after it, every ``red_spacing``-th one (1: consecutive, as browsers and
:class:`interlive.protection.red.RedEncoder` send); Opus in-band FEC (LBRR)
of each packet in the next one, and so in every RED copy of that next one;
and ``nack_attempts`` retransmissions, the k-th crossing the channel
``k * nack_lag`` packets after the loss (``nack_lag`` is one RTT in
packets, so retries see the channel decorrelated from the loss: why NACK
survives bursts that defeat consecutive redundancy).

*Residual.*  A media packet is unrepaired if it is lost, every packet
carrying a redundant copy of it is lost, every retransmission is lost, and
no FEC packet covering it can rebuild it (each of its FEC groups has another
member lost).  FEC is counted in one pass, without the decoder's recursive
recovery (one rebuilt packet completing another group), so for the grid
masks the model errs on the safe side.  Retransmissions are extra packets
(an independent loss draw in the channel state of their slot).

:func:`residual_loss` evaluates this exactly (inclusion-exclusion over the
packet's FEC groups); :func:`simulate_residual_loss` runs the same rules as
a Monte Carlo over a sampled loss trace, to check the algebra and to
reproduce the DESIGN.md table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from interlive.protection.ulpfec import group_masks

__all__ = [
    "LossProcess",
    "MaskKind",
    "Protection",
    "fec_packets_for",
    "residual_loss",
    "simulate_residual_loss",
]

MaskKind = Literal["random", "bursty"]
#: The most media packets one set of ULPFEC packets covers (a 48-bit mask).
MAX_FRAME_PACKETS = 48


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class LossProcess:
    """Gilbert-Elliott packet loss, stationary (see the module docstring)."""

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_good", "loss_bad"):
            _check_probability(name, getattr(self, name))
        if self.p + self.r == 0.0:
            raise ValueError("p + r must be > 0 (the chain needs a stationary state)")

    @classmethod
    def independent(cls, loss: float) -> LossProcess:
        """Each packet lost with probability ``loss``, independently."""
        _check_probability("loss", loss)
        if loss == 0.0:
            return cls(p=0.0, r=1.0)
        return cls(p=loss, r=1.0 - loss)

    @classmethod
    def bursty(cls, loss: float, mean_burst: float) -> LossProcess:
        """Long-run ``loss`` in runs of mean length ``mean_burst`` (the simple Gilbert chain).

        A mean run no longer than independent loss gives, ``1 / (1 - loss)``
        (1.11 at 10%), means independent loss: pass 1.0 for "not bursty".
        """
        _check_probability("loss", loss)
        if mean_burst < 1.0 or not math.isfinite(mean_burst):
            raise ValueError(f"mean_burst must be >= 1, got {mean_burst!r}")
        if loss == 0.0 or loss == 1.0 or mean_burst <= 1.0 / (1.0 - loss):
            return cls.independent(loss)
        r = 1.0 / mean_burst
        return cls(p=loss * r / (1.0 - loss), r=r)

    @property
    def bad_fraction(self) -> float:
        return self.p / (self.p + self.r)

    @property
    def mean_loss(self) -> float:
        bad = self.bad_fraction
        return (1.0 - bad) * self.loss_good + bad * self.loss_bad

    def joint(self, pattern: Mapping[int, bool], extra: Iterable[tuple[int, bool]] = ()) -> float:
        """Probability that each packet in ``pattern`` (position → lost?) is lost or not.

        ``extra`` are further packets at given positions (retransmissions)
        that share the slot's channel state but draw their own loss.
        """
        events = sorted([*pattern.items(), *extra])
        if not events:
            return 1.0
        bad = self.bad_fraction
        lam = 1.0 - self.p - self.r
        good_weight, bad_weight = 1.0 - bad, bad
        previous = events[0][0]
        for position, lost in events:
            gap = position - previous
            if gap:
                decay = lam**gap
                # Row vector times T^gap = Π + decay (I - Π): the total stays,
                # the state distribution relaxes towards the stationary one.
                total = good_weight + bad_weight
                bad_weight = total * bad + decay * (bad_weight - total * bad)
                good_weight = total - bad_weight
            previous = position
            if lost:
                good_weight *= self.loss_good
                bad_weight *= self.loss_bad
            else:
                good_weight *= 1.0 - self.loss_good
                bad_weight *= 1.0 - self.loss_bad
        return max(0.0, good_weight + bad_weight)


def fec_packets_for(frame_packets: int, rate: float) -> int:
    """How many ULPFEC packets :class:`~interlive.protection.ulpfec.FecEncoder` adds."""
    if rate <= 0.0:
        return 0
    return min(math.ceil(frame_packets * rate - 1e-9), 24, frame_packets)


@dataclass(frozen=True, slots=True)
class Protection:
    """What is sent to protect a stream (see the module docstring)."""

    nack_attempts: int = 0
    nack_lag: int = 1
    red_distance: int = 0
    red_spacing: int = 1
    inband_fec: bool = False
    frame_packets: int = 1
    fec_packets: int = 0
    fec_mask: MaskKind = "random"

    def __post_init__(self) -> None:
        if self.nack_attempts < 0:
            raise ValueError(f"nack_attempts must be >= 0, got {self.nack_attempts}")
        if self.nack_lag < 1:
            raise ValueError(f"nack_lag must be >= 1 packet, got {self.nack_lag}")
        if self.red_distance < 0 or self.red_spacing < 1:
            raise ValueError("red_distance must be >= 0 and red_spacing >= 1")
        if not 1 <= self.frame_packets <= MAX_FRAME_PACKETS:
            raise ValueError(f"frame_packets must be 1..{MAX_FRAME_PACKETS}")
        if not 0 <= self.fec_packets <= self.frame_packets:
            raise ValueError("fec_packets must be 0..frame_packets")
        if self.fec_mask not in ("random", "bursty"):
            raise ValueError(f"fec_mask must be 'random' or 'bursty', got {self.fec_mask!r}")

    @property
    def period(self) -> int:
        """Packets per frame on the wire (media and FEC)."""
        return self.frame_packets + self.fec_packets

    def position(self, media_index: int) -> int:
        """Wire position of media packet ``media_index`` (frame 0 starts at 0)."""
        frame, offset = divmod(media_index, self.frame_packets)
        return frame * self.period + offset

    def carriers(self, media_index: int) -> list[int]:
        """Media indices of the packets carrying a redundant copy of ``media_index``."""
        spacing = self.red_spacing
        red = [media_index + spacing * k for k in range(1, self.red_distance + 1)]
        if not self.inband_fec:
            return red
        following = media_index + 1
        lbrr = [following + spacing * k for k in range(1, self.red_distance + 1)]
        return sorted({*red, following, *lbrr})

    def fec_groups(self) -> tuple[tuple[int, ...], ...]:
        """Media offsets in a frame protected by each FEC packet."""
        if self.fec_packets == 0:
            return ()
        return group_masks(self.frame_packets, self.fec_packets, self.fec_mask)


def residual_loss(process: LossProcess, protection: Protection = Protection()) -> float:
    """The share of media packets left unrepaired (exact, see the module docstring)."""
    groups = protection.fec_groups()
    total = 0.0
    for offset in range(protection.frame_packets):
        position = protection.position(offset)
        base: dict[int, bool] = {position: True}
        for carrier in protection.carriers(offset):
            base[protection.position(carrier)] = True
        retries = [
            (position + k * protection.nack_lag, True)
            for k in range(1, protection.nack_attempts + 1)
        ]
        mine = [g for g, members in enumerate(groups) if offset in members]
        residual = process.joint(base, retries)
        for size in range(1, len(mine) + 1):
            for chosen in itertools.combinations(mine, size):
                pattern = dict(base)
                consistent = True
                for g in chosen:
                    wanted = [protection.frame_packets + g]
                    wanted += [m for m in groups[g] if m != offset]
                    for other in wanted:
                        if pattern.setdefault(other, False):
                            consistent = False
                if consistent:
                    residual += (-1) ** size * process.joint(pattern, retries)
        total += max(0.0, residual)
    return total / protection.frame_packets


def _sample_states(
    process: LossProcess, length: int, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """A trace of ``length`` chain states (True: bad), from the stationary start."""
    if process.p == 0.0:
        return np.zeros(length, dtype=np.bool_)
    if process.r == 0.0:
        return np.ones(length, dtype=np.bool_)
    mean_cycle = 1.0 / process.p + 1.0 / process.r
    cycles = int(length / mean_cycle * 1.2) + 16
    states = np.empty(0, dtype=np.bool_)
    start_bad = bool(rng.random() < process.bad_fraction)
    while states.size < length:
        good = rng.geometric(process.p, cycles)
        bad = rng.geometric(process.r, cycles)
        runs = np.empty(2 * cycles, dtype=np.int64)
        values = np.empty(2 * cycles, dtype=np.bool_)
        first, second = (bad, good) if start_bad else (good, bad)
        runs[0::2], runs[1::2] = first, second
        values[0::2], values[1::2] = start_bad, not start_bad
        states = np.concatenate([states, np.repeat(values, runs)])
    return states[:length]


def simulate_residual_loss(
    process: LossProcess,
    protection: Protection = Protection(),
    *,
    frames: int = 100_000,
    rng: np.random.Generator | None = None,
) -> float:
    """Monte Carlo of :func:`residual_loss`'s rules over ``frames`` frames."""
    rng = rng if rng is not None else np.random.default_rng(0)
    period = protection.period
    m = protection.frame_packets
    carriers = [protection.carriers(offset) for offset in range(m)]
    reach = max((c for row in carriers for c in row), default=0)
    margin = (reach // m + 1) * period + protection.nack_attempts * protection.nack_lag + 1
    length = frames * period + margin
    states = _sample_states(process, length, rng)
    chance = np.where(states, process.loss_bad, process.loss_good)
    lost = rng.random(length) < chance
    frame_starts = np.arange(frames, dtype=np.int64) * period
    groups = protection.fec_groups()
    unrepaired = 0
    for offset in range(m):
        where = frame_starts + offset
        bad = lost[where].copy()
        for carrier in carriers[offset]:
            bad &= lost[frame_starts + protection.position(carrier)]
        for k in range(1, protection.nack_attempts + 1):
            slots = where + k * protection.nack_lag
            bad &= rng.random(frames) < chance[slots]
        for g, members in enumerate(groups):
            if offset not in members:
                continue
            others_received = ~lost[frame_starts + m + g]
            for other in members:
                if other != offset:
                    others_received &= ~lost[frame_starts + other]
            bad &= ~others_received
        unrepaired += int(np.count_nonzero(bad))
    return unrepaired / (frames * m)
