"""The loss benchmark's matrix, its command-line lists and what theory expects per cell."""

from __future__ import annotations

import pytest

from interlive.bench.loss_cells import (
    Cell,
    LossSpec,
    expand_matrix,
    parse_loss,
    parse_losses,
    parse_protections,
    parse_rtts,
    theory_decision,
    theory_residual,
)


def test_loss_specs_parse_random_and_bursty() -> None:
    assert parse_loss("20") == LossSpec(0.20)
    assert parse_loss(" 10b ") == LossSpec(0.10, 3.0)
    assert parse_loss("10b4") == LossSpec(0.10, 4.0)
    assert parse_loss("2.5") == LossSpec(0.025)
    assert parse_losses(["0,5", "10b", "5"]) == [LossSpec(0.0), LossSpec(0.05), LossSpec(0.10, 3.0)]
    assert LossSpec(0.10, 3.0).label() == "10 % bursty (3)"
    assert LossSpec(0.10, 3.0).token() == "10b3"
    assert LossSpec(0.2).label() == "20 %"


@pytest.mark.parametrize("text", ["x", "20%", "100", "0b", "10b0.5", "-5"])
def test_bad_loss_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_loss(text)


def test_rtts_and_protections_parse() -> None:
    assert parse_rtts(["50,200", "50"]) == [50, 200]
    assert parse_protections(["NACK,policy", "none"]) == ["nack", "policy", "none"]
    with pytest.raises(ValueError, match="whole number"):
        parse_rtts(["fast"])
    with pytest.raises(ValueError, match="choose from"):
        parse_protections(["flexfec"])


def test_matrix_runs_protection_slowest_then_rtt_then_loss_with_goal_cells_last() -> None:
    random0, random20 = LossSpec(0.0), LossSpec(0.20)
    cells = expand_matrix([random0, random20], [50, 200], ["none", "policy"])
    per_protection = [
        Cell(random0, 50, "none"),
        Cell(random20, 50, "none"),
        Cell(random0, 200, "none"),
        Cell(random20, 200, "none"),
        Cell(LossSpec(0.20), 100, "none", goal=True),
        Cell(LossSpec(0.30), 100, "none", goal=True),
    ]
    policy = [Cell(c.loss, c.rtt_ms, "policy", c.goal) for c in per_protection]
    assert cells == per_protection + policy


def test_a_goal_cell_in_the_matrix_is_marked_not_repeated() -> None:
    cells = expand_matrix([LossSpec(0.20)], [100], ["nack"])
    assert cells == [
        Cell(LossSpec(0.20), 100, "nack", goal=True),
        Cell(LossSpec(0.30), 100, "nack", goal=True),
    ]
    assert expand_matrix([LossSpec(0.20)], [100], ["nack"], goal_cells=False) == [
        Cell(LossSpec(0.20), 100, "nack")
    ]


def test_theory_without_repair_is_the_raw_loss() -> None:
    assert theory_residual("none", "video", LossSpec(0.20), 0.1) == pytest.approx(0.20)
    assert theory_residual("none", "audio", LossSpec(0.10, 3.0), 0.1) == pytest.approx(0.10)
    assert theory_residual("policy", "video", LossSpec(0.0), 0.1) == 0.0
    # a tool does nothing for the other kind: RED is audio's, and without the audio
    # jitter buffer the viewer kept no NACK round is counted for Opus
    assert theory_residual("nack", "audio", LossSpec(0.20), 0.05) == pytest.approx(0.20)
    assert theory_residual("red", "video", LossSpec(0.20), 0.05) == pytest.approx(0.20)


def test_theory_of_nack_counts_the_rounds_that_fit_the_150_ms_deadline() -> None:
    # 800 kbit/s in 1200-byte packets: 83.3 packets/s, so a loss is seen after
    # 5 ms + 12 ms; at 50 ms RTT a receive-only browser still asks again only every
    # 100 ms (plus 5 ms processing): floor(133 / 105) = 1 round fits, so a packet
    # stays lost only if it and its resend are: 0.2^2.
    assert theory_decision("nack", "video", LossSpec(0.20), 0.05).nack_attempts == 1
    assert theory_residual("nack", "video", LossSpec(0.20), 0.05) == pytest.approx(0.04)
    # at 200 ms no resend comes back in time: the raw loss
    assert theory_decision("nack", "video", LossSpec(0.20), 0.2).nack_attempts == 0
    assert theory_residual("nack", "video", LossSpec(0.20), 0.2) == pytest.approx(0.20)


def test_theory_of_audio_nack_counts_the_rounds_that_fit_the_measured_audio_buffer() -> None:
    # NetEq sees a loss 5 ms + 20 ms late and asks again with every packet: a round is
    # the RTT.  In 140 ms of buffer at 100 ms RTT one round fits: 0.2^2
    loss = LossSpec(0.20)
    assert theory_residual("nack", "audio", loss, 0.1, audio_buffer=0.14) == pytest.approx(0.04)
    assert theory_residual("nack", "audio", loss, 0.1, audio_buffer=0.12) == pytest.approx(0.20)
    assert theory_residual("nack", "audio", loss, 0.2, audio_buffer=0.469) == pytest.approx(0.008)
    # the policy's RED copies and the rounds multiply: 0.2^5 of RED 4, times 0.2^2 of
    # the two rounds that fit in 315 ms
    assert theory_residual("policy", "audio", loss, 0.1, audio_buffer=0.315) == pytest.approx(
        0.2**5 * 0.2**2
    )
    # forced RED answers no NACK: the buffer changes nothing
    red = theory_residual("red", "audio", loss, 0.1)
    assert theory_residual("red", "audio", loss, 0.1, audio_buffer=0.5) == red


def test_theory_of_red_at_20_percent_is_four_redundant_copies() -> None:
    # the viewer policy's cheapest RED meeting 0.1 % at 20 % random loss is distance 4
    # (distance 3 leaves 0.2^4 = 0.16 %): 0.2^5
    assert theory_decision("red", "audio", LossSpec(0.20), 0.1).red_distance == 4
    assert theory_residual("red", "audio", LossSpec(0.20), 0.1) == pytest.approx(0.00032)
    assert theory_decision("red", "audio", LossSpec(0.05), 0.1).red_distance == 2
    assert theory_residual("red", "audio", LossSpec(0.05), 0.1) == pytest.approx(0.000125)


def test_theory_of_fec_uses_no_nack() -> None:
    decision = theory_decision("fec", "video", LossSpec(0.20), 0.05)
    assert not decision.nack
    assert decision.fec_rate > 0
    assert 0 < theory_residual("fec", "video", LossSpec(0.20), 0.05) < 0.20
