"""The in-process forwarding benchmark runs every case; it fails itself if a packet is lost.

Correctness only: the numbers belong to docs/benchmarks.md.
"""

from __future__ import annotations

from interlive.bench.forward import run


def test_every_case_forwards_and_reports() -> None:
    results = run(subscribers=3, packets=5, rounds=2)
    assert set(results) == {"fast", "remap", "red", "delay", "rewrite only"}
    assert all(len(v) == 2 and all(x > 0 for x in v) for v in results.values())
