"""The fan-out benchmark end to end, small: a real server, a publisher, three subscribers.

This checks that the machinery measures something real (media arrives over
DTLS-SRTP, loss is counted, latency samples exist); the numbers themselves
belong to the benchmark, so nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from interlive.bench import run_bench
from interlive.bench.fanout import (
    FanoutConfig,
    FanoutResult,
    append_report,
    command_line,
    format_report,
    run_fanout,
)
from interlive.bench.system import Metrics, machine_info, sendto_ceiling


def test_fanout_three_subscribers_end_to_end() -> None:
    config = FanoutConfig(
        subscribers=3,
        duration=2.0,
        load_processes=2,
        warmup_timeout=30.0,
        settle=0.5,
        ceiling_seconds=0.1,
        verbose=False,
    )
    result = run_fanout(config)
    assert result.errors == {}
    assert result.connected == 3 and result.failed == 0
    assert result.receiving == 3
    assert result.received > 0
    assert result.loss is not None and result.loss < 0.05
    assert result.srtp_errors == 0
    assert result.latency_samples > 0 and result.latency_ms is not None
    assert result.server_out_pps > 0 and result.server_in_pps > 0
    assert result.worker_cpu and result.ceiling_pps > 0
    assert result.sessions_left == 0  # every WHEP/WHIP DELETE was honoured
    report = format_report(result, "interlive bench fanout --subscribers 3")
    assert "| 3 / 3 |" in report


def _fake_result() -> FanoutResult:
    return FanoutResult(
        config=FanoutConfig(subscribers=10),
        machine=machine_info(),
        started_at=datetime.datetime(2025, 1, 2, 3, 4, tzinfo=datetime.UTC),
        ceiling_pps=200_000.0,
        connected=10,
        receiving=10,
        window=10.0,
        publisher_pps=145.0,
        server_in_pps=160.0,
        server_out_pps=1450.0,
        worker_cpu={"0": 0.05},
        latency_ms=(0.5, 2.0, 9.0),
        latency_samples=14500,
        expected=14500,
        received=14490,
    )


def test_report_and_append(tmp_path: Path) -> None:
    result = _fake_result()
    assert result.demand_pps == 1450.0
    assert result.out_per_cpu_second == 29_000.0
    args = argparse.Namespace(
        bench="fanout", subscribers=10, duration=10.0, workers=1, output="docs/benchmarks.md"
    )
    command = command_line(args)
    assert command == (
        "interlive bench fanout --subscribers 10 --duration 10 --workers 1 "
        "--output docs/benchmarks.md"
    )
    report = format_report(result, command)
    assert "## Fan-out: 10 subscribers (2025-01-02 03:04 UTC)" in report
    assert f"`{command}`" in report
    row = "| 10 / 10 | 160 | 1,450 | 1,450 | 100 % | 5 % | 29,000 | 0.50 / 2.00 / 9.00 | 0.069 % |"
    assert row in report
    assert "Overloaded" not in report
    path = tmp_path / "docs" / "benchmarks.md"
    append_report(path, report)
    append_report(path, report)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Fan-out")
    assert text.count("## Fan-out") == 2


def test_metrics_parse() -> None:
    metrics = Metrics.parse(
        "# HELP x y\n"
        'interlive_packets_sent_total{worker="0"} 10\n'
        'interlive_packets_sent_total{worker="1"} 5\n'
        'interlive_dropped_packets_total{worker="0",reason="a,b \\"q\\""} 3\n'
        "interlive_workers_alive 2\n"
    )
    assert metrics.total("interlive_packets_sent_total") == 15
    assert metrics.by_label("interlive_packets_sent_total", "worker") == {"0": 10, "1": 5}
    assert metrics.by_label("interlive_dropped_packets_total", "reason") == {'a,b "q"': 3}
    assert metrics.total("interlive_workers_alive") == 2


def test_sendto_ceiling_measures_something() -> None:
    assert sendto_ceiling(1200, seconds=0.05, rounds=1) > 0


def test_unknown_benchmark() -> None:
    assert run_bench(argparse.Namespace(bench="nope")) == 2
