from __future__ import annotations

import itertools
import math

import pytest

from interlive.mix.sync import ParticipantSync, RtpToNtp, StreamSync, SyncConfig, VideoSync
from interlive.rtp.ntp import ntp_from_unix

T0 = 1_700_000_000.0  # the sender's wall clock (Unix seconds) at capture time 0
WRAP = 1 << 32


# -- RTP -> NTP -----------------------------------------------------------------------


def test_one_report_uses_the_nominal_rate() -> None:
    m = RtpToNtp(90000)
    assert m.seconds(123) is None and m.rate is None
    assert m.add(ntp_from_unix(T0), 10_000)
    assert m.rate == 90000
    assert m.seconds(10_000 + 45_000) == pytest.approx(T0 + 0.5, abs=1e-6)


def test_fit_follows_a_fast_rtp_clock() -> None:
    m = RtpToNtp(90000)
    for k in range(61):  # 100 ppm fast: 90009 ticks per second
        assert m.add(ntp_from_unix(T0 + k), 5000 + 90009 * k)
    assert m.reports == 8
    assert m.rate == pytest.approx(90009, abs=1e-3)
    # An hour past the last report the mapping is still exact ...
    rtp = 5000 + 90009 * 3660
    seconds = m.seconds(rtp)
    assert seconds is not None and abs(seconds - (T0 + 3660)) < 1e-5
    # ... where the nominal rate would be off by a third of a second.
    nominal = T0 + 60 + (rtp - (5000 + 90009 * 60)) / 90000
    assert nominal - (T0 + 3660) == pytest.approx(0.36, abs=1e-3)


def test_untrusted_slope_falls_back_to_nominal_through_the_newest_report() -> None:
    m = RtpToNtp(90000)
    for k in range(4):  # 2.2 % fast: further off than max_rate_error (1 %)
        m.add(ntp_from_unix(T0 + k), 92000 * k)
    assert m.rate == 90000
    assert m.seconds(92000 * 3) == pytest.approx(T0 + 3, abs=1e-6)
    assert m.resets == 0


def test_stale_report_is_ignored() -> None:
    m = RtpToNtp(48000)
    assert m.add(ntp_from_unix(T0 + 1), 48000)
    assert not m.add(ntp_from_unix(T0 + 1), 99999)
    assert not m.add(ntp_from_unix(T0), 0)
    assert m.reports == 1


def test_clock_jump_restarts_the_history() -> None:
    m = RtpToNtp(90000)
    for k in range(10):
        m.add(ntp_from_unix(T0 + k), 90000 * k)
    jumped = 90000 * 10 + 1_000_000  # the sender restarted its RTP clock
    assert m.add(ntp_from_unix(T0 + 10), jumped)
    assert m.resets == 1 and m.reports == 1
    assert m.seconds(jumped + 9000) == pytest.approx(T0 + 10.1, abs=1e-6)


# -- streams --------------------------------------------------------------------------


def test_timestamp_wrap_is_invisible() -> None:
    participant = ParticipantSync()
    video = StreamSync(participant, 90000, "video")
    start = WRAP - 45_000  # wraps half a second in
    assert video.on_sender_report(ntp_from_unix(T0), start)
    captures = []
    for k in range(60):
        timing = video.on_frame((start + 3000 * k) % WRAP, 500.0 + k / 30)
        assert timing.synced
        captures.append(timing.capture)
    assert captures == pytest.approx([T0 + k / 30 for k in range(60)], abs=1e-6)


def test_before_a_sender_report_arrival_time_is_the_clock() -> None:
    participant = ParticipantSync()
    video: VideoSync[int] = VideoSync(participant)
    for k in range(30):
        arrival = 50.0 + k / 30 + 0.05  # constant network delay
        timing = video.push((7777 + 3000 * k) % WRAP, arrival, k)
        assert not timing.synced
        assert timing.local == pytest.approx(arrival, abs=1e-9)
        # Lateness 0 + margin 10 ms is below the floor: presentation at arrival + 40 ms.
        assert timing.presentation == pytest.approx(arrival + 0.04, abs=1e-9)
    assert participant.av_offset_ms() is None


def test_sr_mapping_holds_for_an_hour_across_a_wrap_with_a_fast_clock() -> None:
    participant = ParticipantSync()
    video = StreamSync(participant, 90000, "video")
    start = WRAP - 10 * 90009  # wraps after 10 s
    for k in range(3601):  # one SR and one frame per second (sparse, for speed)
        rtp = (start + 90009 * k) % WRAP
        video.on_sender_report(ntp_from_unix(T0 + k), rtp)
        ready = 100.0 + k + 0.03
        timing = video.on_frame(rtp, ready)
        assert timing.capture == pytest.approx(T0 + k, abs=2e-6)
        assert timing.local == pytest.approx(ready, abs=2e-6), k
    assert video.mapping.rate == pytest.approx(90009, abs=1e-3)


def test_audio_and_video_of_a_participant_stay_in_sync() -> None:
    """Audio 20 ms chunks, video 30 fps with 50 ms decode; SRs on one NTP clock."""
    a0, v0 = 3_000_000_000, 4_290_000_000  # video wraps after ~0.55 s
    participant = ParticipantSync()
    audio = StreamSync(participant, 48000, "audio")
    video: VideoSync[int] = VideoSync(participant)
    base = 100.03  # local time of capture 0 through the fastest network path
    events: list[tuple[float, int, int]] = []  # (time, order, index)
    events += [(base + j * 0.02, 0, j) for j in range(150)]  # audio ready
    events += [(base + k / 30 + 0.05, 1, k) for k in range(90)]  # video ready
    events += [(100.005 + n / 30, 2, n) for n in range(90)]  # output frame instants
    events.sort()
    audio.on_sender_report(ntp_from_unix(T0), a0)
    video.on_sender_report(ntp_from_unix(T0), v0)
    shown: list[tuple[float, int | None]] = []
    audio_presented: list[tuple[int, float]] = []
    for when, kind, index in events:
        if kind == 0:
            timing = audio.on_frame((a0 + 960 * index) % WRAP, when)
            audio_presented.append((index, timing.presentation))
        elif kind == 1:
            video.push((v0 + 3000 * index) % WRAP, when, index)
        else:
            shown.append((when, video.frame_at(when)))
    delay = participant.render_delay
    assert delay == pytest.approx(0.06, abs=1e-6)  # video's 50 ms lateness + 10 ms margin
    for index, presented in audio_presented[50:]:  # once the delay has settled
        assert presented == pytest.approx(base + index * 0.02 + delay, abs=1e-6)
    for when, frame in shown[30:]:
        assert frame == math.floor((when - base - delay) * 30 + 1e-9)
    offset = participant.av_offset_ms()
    assert offset is not None and 0 <= offset <= 1000 / 30


def test_render_delay_rises_at_once_and_falls_slowly() -> None:
    config = SyncConfig()
    participant = ParticipantSync(config)
    video: VideoSync[int] = VideoSync(participant)
    delays: list[tuple[float, float]] = []
    for k in range(30 * 20):
        t = k / 30
        jitter = 0.08 if (k % 5 == 0 and 0 < k < 150) else 0.0  # 80 ms spikes for 5 s
        ready = 10.0 + t + 0.02 + jitter
        video.push(3000 * k, ready, k)
        delays.append((t, participant.render_delay))
        if k == 5:  # the first spike lifts the delay immediately
            assert participant.render_delay == pytest.approx(0.09, abs=1e-9)
    by_time = dict(delays)
    assert by_time[4.9] == pytest.approx(0.09, abs=1e-9)
    # Once spikes are under 5 % of the 5 s window (about 8.5 s: the last one was at 4.83 s)
    # the delay falls by exactly 20 ms per second of frames, down to the 40 ms floor.
    start = next(t for t, d in delays if t > 1 and d < 0.09 - 1e-9)
    assert 8.0 < start < 9.9
    held = [d for t, d in delays if 5 / 30 <= t < start]
    assert held == pytest.approx([0.09] * len(held), abs=1e-9)  # no dip between spikes
    falling = [d for t, d in delays if t >= start - 1 / 30 and d > config.min_delay + 1e-9]
    steps = [a - b for a, b in itertools.pairwise(falling)]
    assert len(steps) >= 70
    assert steps == pytest.approx([config.delay_decrease / 30] * len(steps), abs=1e-9)
    assert by_time[start + 2.6] == pytest.approx(config.min_delay)
    assert delays[-1][1] == pytest.approx(config.min_delay)


def test_frame_at_shows_the_latest_due_frame_or_repeats() -> None:
    participant = ParticipantSync()
    video: VideoSync[str] = VideoSync(participant)
    assert video.frame_at(0.0) is None
    for k in range(5):
        video.push(9000 * k, 0.1 * k, f"f{k}")  # local == ready: no lateness, delay 40 ms
    assert participant.render_delay == pytest.approx(0.04)
    assert video.frame_at(0.03) is None  # f0 is due at 0.04
    assert video.frame_at(0.05) == "f0"
    assert video.frame_at(0.25) == "f2"  # f1 was never shown
    assert video.frames_dropped == 1
    assert video.frame_at(0.26) == "f2"  # nothing newer: repeat
    assert video.frame_at(1.0) == "f4"
    assert video.frame_at(2.0) == "f4"
    current = video.current
    assert current is not None and current.local == pytest.approx(0.4)


def test_queue_is_bounded() -> None:
    participant = ParticipantSync(SyncConfig(max_queued_frames=3))
    video: VideoSync[int] = VideoSync(participant)
    for k in range(5):
        video.push(3000 * k, k / 30, k)
    assert video.frames_dropped == 2
    assert video.frame_at(10.0) == 4
    assert video.frames_dropped == 4


def test_offset_follows_a_faster_path_at_once() -> None:
    participant = ParticipantSync()
    audio = StreamSync(participant, 48000, "audio")
    audio.on_sender_report(ntp_from_unix(T0), 0)
    audio.on_packet(0, 20.10)
    assert participant.ntp_offset() == pytest.approx(20.10 - T0, abs=1e-6)
    timing = audio.on_frame(960, 20.09 + 0.02)  # 10 ms faster than before
    assert participant.ntp_offset() == pytest.approx(20.09 - T0, abs=1e-6)
    assert timing.local == pytest.approx(20.11, abs=1e-6)


def test_bad_configs() -> None:
    with pytest.raises(ValueError):
        SyncConfig(min_delay=0.5, max_delay=0.1)
    with pytest.raises(ValueError):
        SyncConfig(delay_quantile=0)
    with pytest.raises(ValueError):
        RtpToNtp(0)
