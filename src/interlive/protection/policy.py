"""Per-viewer loss-protection policy: which repair tools a link gets, as a pure decision.

Given what is known about one viewer's link (:class:`LinkStats`: loss rate,
burstiness, RTT, playout deadline, bitrate, audio or video),
:meth:`ProtectionPolicy.decide` returns a :class:`ProtectionDecision`: NACK
and how many tries, the ULPFEC rate (delta and key frames) and mask, the RED
distance, and Opus in-band FEC with its packet-loss hint.  The caller
applies it (the NACK generator's retries, :class:`~.ulpfec.FecEncoder`,
:class:`~.red.RedEncoder`, the Opus encoder); nothing here does I/O.  No RFC
fixes this choice; it follows libwebrtc's hybrid NACK/FEC
(``modules/video_coding/media_opt_util.cc``) as an anchor and the residual
loss model of :mod:`interlive.protection.model` for the numbers (DESIGN.md,
"Facts for loss protection").

Theory of operation
-------------------
1. *NACK first.*  Retransmission costs bandwidth only for what was lost, so
   it is on whenever one round fits before the playout deadline: attempts =
   ``floor((deadline - detection) / (rtt + processing))`` (DESIGN.md), where
   detection is the reorder grace plus one packet interval, capped at
   ``max_nack_attempts``.  Audio gets NACK only if ``audio_nack`` is set
   (browsers do not offer NACK for Opus; interlive's pages add it).
2. *Options, cheapest first.*  Video: ULPFEC rates 0, 0.05, ... 0.5
   (libwebrtc's cap) with "random" or "bursty" masks, priced by the FEC
   packets the encoder would really add for a frame of this bitrate.  Audio:
   nothing, in-band FEC, RED distance 1, RED 1 + in-band, ... up to
   ``max_red_distance`` (in-band FEC costs no bandwidth but some quality;
   each RED copy a whole payload, and an Opus payload is small).  The
   first option whose expected residual loss (:func:`expected_residual_loss`)
   meets the target for its kind is taken; if none does, the cheapest within
   10% of the best one.
3. *libwebrtc's guard rails.*  Below ``low_rtt`` (20 ms) no FEC is used
   whenever NACK fits (a retransmission comes back sooner than FEC pays for
   itself; a receiver that asks again only every ``min_nack_interval`` may
   still be asked to wait, as in 6); FEC is off below ``min_fec_bitrate``
   (a whole parity packet per small frame is too dear: libwebrtc's
   bytes-per-frame rule); keyframes get at least twice the delta-frame rate,
   up to the cap.
4. *Opus in-band FEC only when loss is measured* (>= ``inband_min_loss``):
   at 0% loss it costs quality for nothing (PESQ-WB 4.38 → 3.10 in
   DESIGN.md).  The packet-loss hint given to the encoder is the measured
   loss in percent, rounded up, when in-band FEC is on, else 0.
5. *Bursts.*  The model prices burstiness: consecutive redundancy (RED,
   consecutive XOR masks) fails inside a burst while a retransmission, an
   RTT later, does not, so bursty links lean on NACK and "bursty"
   (interleaved) FEC masks.
6. *Latency before bandwidth* (video, when ``max_playout_delay`` > 0).  A
   viewer can be asked to hold its pictures longer (the playout-delay header
   extension's minimum), which gives every lost packet more retransmission
   rounds before its frame is due.  For each FEC option, cheapest first, the
   policy looks for the shortest such delay (in ``playout_delay_step``
   steps, up to ``max_playout_delay``) that meets the target; the first
   option that has one wins.  So on a lossy link NACK alone with a longer
   buffer is preferred to FEC, whose packets are lost like the media and
   crowd a link that is already losing (measured in docs/benchmarks.md: FEC
   at 20-30 % loss cost more than it repaired), and FEC is added only when
   the allowed delay is not enough.  Without loss, or when the target is
   met at the viewer's own deadline, no delay is asked for.  Retransmission
   rounds are at least ``min_nack_interval`` apart: a receiver asks again
   for a packet once per its RTT estimate (libwebrtc: 100 ms until it has
   one, which a receive-only viewer never gets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from interlive.protection.model import (
    LossProcess,
    MaskKind,
    Protection,
    fec_packets_for,
    residual_loss,
)
from interlive.protection.red import MAX_RED_DISTANCE

__all__ = [
    "MAX_FEC_RATE",
    "MAX_PLAYOUT_DELAY",
    "MAX_RED_DISTANCE",
    "LinkStats",
    "LossProtectionPolicy",
    "MediaKind",
    "NullProtectionPolicy",
    "PolicyConfig",
    "ProtectionDecision",
    "ProtectionPolicy",
    "expected_residual_loss",
]

MediaKind = Literal["audio", "video"]
#: libwebrtc caps the FEC protection factor at 50%; so does the ULPFEC encoder.
MAX_FEC_RATE = 0.5
#: The longest render delay the policy may ask of a viewer (seconds), far below
#: what the playout-delay extension can carry (40.95 s).
MAX_PLAYOUT_DELAY = 10.0
_FEC_RATES = tuple(round(0.05 * step, 2) for step in range(1, 11))
_MASKS: tuple[MaskKind, ...] = ("random", "bursty")
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class LinkStats:
    """What is known about one viewer's link for one stream (times in seconds).

    ``mean_burst_length`` is the mean run of consecutive losses; 1.0 (or
    anything up to ``1 / (1 - loss_rate)``) means independent loss.
    ``playout_deadline`` is how long after its expected arrival a packet is
    still useful (the receiver's jitter-buffer patience).  ``bitrate`` in
    bits/s.
    """

    loss_rate: float
    mean_burst_length: float
    rtt: float
    playout_deadline: float
    bitrate: float
    kind: MediaKind

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_rate < 1.0:
            raise ValueError(f"loss_rate must be in [0, 1), got {self.loss_rate!r}")
        if not self.mean_burst_length >= 1.0 or math.isinf(self.mean_burst_length):
            raise ValueError(f"mean_burst_length must be >= 1, got {self.mean_burst_length!r}")
        for name in ("rtt", "playout_deadline", "bitrate"):
            value = getattr(self, name)
            if not value >= 0.0 or math.isinf(value):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {self.kind!r}")


@dataclass(frozen=True, slots=True)
class ProtectionDecision:
    """The repair tools for one stream to one viewer.

    ``fec_rate`` is the ULPFEC protection of delta frames (0..0.5, as
    :class:`~interlive.protection.ulpfec.FecEncoder` takes it),
    ``fec_rate_keyframe`` that of keyframes and ``fec_mask`` the mask kind.
    ``opus_packet_loss_hint`` is a percentage for the Opus encoder's
    ``OPUS_SET_PACKET_LOSS_PERC``.  ``playout_delay`` is the shortest render
    delay the viewer is asked to keep (seconds; 0 leaves it to the viewer),
    which lets ``nack_attempts`` rounds land in time.  ``reason`` says why,
    for logs.
    """

    nack: bool = False
    nack_attempts: int = 0
    fec_rate: float = 0.0
    red_distance: int = 0
    opus_inband_fec: bool = False
    opus_packet_loss_hint: int = 0
    fec_rate_keyframe: float = 0.0
    fec_mask: MaskKind = "random"
    playout_delay: float = 0.0
    reason: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.nack_attempts < 0 or (self.nack and self.nack_attempts == 0):
            raise ValueError("nack needs nack_attempts >= 1, and attempts are never negative")
        if not 0.0 <= self.playout_delay <= MAX_PLAYOUT_DELAY:
            raise ValueError(
                f"playout_delay must be in [0, {MAX_PLAYOUT_DELAY}] s, got {self.playout_delay!r}"
            )
        for name in ("fec_rate", "fec_rate_keyframe"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_FEC_RATE:
                raise ValueError(f"{name} must be in [0, {MAX_FEC_RATE}], got {value!r}")
        if not 0 <= self.red_distance <= MAX_RED_DISTANCE:
            raise ValueError(f"red_distance must be 0..{MAX_RED_DISTANCE}, got {self.red_distance}")
        if not 0 <= self.opus_packet_loss_hint <= 100:
            raise ValueError(
                f"opus_packet_loss_hint must be 0..100, got {self.opus_packet_loss_hint}"
            )


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The policy's knobs and its assumptions about packetisation (seconds, bits/s, bytes)."""

    target_residual_video: float = 0.001
    target_residual_audio: float = 0.01
    low_rtt: float = 0.020
    min_fec_bitrate: float = 170_000.0
    keyframe_factor: float = 2.0
    processing: float = 0.005
    reorder_grace: float = 0.005
    max_nack_attempts: int = 10
    audio_nack: bool = False
    inband_min_loss: float = 0.01
    video_frame_rate: float = 30.0
    video_packet_size: int = 1200
    audio_packet_time: float = 0.020
    #: whether ULPFEC can be sent at all (negotiated, and the codec can skip FEC losses)
    fec_allowed: bool = True
    max_red_distance: int = 4
    min_nack_interval: float = 0.0
    max_playout_delay: float = 0.0
    playout_delay_step: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_playout_delay <= MAX_PLAYOUT_DELAY:
            raise ValueError(
                f"max_playout_delay must be in [0, {MAX_PLAYOUT_DELAY}] s, "
                f"got {self.max_playout_delay!r}"
            )
        if not 0 <= self.max_red_distance <= MAX_RED_DISTANCE:
            raise ValueError(
                f"max_red_distance must be 0..{MAX_RED_DISTANCE}, got {self.max_red_distance}"
            )
        if not self.playout_delay_step > 0.0:
            raise ValueError(f"playout_delay_step must be > 0, got {self.playout_delay_step!r}")


class LossProtectionPolicy(Protocol):
    """The strategy interface the SFU's egress calls (``decide`` is pure)."""

    def decide(self, stats: LinkStats) -> ProtectionDecision: ...


class NullProtectionPolicy:
    """No repair at all: a baseline for experiments."""

    def decide(self, stats: LinkStats) -> ProtectionDecision:
        return ProtectionDecision(reason="protection disabled")


def _packet_rate(stats: LinkStats, config: PolicyConfig) -> float:
    if stats.kind == "audio":
        return 1.0 / config.audio_packet_time
    by_size = stats.bitrate / (8.0 * config.video_packet_size)
    return max(config.video_frame_rate, by_size)


def _frame_packets(stats: LinkStats, config: PolicyConfig) -> int:
    if stats.kind == "audio":
        return 1
    frame_bytes = stats.bitrate / 8.0 / config.video_frame_rate
    return max(1, min(48, math.ceil(frame_bytes / config.video_packet_size - _EPSILON)))


def _nack_round(stats: LinkStats, config: PolicyConfig) -> float:
    """Seconds between a receiver's requests for the same packet, answer included.

    Video follows ``min_nack_interval`` and ``processing`` (a browser's NACK
    timer); audio does not: NetEq asks again with every packet it receives,
    so the first request after a lost resend is answered one RTT later.
    """
    if stats.kind == "audio":
        return max(stats.rtt, config.audio_packet_time)
    return max(stats.rtt, config.min_nack_interval) + config.processing


def _nack_lag(stats: LinkStats, config: PolicyConfig) -> int:
    return max(1, round(_nack_round(stats, config) * _packet_rate(stats, config)))


def _protection(stats: LinkStats, decision: ProtectionDecision, config: PolicyConfig) -> Protection:
    frame_packets = _frame_packets(stats, config)
    return Protection(
        nack_attempts=decision.nack_attempts if decision.nack else 0,
        nack_lag=_nack_lag(stats, config),
        red_distance=decision.red_distance,
        inband_fec=decision.opus_inband_fec,
        frame_packets=frame_packets,
        fec_packets=fec_packets_for(frame_packets, decision.fec_rate),
        fec_mask=decision.fec_mask,
    )


def expected_residual_loss(
    stats: LinkStats, decision: ProtectionDecision, config: PolicyConfig | None = None
) -> float:
    """The share of packets ``decision`` is expected to leave unrepaired on this link."""
    config = config or PolicyConfig()
    process = LossProcess.bursty(stats.loss_rate, stats.mean_burst_length)
    return residual_loss(process, _protection(stats, decision, config))


class ProtectionPolicy:
    """The default policy (see the module docstring)."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()

    def nack_attempts(self, stats: LinkStats) -> int:
        """Retransmission rounds that fit before the playout deadline."""
        config = self.config
        if stats.kind == "audio" and not config.audio_nack:
            return 0
        fits = math.floor(
            (stats.playout_deadline - self._detection(stats)) / _nack_round(stats, config)
            + _EPSILON
        )
        return max(0, min(config.max_nack_attempts, fits))

    def _detection(self, stats: LinkStats) -> float:
        """How long after its due time a loss is noticed: a reorder grace and one packet."""
        return self.config.reorder_grace + 1.0 / _packet_rate(stats, self.config)

    def _waits(self, stats: LinkStats, attempts: int) -> list[tuple[float, int]]:
        """(playout delay, NACK attempts) for video: no delay, then the shortest for each
        extra round.

        Only delays that let one more round land are worth asking for; each is
        rounded up to ``playout_delay_step`` and kept within ``max_playout_delay``.
        """
        config = self.config
        waits = [(0.0, attempts)]
        if config.max_playout_delay <= 0.0:
            return waits
        step, round_time = config.playout_delay_step, _nack_round(stats, config)
        for more in range(attempts + 1, config.max_nack_attempts + 1):
            needed = self._detection(stats) + more * round_time - stats.playout_deadline
            delay = round(math.ceil(needed / step - _EPSILON) * step, 3)
            if delay > config.max_playout_delay + _EPSILON:
                break
            waits.append((delay, more))
        return waits

    def expected_residual_loss(self, stats: LinkStats, decision: ProtectionDecision) -> float:
        return expected_residual_loss(stats, decision, self.config)

    def decide(self, stats: LinkStats) -> ProtectionDecision:
        attempts = self.nack_attempts(stats)
        nack = attempts > 0
        base = ProtectionDecision(nack=nack, nack_attempts=attempts)
        if stats.loss_rate == 0.0:
            return _with_reason(base, "no loss measured: NACK only, nothing sent up front")
        if stats.kind == "audio":
            return self._decide_audio(stats, base)
        return self._decide_video(stats, base)

    def _decide_video(self, stats: LinkStats, base: ProtectionDecision) -> ProtectionDecision:
        config = self.config
        frame_packets = _frame_packets(stats, config)
        options: list[tuple[float, ProtectionDecision]] = [(0.0, base)]
        seen: set[tuple[int, MaskKind]] = set()
        guard = self._fec_guard(stats, base)
        # the guard's reason is worth a note only where FEC was possible at all
        note = f"; {guard}" if guard is not None and config.fec_allowed else ""
        for rate in _FEC_RATES if config.fec_allowed and guard is None else ():
            fec = fec_packets_for(frame_packets, rate)
            for mask in _MASKS:
                if (fec, mask) in seen:
                    continue
                seen.add((fec, mask))
                keyframe = min(MAX_FEC_RATE, config.keyframe_factor * rate)
                option = ProtectionDecision(
                    nack=base.nack,
                    nack_attempts=base.nack_attempts,
                    fec_rate=rate,
                    fec_rate_keyframe=keyframe,
                    fec_mask=mask,
                )
                options.append((fec / frame_packets, option))
        waits = self._waits(stats, base.nack_attempts)
        target = config.target_residual_video
        for _, option in sorted(options, key=lambda item: item[0]):
            for delay, attempts in waits:
                candidate = replace(
                    option, nack=attempts > 0, nack_attempts=attempts, playout_delay=delay
                )
                residual = self.expected_residual_loss(stats, candidate)
                if residual <= target * (1.0 + _EPSILON):
                    reason = f"cheapest meeting {target:.2%}: {residual:.3%} expected unrepaired"
                    if delay:
                        reason += f", {attempts} NACK rounds in {delay * 1000:.0f} ms more delay"
                    return _with_reason(candidate, reason + note)
        longest, attempts = waits[-1]
        at_longest = [
            (
                cost,
                replace(option, nack=attempts > 0, nack_attempts=attempts, playout_delay=longest),
            )
            for cost, option in options
        ]
        decision = self._cheapest(stats, at_longest, target)
        return _with_reason(decision, decision.reason + note)

    def _fec_guard(self, stats: LinkStats, base: ProtectionDecision) -> str | None:
        """Why libwebrtc's guard rails keep FEC off this link, or None."""
        config = self.config
        if base.nack and stats.rtt < config.low_rtt:
            return f"RTT {stats.rtt * 1000:.0f} ms < {config.low_rtt * 1000:.0f} ms: NACK alone"
        if stats.bitrate < config.min_fec_bitrate:
            return f"{stats.bitrate / 1000:.0f} kbit/s is too low for FEC: NACK only"
        return None

    def _decide_audio(self, stats: LinkStats, base: ProtectionDecision) -> ProtectionDecision:
        config = self.config
        inband_allowed = stats.loss_rate >= config.inband_min_loss
        hint = min(100, math.ceil(stats.loss_rate * 100 - _EPSILON))
        options: list[tuple[float, ProtectionDecision]] = []
        for distance in range(config.max_red_distance + 1):
            for inband in (False, True):
                if inband and not inband_allowed:
                    continue
                option = ProtectionDecision(
                    nack=base.nack,
                    nack_attempts=base.nack_attempts,
                    red_distance=distance,
                    opus_inband_fec=inband,
                    opus_packet_loss_hint=hint if inband else 0,
                )
                options.append((distance + (0.25 if inband else 0.0), option))
        return self._cheapest(stats, options, config.target_residual_audio)

    def _cheapest(
        self,
        stats: LinkStats,
        options: list[tuple[float, ProtectionDecision]],
        target: float,
    ) -> ProtectionDecision:
        ranked = sorted(options, key=lambda item: item[0])
        priced = [
            (cost, option, self.expected_residual_loss(stats, option)) for cost, option in ranked
        ]
        for _, option, residual in priced:
            if residual <= target * (1.0 + _EPSILON):
                reason = f"cheapest meeting {target:.2%}: {residual:.3%} expected unrepaired"
                return _with_reason(option, reason)
        best = min(residual for _, _, residual in priced)
        for _, option, residual in priced:
            if residual <= best * 1.1 + _EPSILON:
                reason = (
                    f"target {target:.2%} out of reach: {residual:.3%} expected unrepaired, "
                    f"the cheapest near the best {best:.3%}"
                )
                return _with_reason(option, reason)
        raise AssertionError("unreachable: the best option is within 10% of itself")


def _with_reason(decision: ProtectionDecision, reason: str) -> ProtectionDecision:
    return replace(decision, reason=reason)
