"""The loss benchmark's figures, tables, goals, verdicts, plot and saved results."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from interlive.bench.loss import main
from interlive.bench.loss_cells import Cell, LossSpec, Protection
from interlive.bench.loss_measure import ClassCounts, FrameLoss, PacketResidual
from interlive.bench.loss_report import (
    CellResult,
    ChromiumResult,
    RunInfo,
    SdkResult,
    evaluate_goals,
    format_chromium_table,
    format_goals,
    format_report,
    format_sdk_table,
    format_server_table,
    format_verdicts,
    load_results,
    load_run_info,
    save_results,
    verdicts,
    write_plot,
)

L20, L30 = LossSpec(0.20), LossSpec(0.30)


def chromium(
    freeze: float = 0.0, concealed: float = 0.0, *, window: float = 10.0, **video: float
) -> ChromiumResult:
    """A Chromium result with ``freeze`` s of finished freezes and ``concealed`` of 96k samples."""
    return ChromiumResult(
        window=window,
        video={
            "totalFreezesDuration": freeze,
            "freezeCount": 1.0 if freeze else 0.0,
            "framesDecoded": 300.0,
            **video,
        },
        audio={"totalSamplesReceived": 96_000.0, "concealedSamples": concealed * 96_000},
        wire={"video": ClassCounts(1000, 200, 1_000_000), "audio": ClassCounts(500, 50, 62_500)},
    )


def cell(loss: LossSpec, rtt: int, protection: Protection, ch: ChromiumResult | None) -> CellResult:
    return CellResult(Cell(loss, rtt, protection), chromium=ch, elapsed=21.0)


def test_freeze_time_takes_off_the_part_before_the_window_and_adds_a_stall_at_its_end() -> None:
    ch = chromium(1.0, freezeCount=2.0)
    ch.stall_start, ch.stall_end = 0.3, 0.5  # 0.5 s >= 183 ms: a freeze still going on
    assert ch.frozen_seconds == pytest.approx(1.0 + 0.5 - 0.3)
    assert ch.freeze_fraction == pytest.approx(0.12)
    assert ch.freeze_count == 3
    # a stall across the whole window: nothing ended, 12 s since the last frame, 2 s of it before
    stalled = chromium(0.0)
    stalled.stall_start, stalled.stall_end = 2.0, 12.0
    assert stalled.freeze_fraction == pytest.approx(1.0)
    assert stalled.freeze_count == 1
    # smooth playback: the usual 20-30 ms since the last frame changes nothing
    smooth = chromium(0.0)
    smooth.stall_start, smooth.stall_end = 0.02, 0.03
    assert smooth.freeze_fraction == 0.0 and smooth.freeze_count == 0


def test_chromium_rates() -> None:
    ch = chromium(0.0, 0.01, jitterBufferDelay=3.0, jitterBufferEmittedCount=300.0)
    assert ch.concealment == pytest.approx(0.01)
    assert ch.fps == pytest.approx(30.0)
    assert ch.jitter_buffer_ms == pytest.approx(10.0)
    assert ch.wire_video_loss == pytest.approx(0.2)
    assert ch.wire_audio_loss == pytest.approx(0.1)
    assert ch.kbps == pytest.approx((1_000_000 + 62_500) * 8 / 10 / 1000)


def test_unrepaired_video_takes_retransmissions_off_the_loss_before_repair() -> None:
    # 561 sent; 54 lost on the way, 53 of them resent and received (counted in packetsReceived)
    ch = chromium(packetsReceived=560.0, packetsLost=54.0, retransmittedPacketsReceived=53.0)
    assert ch.video_unrepaired == pytest.approx(1 / 561)
    assert not ch.fec_unaccounted


def test_unrepaired_video_leaves_out_the_fec_packets() -> None:
    # 500 media + 100 FEC packets at 20 % wire loss: 100 media and 20 FEC lost,
    # 90 media resent; Chromium does not report FEC, so 10 / 500 is an upper bound
    ch = chromium(packetsReceived=570.0, packetsLost=120.0, retransmittedPacketsReceived=90.0)
    ch.fec_sent = 100.0
    assert ch.video_unrepaired == pytest.approx(10 / 500)
    assert ch.fec_unaccounted
    assert ch.fec_used is None
    ch.video.update(fecPacketsReceived=80.0, fecPacketsDiscarded=75.0)
    assert ch.fec_used == 5.0
    assert ch.video_unrepaired == pytest.approx(5 / 500)
    assert not ch.fec_unaccounted


def test_sdk_frames_missing_are_against_the_frames_published() -> None:
    sdk = SdkResult(window=10.0, frames=280, published=300, frame_loss=FrameLoss(290, 270, 10))
    assert sdk.frames_missing == pytest.approx(0.1)
    assert sdk.fps == pytest.approx(28.0)
    assert SdkResult(window=10.0, frame_loss=FrameLoss(10, 9, 0)).frames_missing == 0.1


def test_goals_judge_the_policy_cells() -> None:
    results = [
        cell(L20, 100, "policy", chromium(0.05, 0.02)),  # 0.5 % freeze, 2 % concealed
        cell(L30, 100, "policy", chromium(0.0, 0.004)),
        cell(L20, 100, "nack", chromium(0.0, 0.0)),
    ]
    checks = evaluate_goals(results)
    assert [c.value for c in checks] == pytest.approx([0.005, 0.02, 0.004])
    assert [c.met for c in checks] == [True, False, True]
    table = format_goals(checks)
    assert "| audio concealment < 1 % at 20 % loss, 100 ms RTT | 20 %, 100 ms RTT, policy " \
        "| 2.00 % | **no** |" in table  # fmt: skip
    missing = evaluate_goals([cell(L20, 50, "policy", chromium())])
    assert [c.met for c in missing] == [None, None, None]


def test_audio_goal_at_30_percent_falls_back_to_the_lowest_rtt() -> None:
    results = [
        cell(L30, 200, "policy", chromium(0.0, 0.03)),
        cell(L30, 50, "policy", chromium(0.0, 0.01)),
    ]
    check = evaluate_goals(results)[2]
    assert check.cell == Cell(L30, 50, "policy")
    assert check.value == pytest.approx(0.01)


def test_verdict_compares_the_policy_with_the_best_tool_on_each_measure() -> None:
    results = [
        cell(L20, 50, "policy", chromium(0.5, 0.01)),  # 5 % freeze
        cell(L20, 50, "nack", chromium(0.4, 0.2)),  # 4 % freeze: better
        cell(L20, 50, "red", chromium(9.0, 0.009)),
        cell(L30, 50, "policy", chromium(0.41, 0.01)),  # 4.1 %: within 0.2 points of 4 %
        cell(L30, 50, "nack", chromium(0.4, 0.2)),
    ]
    first, second = verdicts(results)
    assert first.best_freeze == ("nack", pytest.approx(0.04))
    assert first.best_concealment == ("red", pytest.approx(0.009))
    # 1.0 % concealed against RED's 0.9 %: within the 0.2-point tolerance
    assert (first.beats_video, first.beats_audio, first.beats) == (False, True, False)
    assert (second.beats_video, second.beats_audio, second.beats) == (True, True, True)
    table = format_verdicts([first, second]).splitlines()
    assert table[2] == "| 20 % | 50 | 5.00 | 4.00 (nack) | 1.00 | 0.90 (red) | **no** / yes |"
    assert table[3] == "| 30 % | 50 | 4.10 | 4.00 (nack) | 1.00 | 20.00 (nack) | yes / yes |"
    assert verdicts([cell(L20, 50, "nack", chromium())]) == []


def full_result() -> CellResult:
    ch = chromium(0.5, 0.02, packetsReceived=560.0, packetsLost=54.0,
                  retransmittedPacketsReceived=53.0, nackCount=60.0)  # fmt: skip
    ch.fec_sent = 0.0
    ch.rtt = 0.1012
    sdk = SdkResult(
        window=10.0,
        frames=290,
        freeze_count=2,
        freeze_seconds=0.4,
        frame_loss=FrameLoss(300, 291, 0),
        video_packets=PacketResidual(1000, 800, 199),
        audio_packets=PacketResidual(500, 400, 0),
        wire={"video": ClassCounts(1000, 200, 1_000_000)},
        published=300,
    )
    return CellResult(
        Cell(L20, 100, "policy", goal=True),
        chromium=ch,
        sdk=sdk,
        server={
            "interlive_nacks_received_total": 400.0,
            "interlive_retransmissions_sent_total": 380.0,
            "interlive_red_packets_sent_total": 500.0,
            "interlive_fec_packets_sent_total": None,
        },
        publisher_fps=30.0,
        machine_busy=0.754,
        elapsed=24.4,
    )


def test_tables_have_one_row_per_cell() -> None:
    results = [full_result(), CellResult(Cell(L20, 100, "none"), errors=["TimeoutError: x"])]
    chromium_table = format_chromium_table(results).splitlines()
    assert len(chromium_table) == 4
    assert chromium_table[2].startswith("| 20 % | 100 | none | failed |")
    assert chromium_table[3] == (
        "| 20 % | 100 * | policy | 20.0 / 10.0 | 5.00 (1) | 30.0 | 0.18 (0.01) | 60 / 53 "
        "| 0 / n/a | 2.00 (0.03) | n/a | 850 |"
    )
    sdk_row = format_sdk_table(results).splitlines()[3]
    assert sdk_row == (
        "| 20 % | 100 * | policy | 20.0 | 4.00 (2) | 29.0 | 3.00 (0) | 0.10 (4.00) | 20.00 | 800 |"
    )
    server_row = format_server_table(results).splitlines()[3]
    assert server_row == (
        "| 20 % | 100 * | policy | 400 | 380 | 500 | n/a | 30.0 | 101 | 75 | 24 |"
    )


def test_report_has_goals_tables_plot_and_failures() -> None:
    results = [full_result(), CellResult(Cell(L20, 100, "none"), errors=["TimeoutError: x"])]
    report = format_report(
        results, command="interlive bench loss --quick", when="2026-11-24 17:00 UTC",
        machine="2 x CPU", duration=8.0, plot="loss.png",
    )  # fmt: skip
    assert report.startswith("#### Loss protection (2026-11-24 17:00 UTC)\n")
    assert "Command: `interlive bench loss --quick`" in report
    assert "2 cells, 8 s window each, 24 s per cell on average (0.4 min in all)" in report
    assert "![freeze time and audio concealment against loss](loss.png)" in report
    assert "- 20 %, 100 ms RTT, none: TimeoutError: x" in report


def test_a_run_without_the_sdk_viewer_shows_no_sdk_table() -> None:
    def report(results: list[CellResult]) -> str:
        return format_report(results, command="c", when="w", machine="m", duration=15.0,
                             plot=None)  # fmt: skip

    only_chromium = [cell(L20, 100, "policy", chromium()), cell(L20, 100, "nack", chromium())]
    assert "SDK viewer" not in report(only_chromium)
    assert "Chromium viewer" in report(only_chromium)
    # the SDK viewer ran (or a cell failed): its table is there, failed rows included
    assert "SDK viewer" in report([full_result()])
    failed = [*only_chromium, CellResult(Cell(L30, 100, "none"), errors=["TimeoutError: x"])]
    assert "| 30 % | 100 | none | failed |" in report(failed).split("SDK viewer")[1]


def test_results_survive_saving_and_the_plot_is_a_png(tmp_path: Path) -> None:
    results = [
        full_result(),
        cell(LossSpec(0.10, 3.0), 100, "nack", chromium(0.2, 0.05)),
        CellResult(Cell(L30, 100, "fec"), errors=["boom"]),
    ]
    path = tmp_path / "loss.json"
    save_results(results, path)
    assert load_results(path) == results
    assert load_run_info(path) is None
    info = RunInfo("interlive bench loss", "2026-11-24 17:35 UTC", "2 x CPU", 15.0)
    save_results(results, path, info)
    assert load_results(path) == results
    assert load_run_info(path) == info
    plot = tmp_path / "docs" / "loss.png"
    write_plot(results, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "loss": None, "rtt": None, "protection": None, "duration": None, "settle": 10.0,
        "quick": False, "no_goal_cells": False, "viewers": "both", "seed": 1, "output": None,
        "plot": "", "json": None, "from_json": None,
    }  # fmt: skip
    values.update(overrides)
    return argparse.Namespace(**values)


def test_main_refuses_bad_lists() -> None:
    assert main(args(loss=["x"])) == 2
    assert main(args(protection=["flexfec"])) == 2
    assert main(args(duration=-1.0)) == 2


def test_main_renders_saved_results_into_the_markdown_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "loss.json"
    info = RunInfo("interlive bench loss --output docs/benchmarks.md", "2026-11-24 17:35 UTC",
                   "2 x CPU", 15.0)  # fmt: skip
    save_results([full_result()], saved, info)
    output = tmp_path / "docs" / "benchmarks.md"
    output.parent.mkdir()
    output.write_text("# Benchmarks\n")
    plot = tmp_path / "docs" / "loss.png"
    status = main(args(from_json=str(saved), output=str(output), plot=str(plot)))
    assert status == 0
    text = output.read_text()
    # the heading is the saved run's, not the re-rendering's
    assert text.startswith("# Benchmarks\n\n#### Loss protection (2026-11-24 17:35 UTC)\n")
    assert "Command: `interlive bench loss --output docs/benchmarks.md`" in text
    assert "Machine: 2 x CPU. 1 cell, 15 s window each" in text
    assert "![freeze time and audio concealment against loss](loss.png)" in text
    assert plot.exists()
    assert "| 20 % | 100 * | policy |" in capsys.readouterr().out


def test_a_starved_window_is_flagged_in_tables_goals_verdicts_and_notes() -> None:
    starved = full_result()
    starved.machine_busy, starved.publisher_fps = 0.95, 28.1
    assert starved.chromium is not None
    starved.chromium.rtt = 0.419  # for 100 ms set: more than 1.25 x 100 + 15 = 140 ms
    assert starved.warnings() == [
        "machine 95 % busy",
        "publisher at 28.1 fps",
        "Chromium's STUN RTT 419 ms for 100 ms set",
    ]
    assert full_result().warnings() == []  # 75 % busy, 30 fps, 101 ms for 100 ms
    nack = cell(L20, 100, "nack", chromium(0.4, 0.2))
    results = [starved, nack]
    assert format_chromium_table(results).splitlines()[3].startswith("| 20 % | 100 * | policy ! |")
    assert nack.warnings() == [] and "| nack |" in format_chromium_table(results)
    assert evaluate_goals(results)[0].suspect
    assert "| 20 %, 100 ms RTT, policy ! |" in format_goals(evaluate_goals(results))
    assert format_verdicts(verdicts(results)).splitlines()[2].startswith("| 20 % | 100 ! |")
    report = format_report(results, command="c", when="w", machine="m", duration=15.0, plot=None)
    assert (
        "- 20 %, 100 ms RTT, policy: suspect window: machine 95 % busy; publisher at 28.1 fps; "
        "Chromium's STUN RTT 419 ms for 100 ms set." in report
    )
