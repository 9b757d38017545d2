"""The Prometheus text the control process renders from the workers' stats."""

from __future__ import annotations

from typing import Any

from interlive.server.metrics import _COUNTERS, render_metrics


def worker(index: int, **extra: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {key: 0 for key in _COUNTERS}
    stats.update(index=index, sessions=1, rooms=1, drops={}, cpu_seconds=0.5)
    stats.update(extra)
    return stats


def test_viewer_streams_are_labelled_by_the_protection_in_use() -> None:
    text = render_metrics(
        [worker(0, protection={"fec+nack": 2, "nack": 5}), worker(1, protection={})], {}
    )
    lines = text.splitlines()
    assert "# TYPE interlive_viewer_streams_by_protection gauge" in lines
    assert 'interlive_viewer_streams_by_protection{worker="0",tool="fec+nack"} 2' in lines
    assert 'interlive_viewer_streams_by_protection{worker="0",tool="nack"} 5' in lines
    assert not any(
        line.startswith('interlive_viewer_streams_by_protection{worker="1"') for line in lines
    )
