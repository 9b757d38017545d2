"""The loss benchmark's matrix and what theory expects of each cell.

A *cell* is one network condition on the viewer leg (loss rate, random or
bursty, and RTT) under one protection mode of the server
(``interlive serve --loss-protection``).  :func:`expand_matrix` builds the
cells in the order the benchmark runs them: one server per protection, so
the protection varies slowest.  The issue's goals are stated at 100 ms RTT,
which the matrix (50 and 200 ms) does not contain: unless told otherwise the
matrix gains *goal cells* at 20 % and 30 % random loss and 100 ms RTT.

:func:`theory_residual` is what :mod:`interlive.protection.model` predicts a
protection leaves unrepaired *in time* on a cell's link, with the parameters
the server's viewer policy picks for it (the same
:class:`~interlive.protection.policy.ProtectionPolicy` and configuration: a
150 ms playout deadline for video and 100 ms for audio, plus the playout
delay the policy asks of a browser viewer, no Opus in-band FEC since the SFU
cannot switch it on for one viewer).  Forced modes mirror the server's:
``nack`` answers NACKs only, ``fec`` is ULPFEC on video at the rate the
policy picks without NACK, ``red`` is RED on audio at the distance the
policy picks; a tool does nothing for the other kind (browsers do not NACK
Opus), so there the residual is the raw loss.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from interlive.protection.policy import (
    LinkStats,
    MediaKind,
    ProtectionDecision,
    ProtectionPolicy,
    expected_residual_loss,
)
from interlive.protection.viewer import AUDIO_DEADLINE, VIDEO_DEADLINE, VIEWER_POLICY_CONFIG

__all__ = [
    "AUDIO_BITRATE",
    "AUDIO_DEADLINE",
    "DEFAULT_LOSSES",
    "DEFAULT_PROTECTIONS",
    "DEFAULT_RTTS",
    "GOAL_CELLS",
    "PROTECTIONS",
    "VIDEO_BITRATE",
    "VIDEO_DEADLINE",
    "Cell",
    "LossSpec",
    "Protection",
    "expand_matrix",
    "parse_loss",
    "parse_losses",
    "parse_protections",
    "parse_rtts",
    "theory_decision",
    "theory_residual",
]

Protection = Literal["none", "nack", "fec", "red", "policy"]
PROTECTIONS: Final[tuple[Protection, ...]] = ("none", "nack", "fec", "red", "policy")

#: The publisher's video bitrate cap (``serve --max-publish-bitrate``) and Opus's rate, bit/s.
VIDEO_BITRATE: Final = 800_000
AUDIO_BITRATE: Final = 32_000
#: Mean burst of the issue's bursty condition, in packets.
DEFAULT_BURST: Final = 3.0

_VIEWER_POLICY: Final = ProtectionPolicy(VIEWER_POLICY_CONFIG)
_WITHOUT_NACK: Final = ProtectionPolicy(replace(VIEWER_POLICY_CONFIG, max_nack_attempts=0))
_LOSS_PATTERN: Final = re.compile(r"^(\d+(?:\.\d+)?)(?:(b)(\d+(?:\.\d+)?)?)?$")


@dataclass(frozen=True, slots=True, order=True)
class LossSpec:
    """Loss on the viewer's downlink: ``rate`` in [0, 1); ``burst`` the mean run (None: random)."""

    rate: float
    burst: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"loss must be in [0, 100) %, got {self.rate * 100:g} %")
        if self.burst is not None and self.burst < 1.0:
            raise ValueError(f"mean burst must be >= 1 packet, got {self.burst:g}")
        if self.burst is not None and self.rate == 0.0:
            raise ValueError("a bursty loss needs a loss rate above 0")

    @property
    def bursty(self) -> bool:
        return self.burst is not None

    @property
    def mean_burst(self) -> float:
        """The mean run of losses, 1.0 for random loss (the policy's convention)."""
        return 1.0 if self.burst is None else self.burst

    def label(self) -> str:
        """``20 %`` or ``10 % bursty (3)``."""
        text = f"{self.rate * 100:g} %"
        return text if self.burst is None else f"{text} bursty ({self.burst:g})"

    def token(self) -> str:
        """The command-line spelling: ``20``, ``10b3``."""
        text = f"{self.rate * 100:g}"
        return text if self.burst is None else f"{text}b{self.burst:g}"


def parse_loss(text: str) -> LossSpec:
    """``20`` (20 % random), ``10b`` (10 % bursty, mean burst 3), ``10b4`` (mean burst 4)."""
    match = _LOSS_PATTERN.match(text.strip())
    if match is None:
        raise ValueError(
            f"loss {text!r}: write a percentage, with 'b' for bursty loss (20, 10b, 10b4)"
        )
    rate = float(match.group(1)) / 100.0
    burst: float | None = None
    if match.group(2):
        burst = float(match.group(3)) if match.group(3) else DEFAULT_BURST
    return LossSpec(rate, burst)


def _items(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def parse_losses(values: Iterable[str]) -> list[LossSpec]:
    """Comma-separated (or repeated) loss specs, duplicates dropped, order kept."""
    return list(dict.fromkeys(parse_loss(v) for v in _items(values)))


def parse_rtts(values: Iterable[str]) -> list[int]:
    """Comma-separated (or repeated) RTTs in milliseconds."""
    rtts: list[int] = []
    for item in _items(values):
        try:
            rtt = int(item)
        except ValueError:
            raise ValueError(f"RTT {item!r} is not a whole number of milliseconds") from None
        if not 0 <= rtt <= 5000:
            raise ValueError(f"RTT must be 0..5000 ms, got {rtt}")
        if rtt not in rtts:
            rtts.append(rtt)
    return rtts


def parse_protections(values: Iterable[str]) -> list[Protection]:
    out: list[Protection] = []
    for item in _items(values):
        name = item.strip().lower()
        match = next((p for p in PROTECTIONS if p == name), None)
        if match is None:
            raise ValueError(f"protection {item!r}: choose from {', '.join(PROTECTIONS)}")
        if match not in out:
            out.append(match)
    return out


DEFAULT_LOSSES: Final = (
    LossSpec(0.0),
    LossSpec(0.05),
    LossSpec(0.10),
    LossSpec(0.20),
    LossSpec(0.30),
    LossSpec(0.10, DEFAULT_BURST),
)
DEFAULT_RTTS: Final = (50, 200)
DEFAULT_PROTECTIONS: Final = PROTECTIONS
#: Where the issue states its goals: (loss, RTT ms).
GOAL_CELLS: Final = ((LossSpec(0.20), 100), (LossSpec(0.30), 100))


@dataclass(frozen=True, slots=True)
class Cell:
    """One condition under one protection; ``goal`` marks a cell added for the goals."""

    loss: LossSpec
    rtt_ms: int
    protection: Protection
    goal: bool = False

    @property
    def rtt(self) -> float:
        return self.rtt_ms / 1000.0

    @property
    def condition(self) -> tuple[LossSpec, int]:
        return self.loss, self.rtt_ms

    def label(self) -> str:
        return f"{self.loss.label()}, {self.rtt_ms} ms RTT, {self.protection}"


def expand_matrix(
    losses: Sequence[LossSpec],
    rtts: Sequence[int],
    protections: Sequence[Protection],
    *,
    goal_cells: bool = True,
) -> list[Cell]:
    """Every (protection, RTT, loss), protection slowest; goal cells last within a protection.

    Within a protection the RTTs come in the order given and, for each, the
    losses in the order given.  A goal cell already in the matrix is not
    repeated (it is marked as a goal cell where it stands).
    """
    goals = set(GOAL_CELLS) if goal_cells else set()
    cells: list[Cell] = []
    for protection in protections:
        seen: set[tuple[LossSpec, int]] = set()
        for rtt in rtts:
            for loss in losses:
                if (loss, rtt) in seen:
                    continue
                seen.add((loss, rtt))
                cells.append(Cell(loss, rtt, protection, goal=(loss, rtt) in goals))
        for loss, rtt in GOAL_CELLS:
            if goal_cells and (loss, rtt) not in seen:
                seen.add((loss, rtt))
                cells.append(Cell(loss, rtt, protection, goal=True))
    return cells


def _link(loss: LossSpec, rtt: float, kind: MediaKind) -> LinkStats:
    rate = loss.rate
    # the policy's convention: a burst no longer than independent loss gives is random
    burst = max(loss.mean_burst, 1.0 / (1.0 - rate))
    return LinkStats(
        loss_rate=rate,
        mean_burst_length=burst if loss.bursty else 1.0,
        rtt=rtt,
        playout_deadline=VIDEO_DEADLINE if kind == "video" else AUDIO_DEADLINE,
        bitrate=VIDEO_BITRATE if kind == "video" else AUDIO_BITRATE,
        kind=kind,
    )


def theory_decision(
    protection: Protection, kind: MediaKind, loss: LossSpec, rtt: float
) -> ProtectionDecision:
    """The tools the server is expected to apply for ``protection`` on this link."""
    stats = _link(loss, rtt, kind)
    if protection == "none":
        return ProtectionDecision(reason="no repair")
    if protection == "policy":
        return _VIEWER_POLICY.decide(stats)
    if protection == "nack":
        decision = _VIEWER_POLICY.decide(replace(stats, loss_rate=0.0))
        return replace(decision, reason="NACK only")
    if (protection == "fec") == (kind == "video"):  # fec on video, red on audio
        return _WITHOUT_NACK.decide(stats)
    return ProtectionDecision(reason=f"{protection} does nothing for {kind}")


def theory_residual(
    protection: Protection,
    kind: MediaKind,
    loss: LossSpec,
    rtt: float,
    *,
    audio_buffer: float | None = None,
) -> float:
    """The share of ``kind``'s packets the model expects left unrepaired in time.

    ``audio_buffer`` is the viewer's measured audio jitter buffer (seconds):
    a viewer that asks for lost Opus (web/audio-nack.js) gets the NACK rounds
    that fit in it when NACKs are answered.  How deep NetEq's buffer is, the
    server does not choose (lip sync holds the audio with the video), so the
    theory takes it as measured; without it audio gets no NACK round.
    """
    if loss.rate == 0.0:
        return 0.0
    stats = _link(loss, rtt, kind)
    decision = theory_decision(protection, kind, loss, rtt)
    config = _VIEWER_POLICY.config
    if kind == "audio" and audio_buffer is not None and protection in ("nack", "policy"):
        config = replace(config, audio_nack=True)
        stats = replace(stats, playout_deadline=audio_buffer)
        attempts = ProtectionPolicy(config).nack_attempts(stats)
        decision = replace(decision, nack=attempts > 0, nack_attempts=attempts)
    return expected_residual_loss(stats, decision, config)
