"""The latency benchmark's results: per-path statistics, the goals, the markdown table, the plot.

Pure functions of :class:`PathResult` values (filled in by
:mod:`interlive.bench.latency`), so they are unit-tested with hand-made
numbers and a saved run (``--json``) can be re-rendered (``--from-json``).

A sample is one decoded picture whose test-pattern code reads back: the time
it was decoded minus the time its frame was handed to the encoder (the SDK
track's ``recv``, or the write of the raw picture into ffmpeg's stdin), both
on this machine's monotonic clock.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "GOALS_MS",
    "PathResult",
    "RunInfo",
    "load_results",
    "percentile",
    "plot",
    "render_report",
    "save_results",
]

#: p95 goals by path family (ms): the issue's product goals
GOALS_MS: Final = {"webrtc": 100.0, "flv": 1000.0, "hls": 4000.0}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class PathResult:
    """One path's measurement: latencies in ms, or why it was not measured."""

    key: str
    label: str
    #: "webrtc", "flv" (RTMP and HTTP-FLV) or "hls": which goal applies
    family: str
    latencies_ms: list[float] = field(default_factory=list)
    frames_sent: int = 0
    #: decoded pictures whose code did not read back (or named a frame not sent)
    unreadable: int = 0
    #: why there are no numbers ("not yet: needs the mixer", an error)
    note: str | None = None

    @property
    def goal_ms(self) -> float:
        return GOALS_MS[self.family]

    def stat(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def maximum(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else math.nan

    @property
    def met(self) -> bool | None:
        """Whether p95 is within the goal; None without numbers."""
        if not self.latencies_ms:
            return None
        return self.stat(95) <= self.goal_ms


@dataclass
class RunInfo:
    command: str
    date: str
    commit: str
    duration_s: float
    machine: str
    #: "loopback", or the impaired link the server sat behind
    network: str = "loopback"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def render_report(info: RunInfo, results: Sequence[PathResult]) -> str:
    """The markdown section: how it ran, the table, the verdict per goal."""
    lines = [
        f"### Run of {info.date} (commit {info.commit})",
        "",
        f"`{info.command}`, {info.duration_s:.0f} s per path, {info.machine}; "
        f"network: {info.network}.",
        "",
        "| path | p50 ms | p95 ms | max ms | frames measured / sent | goal (p95) | met |",
        "|------|-------:|-------:|-------:|-----------------------:|-----------:|-----|",
    ]
    for r in results:
        if r.note is not None and not r.latencies_ms:
            lines.append(f"| {r.label} | - | - | - | - | <= {r.goal_ms:.0f} ms | {r.note} |")
            continue
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(
            f"| {r.label} | {_ms(r.stat(50))} | {_ms(r.stat(95))} | {_ms(r.maximum)} | "
            f"{len(r.latencies_ms)} / {r.frames_sent} | <= {r.goal_ms:.0f} ms | {met} |"
        )
    by_key = {r.key: r for r in results if r.latencies_ms}
    baseline = by_key.get("nginx")
    conference = [
        by_key[k] for k in ("webrtc-sdk", "webrtc-chromium", "rtmp-chromium") if k in by_key
    ]
    lines.append("")
    if baseline is not None and conference:
        against = "; ".join(
            f"{r.label}: p95 {r.stat(95):.0f} ms ({r.stat(95) - baseline.stat(95):+.0f} ms), "
            f"{len(r.latencies_ms)} pictures of {r.frames_sent}"
            for r in conference
        )
        lines.append(
            f"RTMP co-streaming through nginx-rtmp: p95 {baseline.stat(95):.0f} ms, "
            f"{len(baseline.latencies_ms)} pictures of {baseline.frames_sent}, read by a "
            f"reader that decodes as soon as bytes arrive. The conference path against it: "
            f"{against}. Players add their buffer to the RTMP and FLV rows (ffplay without "
            "`-fflags nobuffer`, flv.js's stash buffer, a live-player's cache); the WebRTC "
            "rows already include the receiver's jitter buffer. Chromium's samples are the "
            "pictures it presented: frames it decoded late, together, are skipped."
        )
    notes = [r for r in results if r.note is not None and r.latencies_ms]
    for r in notes:
        lines.append(f"- {r.label}: {r.note}")
    return "\n".join(lines) + "\n"


def plot(results: Sequence[PathResult], path: Path, network: str = "loopback") -> None:
    """Latency distributions per path with the goals, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if r.latencies_ms]
    rows = len(results)
    fig, ax = plt.subplots(figsize=(9, 0.6 * rows + 1.6))
    labels = [r.label for r in results]
    positions = list(range(rows, 0, -1))
    data = [r.latencies_ms for r in measured]
    measured_positions = [positions[results.index(r)] for r in measured]
    if data:
        # matplotlib 3.10 renamed vert=False to orientation="horizontal"
        sideways: dict[str, Any] = (
            {"orientation": "horizontal"}
            if "orientation" in inspect.signature(ax.boxplot).parameters
            else {"vert": False}
        )
        ax.boxplot(
            data,
            positions=measured_positions,
            **sideways,
            whis=(5, 95),
            showfliers=True,
            flierprops={"markersize": 2, "alpha": 0.4},
            widths=0.5,
        )
    for r, y in zip(results, positions, strict=True):
        ax.plot([r.goal_ms], [y], marker="|", markersize=18, color="tab:red")
        if not r.latencies_ms:
            ax.text(5, y, r.note or "no data", va="center", fontsize=8, color="gray")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("glass-to-glass latency, ms (box: p25-p75, whiskers p5-p95; red: p95 goal)")
    where = network.split(" (")[0].removeprefix("lab link: ")
    ax.set_title(f"interlive latency by path on this machine ({where})", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_results(path: Path, info: RunInfo, results: Sequence[PathResult]) -> None:
    payload: dict[str, Any] = {"info": asdict(info), "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(payload, indent=1))


def load_results(path: Path) -> tuple[RunInfo, list[PathResult]]:
    payload = json.loads(path.read_text())
    info = RunInfo(**payload["info"])
    return info, [PathResult(**r) for r in payload["results"]]
