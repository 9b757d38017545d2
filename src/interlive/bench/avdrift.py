"""``interlive bench mix --av-drift``: the mix's audio-vs-video offset, measured on its output.

Issue 5 asks that audio "never drifts from video by more than 40 ms over an
hour (measured)".  The job status's ``inputs[].av_offset_ms``
(:meth:`interlive.mix.sync.ParticipantSync.av_offset_ms`) is the mixer's own
estimate for one input; this benchmark measures what a viewer of the mix gets.

Setup: a real ``interlive serve``; one SDK WHIP publisher whose video is the
SDK test pattern (30 fps, the frame index drawn as a block code) and whose
audio is :class:`BurstAudioTrack`: silence with a 30 ms 1 kHz tone burst at
each whole second of the track's own timeline, so that burst ``k`` is
captured with video frame ``30 k``.  Both tracks stamp the monotonic time each
frame leaves ``recv()``: the capture times on the sender's clock are
measured, not assumed from the two timelines.  A live job mixes the room
(grid, no labels, 640x360@30); its HTTP-FLV (``GET /live/{room}.flv``) is
decoded with PyAV, video and audio, for the whole run, and the job's own
``av_offset_ms`` is sampled every minute.

Theory of operation
-------------------
* *Video latency* of frame ``i`` = pts of the first output frame showing
  ``i`` minus the capture time of ``i``.  *Audio latency* of burst ``k`` =
  pts of its onset in the decoded AAC (:class:`OnsetDetector`: the first
  sample above a threshold after silence, to the sample) minus the capture
  time of burst ``k``.  The pts origin is arbitrary (the FLV starts at 0) and
  the sender's clock is one clock for both tracks, so only their difference
  means something: the *A/V offset* = video latency - audio latency,
  positive when the video comes later than the audio captured with it.
  Each track's own capture stamps are used, so the sender's skew (its two
  pacers start apart; ``skew`` = capture of burst ``k`` - capture of frame
  ``30 k``) is taken out rather than assumed zero; it is reported.
* *Per burst*: offset = median video latency of the frames captured within
  0.1 s of the burst - the burst's audio latency; audio and video of the
  same instant, so a step of the render delay (it rises at once under load)
  moves both and only a real mismatch remains.  *Windows* of 10 s of capture
  time: the median of their bursts' offsets.  An onset at pts ``p`` is matched to the
  burst captured nearest ``p - video latency``, the video latency being the
  median over the pictures within 1 s of ``p`` (the render delay moves it
  by hundreds of ms under load): unambiguous while the offset stays under
  0.5 s.  Onsets matching no burst are counted, as are bursts and frames
  that never show.
* *Quantization.*  The mixer samples its inputs at output frame instants
  (1/30 s apart), so the first output frame showing ``i`` comes up to one
  frame interval after the ideal instant: the video latency carries a bias
  in [0, 33.3) ms, constant while the phase between the publisher's frames
  and the output clock holds.  The drift (offset minus the first window's)
  cancels the constant part; a change of phase shows as a step of up to
  one frame interval.
* FLV timestamps are whole milliseconds (up to 1 ms truncated, on both
  tracks).  The FLV reader reconnects if the stream breaks; a new connection
  starts a new pts origin, so observations carry a segment number and a
  window only combines observations of one segment.

The analysis (:func:`analyze`, :func:`summarize`, :func:`blocks`) is pure:
it takes the capture stamps and the decoded observations, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import numpy.typing as npt

from interlive.auth import mint_token
from interlive.bench.serverproc import temporary_server
from interlive.bench.system import machine_info
from interlive.client import (
    TestPatternVideoTrack,
    ToneAudioTrack,
    WhipPublisher,
    decode_frame_index,
)

__all__ = [
    "Analysis",
    "Block",
    "BurstAudioTrack",
    "Drift",
    "JobSample",
    "MixCapture",
    "Onset",
    "OnsetDetector",
    "RawRun",
    "RunInfo",
    "StampedPatternTrack",
    "VideoSample",
    "Window",
    "analyze",
    "analyze_raw",
    "blocks",
    "burst_gate",
    "load_raw",
    "main",
    "phase_mean",
    "read_mix",
    "render_report",
    "run",
    "save_raw",
    "summarize",
    "timeline_captures",
    "window_lines",
]

SAMPLE_RATE = 48_000
FPS = 30
WIDTH, HEIGHT = 640, 360
BURST_FREQUENCY = 1000.0  # Hz
BURST_MS = 30
BURST_AMPLITUDE = 0.5  # -6 dBFS: well under the mixer's -1 dBFS limiter
ONSET_THRESHOLD = 0.1  # 1/5 of the burst: above AAC pre-echo, 1-2 samples after the start
REARM_S = 0.2  # silence before a new onset counts
WINDOW_S = 10.0
BLOCK_S = 300.0
MATCH_S = 0.5  # an onset further than this from every burst is spurious
LOCAL_S = 1.0  # onsets are matched through the video latency of pictures this close
PAIR_S = 0.1  # a burst is paired with the frames captured this close to it
GOAL_MS = 40.0
ROOM = "avdrift"
STATUS_EVERY_S = 60.0
SETTLE_S = 3.0  # after the job starts: the first keyframe, the render delay settling

F64 = npt.NDArray[np.float64]


# --- the publisher's tracks ---------------------------------------------------------------


def burst_gate(first_sample: int, samples: int, sample_rate: int, burst_samples: int) -> F64:
    """1.0 for the samples of ``[first_sample, first_sample + samples)`` inside a burst, else 0.

    Burst ``k`` covers samples ``[k * sample_rate, k * sample_rate + burst_samples)``.
    """
    n = np.arange(first_sample, first_sample + samples)
    return (n % sample_rate < burst_samples).astype(np.float64)


class BurstAudioTrack(ToneAudioTrack):
    """Silence with a tone burst at each whole second of the track's own timeline.

    The tone's phase follows the absolute sample number, so every burst starts
    at phase 0.  ``burst_sent[k]`` is the monotonic time the frame holding the
    start of burst ``k`` left :meth:`recv`, plus the start's offset in it.
    """

    def __init__(
        self,
        *,
        burst_ms: int = BURST_MS,
        frequency: float = BURST_FREQUENCY,
        amplitude: float = BURST_AMPLITUDE,
        realtime: bool = True,
    ) -> None:
        super().__init__(frequency, SAMPLE_RATE, amplitude=amplitude, realtime=realtime)
        self.burst_samples = SAMPLE_RATE * burst_ms // 1000
        self.burst_sent: dict[int, float] = {}

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        now = time.monotonic()
        first, n, rate = int(frame.pts or 0), frame.samples, self.sample_rate
        pcm = frame.to_ndarray().reshape(-1, self.channels)  # packed s16: (n, channels)
        gate = burst_gate(first, n, rate, self.burst_samples)
        gated = np.rint(pcm * gate[:, np.newaxis]).astype(np.int16)
        out = av.AudioFrame.from_ndarray(
            gated.reshape(1, -1), format="s16", layout="stereo" if self.channels == 2 else "mono"
        )
        out.sample_rate, out.pts, out.time_base = rate, frame.pts, frame.time_base
        start = -(-first // rate) * rate  # the first whole second at or after this frame
        if start < first + n:
            self.burst_sent[start // rate] = now + (start - first) / rate
        return out


class StampedPatternTrack(TestPatternVideoTrack):
    """The SDK test pattern; ``sent_at[i]`` is when frame index ``i`` left :meth:`recv`."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__(WIDTH, HEIGHT, FPS)
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        self.sent_at[self.start_index + self.frames_sent - 1] = time.monotonic()
        return frame


# --- onsets ---------------------------------------------------------------------------------


class OnsetDetector:
    """Burst onsets in a stream of samples fed chunk by chunk.

    An onset is the first sample whose magnitude exceeds ``threshold`` after
    at least ``rearm`` seconds of samples under it.  The stream's start counts
    as loud, so a burst cut by the start of the stream gives no onset.
    """

    def __init__(self, threshold: float = ONSET_THRESHOLD, rearm: float = REARM_S) -> None:
        self.threshold = threshold
        self.rearm = rearm
        self._quiet = 0  # samples under the threshold since the last loud one

    def feed(self, samples: npt.NDArray[Any], start: float, sample_rate: int) -> list[float]:
        """Onset times in this chunk; ``start`` is the time of ``samples[0]``."""
        loud = np.flatnonzero(np.abs(samples) > self.threshold)
        if loud.size == 0:
            self._quiet += len(samples)
            return []
        previous = np.concatenate(([-self._quiet - 1], loud[:-1]))
        gaps = loud - previous - 1  # quiet samples before each loud one
        first = loud[gaps >= round(self.rearm * sample_rate)]
        self._quiet = len(samples) - 1 - int(loud[-1])
        return [start + int(i) / sample_rate for i in first]


# --- observations and analysis --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoSample:
    """One decoded output picture: its FLV connection, pts (s), frame index (None: unreadable)."""

    segment: int
    pts: float
    index: int | None


@dataclass(frozen=True, slots=True)
class Onset:
    segment: int
    pts: float


@dataclass(frozen=True, slots=True)
class JobSample:
    """The job's status at monotonic time ``at``: its inputs' ``av_offset_ms``."""

    at: float
    av_offset_ms: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """One window of capture time (``start`` s after the first frame shown)."""

    start: float
    segment: int
    frames: int  # frames captured in the window and shown
    bursts: int  # bursts captured in the window, found and paired with frames
    offset_ms: float  # median over the bursts of (video latency - audio latency)
    audio_latency_ms: float  # median (on the segment's arbitrary pts origin)
    skew_ms: float  # capture of burst k - capture of frame 30 k (nan when unknown)
    #: the frame-grid delay: how long after the audio's instant the next output picture
    #: comes, i.e. the offset a perfectly synced mixer would show (in [0, interval))
    grid_ms: float = math.nan
    interval_ms: float = 1000 / FPS  # between output pictures

    @property
    def grid_steps(self) -> int:
        """Output pictures between the one shown and the one the grid predicts (0: the same)."""
        if math.isnan(self.grid_ms):
            return 0
        return round((self.offset_ms - self.grid_ms) / self.interval_ms)

    @property
    def residual_ms(self) -> float:
        """The offset beyond the frame grid, within half an output frame interval.

        A sync error near a grid point's edge moves the picture by a whole
        interval; that shows in :attr:`grid_steps`, not here.
        """
        return self.offset_ms - self.grid_ms - self.grid_steps * self.interval_ms


@dataclass
class Analysis:
    windows: list[Window]
    t0: float  # capture time (monotonic) of the first frame shown: time 0 of the windows
    frames_sent: int  # captured between the first and the last frame shown
    frames_shown: int  # of those, shown in at least one output picture
    pictures: int  # output pictures decoded
    unreadable: int  # output pictures whose code did not read (or named no frame sent)
    bursts_sent: int  # captured between the first and the last frame shown
    bursts_found: int  # of those, matched by an onset
    onsets: int
    spurious: int  # onsets matching no burst
    duplicates: int  # further onsets matching a burst already found
    segments: int  # FLV connections that gave pictures
    pair_offsets_ms: list[float] = field(default_factory=list)  # per burst
    skew_ms: float = math.nan

    @property
    def frames_missing(self) -> int:
        return self.frames_sent - self.frames_shown

    @property
    def bursts_missing(self) -> int:
        return self.bursts_sent - self.bursts_found


def timeline_captures(sent: Mapping[int, float], period: float) -> dict[int, float]:
    """Capture times from a track's media timeline: item ``n`` at ``anchor + n * period``.

    The anchor is the earliest ``sent - n * period``: a pacer never releases a
    frame early, so that is the timeline's start; later stamps only add the
    moments the sender's event loop was late, which the RTP timestamps do not
    carry.  A cross-check of the stamped captures.
    """
    if not sent:
        return {}
    anchor = min(t - n * period for n, t in sent.items())
    return {n: anchor + n * period for n in sent}


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def phase_mean(values: Iterable[float], period: float) -> float:
    """The circular mean of ``values`` modulo ``period``, in ``[0, period)``."""
    angles = np.array([2 * math.pi * v / period for v in values])
    if angles.size == 0:
        return math.nan
    mean = math.atan2(float(np.sin(angles).mean()), float(np.cos(angles).mean()))
    return (mean / (2 * math.pi) * period) % period


def analyze(
    video_sent: Mapping[int, float],
    burst_sent: Mapping[int, float],
    pictures: Sequence[VideoSample],
    onsets: Sequence[Onset],
    *,
    frames_per_burst: int = FPS,
    window: float = WINDOW_S,
    output_fps: float = FPS,
) -> Analysis:
    """Latencies per frame and burst, grouped into windows of capture time (module docstring).

    The frame-grid delay of a window (:attr:`Window.grid_ms`): each segment's
    output pictures sit on a grid of ``1 / output_fps`` (its phase is the
    circular mean of their pts); a frame captured at ``c`` would, in perfect
    sync with the audio, be due at ``c + audio latency`` and shows at the next
    grid point, ``(phase - due) mod interval`` later.  Circular mean over the
    window's frames.
    """
    first_pts: dict[tuple[int, int], float] = {}
    unreadable = 0
    for p in pictures:
        if p.index is None or p.index not in video_sent:
            unreadable += 1
            continue
        key = (p.segment, p.index)
        if key not in first_pts or p.pts < first_pts[key]:
            first_pts[key] = p.pts
    video_latency = {key: pts - video_sent[key[1]] for key, pts in first_pts.items()}
    by_segment: dict[int, list[float]] = defaultdict(list)
    for (segment, _), latency in video_latency.items():
        by_segment[segment].append(latency)
    rough = {segment: _median(values) for segment, values in by_segment.items()}
    shown_at: dict[int, list[tuple[float, float]]] = defaultdict(list)  # (pts, latency)
    for key, pts in first_pts.items():
        shown_at[key[0]].append((pts, video_latency[key]))
    for entries in shown_at.values():
        entries.sort()
    interval = 1.0 / output_fps
    grid_phase = {
        segment: phase_mean((p.pts for p in pictures if p.segment == segment), interval)
        for segment in by_segment
    }

    bursts = sorted(burst_sent.items(), key=lambda kv: kv[1])
    burst_times = [t for _, t in bursts]
    audio_latency: dict[tuple[int, int], float] = {}
    found: set[int] = set()
    spurious = duplicates = 0
    for onset in onsets:
        if onset.segment not in rough or not bursts:
            spurious += 1
            continue
        # the video latency around the onset's output time: the render delay moves it
        entries = shown_at[onset.segment]
        lo = bisect.bisect_left(entries, (onset.pts - LOCAL_S, -math.inf))
        hi = bisect.bisect_right(entries, (onset.pts + LOCAL_S, math.inf))
        local = [latency for _, latency in entries[lo:hi]]
        captured = onset.pts - (_median(local) if local else rough[onset.segment])
        j = bisect.bisect_left(burst_times, captured)
        near = [c for c in (j - 1, j) if 0 <= c < len(bursts)]
        best = min(near, key=lambda c: abs(burst_times[c] - captured))
        if abs(burst_times[best] - captured) > MATCH_S:
            spurious += 1
            continue
        k = bursts[best][0]
        if k in found:
            duplicates += 1
            continue
        found.add(k)
        audio_latency[(onset.segment, k)] = onset.pts - burst_sent[k]

    shown = {index for _, index in first_pts}
    if not shown:
        return Analysis([], math.nan, 0, 0, len(pictures), unreadable, 0, 0, len(onsets),
                        spurious, duplicates, 0)  # fmt: skip
    t0 = min(video_sent[i] for i in shown)
    t1 = max(video_sent[i] for i in shown)
    frames_sent = sum(1 for t in video_sent.values() if t0 <= t <= t1)
    in_span = {k for k, t in burst_sent.items() if t0 <= t <= t1}

    def slot(t: float) -> int:
        return math.floor((t - t0) / window)

    # each burst against the frames captured within PAIR_S of it, in the same segment
    by_capture = sorted((t, i) for i, t in video_sent.items())
    capture_times = [t for t, _ in by_capture]
    frames_in: dict[tuple[int, int], int] = defaultdict(int)
    for segment, index in video_latency:
        frames_in[(slot(video_sent[index]), segment)] += 1
    per_burst: dict[tuple[int, int], list[tuple[float, float, float]]] = defaultdict(list)
    skews: dict[int, list[float]] = defaultdict(list)
    pairs: list[float] = []
    all_skews: list[float] = []
    for (segment, k), audio in audio_latency.items():
        if k not in in_span:
            continue
        when = burst_sent[k]
        frame = k * frames_per_burst
        if frame in video_sent:
            skew = when - video_sent[frame]
            skews[slot(when)].append(skew)
            all_skews.append(skew)
        lo = bisect.bisect_left(capture_times, when - PAIR_S)
        hi = bisect.bisect_right(capture_times, when + PAIR_S)
        near = [i for _, i in by_capture[lo:hi] if (segment, i) in video_latency]
        if not near:
            continue
        offset = _median([video_latency[(segment, i)] for i in near]) - audio
        due = (video_sent[i] + audio for i in near)
        grid = phase_mean((grid_phase[segment] - t for t in due), interval)
        per_burst[(slot(when), segment)].append((offset, grid, audio))
        pairs.append(offset * 1000)

    windows: list[Window] = []
    for w in sorted({w for w, _ in per_burst}):
        candidates = [s for (ww, s) in per_burst if ww == w]
        segment = max(candidates, key=lambda s: len(per_burst[(w, s)]))
        bursts_here = per_burst[(w, segment)]
        windows.append(
            Window(
                start=w * window,
                segment=segment,
                frames=frames_in[(w, segment)],
                bursts=len(bursts_here),
                offset_ms=_median([o for o, _, _ in bursts_here]) * 1000,
                audio_latency_ms=_median([a for _, _, a in bursts_here]) * 1000,
                skew_ms=_median(skews.get(w, [])) * 1000,
                grid_ms=phase_mean((g for _, g, _ in bursts_here), interval) * 1000,
                interval_ms=interval * 1000,
            )
        )
    return Analysis(
        windows=windows,
        t0=t0,
        frames_sent=frames_sent,
        frames_shown=len(shown),
        pictures=len(pictures),
        unreadable=unreadable,
        bursts_sent=len(in_span),
        bursts_found=len(found & in_span),
        onsets=len(onsets),
        spurious=spurious,
        duplicates=duplicates,
        segments=len(by_segment),
        pair_offsets_ms=pairs,
        skew_ms=_median(all_skews) * 1000,
    )


@dataclass(frozen=True, slots=True)
class Drift:
    """The offset over the run: its first window, how far it moved, the linear trend."""

    first_ms: float
    max_drift_ms: float  # max |offset - first|
    spread_ms: float  # max - min
    slope_ms_per_hour: float  # least-squares line through the windows
    max_abs_offset_ms: float
    windows: int

    @property
    def goal_met(self) -> bool:
        return self.max_drift_ms <= GOAL_MS and self.max_abs_offset_ms <= GOAL_MS


def summarize(windows: Sequence[Window], *, residual: bool = False) -> Drift:
    """The drift of the windows' offsets (``residual``: of the offsets beyond the frame grid)."""
    windows = [w for w in windows if not (residual and math.isnan(w.residual_ms))]
    offsets = [w.residual_ms if residual else w.offset_ms for w in windows]
    if not offsets:
        return Drift(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    first = offsets[0]
    slope = math.nan
    if len(offsets) >= 2:
        hours = np.array([(w.start + WINDOW_S / 2) / 3600 for w in windows])
        slope = float(np.polyfit(hours, np.array(offsets), 1)[0])
    return Drift(
        first_ms=first,
        max_drift_ms=max(abs(x - first) for x in offsets),
        spread_ms=max(offsets) - min(offsets),
        slope_ms_per_hour=slope,
        max_abs_offset_ms=max(abs(x) for x in offsets),
        windows=len(offsets),
    )


@dataclass(frozen=True, slots=True)
class Block:
    """Windows starting in ``[start, start + length)`` s, and the job's samples in that span."""

    start: float
    windows: int
    median_ms: float
    min_ms: float
    max_ms: float
    skew_ms: float
    grid_ms: float  # median frame-grid delay
    residual_ms: float  # median offset beyond the frame grid
    job_ms: float  # median of the job's av_offset_ms samples


def blocks(
    windows: Sequence[Window],
    job: Sequence[JobSample],
    t0: float,
    length: float = BLOCK_S,
) -> list[Block]:
    groups: dict[int, list[Window]] = defaultdict(list)
    for w in windows:
        groups[math.floor(w.start / length)].append(w)
    job_groups: dict[int, list[float]] = defaultdict(list)
    for sample in job:
        for value in sample.av_offset_ms:
            job_groups[math.floor((sample.at - t0) / length)].append(value)
    out = []
    for b in sorted(groups):
        offsets = [w.offset_ms for w in groups[b]]
        skews = [w.skew_ms for w in groups[b] if not math.isnan(w.skew_ms)]
        grids = [w.grid_ms for w in groups[b] if not math.isnan(w.grid_ms)]
        residuals = [w.residual_ms for w in groups[b] if not math.isnan(w.residual_ms)]
        out.append(
            Block(
                start=b * length,
                windows=len(offsets),
                median_ms=_median(offsets),
                min_ms=min(offsets),
                max_ms=max(offsets),
                skew_ms=_median(skews),
                grid_ms=_median(grids),
                residual_ms=_median(residuals),
                job_ms=_median(job_groups.get(b, [])),
            )
        )
    return out


# --- report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    command: str
    machine: str
    start_utc: str
    end_utc: str
    commit: str
    duration_s: float
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]


def _ms(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else math.nan


def render_report(
    info: RunInfo,
    analysis: Analysis,
    job: Sequence[JobSample],
    end_status: Mapping[str, Any],
    timeline: Analysis | None = None,
) -> str:
    """The markdown section; ``timeline``: the same run analysed with media-timeline captures."""
    drift = summarize(analysis.windows)
    beyond = summarize(analysis.windows, residual=True)
    rows = blocks(analysis.windows, job, analysis.t0)
    grids = [w.grid_ms for w in analysis.windows if not math.isnan(w.grid_ms)]
    minutes = info.duration_s / 60
    load = "/".join(f"{x:.2f}" for x in info.load_start)
    load_end = "/".join(f"{x:.2f}" for x in info.load_end)
    lines = [
        f"### A/V drift of the mix over {minutes:.0f} min (`interlive bench mix --av-drift`)",
        "",
        f"`{info.command}`, {info.start_utc} to {info.end_utc} UTC, commit `{info.commit}`, "
        f"on {info.machine}; load average (1/5/15 min) {load} at the start, {load_end} "
        "at the end (other benchmarks shared the machine during the run).",
        "",
        "One SDK WHIP publisher: the SDK test pattern (640x360@30, VP8, frame index in a "
        f"block code) and silence with a {BURST_MS} ms {BURST_FREQUENCY:.0f} Hz burst at each "
        "whole second of the audio track (Opus), burst k captured with frame 30 k; a live job "
        "(grid, no labels, 640x360@30, H.264 + AAC); its HTTP-FLV decoded with PyAV, video "
        "and audio, for the whole run. Video latency = pts of the first output picture "
        "showing frame i - capture of i; audio latency = pts of the burst's onset in the "
        "decoded AAC - capture of the burst; both captures stamped on the sender's monotonic "
        "clock as each frame left the track. Per burst, offset = median video latency of the "
        "frames captured within 0.1 s of it - its audio latency (the same instant on both "
        "tracks, so a render-delay step moves both); **A/V offset** = median of the bursts' "
        f"offsets per {WINDOW_S:.0f} s window (positive: video later than audio). "
        "*Frame grid*: the output shows pictures only every 33.3 ms, so even a perfectly "
        "synced mixer shows a frame up to 33.3 ms after the audio captured with it; that "
        "delay is computed per window from the output's pts grid and the audio latency, and "
        "*beyond grid* = offset - frame grid is what the mixer's sync itself gets wrong. "
        "The job's own estimate (`inputs[].av_offset_ms`, sampled every minute) is shown "
        "next to it.",
        "",
        "| minutes | windows | offset median (ms) | min | max | frame grid (ms) "
        "| beyond grid (ms) | sender skew (ms) | job `av_offset_ms` |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        end = min(r.start + BLOCK_S, info.duration_s)
        lines.append(
            f"| {r.start / 60:.0f}-{end / 60:.0f} | {r.windows} | {_ms(r.median_ms, True)} "
            f"| {_ms(r.min_ms, True)} | {_ms(r.max_ms, True)} | {_ms(r.grid_ms)} "
            f"| {_ms(r.residual_ms, True)} | {_ms(r.skew_ms, True)} | {_ms(r.job_ms, True)} |"
        )
    pairs = analysis.pair_offsets_ms
    over = sum(1 for x in pairs if abs(x) > GOAL_MS)
    steps = sum(1 for w in analysis.windows if w.grid_steps)
    verdict = "**met**" if drift.windows and drift.goal_met else "**not met**"
    drift_ok = "yes" if drift.max_drift_ms <= GOAL_MS else "no"
    offset_ok = "yes" if drift.max_abs_offset_ms <= GOAL_MS else "no"
    span = "" if info.duration_s >= 3600 else f" (this run: {minutes:.0f} min, not an hour)"
    lines += [
        "",
        f"- Offset of the first window: {_ms(drift.first_ms, True)} ms. **Drift** (max "
        f"\\|offset - first window\\|): {_ms(drift.max_drift_ms)} ms; spread (max - min): "
        f"{_ms(drift.spread_ms)} ms; slope of a least-squares line through the "
        f"{drift.windows} windows: {_ms(drift.slope_ms_per_hour, True)} ms/hour. "
        f"Max \\|offset\\|: {_ms(drift.max_abs_offset_ms)} ms.",
        f"- Frame grid (the quantization): {_ms(min(grids, default=math.nan))} to "
        f"{_ms(max(grids, default=math.nan))} ms over the windows, median "
        f"{_ms(_median(grids))} ms. It is a constant bias only while the phase between the "
        "publisher's frames and the output clock holds; the mixer's render delay moves that "
        "phase whenever it changes, so part of the spread above is the grid, not a drift "
        "of the clocks. Beyond the grid: first window "
        f"{_ms(beyond.first_ms, True)} ms, drift {_ms(beyond.max_drift_ms)} ms, spread "
        f"{_ms(beyond.spread_ms)} ms, slope {_ms(beyond.slope_ms_per_hour, True)} ms/hour "
        f"(wrapped to ±16.7 ms: in {steps} window(s) the picture shown was a whole "
        "output frame away from the one the grid predicts, the sync error sitting at the "
        "edge of a grid interval). "
        "FLV timestamps are whole ms (up to 1 ms on each track); onsets are found to the "
        "sample.",
        *_past_goal_line(analysis.windows, drift),
        f"- Per burst ({len(pairs)} bursts paired with frames, no median over a window): "
        f"median {_ms(_percentile(pairs, 50), True)} ms, p5 {_ms(_percentile(pairs, 5), True)}"
        f", p95 {_ms(_percentile(pairs, 95), True)}, min "
        f"{_ms(min(pairs, default=math.nan), True)}, max "
        f"{_ms(max(pairs, default=math.nan), True)} ms; {over} pair(s) beyond "
        f"±{GOAL_MS:.0f} ms (single bursts, not window medians).",
        f"- Sender skew (capture of burst k - capture of frame 30 k): median "
        f"{_ms(analysis.skew_ms, True)} ms, measured and taken out of the offset.",
        *_timeline_line(timeline),
        f"- Counted: {analysis.frames_sent} frames captured while the mix was read, "
        f"{analysis.frames_missing} never shown; {analysis.pictures} output pictures decoded, "
        f"{analysis.unreadable} unreadable; {analysis.bursts_sent} bursts, "
        f"{analysis.bursts_missing} without an onset; {analysis.onsets} onsets, "
        f"{analysis.spurious} matching no burst, {analysis.duplicates} duplicates; "
        f"{analysis.segments} FLV connection(s).",
        f"- The mixer's counters at the end: {end_status.get('video_frames', '?')} video frames, "
        f"{end_status.get('dropped_frames', '?')} dropped, "
        f"{end_status.get('late_audio_frames', '?')} late audio frames.",
        f"- Goal (\\|drift\\| <= {GOAL_MS:.0f} ms over an hour and \\|offset\\| <= "
        f"{GOAL_MS:.0f} ms, on the window medians): {verdict}{span}: drift "
        f"{_ms(drift.max_drift_ms)} ms ({drift_ok}), max \\|offset\\| "
        f"{_ms(drift.max_abs_offset_ms)} ms ({offset_ok}).",
    ]
    return "\n".join(lines)


def _past_goal_line(windows: Sequence[Window], drift: Drift) -> list[str]:
    if not windows:
        return []
    by_offset = [w for w in windows if abs(w.offset_ms) > GOAL_MS]
    by_drift = [w for w in windows if abs(w.offset_ms - drift.first_ms) > GOAL_MS]
    reference = _median([w.offset_ms for w in windows if w.start < BLOCK_S])
    from_reference = max(abs(w.offset_ms - reference) for w in windows)
    listed = ", ".join(
        f"{w.start / 60:.1f} min ({w.offset_ms:+.0f} ms, {w.frames} frames, {w.bursts} bursts)"
        for w in by_offset
    )
    return [
        f"- Windows past {GOAL_MS:.0f} ms: {len(by_offset)} of {len(windows)} by \\|offset\\|"
        + (f": {listed}" if listed else "")
        + f"; {len(by_drift)} by \\|offset - first window\\|. Against the median of the "
        f"first {BLOCK_S / 60:.0f} minutes ({_ms(reference, True)} ms) instead of one window, "
        f"the drift is {_ms(from_reference)} ms. A full window has ~{WINDOW_S * FPS:.0f} "
        f"frames and {WINDOW_S:.0f} bursts."
    ]


def _timeline_line(timeline: Analysis | None) -> list[str]:
    if timeline is None:
        return []
    t = summarize(timeline.windows)
    return [
        "- Cross-check with capture times from each track's media timeline (frame i at "
        "anchor + i/30, burst k at anchor + k, each anchored at its earliest stamp; free of "
        "the sender's event-loop lateness, which the RTP timestamps do not carry): sender "
        f"skew {_ms(timeline.skew_ms, True)} ms, first window {_ms(t.first_ms, True)} ms, "
        f"drift {_ms(t.max_drift_ms)} ms, spread {_ms(t.spread_ms)} ms, slope "
        f"{_ms(t.slope_ms_per_hour, True)} ms/hour, max \\|offset\\| "
        f"{_ms(t.max_abs_offset_ms)} ms."
    ]


# --- the run --------------------------------------------------------------------------------


@dataclass
class MixCapture:
    """What the reader thread collects (appended from the thread; read after it ends)."""

    pictures: list[VideoSample] = field(default_factory=list)
    onsets: list[Onset] = field(default_factory=list)
    audio_frames: int = 0
    errors: list[str] = field(default_factory=list)


def _mono(frame: av.AudioFrame) -> F64:
    """The frame's channels averaged, as floats in [-1, 1)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    mono: F64 = data.astype(np.float64).mean(axis=0)
    if data.dtype.kind in "iu":
        mono /= float(2 ** (8 * data.dtype.itemsize - 1))
    return mono


def read_mix(url: str, stop: threading.Event, capture: MixCapture) -> None:
    """Decode the HTTP-FLV at ``url`` until ``stop``; reconnect (a new segment) if it breaks."""
    segment = 0
    while not stop.is_set():
        try:
            container = av.open(url, options={"rw_timeout": "10000000"}, timeout=10.0)
        except av.FFmpegError as exc:
            capture.errors.append(f"open: {exc}")
            stop.wait(1.0)
            continue
        detector = OnsetDetector()
        try:
            streams = [*container.streams.video[:1], *container.streams.audio[:1]]
            if len(streams) < 2:
                capture.errors.append(f"segment {segment}: streams {streams}")
            for packet in container.demux(streams):
                if stop.is_set():
                    break
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    if frame.pts is None or frame.time_base is None:
                        continue
                    pts = float(frame.pts * frame.time_base)
                    if isinstance(frame, av.VideoFrame):
                        index = decode_frame_index(frame)
                        capture.pictures.append(VideoSample(segment, pts, index))
                    else:
                        capture.audio_frames += 1
                        for t in detector.feed(_mono(frame), pts, frame.sample_rate):
                            capture.onsets.append(Onset(segment, t))
        except Exception as exc:  # a broken stream must not end an hour's run
            capture.errors.append(f"segment {segment}: {exc!r}")
        finally:
            container.close()
        if not stop.is_set():
            capture.errors.append(f"segment {segment} ended; reconnecting")
            segment += 1
            stop.wait(0.5)


@dataclass
class RawRun:
    video_sent: dict[int, float]
    burst_sent: dict[int, float]
    capture: MixCapture
    job: list[JobSample]
    end_status: dict[str, Any]


def _job_sample(status: Mapping[str, Any]) -> JobSample:
    values = tuple(
        float(i["av_offset_ms"])
        for i in status.get("inputs", ())
        if i.get("av_offset_ms") is not None
    )
    return JobSample(time.monotonic(), values)


async def _measure(base: str, secret: str, seconds: float) -> RawRun:
    token = mint_token(secret, room=ROOM, identity="host", role="host", ttl=int(seconds) + 900)
    video = StampedPatternTrack()
    audio = BurstAudioTrack()
    headers = {"Authorization": f"Bearer {token}"}
    job: list[JobSample] = []
    capture = MixCapture()
    async with WhipPublisher() as pub, aiohttp.ClientSession(base) as http:
        await pub.publish(base, ROOM, token, audio=audio, video=video)
        body = {
            "outputs": [],
            "layout": {"type": "grid", "labels": False},
            "encoding": {"width": WIDTH, "height": HEIGHT, "fps": FPS},
        }
        async with http.post(f"/api/rooms/{ROOM}/live", json=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"POST live: {r.status} {await r.text()}")
        await asyncio.sleep(SETTLE_S)
        stop = threading.Event()
        reader = asyncio.create_task(
            asyncio.to_thread(read_mix, f"{base}/live/{ROOM}.flv", stop, capture)
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        status: dict[str, Any] = {}
        try:
            while True:
                try:
                    async with http.get(f"/api/rooms/{ROOM}/live", headers=headers) as r:
                        status = await r.json() if r.status == 200 else {}
                except (aiohttp.ClientError, TimeoutError) as exc:
                    capture.errors.append(f"GET live: {exc!r}")
                    status = {}
                job.append(_job_sample(status))
                if reader.done():
                    break
                left = end - loop.time()
                if left <= 0:
                    break
                await asyncio.wait({reader}, timeout=min(STATUS_EVERY_S, left))
        finally:
            stop.set()
            await reader
            async with http.delete(f"/api/rooms/{ROOM}/live", headers=headers):
                pass
    return RawRun(dict(video.sent_at), dict(audio.burst_sent), capture, job, status)


def run(seconds: float) -> RawRun:
    """Start a server, publish, mix, read the mix back for ``seconds``."""
    with temporary_server("interlive-avdrift-") as (base, secret):
        return asyncio.run(_measure(base, secret, seconds))


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def save_raw(path: Path, raw: RawRun) -> None:
    """The observations as JSON, to analyse again without running again."""
    data = {
        "video_sent": raw.video_sent,
        "burst_sent": raw.burst_sent,
        "pictures": [[p.segment, p.pts, p.index] for p in raw.capture.pictures],
        "onsets": [[o.segment, o.pts] for o in raw.capture.onsets],
        "job": [asdict(s) for s in raw.job],
        "end_status": raw.end_status,
        "errors": raw.capture.errors,
    }
    path.write_text(json.dumps(data))


def load_raw(path: Path) -> RawRun:
    data = json.loads(path.read_text())
    capture = MixCapture(
        pictures=[VideoSample(int(s), float(p), i) for s, p, i in data["pictures"]],
        onsets=[Onset(int(s), float(p)) for s, p in data["onsets"]],
        errors=list(data["errors"]),
    )
    return RawRun(
        video_sent={int(k): float(v) for k, v in data["video_sent"].items()},
        burst_sent={int(k): float(v) for k, v in data["burst_sent"].items()},
        capture=capture,
        job=[JobSample(float(s["at"]), tuple(s["av_offset_ms"])) for s in data["job"]],
        end_status=dict(data["end_status"]),
    )


def analyze_raw(raw: RawRun, *, timeline: bool = False) -> Analysis:
    """The run's analysis; ``timeline``: with captures from the tracks' media timelines."""
    video, bursts = raw.video_sent, raw.burst_sent
    if timeline:
        video, bursts = timeline_captures(video, 1 / FPS), timeline_captures(bursts, 1.0)
    return analyze(video, bursts, raw.capture.pictures, raw.capture.onsets)


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def main(args: argparse.Namespace) -> int:
    seconds = float(args.duration)
    command = shlex.join(["interlive", *sys.argv[1:]])
    start, load_start, commit = _utc(), os.getloadavg(), _commit()  # the code that runs
    raw = run(seconds)
    info = RunInfo(
        command=command,
        machine=machine_info().describe(),
        start_utc=start,
        end_utc=_utc(),
        commit=commit,
        duration_s=seconds,
        load_start=load_start,
        load_end=os.getloadavg(),
    )
    if args.output:
        save_raw(Path(f"{args.output}.raw.json"), raw)
    analysis = analyze_raw(raw)
    timeline = analyze_raw(raw, timeline=True)
    text = render_report(info, analysis, raw.job, raw.end_status, timeline)
    print(text)
    for line in window_lines(analysis):
        print(f"avdrift: {line}", file=sys.stderr)
    for error in raw.capture.errors:
        print(f"avdrift: {error}", file=sys.stderr)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n" + text + "\n")
    return 0 if analysis.windows else 1


def window_lines(analysis: Analysis) -> Iterable[str]:
    """One line per window, for the log (audio latency relative to the first window's)."""
    base = analysis.windows[0].audio_latency_ms if analysis.windows else 0.0
    for w in analysis.windows:
        yield (
            f"{w.start:7.0f} s  seg {w.segment}  frames {w.frames:4d}  bursts {w.bursts:3d}  "
            f"audio latency {w.audio_latency_ms - base:+8.1f}  offset {w.offset_ms:+6.1f}  "
            f"grid {w.grid_ms:5.1f}  beyond {w.residual_ms:+6.1f}  skew {w.skew_ms:+6.1f}"
        )
