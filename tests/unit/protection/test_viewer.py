"""ViewerProtection: what one viewer's measured link gets, in each loss-protection mode."""

from __future__ import annotations

import pytest

from interlive.protection.viewer import (
    DEFAULT_RTT,
    ViewerProtection,
    codec_can_skip_fec,
    mean_run_length,
)


def test_mean_run_length_counts_runs_of_consecutive_numbers() -> None:
    assert mean_run_length([]) == 1.0
    assert mean_run_length([5]) == 1.0
    assert mean_run_length([5, 7, 9]) == 1.0
    assert mean_run_length([9, 5, 6, 7, 8, 20, 21]) == 3.5  # runs 5..9 and 20..21
    assert mean_run_length([3, 3, 4]) == 2.0  # a repeated number is one loss


class Viewer:
    """Receiver reports of a 600 kbit/s, 100 packet/s stream, one a second."""

    def __init__(self, protection: ViewerProtection) -> None:
        self.p = protection
        self.now = 0.0
        self.highest = 5000
        self.lost = 0
        self.octets = 0
        protection.on_report(self.highest, self.lost, None, self.octets, self.now)

    def report(self, loss: float, rtt: float, times: int = 10) -> bool:
        changed = False
        for _ in range(times):
            self.now += 1.0
            self.highest += 100
            self.lost += round(100 * loss)
            self.octets += 75_000
            changed |= self.p.on_report(self.highest, self.lost, rtt, self.octets, self.now)
        return changed


_viewers: dict[int, Viewer] = {}


def report(p: ViewerProtection, loss: float, rtt: float, times: int = 10) -> bool:
    viewer = _viewers.setdefault(id(p), Viewer(p))
    return viewer.report(loss, rtt, times)


def test_loss_is_measured_over_windows_not_per_report() -> None:
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False)
    assert not p.on_report(1000, 0, 0.1, 0, 0.0)
    # reports 100 ms apart (a browser's NACK compounds): nothing is decided on them
    for i in range(1, 10):
        assert not p.on_report(1000 + 10 * i, 2 * i, 0.1, 7_500 * i, 0.1 * i)
    assert p.loss == 0.0
    p.on_report(1100, 20, 0.1, 75_000, 1.0)  # the window closes: 20 of 100 lost
    assert p.loss == pytest.approx(0.10)  # half way to 20 %: one window is not the truth
    assert p.bitrate == pytest.approx(600_000)
    p.on_report(1200, 40, 0.1, 150_000, 2.0)
    assert p.loss == pytest.approx(0.15)
    # a stream that restarts (lower sequence) opens a new window instead of a negative one
    assert not p.on_report(10, 0, 0.1, 150_000, 3.0)
    assert p.loss == pytest.approx(0.15)


def test_policy_uses_nack_alone_at_low_rtt_and_adds_fec_when_nack_is_too_slow() -> None:
    # a viewer that may not be asked to wait longer (see test_policy_spends_delay_before_fec)
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False, max_playout_delay=0.0)
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
    # a viewer that may not be asked to wait longer (see test_policy_spends_delay_before_fec)
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False, max_playout_delay=0.0)
    report(p, 0.10, 0.200)
    assert p.decision.fec_mask == "random"
    for base in range(0, 4000, 10):
        p.on_nack([base, base + 1, base + 2, base + 3], 0.0)
    assert p.mean_burst == pytest.approx(4.0, abs=0.01)
    report(p, 0.10, 0.200, times=1)
    assert p.decision.fec_mask == "bursty"


def test_policy_spends_delay_before_fec() -> None:
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False)
    assert p.playout_delay == 0.0
    report(p, 0.20, 0.100)
    # 0.2**6 = 0.0064 % left after five rounds 120 ms apart (a browser's 20 ms NACK
    # timer): they need 500 ms more than the 150 ms a frame may be late, so NACK
    # alone with that delay beats any FEC
    assert p.tool == "nack+delay" and p.decision.nack_attempts == 5
    assert p.playout_delay == pytest.approx(0.5)
    assert p.stats()["playout_delay_ms"] == 500
    report(p, 0.20, 0.500)
    # at 500 ms RTT two rounds fit in the 1 s allowed: FEC carries the rest
    assert p.fec_rate > 0.0 and p.decision.nack_attempts == 2
    assert p.playout_delay == pytest.approx(0.95)
    report(p, 0.0, 0.100, times=30)
    assert p.playout_delay == 0.0 and p.tool == "nack"  # loss gone: no delay asked


def test_protection_goes_up_at_once_and_down_after_the_hold() -> None:
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True)
    assert not p.on_report(1000, 0, 0.1, 0, 0.0)
    assert p.on_report(1050, 10, 0.1, 4000, 1.0)  # 20 % of a window: smoothed to 10 %
    assert p.red_distance == 2  # 0.1**3 = 0.1 % meets the 0.1 % aimed at
    p.on_report(1100, 20, 0.1, 8000, 2.0)  # 15 %
    p.on_report(1150, 30, 0.1, 12000, 3.0)  # 17.5 %: distance 2 would leave 0.54 %
    assert p.red_distance == 3
    # a lucky window (2 %) drops the smoothed loss to 9.75 %, but 17.5 % stands
    assert not p.on_report(1200, 31, 0.1, 16000, 4.0)
    assert p.loss == pytest.approx(0.0975) and p.red_distance == 3
    assert p.link_stats().loss_rate == pytest.approx(0.175)
    for second in range(5, 9):  # no loss: 17.5 % is held until 5 s have passed
        p.on_report(1200 + 50 * (second - 4), 31, 0.1, 4000 * second, float(second))
    assert p.red_distance == 3
    p.on_report(1450, 31, 0.1, 36000, 9.0)
    assert p.link_stats().loss_rate == pytest.approx(0.0975) and p.red_distance == 2


def test_nacks_measure_the_loss_that_repairs_on_the_media_ssrc_hide_from_reports() -> None:
    # Opus is resent on its own SSRC: the viewer counts each repair as received, so
    # its reports say 2 % where the link loses 30 %; the NACKs name every packet lost
    def run(hidden: bool) -> ViewerProtection:
        p = ViewerProtection("audio", "policy", can_fec=False, can_red=True, hidden_repairs=hidden)
        p.on_report(1000, 0, 0.1, 0, 0.0)
        seq = 1000
        for second in range(1, 11):
            lost = [s for s in range(seq, seq + 50) if s % 10 in (1, 4, 7)]  # 30 %
            p.on_nack(lost, second - 0.5)
            p.on_nack(lost, second - 0.4)  # asked again: the same losses
            seq += 50
            p.on_report(seq, second, 0.1, 4000 * second, float(second))  # 1 of 50 left
        return p

    hidden = run(True)
    assert hidden.loss == pytest.approx(0.3, abs=0.001)
    assert hidden.red_distance == run_at(0.3).red_distance == 5
    shown = run(False)  # with RTX the reports are the link's own: NACKs change nothing
    assert shown.loss == pytest.approx(0.02, abs=0.001)
    assert shown.red_distance == run_at(0.02).red_distance == 1


def test_a_nack_repeated_after_nack_memory_counts_again() -> None:
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True, hidden_repairs=True)
    p.on_report(1000, 0, 0.1, 0, 0.0)
    p.on_nack([1010], 0.1)
    p.on_nack([1010], 0.5)
    p.on_nack([1011, 1010], 2.2)  # 1010 forgotten by now (2 s): a new loss
    p.on_report(1100, 0, 0.1, 4000, 2.5)
    assert p.loss == pytest.approx(0.5 * 3 / 100)


def run_at(loss: float) -> ViewerProtection:
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True)
    report(p, loss, 0.1, times=10)
    return p


def test_a_viewer_without_ulpfec_never_gets_fec() -> None:
    p = ViewerProtection("video", "policy", can_fec=False, can_red=False)
    report(p, 0.20, 0.200)
    assert p.fec_rate == 0.0 and "ulpfec" in p.decision.reason


def test_only_codecs_with_a_picture_id_can_skip_lost_fec_packets() -> None:
    assert codec_can_skip_fec("video/VP8") and codec_can_skip_fec("video/vp9")
    assert not codec_can_skip_fec("video/H264")
    assert not codec_can_skip_fec("video/AV1")
    assert not codec_can_skip_fec("video/rtx")


def test_h264_never_gets_fec_the_policy_falls_back_to_nack() -> None:
    # 20 % loss at 100 ms RTT needs 500 ms more delay for NACK alone; 200 ms are allowed
    p = ViewerProtection("video", "policy", can_fec=True, can_red=False, max_playout_delay=0.2)
    assert not p.set_codec("video/H264")  # nothing decided yet: nothing changes
    report(p, 0.20, 0.100)  # the policy adds FEC here for VP8 (below)
    assert p.fec_rate == 0.0 and p.fec_rate_keyframe == 0.0 and p.tool == "nack+delay"
    assert p.decision.nack and "cannot skip lost FEC packets" in p.decision.reason
    # instead of FEC, H.264 gets all the delay allowed: more NACK rounds
    # (two rounds of 120 ms fit in 150 ms more, a third would need 250)
    assert p.playout_delay == 0.15 and p.decision.nack_attempts == 2
    assert not p.can_fec and p.stats()["fec_rate"] == 0.0
    # the source switches to VP8: the same link now gets FEC
    assert p.set_codec("video/VP8")
    assert p.can_fec and p.fec_rate > 0.0 and p.tool == "fec+nack+delay"
    assert not p.set_codec("video/VP8")
    # and back: FEC stops at once, not at the next report
    assert p.set_codec("video/H264")
    assert p.fec_rate == 0.0 and p.tool == "nack+delay"


def test_forced_fec_on_h264_sends_nothing_it_cannot_use() -> None:
    p = ViewerProtection("video", "fec", can_fec=True, can_red=False)
    p.set_codec("video/H264")
    report(p, 0.10, 0.100)
    assert p.fec_rate == 0.0 and p.tool == "none"


def test_audio_gets_red_as_loss_grows_but_never_counts_on_inband_fec() -> None:
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True)
    assert p.rtt is None and p.link_stats().rtt == DEFAULT_RTT
    report(p, 0.02, 0.05)
    assert p.red_distance == 1  # 0.02**2 = 0.04 % left, under the 0.1 % aimed at
    report(p, 0.30, 0.05, times=20)
    # RED 4 leaves 0.3**5 = 0.24 %, RED 5 0.07 %
    assert p.red_distance == 5
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


def test_the_policy_plans_fec_for_the_frames_actually_sent() -> None:
    from interlive.protection.policy import LinkStats, expected_residual_loss

    measured = ViewerProtection("video", "fec", can_fec=True, can_red=False)
    assumed = ViewerProtection("video", "fec", can_fec=True, can_red=False)
    # 480 kbit/s as 20 frames/s of 3 packets of 1000 bytes: from the bitrate alone
    # (30 frames/s, 1200-byte packets) a frame would look like 2 packets
    for t in range(6):
        octets, packets, frames = 60_000 * t, 60 * t, 20 * t
        measured.on_report(100 * t, 10 * t, 0.2, octets, float(t),
                           packets_sent=packets, frames_sent=frames)  # fmt: skip
        assumed.on_report(100 * t, 10 * t, 0.2, octets, float(t))
    stats = measured.stats()
    assert stats["frame_rate"] == 20.0 and stats["packet_size"] == 1000
    assert assumed.stats()["frame_rate"] == 30.0
    link: LinkStats = measured.link_stats()
    # each plans for its own idea of a frame; only the measured one is right about the
    # stream, and judged on the real frames it leaves less unrepaired
    assert measured.decision != assumed.decision
    from dataclasses import replace

    from interlive.protection.policy import PolicyConfig

    real = PolicyConfig(inband_min_loss=1.0, video_frame_rate=20.0, video_packet_size=1000)
    assert expected_residual_loss(link, measured.decision, real) < expected_residual_loss(
        link, replace(assumed.decision, reason=""), real
    )


def test_tool_names_the_repair_in_use() -> None:
    video = ViewerProtection("video", "policy", can_fec=True, can_red=False, max_playout_delay=0)
    assert video.tool == "nack"
    report(video, 0.20, 0.200)
    assert video.tool == "fec+nack"
    audio = ViewerProtection("audio", "red", can_fec=False, can_red=True)
    report(audio, 0.10, 0.05)
    assert audio.tool == "red"
    assert ViewerProtection("video", "none", can_fec=True, can_red=True).tool == "none"


def test_a_viewer_that_did_not_negotiate_nack_is_not_counted_as_getting_it() -> None:
    # the SDK's aiortc offers no NACK for Opus: its audio gets RED alone, and says so
    p = ViewerProtection("audio", "policy", can_fec=False, can_red=True, can_nack=False)
    report(p, 0.20, 0.050)
    assert not p.answers_nacks
    assert p.red_distance > 0 and p.tool == "red"
    assert p.stats()["nack"] is False
    asked = ViewerProtection("audio", "policy", can_fec=False, can_red=True)
    report(asked, 0.20, 0.050)
    assert asked.answers_nacks and asked.tool == "red+nack"
