from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from interlive.mix.clock import ClockConfig, Due, OutputClock

START = 1000.0


def test_first_frames_are_due_at_start_audio_first() -> None:
    clock = OutputClock(START)
    assert clock.due(START - 0.001) == []
    assert clock.due(START) == [Due("audio", 0), Due("video", 0)]
    assert clock.due(START) == []
    # Next: audio 1 at 1024/48000 s, before video 1 at 1/30 s.
    assert clock.next_deadline() == START + 0.021333333  # deadlines floor to whole ns
    assert clock.timeout(START) == pytest.approx(1024 / 48000)
    assert clock.timeout(START + 1) == 0.0


def test_interleaving_over_the_first_100_ms() -> None:
    clock = OutputClock(0.0)
    got: list[Due] = []
    for ms in range(0, 101):
        got += clock.due(ms / 1000)
    assert got == [
        Due("audio", 0),
        Due("video", 0),
        Due("audio", 1024),  # 21.33 ms
        Due("video", 3000),  # 33.33 ms
        Due("audio", 2048),  # 42.67 ms
        Due("audio", 3072),  # 64.00 ms
        Due("video", 6000),  # 66.67 ms
        Due("audio", 4096),  # 85.33 ms
        Due("video", 9000),  # 100.00 ms
    ]


def test_one_hour_at_30_fps_is_exact() -> None:
    """Woken at each deadline, every frame is due exactly at start + pts / rate."""
    clock = OutputClock(START)
    video: list[int] = []
    audio: list[int] = []
    for _ in range(300_000):  # bounded: a clock that stops advancing fails, not hangs
        wake = clock.next_deadline()
        if wake > START + 3600:
            break
        due_now = clock.due(wake)
        assert due_now, f"nothing due at its own deadline {wake}"
        for due in due_now:
            if due.kind == "video":
                assert abs(wake - (START + due.pts / 90000)) < 1e-9, due
                video.append(due.pts)
            else:
                assert abs(wake - (START + due.pts / 48000)) < 1e-9, due
                audio.append(due.pts)
    assert len(video) == 3600 * 30 + 1
    assert len(audio) == 3600 * 48000 // 1024 + 1  # 168750 frames exactly
    assert video[-1] == 3600 * 90000
    assert audio[-1] == 3600 * 48000
    assert all(b - a == 3000 for a, b in itertools.pairwise(video))
    assert all(b - a == 1024 for a, b in itertools.pairwise(audio))
    assert clock.late_video_frames == clock.late_audio_frames == 0
    assert clock.video_time(video[-1]) == START + 3600
    assert clock.audio_time(audio[-1]) == START + 3600


def test_late_wakeups_lose_nothing() -> None:
    clock = OutputClock(START)
    video: list[int] = []
    for step in range(10_000):
        deadline = clock.next_deadline()
        if deadline > START + 60:
            break
        # Wake a varying 0-4.9 ms late, as an event loop does.
        video += [
            d.pts for d in clock.due(deadline + (step * 7919 % 4900) / 1e6) if d.kind == "video"
        ]
    assert video == [3000 * k for k in range(60 * 30 + 1)]
    assert clock.late_video_frames == clock.late_audio_frames == 0


def test_one_hour_at_ntsc_rate_has_no_drift() -> None:
    clock = OutputClock(START, ClockConfig(fps=Fraction(30000, 1001)))
    frames = clock.due(START + 3600)  # far behind: only the newest of each kind
    video = [d for d in frames if d.kind == "video"]
    # Frame k is due at k * 1001 / 30000 s: the last one by 3600 s is 107892 (3599.9964 s).
    assert video == [Due("video", 107892 * 3003)]
    assert clock.late_video_frames == 107892
    assert clock.video_time(107892 * 3003) == pytest.approx(START + 107892 * 1001 / 30000, abs=1e-9)
    frames = clock.due(START + 107893 * 1001 / 30000)
    assert frames[-1] == Due("video", 107893 * 3003)
    assert [d for d in frames if d.kind == "audio"] == [Due("audio", 168751 * 1024)]
    assert clock.late_video_frames == 107892  # nothing more skipped


def test_video_time_base_of_one_over_fps() -> None:
    clock = OutputClock(0.0, ClockConfig(fps=Fraction(25), video_clock_rate=None))
    assert clock.video_time_base == Fraction(1, 25)
    got = [d for ms in range(0, 81, 10) for d in clock.due(ms / 1000) if d.kind == "video"]
    assert got == [Due("video", 0), Due("video", 1), Due("video", 2)]
    assert clock.video_time(2) == 0.08


def test_small_backlog_is_returned_whole() -> None:
    clock = OutputClock(0.0)
    clock.due(0.0)
    # Frames 1..3 are due (deadline 3 = 100 ms); frame 1 is 99.999999 ms old: no skip.
    video = [d for d in clock.due(0.133333332) if d.kind == "video"]
    assert video == [Due("video", 3000), Due("video", 6000), Due("video", 9000)]
    assert clock.late_video_frames == 0


def test_backlog_of_max_late_frames_skips_to_the_newest() -> None:
    clock = OutputClock(0.0)
    clock.due(0.0)
    # One nanosecond later frame 1 is exactly max_late (3) frame durations old.
    video = [d for d in clock.due(0.133333333) if d.kind == "video"]
    assert video == [Due("video", 4 * 3000)]
    assert clock.late_video_frames == 3


def test_long_stall_skips_both_kinds_and_counts() -> None:
    clock = OutputClock(0.0)
    clock.due(0.0)
    assert clock.due(1.0) == [Due("audio", 46 * 1024), Due("video", 30 * 3000)]
    assert clock.late_video_frames == 29  # frames 1..29
    assert clock.late_audio_frames == 45  # frames 1..45 (46 is due at 0.98133 s)
    assert clock.due(1.0) == []


def test_after_a_skip_frames_continue_one_by_one() -> None:
    clock = OutputClock(0.0)
    clock.due(0.0)
    clock.due(1.0)
    assert clock.next_deadline() == pytest.approx(47 * 1024 / 48000)
    assert clock.due(47 * 1024 / 48000) == [Due("audio", 47 * 1024)]
    assert clock.due(31 / 30) == [Due("audio", 48 * 1024), Due("video", 31 * 3000)]
    assert clock.late_video_frames == 29 and clock.late_audio_frames == 45


def test_audio_pts_at_rounds_to_the_nearest_sample() -> None:
    clock = OutputClock(10.0)
    assert clock.audio_pts_at(10.5) == 24000
    assert clock.audio_pts_at(10.5 + 0.4 / 48000) == 24000
    assert clock.audio_pts_at(10.5 + 0.6 / 48000) == 24001
    assert clock.audio_pts_at(9.5) == -24000
    assert clock.audio_time(24000) == 10.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": Fraction(0)},
        {"fps": Fraction(500)},
        {"audio_frame_size": 0},
        {"video_clock_rate": 0},
        {"max_late": 0},
    ],
)
def test_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClockConfig(**kwargs)  # type: ignore[arg-type]
