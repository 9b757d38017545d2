"""The loss benchmark's results, their tables, the goals, the verdict and the plot.

Everything here is a pure function of :class:`CellResult` values (which
:mod:`interlive.bench.loss` fills in), so it is unit-tested with hand-made
numbers, and a saved run (``--json``) can be re-rendered (``--from-json``).

How the figures are made (all over one measurement window per cell):

* *wire loss*: what the impairment proxy dropped of the server's audio and
  video packets to that viewer (RTX, RED and FEC packets included);
* *Chromium*: differences of ``getStats()`` inbound-rtp counters.  Freeze
  time is ``totalFreezesDuration`` over the window; audio concealment is
  ``concealedSamples / totalSamplesReceived``.  *Unrepaired video* is
  ``packetsLost`` (the loss before repair, in libwebrtc) less
  ``retransmittedPacketsReceived`` and the packets FEC rebuilt
  (``fecPacketsReceived - fecPacketsDiscarded``), over the media packets
  sent (see :attr:`ChromiumResult.video_unrepaired`);
* *SDK viewer* (aiortc): freezes from the times decoded frames reached the
  application (:func:`~interlive.bench.loss_measure.frozen_time`), counting
  only pictures whose test-pattern code reads back (aiortc hands over what
  libvpx makes of a frame whose reference was lost: garbage is no frame);
  frames published but never shown intact; and packets neither received nor
  retransmitted (its packet tap sees both);
* *theory*: :func:`~interlive.bench.loss_cells.theory_residual`, packets the
  model expects left unrepaired in time by the protection the server
  applies.  For audio under NACK it counts the rounds that fit in the audio
  jitter buffer Chromium reports for the window.  For video NACK at long
  RTTs theory counts a retransmission that arrives after the 150 ms deadline
  as no repair: Chromium still uses it (its jitter buffer waits), so the
  packet is repaired but the picture froze.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from interlive.bench.loss_cells import (
    PROTECTIONS,
    Cell,
    LossSpec,
    Protection,
    theory_residual,
)
from interlive.bench.loss_measure import (
    OPEN_FREEZE_THRESHOLD,
    ClassCounts,
    FrameLoss,
    PacketResidual,
)

__all__ = [
    "FREEZE_GOAL",
    "CellResult",
    "ChromiumResult",
    "GoalCheck",
    "RunInfo",
    "SdkResult",
    "Verdict",
    "evaluate_goals",
    "format_chromium_table",
    "format_goals",
    "format_report",
    "format_sdk_table",
    "format_server_table",
    "format_verdicts",
    "load_results",
    "load_run_info",
    "save_results",
    "verdicts",
    "write_plot",
]

#: The issue's goals (fractions): video freeze time and audio concealment at 20 % / 100 ms,
#: audio residual loss at 30 %.
FREEZE_GOAL: Final = 0.01
CONCEALMENT_GOAL: Final = 0.01
AUDIO_RESIDUAL_GOAL: Final = 0.005
#: A window is suspect (:meth:`CellResult.warnings`) past these: the machine's CPUs
#: busy, the publisher's frame rate, Chromium's RTT against the one set (x factor + s).
BUSY_LIMIT: Final = 0.9
PUBLISHER_FPS_LIMIT: Final = 28.5
RTT_SLACK: Final = (1.25, 0.015)
#: How much worse (percentage points of freeze time or concealment) the policy may be
#: than a single tool and still count as not beaten: the run-to-run noise of a cell.
TOLERANCE: Final = 0.002


def _wire_loss(wire: Mapping[str, ClassCounts], names: Iterable[str]) -> float | None:
    sent = sum(wire[n].sent for n in names if n in wire)
    lost = sum(wire[n].lost for n in names if n in wire)
    return lost / sent if sent else None


def _kbps(wire: Mapping[str, ClassCounts], window: float) -> float | None:
    if window <= 0:
        return None
    return sum(c.sent_bytes for c in wire.values()) * 8 / window / 1000


@dataclass(slots=True)
class ChromiumResult:
    """Differences of Chromium's inbound-rtp counters over ``window`` seconds.

    ``stall_start`` and ``stall_end`` are the seconds since the ``<video>``
    element last presented a frame, read at the window's start and end;
    ``fec_sent`` is the server's ULPFEC packets in the window (only Chromium
    negotiates ulpfec, so all of them went to it), None when not exported.
    """

    window: float
    video: dict[str, float] = field(default_factory=dict)
    audio: dict[str, float] = field(default_factory=dict)
    wire: dict[str, ClassCounts] = field(default_factory=dict)
    pair: str | None = None
    stall_start: float = 0.0
    stall_end: float = 0.0
    fec_sent: float | None = None
    #: the selected candidate pair's ``currentRoundTripTime`` (STUN through the proxy), s
    rtt: float | None = None

    def _v(self, key: str) -> float:
        return self.video.get(key, 0.0)

    def _a(self, key: str) -> float:
        return self.audio.get(key, 0.0)

    @property
    def open_freeze(self) -> float:
        """The freeze still going on when the window closed (libwebrtc counts it only later)."""
        return self.stall_end if self.stall_end >= OPEN_FREEZE_THRESHOLD else 0.0

    @property
    def frozen_seconds(self) -> float | None:
        """Freeze time inside the window.

        ``totalFreezesDuration`` grows by a freeze's whole length when it ends,
        so the part of a freeze begun before the window is taken off and a
        freeze still going on at its end is added.
        """
        if self.window <= 0 or "totalFreezesDuration" not in self.video:
            return None
        frozen = self._v("totalFreezesDuration") + self.open_freeze
        if self._v("freezeCount") >= 1 or self.open_freeze > 0:
            frozen -= self.stall_start
        return min(self.window, max(0.0, frozen))

    @property
    def freeze_fraction(self) -> float | None:
        frozen = self.frozen_seconds
        return None if frozen is None else frozen / self.window

    @property
    def freeze_count(self) -> int:
        return round(self._v("freezeCount")) + (1 if self.open_freeze > 0 else 0)

    @property
    def fps(self) -> float | None:
        return self._v("framesDecoded") / self.window if self.window > 0 else None

    @property
    def concealment(self) -> float | None:
        samples = self._a("totalSamplesReceived")
        return self._a("concealedSamples") / samples if samples > 0 else None

    @property
    def fec_used(self) -> float | None:
        """FEC packets that rebuilt something; None when Chromium does not say."""
        if "fecPacketsReceived" not in self.video:
            return None
        return max(0.0, self._v("fecPacketsReceived") - self._v("fecPacketsDiscarded"))

    @property
    def fec_unaccounted(self) -> bool:
        """FEC was sent but Chromium does not count what it repaired (ULPFEC in Chromium)."""
        return bool(self.fec_sent) and self.fec_used is None

    @property
    def video_unrepaired(self) -> float | None:
        """Media packets neither received, retransmitted nor rebuilt by FEC, over those sent.

        libwebrtc counts retransmissions in ``packetsReceived`` but not against
        ``packetsLost`` (the loss before repair), and ULPFEC packets (RED
        blocks in the media's sequence space) in both: the FEC packets sent
        are the server's count, those lost are estimated from the wire loss.
        When :attr:`fec_unaccounted`, FEC's repairs are unknown and this is an
        upper bound.
        """
        rtx = self._v("retransmittedPacketsReceived")
        lost = self._v("packetsLost")
        expected = self._v("packetsReceived") - rtx + lost
        fec_sent = self.fec_sent or 0.0
        expected -= fec_sent
        lost -= fec_sent * (self.wire_video_loss or 0.0)
        if expected <= 0:
            return None
        return min(1.0, max(0.0, lost - rtx - (self.fec_used or 0.0)) / expected)

    @property
    def jitter_buffer_ms(self) -> float | None:
        emitted = self._v("jitterBufferEmittedCount")
        return 1000 * self._v("jitterBufferDelay") / emitted if emitted > 0 else None

    @property
    def audio_jitter_buffer(self) -> float | None:
        """Mean time an audio sample waited in NetEq's buffer over the window, s."""
        emitted = self._a("jitterBufferEmittedCount")
        return self._a("jitterBufferDelay") / emitted if emitted > 0 else None

    @property
    def wire_video_loss(self) -> float | None:
        return _wire_loss(self.wire, ("video", "rtx"))

    @property
    def wire_audio_loss(self) -> float | None:
        return _wire_loss(self.wire, ("audio", "audio_red"))

    @property
    def kbps(self) -> float | None:
        return _kbps(self.wire, self.window)


@dataclass(slots=True)
class SdkResult:
    """What the aiortc viewer saw over ``window`` seconds.

    ``published`` is the frames the publisher sent during the window: the
    frames expected, whether or not any of them could be read back.
    """

    window: float
    frames: int = 0
    freeze_count: int = 0
    freeze_seconds: float = 0.0
    frame_loss: FrameLoss = field(default_factory=lambda: FrameLoss(0, 0, 0))
    video_packets: PacketResidual = field(default_factory=lambda: PacketResidual(0, 0, 0))
    audio_packets: PacketResidual = field(default_factory=lambda: PacketResidual(0, 0, 0))
    wire: dict[str, ClassCounts] = field(default_factory=dict)
    published: int = 0

    @property
    def freeze_fraction(self) -> float | None:
        return self.freeze_seconds / self.window if self.window > 0 else None

    @property
    def fps(self) -> float | None:
        return self.frames / self.window if self.window > 0 else None

    @property
    def frames_missing(self) -> float | None:
        """Published frames never shown intact (read back by their index)."""
        if self.published > 0:
            return max(0, self.published - self.frame_loss.shown) / self.published
        return self.frame_loss.missing_fraction

    @property
    def wire_loss(self) -> float | None:
        return _wire_loss(self.wire, ("audio", "audio_red", "video", "rtx"))

    @property
    def kbps(self) -> float | None:
        return _kbps(self.wire, self.window)


@dataclass(slots=True)
class CellResult:
    cell: Cell
    chromium: ChromiumResult | None = None
    sdk: SdkResult | None = None
    #: server counter differences over the window (both viewers); None: not exported
    server: dict[str, float | None] = field(default_factory=dict)
    publisher_fps: float | None = None
    #: share of the machine's CPUs busy during the window (everything, not only the benchmark)
    machine_busy: float | None = None
    #: wall-clock seconds the whole cell took (connect, settle, window, teardown)
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """Why this window is suspect: the shared machine starved the benchmark.

        The viewers, the publisher, the proxies and the server share two
        cores with whatever else runs: a saturated machine, a publisher
        falling behind its 30 fps or a proxy adding far more delay than asked
        (its event loop late) make freezes and concealment that are not the
        network's.
        """
        out: list[str] = []
        if self.machine_busy is not None and self.machine_busy >= BUSY_LIMIT:
            out.append(f"machine {self.machine_busy * 100:.0f} % busy")
        if self.publisher_fps is not None and self.publisher_fps < PUBLISHER_FPS_LIMIT:
            out.append(f"publisher at {self.publisher_fps:.1f} fps")
        rtt = None if self.chromium is None else self.chromium.rtt
        if rtt is not None and rtt > self.cell.rtt * RTT_SLACK[0] + RTT_SLACK[1]:
            out.append(f"Chromium's STUN RTT {rtt * 1000:.0f} ms for {self.cell.rtt_ms} ms set")
        return out


# --- text helpers -------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value * 100:.{digits}f}"


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _table(columns: Sequence[str], rows: Iterable[str]) -> str:
    """A markdown table: ``columns`` as its header, then ``rows`` (whole lines)."""
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows])


def _failed_row(result: CellResult, columns: Sequence[str]) -> str:
    """The row of a cell whose viewer failed: its condition, then nothing measured."""
    return _cond(result) + "| " + " | ".join(["failed"] + ["n/a"] * (len(columns) - 4)) + " |"


def _yes_no(value: bool | None) -> str:
    return {None: "n/a", True: "yes", False: "**no**"}[value]


def _cond(result: CellResult) -> str:
    cell = result.cell
    goal = " *" if cell.goal else ""
    suspect = " !" if result.warnings() else ""
    return f"| {cell.loss.label()} | {cell.rtt_ms}{goal} | {cell.protection}{suspect} "


def _sorted(results: Iterable[CellResult]) -> list[CellResult]:
    order = {p: i for i, p in enumerate(PROTECTIONS)}
    return sorted(
        results,
        key=lambda r: (
            r.cell.rtt_ms,
            r.cell.loss.bursty,
            r.cell.loss.rate,
            order[r.cell.protection],
        ),
    )


CHROMIUM_COLUMNS: Final = (
    "Loss", "RTT ms", "Protection", "Wire loss v / a %", "Freeze % (count)", "fps",
    "Video unrepaired % (theory)", "NACKs / RTX rcvd", "FEC sent / used",
    "Audio concealed % (theory)", "Jitter buffer ms", "kbit/s",
)  # fmt: skip


def format_chromium_table(results: Iterable[CellResult]) -> str:
    lines = []
    for r in _sorted(results):
        c = r.cell
        tv = theory_residual(c.protection, "video", c.loss, c.rtt)
        ch = r.chromium
        if ch is None:
            lines.append(_failed_row(r, CHROMIUM_COLUMNS))
            continue
        ta = theory_residual(c.protection, "audio", c.loss, c.rtt,
                             audio_buffer=ch.audio_jitter_buffer)  # fmt: skip
        lines.append(
            _cond(r) + f"| {_pct(ch.wire_video_loss)} / {_pct(ch.wire_audio_loss)} "
            f"| {_pct(ch.freeze_fraction, 2)} ({ch.freeze_count}) | {_num(ch.fps, 1)} "
            f"| {'≤ ' if ch.fec_unaccounted else ''}{_pct(ch.video_unrepaired, 2)} "
            f"({_pct(tv, 2)}) "
            f"| {ch.video.get('nackCount', 0):,.0f} / "
            f"{ch.video.get('retransmittedPacketsReceived', 0):,.0f} "
            f"| {_num(ch.fec_sent)} / {_num(ch.fec_used)} "
            f"| {_pct(ch.concealment, 2)} ({_pct(ta, 2)}) | {_num(ch.jitter_buffer_ms)} "
            f"| {_num(ch.kbps)} |"
        )
    return _table(CHROMIUM_COLUMNS, lines)


SDK_COLUMNS: Final = (
    "Loss", "RTT ms", "Protection", "Wire loss %", "Freeze % (count)", "fps",
    "Frames missing % (unreadable)", "Video unrepaired % (theory)", "Audio missing %", "kbit/s",
)  # fmt: skip


def format_sdk_table(results: Iterable[CellResult]) -> str:
    lines = []
    for r in _sorted(results):
        c = r.cell
        s = r.sdk
        if s is None:
            lines.append(_failed_row(r, SDK_COLUMNS))
            continue
        # the SDK negotiates neither ulpfec nor red: only NACK can help it
        tv = theory_residual("nack" if c.protection in ("nack", "policy") else "none", "video",
                             c.loss, c.rtt)  # fmt: skip
        lines.append(
            _cond(r) + f"| {_pct(s.wire_loss)} | {_pct(s.freeze_fraction, 2)} ({s.freeze_count}) "
            f"| {_num(s.fps, 1)} | {_pct(s.frames_missing, 2)} "
            f"({s.frame_loss.unreadable}) | {_pct(s.video_packets.missing_fraction, 2)} "
            f"({_pct(tv, 2)}) | {_pct(s.audio_packets.missing_fraction, 2)} | {_num(s.kbps)} |"
        )
    return _table(SDK_COLUMNS, lines)


SERVER_COUNTERS: Final = (
    ("nacks received", "interlive_nacks_received_total"),
    ("RTX sent", "interlive_retransmissions_sent_total"),
    ("RED sent", "interlive_red_packets_sent_total"),
    ("FEC sent", "interlive_fec_packets_sent_total"),
)


def format_server_table(results: Iterable[CellResult]) -> str:
    columns = (
        "Loss", "RTT ms", "Protection", *(label for label, _ in SERVER_COUNTERS),
        "Publisher fps", "Chromium STUN RTT ms", "Machine CPU busy %", "Cell run time s",
    )  # fmt: skip
    lines = []
    for r in _sorted(results):
        values = " | ".join(_num(r.server.get(metric)) for _, metric in SERVER_COUNTERS)
        rtt = None if r.chromium is None or r.chromium.rtt is None else r.chromium.rtt * 1000
        lines.append(
            _cond(r) + f"| {values} | {_num(r.publisher_fps, 1)} | {_num(rtt)} "
            f"| {_pct(r.machine_busy, 0)} | {r.elapsed:.0f} |"
        )
    return _table(columns, lines)


# --- goals and verdict ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoalCheck:
    goal: str
    cell: Cell | None
    value: float | None
    target: float
    suspect: bool = False

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value < self.target


def _find(
    results: Sequence[CellResult], loss: LossSpec, rtt_ms: int, protection: Protection
) -> CellResult | None:
    for r in results:
        c = r.cell
        if c.loss == loss and c.rtt_ms == rtt_ms and c.protection == protection:
            return r
    return None


def evaluate_goals(
    results: Sequence[CellResult], protection: Protection = "policy"
) -> list[GoalCheck]:
    """The issue's three goals, judged on ``protection``'s cells with Chromium as the viewer.

    Audio residual loss at 30 % is read as Chromium's concealment (each lost
    20 ms packet conceals 960 samples, so concealment bounds residual loss
    from above), at 100 ms RTT when measured there, else at the lowest RTT.
    """
    at20 = _find(results, LossSpec(0.20), 100, protection)
    at30 = _find(results, LossSpec(0.30), 100, protection)
    if at30 is None:
        candidates = [
            r for r in results if r.cell.loss == LossSpec(0.30) and r.cell.protection == protection
        ]
        at30 = min(candidates, key=lambda r: r.cell.rtt_ms, default=None)

    def chromium(r: CellResult | None) -> ChromiumResult | None:
        return None if r is None else r.chromium

    c20, c30 = chromium(at20), chromium(at30)
    s20 = at20 is not None and bool(at20.warnings())
    s30 = at30 is not None and bool(at30.warnings())
    return [
        GoalCheck(
            "video freeze time < 1 % at 20 % loss, 100 ms RTT",
            None if at20 is None else at20.cell,
            None if c20 is None else c20.freeze_fraction,
            FREEZE_GOAL,
            s20,
        ),
        GoalCheck(
            "audio concealment < 1 % at 20 % loss, 100 ms RTT",
            None if at20 is None else at20.cell,
            None if c20 is None else c20.concealment,
            CONCEALMENT_GOAL,
            s20,
        ),
        GoalCheck(
            "audio residual loss < 0.5 % at 30 % loss",
            None if at30 is None else at30.cell,
            None if c30 is None else c30.concealment,
            AUDIO_RESIDUAL_GOAL,
            s30,
        ),
    ]


def format_goals(checks: Sequence[GoalCheck]) -> str:
    lines = []
    for check in checks:
        where = "not measured" if check.cell is None else check.cell.label()
        where += " !" if check.suspect else ""
        lines.append(
            f"| {check.goal} | {where} | {_pct(check.value, 2)} % | {_yes_no(check.met)} |"
        )
    return _table(("Goal", "Cell", "Measured", "Met"), lines)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Policy against the single tools on one condition (Chromium's freeze and concealment)."""

    loss: LossSpec
    rtt_ms: int
    policy_freeze: float | None
    policy_concealment: float | None
    best_freeze: tuple[str, float] | None
    best_concealment: tuple[str, float] | None
    #: a window of this condition is suspect (see :meth:`CellResult.warnings`)
    suspect: bool = False

    @property
    def beats_video(self) -> bool | None:
        """Policy's freeze time no worse (within :data:`TOLERANCE`) than every tool's."""
        if self.policy_freeze is None or self.best_freeze is None:
            return None
        return self.policy_freeze <= self.best_freeze[1] + TOLERANCE

    @property
    def beats_audio(self) -> bool | None:
        """Policy's audio concealment no worse (within :data:`TOLERANCE`) than every tool's."""
        if self.policy_concealment is None or self.best_concealment is None:
            return None
        return self.policy_concealment <= self.best_concealment[1] + TOLERANCE

    @property
    def beats(self) -> bool | None:
        """Policy no worse than every tool on both measures."""
        video, audio = self.beats_video, self.beats_audio
        if video is None or audio is None:
            return None
        return video and audio


def verdicts(results: Sequence[CellResult]) -> list[Verdict]:
    """One :class:`Verdict` per condition that has a policy cell and at least one tool cell."""
    conditions: list[tuple[LossSpec, int]] = []
    for r in _sorted(results):
        if r.cell.condition not in conditions:
            conditions.append(r.cell.condition)
    out: list[Verdict] = []
    for loss, rtt in conditions:
        policy = _find(results, loss, rtt, "policy")
        if policy is None:
            continue
        freezes: list[tuple[str, float]] = []
        concealments: list[tuple[str, float]] = []
        for tool in PROTECTIONS:
            if tool == "policy":
                continue
            found = _find(results, loss, rtt, tool)
            if found is None or found.chromium is None:
                continue
            if found.chromium.freeze_fraction is not None:
                freezes.append((tool, found.chromium.freeze_fraction))
            if found.chromium.concealment is not None:
                concealments.append((tool, found.chromium.concealment))
        if not freezes and not concealments:
            continue
        ch = policy.chromium
        out.append(
            Verdict(
                loss,
                rtt,
                None if ch is None else ch.freeze_fraction,
                None if ch is None else ch.concealment,
                min(freezes, key=lambda x: x[1], default=None),
                min(concealments, key=lambda x: x[1], default=None),
                any(r.warnings() for r in results if r.cell.condition == (loss, rtt)),
            )
        )
    return out


def format_verdicts(items: Sequence[Verdict]) -> str:
    columns = (
        "Loss", "RTT ms", "Policy freeze %", "Best tool freeze %", "Policy concealed %",
        "Best tool concealed %", "Policy not beaten: video / audio",
    )  # fmt: skip

    def best(value: tuple[str, float] | None) -> str:
        return "n/a" if value is None else f"{_pct(value[1], 2)} ({value[0]})"

    lines = [
        f"| {v.loss.label()} | {v.rtt_ms}{' !' if v.suspect else ''} "
        f"| {_pct(v.policy_freeze, 2)} "
        f"| {best(v.best_freeze)} | {_pct(v.policy_concealment, 2)} "
        f"| {best(v.best_concealment)} "
        f"| {_yes_no(v.beats_video)} / {_yes_no(v.beats_audio)} |"
        for v in items
    ]
    return _table(columns, lines)


def format_report(
    results: Sequence[CellResult],
    *,
    command: str,
    when: str,
    machine: str,
    duration: float,
    plot: str | None,
) -> str:
    """The markdown section appended to docs/benchmarks.md."""
    checks = evaluate_goals(results)
    items = verdicts(results)
    failed = [r for r in results if r.errors]
    elapsed = [r.elapsed for r in results if r.elapsed > 0]
    parts = [
        f"#### Loss protection ({when})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine}. {len(results)} cell{'' if len(results) == 1 else 's'}, "
        f"{duration:g} s window each"
        + (
            f", {sum(elapsed) / len(elapsed):.0f} s per cell on average "
            f"({sum(elapsed) / 60:.1f} min in all)."
            if elapsed
            else "."
        ),
        "",
        "Goals (policy, Chromium viewer):",
        "",
        format_goals(checks),
        "",
    ]
    if items:
        parts += [
            "Policy against the single tools (Chromium viewer; "
            f"a tie within {TOLERANCE * 100:g} points counts as not beaten):",
            "",
            format_verdicts(items),
            "",
        ]
    parts += [
        "Chromium viewer (cells marked * are the goal cells, ! a suspect window: "
        "the machine starved the benchmark, see the notes at the end):",
        "",
        format_chromium_table(results),
        "",
    ]
    # a run with `--viewers chromium` has no SDK rows to show, not 70 failed ones
    if any(r.sdk is not None or r.errors for r in results):
        parts += [
            "SDK viewer (aiortc: negotiates NACK/RTX, neither ulpfec nor red):",
            "",
            format_sdk_table(results),
            "",
        ]
    parts += [
        "Server counters over each window (both viewers together):",
        "",
        format_server_table(results),
        "",
    ]
    if plot:
        parts += [f"![freeze time and audio concealment against loss]({plot})", ""]
    for r in failed:
        parts.append(f"- {r.cell.label()}: " + "; ".join(e[:300] for e in r.errors))
    suspect = [r for r in results if r.warnings()]
    for r in suspect:
        parts.append(f"- {r.cell.label()}: suspect window: " + "; ".join(r.warnings()) + ".")
    if failed or suspect:
        parts.append("")
    return "\n".join(parts)


# --- plot -----------------------------------------------------------------------------------


Metric = Callable[[ChromiumResult], "float | None"]


def _series(
    results: Sequence[CellResult], rtt: int, protection: str, metric: Metric, *, bursty: bool
) -> list[tuple[float, float]]:
    """(loss %, metric %) of Chromium's cells at ``rtt`` under ``protection``, by loss."""
    points: list[tuple[float, float]] = []
    for r in results:
        c = r.cell
        if c.rtt_ms != rtt or c.protection != protection or c.loss.bursty != bursty:
            continue
        value = None if r.chromium is None else metric(r.chromium)
        if value is not None:
            points.append((c.loss.rate * 100, value * 100))
    return sorted(points)


def write_plot(results: Sequence[CellResult], path: Path) -> None:
    """Freeze time and audio concealment (Chromium) against loss: one panel column per RTT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rtts = sorted({r.cell.rtt_ms for r in results})
    if not rtts:
        return
    fig, axes = plt.subplots(
        2, len(rtts), figsize=(max(5.0, 4.2 * len(rtts)), 7), squeeze=False, sharey="row"
    )
    colours = dict(zip(PROTECTIONS, ("tab:red", "tab:blue", "tab:green", "tab:orange", "black"),
                       strict=True))  # fmt: skip
    rows: tuple[tuple[str, Metric], ...] = (
        ("video freeze time %", lambda c: c.freeze_fraction),
        ("audio concealed %", lambda c: c.concealment),
    )
    for col, rtt in enumerate(rtts):
        for row, (label, metric) in enumerate(rows):
            ax = axes[row][col]
            for protection in PROTECTIONS:
                colour = colours[protection]
                line = _series(results, rtt, protection, metric, bursty=False)
                if line:
                    xs, ys = zip(*line, strict=True)
                    ax.plot(xs, ys, marker="o", color=colour, label=protection)
                marks = _series(results, rtt, protection, metric, bursty=True)
                if marks:
                    xs, ys = zip(*marks, strict=True)
                    ax.scatter(xs, ys, marker="x", s=60, color=colour)
            ax.set_title(f"{label}, RTT {rtt} ms", fontsize=10)
            ax.set_xlabel("loss % (x: bursty, mean burst 3)")
            ax.set_xlim(-1.5, 31.5)
            ax.grid(True, alpha=0.3)
            if col == 0:
                ax.set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("interlive bench loss (Chromium viewer)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- saving and loading ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a saved run's report heading says: its command, start, machine and window."""

    command: str
    when: str
    machine: str
    duration: float


def save_results(results: Sequence[CellResult], path: Path, info: RunInfo | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"run": None if info is None else asdict(info), "cells": [asdict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1))


def load_run_info(path: Path) -> RunInfo | None:
    """The run's heading saved with the results, if any."""
    data = json.loads(path.read_text())
    run = data.get("run") if isinstance(data, dict) else None
    return None if run is None else RunInfo(**run)


def _counts(data: Mapping[str, Any]) -> dict[str, ClassCounts]:
    return {name: ClassCounts(**value) for name, value in data.items()}


def load_results(path: Path) -> list[CellResult]:
    """Results saved by :func:`save_results`."""
    data = json.loads(path.read_text())
    out: list[CellResult] = []
    for item in data["cells"] if isinstance(data, dict) else data:
        c = item["cell"]
        cell = Cell(LossSpec(**c["loss"]), c["rtt_ms"], c["protection"], c["goal"])
        ch = item.get("chromium")
        chromium = None
        if ch is not None:
            chromium = ChromiumResult(
                ch["window"],
                ch["video"],
                ch["audio"],
                _counts(ch["wire"]),
                ch.get("pair"),
                ch.get("stall_start", 0.0),
                ch.get("stall_end", 0.0),
                ch.get("fec_sent"),
                ch.get("rtt"),
            )
        s = item.get("sdk")
        sdk = None
        if s is not None:
            sdk = SdkResult(
                s["window"],
                s["frames"],
                s["freeze_count"],
                s["freeze_seconds"],
                FrameLoss(**s["frame_loss"]),
                PacketResidual(**s["video_packets"]),
                PacketResidual(**s["audio_packets"]),
                _counts(s["wire"]),
                s.get("published", 0),
            )
        out.append(
            CellResult(
                cell,
                chromium,
                sdk,
                item["server"],
                item["publisher_fps"],
                item.get("machine_busy"),
                item["elapsed"],
                item["errors"],
            )
        )
    return out
