"""Loss-protection policy and its residual-loss model.

The model is checked against DESIGN.md's Monte Carlo table ("Facts for loss
protection") both analytically and by its own Monte Carlo; the policy is
checked on a table of representative links, each saying why.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from interlive.protection.model import (
    LossProcess,
    Protection,
    fec_packets_for,
    residual_loss,
    simulate_residual_loss,
)
from interlive.protection.policy import (
    MAX_FEC_RATE,
    LinkStats,
    NullProtectionPolicy,
    PolicyConfig,
    ProtectionDecision,
    ProtectionPolicy,
    expected_residual_loss,
)

# --- the model against DESIGN.md ------------------------------------------------------

# Retries an RTT later: 10 packets after the loss (e.g. 100 ms at 100 packets/s).
SCHEMES = {
    "RED d=1": Protection(red_distance=1),
    "RED d=2": Protection(red_distance=2),
    "NACK 1 try": Protection(nack_attempts=1, nack_lag=10),
    "NACK 2 tries": Protection(nack_attempts=2, nack_lag=10),
    "XOR 1 per 4": Protection(frame_packets=4, fec_packets=1),
}
# Residual loss in percent at 5/10/20/30% random loss, as DESIGN.md lists it.
DESIGN_TABLE = {
    "RED d=1": (0.24, 0.98, 4.0, 8.9),
    "RED d=2": (0.01, 0.11, 0.82, 2.7),
    "NACK 1 try": (0.25, 1.0, 4.0, 9.0),
    "NACK 2 tries": (0.01, 0.10, 0.80, 2.7),
    "XOR 1 per 4": (0.94, 3.5, 11.8, 22.8),
}
LOSSES = (0.05, 0.10, 0.20, 0.30)
CASES = [
    (name, loss, percent)
    for name, row in DESIGN_TABLE.items()
    for loss, percent in zip(LOSSES, row, strict=True)
]


def _close_to_design(model_percent: float, design_percent: float) -> bool:
    # DESIGN.md's figures are rounded Monte Carlo results: 3% or 0.03 points.
    return abs(model_percent - design_percent) <= max(0.03, 0.03 * design_percent)


@pytest.mark.parametrize(("scheme", "loss", "percent"), CASES)
def test_model_reproduces_the_design_table(scheme: str, loss: float, percent: float) -> None:
    model = 100 * residual_loss(LossProcess.independent(loss), SCHEMES[scheme])
    assert _close_to_design(model, percent), f"{scheme} at {loss:.0%}: {model:.3f}% vs {percent}%"


@pytest.mark.parametrize(("scheme", "loss", "percent"), CASES)
def test_monte_carlo_agrees(scheme: str, loss: float, percent: float) -> None:
    process = LossProcess.independent(loss)
    protection = SCHEMES[scheme]
    exact = residual_loss(process, protection)
    frames = 60_000
    packets = frames * protection.frame_packets
    simulated = simulate_residual_loss(
        process, protection, frames=frames, rng=np.random.default_rng(11)
    )
    # Five standard errors of a binomial proportion, plus a hair.
    assert abs(simulated - exact) <= 5 * math.sqrt(exact / packets) + 1e-5


BURSTY = LossProcess.bursty(0.10, 3.0)  # Gilbert-Elliott, mean burst 3, as in DESIGN.md


def test_bursts_defeat_red() -> None:
    # DESIGN.md: RED d=2 leaves 4.4% at 10% loss in bursts of mean 3 (0.1% if random).
    assert 100 * residual_loss(BURSTY, SCHEMES["RED d=2"]) == pytest.approx(4.4, abs=0.1)
    simulated = simulate_residual_loss(BURSTY, SCHEMES["RED d=2"], rng=np.random.default_rng(2))
    assert 100 * simulated == pytest.approx(4.4, abs=0.25)


def test_bursts_defeat_consecutive_xor() -> None:
    xor = SCHEMES["XOR 1 per 4"]
    assert residual_loss(BURSTY, xor) > 2 * residual_loss(LossProcess.independent(0.1), xor)


def test_bursts_do_not_defeat_nack() -> None:
    # The retry lands an RTT later, where the burst is over: close to random loss's 0.1%.
    nack = SCHEMES["NACK 2 tries"]
    assert residual_loss(BURSTY, nack) < 0.0015
    assert simulate_residual_loss(BURSTY, nack, rng=np.random.default_rng(3)) < 0.002


def test_spreading_redundancy_in_time_beats_bursts() -> None:
    consecutive = residual_loss(BURSTY, Protection(red_distance=2))
    spread = residual_loss(BURSTY, Protection(red_distance=2, red_spacing=3))
    assert spread < consecutive / 3
    random_loss = LossProcess.independent(0.1)
    # Three parity packets over 12: blocks of 4 consecutive, or every third packet.
    random_fec = Protection(frame_packets=12, fec_packets=3, fec_mask="random")
    bursty_fec = Protection(frame_packets=12, fec_packets=3, fec_mask="bursty")
    assert residual_loss(BURSTY, bursty_fec) < 0.8 * residual_loss(BURSTY, random_fec)
    # Independent loss does not care where the group members sit.
    assert residual_loss(random_loss, random_fec) == pytest.approx(
        residual_loss(random_loss, bursty_fec)
    )


def test_loss_process_basics() -> None:
    assert LossProcess.bursty(0.1, 1.0) == LossProcess.independent(0.1)
    assert BURSTY.mean_loss == pytest.approx(0.1)
    # P(lost, lost next) = P(bad) (1 - r) for the simple Gilbert chain.
    assert BURSTY.joint({0: True, 1: True}) == pytest.approx(0.1 * (2 / 3))
    assert BURSTY.joint({0: True, 1000: True}) == pytest.approx(0.01)
    assert BURSTY.joint({}) == 1.0
    assert residual_loss(LossProcess.independent(0.0), Protection()) == 0.0


def test_inband_fec_reaches_one_packet_beyond_red() -> None:
    # LBRR of packet n rides in n+1, and in every RED copy of n+1.
    process = LossProcess.independent(0.2)
    assert residual_loss(process, Protection(inband_fec=True)) == pytest.approx(0.2**2)
    assert residual_loss(process, Protection(red_distance=2, inband_fec=True)) == pytest.approx(
        0.2**4
    )


def test_fec_packets_follow_the_encoder() -> None:
    assert [fec_packets_for(4, rate) for rate in (0.0, 0.05, 0.25, 0.3, 0.5)] == [0, 1, 1, 2, 2]
    assert fec_packets_for(48, 0.5) == 24


# --- the policy ------------------------------------------------------------------------

POLICY = ProtectionPolicy()
VIDEO_1M = 1_000_000.0
OPUS = 32_000.0


def video(loss: float, rtt: float, deadline: float = 0.25, **kw: float) -> LinkStats:
    burst = kw.get("burst", 1.0)
    return LinkStats(loss, burst, rtt, deadline, kw.get("bitrate", VIDEO_1M), "video")


def audio(loss: float, rtt: float, deadline: float = 0.1, burst: float = 1.0) -> LinkStats:
    return LinkStats(loss, burst, rtt, deadline, OPUS, "audio")


def test_no_loss_means_nack_and_nothing_else() -> None:
    """Nothing is lost, so nothing is sent up front; NACK costs nothing until a loss."""
    decision = POLICY.decide(video(0.0, 0.05))
    assert decision.nack and decision.nack_attempts >= 1
    assert decision == ProtectionDecision(nack=True, nack_attempts=decision.nack_attempts)
    assert POLICY.decide(audio(0.0, 0.05)) == ProtectionDecision()


def test_heavy_loss_long_rtt_video_gets_nack_and_fec() -> None:
    """20% loss, 100 ms RTT, a conference deadline of 250 ms: two tries fit and leave
    0.8%; FEC must carry the rest."""
    stats = video(0.20, 0.10)
    decision = POLICY.decide(stats)
    assert decision.nack and decision.nack_attempts == 2
    assert decision.fec_rate > 0
    assert decision.fec_rate_keyframe >= min(MAX_FEC_RATE, 2 * decision.fec_rate)
    nack_only = ProtectionDecision(nack=True, nack_attempts=2)
    assert expected_residual_loss(stats, nack_only) == pytest.approx(0.008)
    assert expected_residual_loss(stats, decision) < 0.004


def test_moderate_loss_with_room_for_retries_is_nack_only() -> None:
    """5% loss, 50 ms RTT: four tries fit before 250 ms, so NACK alone meets the target."""
    decision = POLICY.decide(video(0.05, 0.05))
    assert decision.nack_attempts == 4 and decision.fec_rate == 0


def test_heavy_loss_audio_gets_red_2_and_inband_fec() -> None:
    """30% loss, no time to retransmit: only RED 2 plus LBRR (loss^4 = 0.81%) meets 1%."""
    decision = POLICY.decide(audio(0.30, 0.10))
    assert not decision.nack
    assert decision.red_distance == 2 and decision.opus_inband_fec
    assert decision.opus_packet_loss_hint == 30


@pytest.mark.parametrize(
    ("loss", "red", "inband", "why"),
    [
        (0.005, 0, False, "0.5% is under the 1% target and in-band FEC would cost quality"),
        (0.05, 0, True, "in-band FEC alone leaves 0.25%, no bandwidth needed"),
        (0.10, 0, True, "in-band FEC alone leaves exactly the 1% target"),
        (0.20, 1, True, "RED 1 plus LBRR leaves 0.8%"),
        (0.30, 2, True, "only RED 2 plus LBRR gets under 1%"),
    ],
)
def test_audio_steps_up_with_loss(loss: float, red: int, inband: bool, why: str) -> None:
    decision = POLICY.decide(audio(loss, 0.10))
    assert (decision.red_distance, decision.opus_inband_fec) == (red, inband), why
    assert decision.opus_packet_loss_hint == (math.ceil(loss * 100) if inband else 0)


def test_low_bitrate_video_gets_no_fec() -> None:
    """100 kbit/s is ~400 bytes a frame: a parity packet would nearly double it
    (libwebrtc's bytes-per-frame rule), so NACK only even though 0.8% remains."""
    decision = POLICY.decide(video(0.20, 0.10, bitrate=100_000))
    assert decision.nack and decision.fec_rate == 0 and decision.fec_rate_keyframe == 0
    assert "too low for FEC" in decision.reason


@pytest.mark.parametrize("deadline", [0.03, 0.25])
def test_tiny_rtt_is_nack_only(deadline: float) -> None:
    """Below 20 ms RTT libwebrtc uses NACK alone: a retransmission is back before FEC
    pays for itself, even when (30 ms deadline) only one try fits."""
    decision = POLICY.decide(video(0.20, 0.005, deadline=deadline))
    assert decision.nack and decision.fec_rate == 0 and decision.red_distance == 0
    assert "NACK alone" in decision.reason


def test_no_retry_fits_so_fec_carries_everything() -> None:
    """A 60 ms deadline at 100 ms RTT: no retransmission can arrive in time."""
    decision = POLICY.decide(video(0.05, 0.10, deadline=0.06))
    assert not decision.nack and decision.nack_attempts == 0
    assert decision.fec_rate > 0


def test_bursty_loss_chooses_interleaved_fec() -> None:
    """Bursts of mean 3 defeat consecutive parity groups: spread them in time."""
    decision = POLICY.decide(video(0.10, 0.10, deadline=0.15, burst=3.0))
    assert decision.fec_rate > 0 and decision.fec_mask == "bursty"


@pytest.mark.parametrize(
    ("deadline", "rtt", "expected"),
    [
        # detection = 5 ms grace + one packet interval (1 Mbit/s ≈ 104 packets/s: 9.6 ms)
        (1.0, 0.1, 9),  # floor((1.0 - 0.0146) / 0.105)
        (0.25, 0.1, 2),
        (0.10, 0.1, 0),
        (1.0, 0.001, 10),  # capped at max_nack_attempts
    ],
)
def test_nack_attempts_that_fit(deadline: float, rtt: float, expected: int) -> None:
    assert POLICY.nack_attempts(video(0.1, rtt, deadline=deadline)) == expected


def test_audio_nack_only_when_configured() -> None:
    """Browsers do not offer NACK for Opus, so audio relies on redundancy by default."""
    stats = audio(0.10, 0.05, deadline=0.3)
    assert POLICY.nack_attempts(stats) == 0
    policy = ProtectionPolicy(PolicyConfig(audio_nack=True, processing=0.02))
    # detection 25 ms (grace + 20 ms packet), then an RTT a round (NetEq asks again
    # with every packet, on no timer, so processing adds nothing): 5 tries
    assert policy.nack_attempts(stats) == 5
    assert policy.decide(stats) == ProtectionDecision(nack=True, nack_attempts=5)
    # a round is never shorter than the packet interval the request waits for
    assert policy.nack_attempts(audio(0.10, 0.005, deadline=0.125)) == 5


def test_decisions_stay_in_range_and_more_fec_never_hurts() -> None:
    for loss in (0.01, 0.05, 0.1, 0.2, 0.3, 0.5):
        for rtt in (0.005, 0.05, 0.1, 0.3):
            for burst in (1.0, 3.0):
                for stats in (video(loss, rtt, burst=burst), audio(loss, rtt, burst=burst)):
                    decision = POLICY.decide(stats)
                    assert 0 <= decision.fec_rate <= MAX_FEC_RATE
                    assert 0 <= decision.red_distance <= PolicyConfig().max_red_distance
    stats = video(0.2, 0.1)
    residuals = [
        expected_residual_loss(stats, ProtectionDecision(nack=True, nack_attempts=2, fec_rate=r))
        for r in (0.0, 0.1, 0.25, 0.5)
    ]
    assert residuals == sorted(residuals, reverse=True)


# A browser viewer: asks again every 100 ms at least, may be held up to 1 s longer.
PATIENT = ProtectionPolicy(PolicyConfig(min_nack_interval=0.1, max_playout_delay=1.0))


def test_latency_is_spent_before_bandwidth() -> None:
    """20 % loss, 100 ms RTT, 150 ms deadline: one round fits and leaves 4 %; four
    rounds leave 0.2**5 = 0.032 % and need 14.6 ms to notice + 4 x 105 ms - 150 ms
    = 285 ms more, asked for in 50 ms steps: 300 ms.  No FEC."""
    stats = video(0.20, 0.10, deadline=0.15)
    decision = PATIENT.decide(stats)
    assert (decision.nack_attempts, decision.fec_rate) == (4, 0.0)
    assert decision.playout_delay == pytest.approx(0.3)
    assert PATIENT.expected_residual_loss(stats, decision) == pytest.approx(0.2**5)
    assert "4 NACK rounds in 300 ms more delay" in decision.reason
    # the same link without the patience gets FEC and keeps its deadline
    hurried = ProtectionPolicy(PolicyConfig(min_nack_interval=0.1)).decide(stats)
    assert hurried.fec_rate > 0 and hurried.playout_delay == 0.0


def test_rounds_are_no_closer_than_the_receivers_nack_interval() -> None:
    """At 20 ms RTT a receive-only browser still asks every 100 ms."""
    stats = video(0.10, 0.02, deadline=0.15)
    assert PATIENT.nack_attempts(stats) == 1  # floor((0.15 - 0.0146) / 0.105)
    assert POLICY.nack_attempts(stats) == 5  # floor((0.15 - 0.0146) / 0.025)


@pytest.mark.parametrize(("loss", "rtt"), [(0.0, 0.1), (0.01, 0.1), (0.03, 0.1), (0.2, 0.005)])
def test_no_delay_when_the_deadline_is_enough(loss: float, rtt: float) -> None:
    """No loss, light loss one round repairs (0.03**2 < 0.1 %), or a tiny RTT with a
    receiver that asks again at once (5 ms rounds: 27 fit in 150 ms)."""
    assert POLICY.decide(video(loss, rtt, deadline=0.15)).playout_delay == 0.0
    if rtt > 0.02:
        assert PATIENT.decide(video(loss, rtt, deadline=0.15)).playout_delay == 0.0


def test_a_tiny_rtt_gets_no_fec_but_may_wait_for_a_slow_asker() -> None:
    """5 ms RTT: no FEC (libwebrtc's rule), but a browser asks again only every
    100 ms, so at 20 % loss the four rounds that meet 0.1 % (three leave 0.2**4 =
    0.16 %) need 14.6 + 4 x 105 - 150 = 285 ms more: 300 ms in 50 ms steps."""
    decision = PATIENT.decide(video(0.20, 0.005, deadline=0.15))
    assert decision.fec_rate == 0 and decision.nack_attempts == 4
    assert decision.playout_delay == pytest.approx(0.3)
    assert "NACK alone" in decision.reason


def test_beyond_the_allowed_delay_fec_joins_at_the_longest_delay() -> None:
    """500 ms RTT: two rounds fit in 900 ms of delay, a third would need 1.4 s."""
    decision = PATIENT.decide(video(0.20, 0.50, deadline=0.15))
    assert decision.nack_attempts == 2 and decision.fec_rate > 0
    assert decision.playout_delay == pytest.approx(0.9)


def test_audio_is_never_delayed_it_follows_the_video() -> None:
    for loss in (0.05, 0.2, 0.3):
        decision = PATIENT.decide(audio(loss, 0.1))
        assert decision.playout_delay == 0.0 and not decision.nack


def test_a_link_without_fec_waits_as_long_as_allowed() -> None:
    policy = ProtectionPolicy(
        PolicyConfig(min_nack_interval=0.1, max_playout_delay=0.2, fec_allowed=False)
    )
    decision = policy.decide(video(0.20, 0.10, deadline=0.15))
    # three rounds need 180 ms more (200 in steps) and leave 0.2**4 = 0.16 %
    assert decision.fec_rate == 0 and decision.nack_attempts == 3
    assert decision.playout_delay == pytest.approx(0.2)
    assert "out of reach: 0.160%" in decision.reason


def test_null_policy_protects_nothing() -> None:
    assert NullProtectionPolicy().decide(video(0.3, 0.1)) == ProtectionDecision()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"loss_rate": 1.0}, "loss_rate"),
        ({"mean_burst_length": 0.5}, "mean_burst_length"),
        ({"rtt": -1.0}, "rtt"),
        ({"bitrate": math.nan}, "bitrate"),
        ({"kind": "data"}, "kind"),
    ],
)
def test_link_stats_validation(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "loss_rate": 0.1,
        "mean_burst_length": 1.0,
        "rtt": 0.1,
        "playout_deadline": 0.2,
        "bitrate": 1e6,
        "kind": "video",
    }
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        LinkStats(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fec_rate": 0.6}, "fec_rate"),
        ({"red_distance": 9}, "red_distance"),
        ({"nack": True}, "nack needs"),
        ({"opus_packet_loss_hint": 101}, "opus_packet_loss_hint"),
    ],
)
def test_decision_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProtectionDecision(**fields)  # type: ignore[arg-type]
