"""The latency benchmark's statistics, table, verdicts, plot and saved results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from interlive.bench.latency_report import (
    PathResult,
    RunInfo,
    load_results,
    percentile,
    plot,
    render_report,
    save_results,
)

INFO = RunInfo("interlive bench latency", "2026-11-24 18:00 UTC", "abc1234", 20.0, "2 cores")


def results() -> list[PathResult]:
    return [
        PathResult(
            "webrtc-sdk", "WebRTC → WebRTC", "webrtc", [40.0 + i % 20 for i in range(600)], 600
        ),
        PathResult("webrtc-flv", "WebRTC → HTTP-FLV", "flv", [1200.0] * 10, 600),
        PathResult("nginx", "baseline", "flv", [300.0, 310.0, 320.0], 600),
        PathResult("hls", "WebRTC → HLS", "hls", note="not yet (needs the mixer)"),
    ]


def test_percentiles_interpolate() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(map(float, range(101))), 95) == 95.0
    assert math.isnan(percentile([], 50))


def test_goals_by_family() -> None:
    webrtc, flv, baseline, hls = results()
    assert webrtc.goal_ms == 100 and webrtc.met is True
    assert flv.goal_ms == 1000 and flv.met is False
    assert hls.goal_ms == 4000 and hls.met is None
    assert baseline.maximum == 320.0


def test_the_table_has_every_path_and_the_verdicts() -> None:
    text = render_report(INFO, results())
    assert "`interlive bench latency`" in text and "abc1234" in text
    assert "| WebRTC → WebRTC | 50 | 58 | 59 | 600 / 600 | <= 100 ms | yes |" in text
    assert "| WebRTC → HTTP-FLV | 1200 | 1200 | 1200 | 10 / 600 | <= 1000 ms | **no** |" in text
    assert "| WebRTC → HLS | - | - | - | - | <= 4000 ms | not yet (needs the mixer) |" in text
    assert "nginx-rtmp: p95 319 ms" in text and "WebRTC → WebRTC: p95 58 ms (-261 ms)" in text


def test_results_round_trip_through_json_and_plot(tmp_path: Path) -> None:
    saved = tmp_path / "latency.json"
    save_results(saved, INFO, results())
    info, loaded = load_results(saved)
    assert info == INFO and [r.key for r in loaded] == [r.key for r in results()]
    assert loaded[0].latencies_ms == results()[0].latencies_ms
    png = tmp_path / "latency.png"
    plot(loaded, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("q", [0, 100])
def test_extreme_percentiles_are_min_and_max(q: float) -> None:
    values = [3.0, 1.0, 2.0]
    assert percentile(values, q) == (1.0 if q == 0 else 3.0)


def test_an_hls_row_with_numbers_is_judged_against_four_seconds() -> None:
    hls = PathResult("webrtc-hls", "WebRTC → HLS", "hls", [700.0, 2000.0, 3300.0], 600)
    assert hls.goal_ms == 4000 and hls.met is True
    text = render_report(INFO, [hls])
    assert "| WebRTC → HLS | 2000 | 3170 | 3300 | 3 / 600 | <= 4000 ms | yes |" in text


def test_the_hls_path_is_measured_not_deferred() -> None:
    from interlive.bench.latency import HLS_OPTIONS, NOT_YET, PATHS

    assert PATHS["webrtc-hls"][1] == "hls" and "webrtc-hls" not in NOT_YET
    assert HLS_OPTIONS["live_start_index"] == "-1"  # a live client at the live edge


def test_the_network_is_named_and_old_results_read_as_loopback(tmp_path: Path) -> None:
    from interlive.bench.latency import network_label

    assert network_label(0, 0) == "loopback"
    lossy = network_label(2, 100)
    assert lossy.startswith("lab link: 2 % random loss each way, 100 ms RTT")
    text = render_report(RunInfo("c", "d", "e", 20.0, "2 cores", lossy), results())
    assert "network: lab link: 2 % random loss each way, 100 ms RTT" in text
    saved = tmp_path / "old.json"  # saved before the network field existed
    save_results(saved, INFO, results())
    payload = json.loads(saved.read_text())
    del payload["info"]["network"]
    saved.write_text(json.dumps(payload))
    assert load_results(saved)[0].network == "loopback"
    plot(results(), tmp_path / "lossy.png", lossy)
    assert (tmp_path / "lossy.png").stat().st_size > 0
