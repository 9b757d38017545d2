"""ViewerProtection: what one viewer's measured link gets, in each loss-protection mode."""

from __future__ import annotations

import pytest

from interlive.protection.viewer import DEFAULT_RTT, ViewerProtection, mean_run_length


def test_mean_run_length_counts_runs_of_consecutive_numbers() -> None:
    assert mean_run_length([]) == 1.0
    assert mean_run_length([5]) == 1.0
    assert mean_run_length([5, 7, 9]) == 1.0
    assert mean_run_length([9, 5, 6, 7, 8, 20, 21]) == 3.5  # runs 5..9 and 20..21
    assert mean_run_length([3, 3, 4]) == 2.0  # a repeated number is one loss


def report(p: ViewerProtection, loss: float, rtt: float, times: int = 10) -> bool:
    changed = False
    for i in range(times):
        changed |= p.on_report(loss, rtt, 75_000 * (i + 1), float(i + 1))  # 600 kbit/s
    return changed


def test_policy_uses_nack_alone_at_low_rtt_and_adds_fec_when_nack_is_too_slow() -> None:
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False)
    assert p.answers_nacks and p.fec_rate == 0.0
    report(p, 0.20, 0.005)
    assert p.bitrate == pytest.approx(600_000)
    assert p.decision.nack and p.fec_rate == 0.0  # 5 ms: a retransmission is nearly free
    report(p, 0.20, 0.200)
    # 200 ms RTT > 150 ms deadline: no NACK round fits, FEC carries the repair
    assert p.decision.nack_attempts == 0 and p.fec_rate > 0.0
    assert p.fec_rate_keyframe >= p.fec_rate
    report(p, 0.0, 0.200, times=30)
    assert p.loss < 0.001 and p.fec_rate == 0.0  # loss gone: FEC stops


def test_bursty_nacks_switch_the_fec_masks_to_interleaved() -> None:
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False)
    report(p, 0.10, 0.200)
    assert p.decision.fec_mask == "random"
    for base in range(0, 4000, 10):
        p.on_nack([base, base + 1, base + 2, base + 3])
    assert p.mean_burst == pytest.approx(4.0, abs=0.01)
    report(p, 0.10, 0.200, times=1)
    assert p.decision.fec_mask == "bursty"


def test_a_viewer_without_ulpfec_never_gets_fec() -> None:
    p = ViewerProtection("video", "policy", can_fec=False, can_red=False)
    report(p, 0.20, 0.200)
    assert p.fec_rate == 0.0 and "ulpfec" in p.decision.reason


def test_audio_gets_red_as_loss_grows_but_never_counts_on_inband_fec() -> None:
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True)
    assert p.rtt is None and p.link_stats().rtt == DEFAULT_RTT
    report(p, 0.05, 0.05)
    assert p.red_distance == 1
    report(p, 0.30, 0.05, times=20)
    assert p.red_distance == 2
    assert not p.decision.opus_inband_fec


@pytest.mark.parametrize(
    ("mode", "kind", "nacks", "fec", "red"),
    [
        ("none", "video", False, False, False),
        ("none", "audio", False, False, False),
        ("nack", "video", True, False, False),
        ("nack", "audio", True, False, False),
        ("fec", "video", False, True, False),
        ("fec", "audio", False, False, False),
        ("red", "video", False, False, False),
        ("red", "audio", False, False, True),
    ],
)
def test_forced_modes_use_exactly_one_tool(
    mode: str, kind: str, nacks: bool, fec: bool, red: bool
) -> None:
    p = ViewerProtection(kind, mode, can_fec=True, can_red=True)  # type: ignore[arg-type]
    report(p, 0.20, 0.050)
    assert p.answers_nacks is nacks
    assert (p.fec_rate > 0) is fec
    assert (p.red_distance > 0) is red
    assert p.stats()["mode"] == mode
