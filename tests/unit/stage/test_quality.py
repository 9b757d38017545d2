"""Connection quality from session statistics: grades, loss over intervals, hysteresis."""

from __future__ import annotations

import pytest

from interlive.stage.model import ConnectionQuality, ConnectionQualityChanged
from interlive.stage.quality import LinkSample, QualityTracker, grade, sample_from_stats

EXCELLENT, GOOD, POOR = ConnectionQuality.EXCELLENT, ConnectionQuality.GOOD, ConnectionQuality.POOR


@pytest.mark.parametrize(
    ("loss", "rtt", "expected"),
    [
        (0.0, None, EXCELLENT),
        (0.019, 0.149, EXCELLENT),
        (0.02, 0.05, GOOD),
        (0.0, 0.15, GOOD),
        (0.079, 0.399, GOOD),
        (0.08, 0.05, POOR),
        (0.0, 0.4, POOR),
    ],
)
def test_grades(loss: float, rtt: float | None, expected: ConnectionQuality) -> None:
    assert grade(loss, rtt) is expected


def test_a_sample_from_worker_stats() -> None:
    stats = [
        {
            "published": [{"packets_received": 900, "packets_lost": 10}, {"packets_received": 100}],
            "subscribed": [
                {"packets_sent": 50, "fraction_lost": 0.01, "rtt_ms": 40.0},
                {"packets_sent": 50, "fraction_lost": 0.05, "rtt_ms": None},
                {"packets_sent": 0, "fraction_lost": 0.9, "rtt_ms": 900.0},  # idle: ignored
            ],
        },
        {"published": [], "subscribed": []},
    ]
    assert sample_from_stats(stats) == LinkSample(1000, 10, 0.05, 0.04)
    assert sample_from_stats([]) == LinkSample(0, 0, None, None)


def test_loss_is_measured_per_interval_and_changes_need_two_samples() -> None:
    q = QualityTracker()
    assert q.observe("a", LinkSample(0, 0, None, None)) is None  # nothing to judge yet
    assert q.observe("a", LinkSample(1000, 0, None, 0.03)) == ConnectionQualityChanged(
        "a", EXCELLENT
    )
    # one bad interval (10 % lost) is not enough to announce
    assert q.observe("a", LinkSample(1900, 100, None, 0.03)) is None
    assert q.quality("a") is EXCELLENT
    assert q.observe("a", LinkSample(2800, 200, None, 0.03)) == ConnectionQualityChanged("a", POOR)
    # the old cumulative loss does not count: a clean interval is excellent again (twice)
    assert q.observe("a", LinkSample(3800, 200, None, 0.03)) is None
    assert q.observe("a", LinkSample(4800, 200, None, 0.03)) == ConnectionQualityChanged(
        "a", EXCELLENT
    )
    # the receivers' reports count too: the worse side decides
    assert q.observe("a", LinkSample(5800, 200, 0.05, 0.03)) is None
    assert q.observe("a", LinkSample(6800, 200, 0.05, 0.03)) == ConnectionQualityChanged("a", GOOD)
    q.forget("a")
    assert q.quality("a") is None
