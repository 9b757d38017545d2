"""The A/V drift benchmark's pure parts: burst track, onset detector, analysis, report.

The analysis is checked on a modelled mixer whose answer is known by
construction: the sender captures video frame ``i`` at ``T0 + i/30`` and
burst ``k`` at ``T0 + SKEW + k``; the mix presents audio ``AUDIO_LATENCY``
after capture (on an arbitrary pts origin) and shows each video frame at the
first output picture (a grid of 1/30 s with phase ``GRID``) at or after its
due instant, ``sync_error`` later than the audio captured with it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from interlive.bench.avdrift import (
    SAMPLE_RATE,
    Analysis,
    BurstAudioTrack,
    JobSample,
    Onset,
    OnsetDetector,
    RunInfo,
    VideoSample,
    Window,
    analyze,
    blocks,
    burst_gate,
    phase_mean,
    render_report,
    summarize,
    timeline_captures,
)

FRAME = 1 / 30
T0 = 1000.0  # the sender's monotonic clock at frame 0
SKEW = -0.012  # the audio track's timeline starts 12 ms before the video's
AUDIO_LATENCY = 0.3  # capture -> output pts of the audio (pts origin: T0)
GRID = 0.010  # output pictures at n/30 + 10 ms


def burst_times(seconds: int) -> dict[int, float]:
    return {k: T0 + SKEW + k for k in range(seconds)}


def video_times(seconds: int) -> dict[int, float]:
    return {i: T0 + i * FRAME for i in range(seconds * 30)}


def mix(
    video_sent: dict[int, float],
    burst_sent: dict[int, float],
    *,
    sync_error: float = 0.0,
    segment: int = 0,
    origin: float = 0.0,
    step_at: float = math.inf,
) -> tuple[list[VideoSample], list[Onset]]:
    """What the modelled mixer outputs: every picture of its grid, every burst's onset.

    From capture ``T0 + step_at`` on, the latency is 0.3 s more (a render delay step).
    """

    def latency(t: float) -> float:
        return AUDIO_LATENCY + (0.3 if t - T0 >= step_at else 0.0)

    due = {i: t - T0 + latency(t) + sync_error - origin for i, t in video_sent.items()}
    first, last = min(due.values()), max(due.values())
    pictures = []
    n = math.ceil((first - GRID - origin) / FRAME)
    shown = None
    while (pts := n * FRAME + GRID - origin) <= last + FRAME:
        ready = [i for i, d in due.items() if d <= pts + 1e-9]
        shown = max(ready) if ready else shown
        if shown is not None:
            pictures.append(VideoSample(segment, pts, shown))
        n += 1
    onsets = [Onset(segment, t - T0 + latency(t) - origin) for t in burst_sent.values()]
    return pictures, onsets


# --- the publisher's audio --------------------------------------------------------------


def test_burst_gate_marks_the_first_samples_of_each_second() -> None:
    gate = burst_gate(47_990, 30, SAMPLE_RATE, 10)
    assert gate.tolist() == [0.0] * 10 + [1.0] * 10 + [0.0] * 10


async def test_burst_track_is_silent_but_for_a_tone_at_each_second() -> None:
    track = BurstAudioTrack(burst_ms=30, frequency=1000.0, amplitude=0.5, realtime=False)
    frames = [await track.recv() for _ in range(110)]  # 2.2 s of 20 ms frames
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int64)
    n = np.arange(samples.size)
    in_burst = n % SAMPLE_RATE < 1440
    tone = np.round(np.sin(2 * np.pi * 1000 * n / SAMPLE_RATE) * 0.5 * 32767)
    assert (samples[~in_burst] == 0).all()
    assert np.array_equal(samples[in_burst], tone[in_burst].astype(np.int64))
    assert [f.pts for f in frames[:3]] == [0, 960, 1920]
    assert sorted(track.burst_sent) == [0, 1, 2]
    assert track.burst_sent[0] <= track.burst_sent[1] <= track.burst_sent[2]


# --- onsets -------------------------------------------------------------------------------


def test_onsets_are_found_to_the_sample_across_chunks() -> None:
    signal = np.zeros(SAMPLE_RATE * 3)
    starts = [20_000, 48_000 + 517, 96_000 + 1023]
    for s in starts:
        signal[s : s + 1440] = 0.5
    detector = OnsetDetector(threshold=0.1, rearm=0.2)
    found: list[float] = []
    position = 0
    for size in [700, 19_500, 333, 28_000, 1024] * 10:  # chunk edges fall inside bursts too
        chunk = signal[position : position + size]
        found += detector.feed(chunk, 5.0 + position / SAMPLE_RATE, SAMPLE_RATE)
        position += size
    assert found == pytest.approx([5.0 + s / SAMPLE_RATE for s in starts], abs=1e-12)


def test_no_onset_for_a_burst_cut_by_the_stream_start_or_without_enough_silence() -> None:
    signal = np.zeros(SAMPLE_RATE)
    signal[:500] = 0.5  # the stream starts inside a burst
    signal[20_000:20_100] = 0.5  # a burst after silence: an onset
    signal[20_100 + 4_000 : 20_100 + 4_100] = 0.5  # only 83 ms of silence before: none
    onsets = OnsetDetector(threshold=0.1, rearm=0.2).feed(signal, 0.0, SAMPLE_RATE)
    assert onsets == [20_000 / SAMPLE_RATE]


async def test_the_burst_track_onset_is_two_samples_after_the_burst_start() -> None:
    # 1 kHz from phase 0 at amplitude 0.5: sample 1 is 0.065, sample 2 is 0.129 > 0.1
    track = BurstAudioTrack(realtime=False)
    detector = OnsetDetector()
    onsets: list[float] = []
    for _ in range(160):  # 3.2 s
        frame = await track.recv()
        pcm = frame.to_ndarray().reshape(-1) / 32768
        onsets += detector.feed(pcm, int(frame.pts or 0) / SAMPLE_RATE, SAMPLE_RATE)
    # no onset at 0: the stream's start counts as loud
    assert onsets == pytest.approx([k + 2 / SAMPLE_RATE for k in (1, 2, 3)], abs=1e-12)


# --- analysis -----------------------------------------------------------------------------


def test_phase_mean_wraps() -> None:
    assert phase_mean([0.2, 0.4], 1.0) == pytest.approx(0.3)
    across = phase_mean([0.95, 0.05, 0.0], 1.0)  # 0, not 1/3: the values wrap around 0
    assert min(across, 1.0 - across) == pytest.approx(0.0, abs=1e-9)
    assert phase_mean([0.9, 0.98], 1.0) == pytest.approx(0.94)
    assert math.isnan(phase_mean([], 1.0))


def test_a_synced_mixer_shows_only_the_frame_grid() -> None:
    video, bursts = video_times(40), burst_times(40)
    pictures, onsets = mix(video, bursts)
    result = analyze(video, bursts, pictures, onsets)
    # frame i is due at i/30 + 0.3 = (i + 9)/30: the next picture is 10 ms later
    assert len(result.windows) == 4
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0, abs=1e-6)
        assert w.grid_ms == pytest.approx(10.0, abs=1e-6)
        assert w.residual_ms == pytest.approx(0.0, abs=1e-6)
        assert w.grid_steps == 0
        assert w.skew_ms == pytest.approx(SKEW * 1000)
    assert result.skew_ms == pytest.approx(SKEW * 1000)
    assert result.frames_missing == 0 and result.bursts_missing == 0
    assert result.unreadable == result.spurious == result.duplicates == 0
    assert result.pair_offsets_ms == pytest.approx([10.0] * len(result.pair_offsets_ms))


def test_a_render_delay_step_inside_a_window_moves_audio_and_video_alike() -> None:
    video, bursts = video_times(40), burst_times(40)
    pictures, onsets = mix(video, bursts, step_at=14.5)
    result = analyze(video, bursts, pictures, onsets)
    assert result.bursts_missing == 0
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0, abs=1e-6)
    assert result.pair_offsets_ms == pytest.approx([10.0] * len(result.pair_offsets_ms))


def test_a_sync_error_past_the_grid_edge_shows_a_whole_picture_late() -> None:
    video, bursts = video_times(20), burst_times(20)
    # 12 ms late: due 2 ms after a grid point, shown at the next one, 31.3 ms after due
    pictures, onsets = mix(video, bursts, sync_error=0.012)
    result = analyze(video, bursts, pictures, onsets)
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0 + 1000 * FRAME, abs=1e-6)
        assert w.grid_ms == pytest.approx(10.0, abs=1e-6)
        assert w.grid_steps == 1
        assert w.residual_ms == pytest.approx(0.0, abs=1e-6)


def test_a_reconnect_starts_a_new_pts_origin_without_moving_the_offset() -> None:
    video, bursts = video_times(40), burst_times(40)
    early = {i: t for i, t in video.items() if i < 600}
    late = {i: t for i, t in video.items() if i >= 600}
    p0, o0 = mix(early, {k: t for k, t in bursts.items() if k < 20})
    p1, o1 = mix(late, {k: t for k, t in bursts.items() if k >= 20}, segment=1, origin=17.25)
    result = analyze(video, bursts, p0 + p1, o0 + o1)
    assert result.segments == 2
    assert [w.segment for w in result.windows] == [0, 0, 1, 1]
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0, abs=1e-6)


def test_missing_unreadable_spurious_and_duplicate_observations_are_counted() -> None:
    video, bursts = video_times(30), burst_times(30)
    pictures, onsets = mix(video, bursts)
    pictures = [p for p in pictures if p.index != 45]  # never shown
    pictures.append(VideoSample(0, 3.0, None))  # a code that did not read
    pictures.append(VideoSample(0, 3.1, 10**6))  # a code naming no frame sent
    onsets = [o for o in onsets if o.pts != pytest.approx(3 + SKEW + AUDIO_LATENCY)]  # burst 3
    onsets.append(Onset(0, 5 + SKEW + AUDIO_LATENCY + 0.1))  # a second onset for burst 5
    onsets.append(Onset(0, 29 + SKEW + AUDIO_LATENCY + 5.0))  # far past the last burst
    onsets.append(Onset(7, 1.0))  # a segment without pictures
    result = analyze(video, bursts, pictures, onsets)
    assert result.frames_missing == 1
    assert result.unreadable == 2
    assert result.bursts_missing == 1
    assert result.duplicates == 1
    assert result.spurious == 2
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0, abs=1e-6)


def test_nothing_read_back_gives_no_windows() -> None:
    result = analyze(video_times(2), burst_times(2), [VideoSample(0, 0.0, None)], [])
    assert result.windows == [] and result.unreadable == 1
    assert math.isnan(summarize(result.windows).max_drift_ms)


def test_timeline_captures_drop_the_senders_lateness() -> None:
    late = {0: 10.000, 1: 10.045, 2: 10.0667, 3: 10.1}  # frame 1 left 12 ms late
    assert timeline_captures(late, FRAME) == pytest.approx({n: 10.0 + n * FRAME for n in range(4)})
    assert timeline_captures({}, 1.0) == {}


def test_the_timeline_cross_check_agrees_when_only_the_stamps_jitter() -> None:
    video, bursts = video_times(20), burst_times(20)
    pictures, onsets = mix(video, bursts)
    jittered = {i: t + (0.004 if i % 7 == 3 else 0.0) for i, t in video.items()}
    result = analyze(timeline_captures(jittered, FRAME), bursts, pictures, onsets)
    for w in result.windows:
        assert w.offset_ms == pytest.approx(10.0, abs=1e-6)


# --- drift, blocks and report ---------------------------------------------------------------


def window(start: float, offset: float, grid: float = 10.0) -> Window:
    return Window(start, 0, 300, 10, offset, 500.0, -12.0, grid)


def test_drift_is_measured_from_the_first_window_and_fitted() -> None:
    # +2 ms every 10 s window: 720 ms/hour
    windows = [window(10.0 * w, 5.0 + 2.0 * w) for w in range(30)]
    drift = summarize(windows)
    assert drift.first_ms == pytest.approx(5.0)
    assert drift.max_drift_ms == pytest.approx(58.0)
    assert drift.spread_ms == pytest.approx(58.0)
    assert drift.slope_ms_per_hour == pytest.approx(720.0)
    assert drift.max_abs_offset_ms == pytest.approx(63.0)
    assert not drift.goal_met
    steady = summarize([window(10.0 * w, 5.0 + (w % 3)) for w in range(360)])
    assert steady.max_drift_ms == pytest.approx(2.0) and steady.goal_met
    assert abs(steady.slope_ms_per_hour) < 0.5


def test_blocks_of_five_minutes_with_the_jobs_samples() -> None:
    windows = [window(10.0 * w, float(w // 30)) for w in range(60)]  # 0 ms, then 1 ms
    job = [JobSample(T0 + 30, (4.0,)), JobSample(T0 + 90, (6.0,)), JobSample(T0 + 330, (-2.0,))]
    rows = blocks(windows, job, T0)
    assert [(r.start, r.windows, r.median_ms, r.min_ms, r.max_ms) for r in rows] == [
        (0.0, 30, 0.0, 0.0, 0.0),
        (300.0, 30, 1.0, 1.0, 1.0),
    ]
    assert [r.job_ms for r in rows] == [5.0, -2.0]
    assert [r.grid_ms for r in rows] == [10.0, 10.0]


def test_report_has_a_row_per_five_minutes_and_the_verdict() -> None:
    info = RunInfo(
        "interlive bench mix --av-drift --duration 600",
        "2 cores",
        "2026-11-24 20:00:00",
        "2026-11-24 20:10:00",
        "abc1234",
        600.0,
        (1.0, 1.0, 1.0),
        (2.0, 1.5, 1.0),
    )
    windows = [window(10.0 * w, 5.0 + 2.0 * w) for w in range(60)]
    analysis = Analysis(windows, T0, 18000, 17990, 18010, 3, 600, 598, 600, 1, 0, 1)
    text = render_report(info, analysis, [JobSample(T0 + 60, (8.0,))], {"dropped_frames": 4})
    assert "| 0-5 | 30 |" in text and "| 5-10 | 30 |" in text
    assert "**not met**" in text and "10 min, not an hour" in text
    assert "10 never shown" in text and "2 without an onset" in text and "4 dropped" in text
