"""The mixer's single output clock: when each output video and audio frame is due.

The output of a live job runs at its own frame rate whatever the inputs do:
a late, frozen or absent input never delays a frame.  This clock is the only
thing the mixer waits on.  It is sans-IO: the driver asks
:meth:`OutputClock.next_deadline` (or :meth:`OutputClock.timeout`), sleeps, then
calls :meth:`OutputClock.due` with the time it woke and produces each
``(kind, pts)`` it gets, in order.

Theory of operation
-------------------
*Integer time.*  ``now`` is a float of seconds (the event loop's monotonic
clock); it is converted once to integer nanoseconds.  Video frame ``k`` is due
at ``start + floor(k * den * 1e9 / num)`` ns for a frame rate of ``num/den``,
audio frame ``m`` at ``start + floor(m * frame_size * 1e9 / sample_rate)`` ns:
each deadline is computed from its index, never by adding durations, so
nothing accumulates and an hour at 30000/1001 fps is as exact as a second.

*Timestamps.*  Video pts count in the video time base, 1/90000 by default
(``floor(k * 90000 * den / num)``, exact for every common rate) or 1/fps
(pts = k).  Audio pts count samples at 48 kHz (``m * frame_size``).  Both
are monotonic and describe real time since ``start``, so A/V stay aligned
in the muxer.

*Falling behind.*  When the driver wakes late, every frame whose deadline
has passed is due.  A small backlog (the oldest due frame less than
``max_late`` video frame durations old: at most ``max_late`` video frames)
is returned whole so the stream stays gap-free; a larger one is not burst
out: only the newest frame of that kind is returned and the skipped ones are
counted (:attr:`OutputClock.late_video_frames`,
:attr:`OutputClock.late_audio_frames`).  Their pts are simply never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple

__all__ = ["ClockConfig", "Due", "OutputClock"]

NS = 1_000_000_000
Kind = Literal["video", "audio"]


class Due(NamedTuple):
    """One frame to produce now: its kind and pts (in that kind's time base)."""

    kind: Kind
    pts: int


@dataclass(frozen=True, slots=True)
class ClockConfig:
    fps: Fraction = Fraction(30)
    audio_frame_size: int = 1024  # samples per audio frame (AAC: 1024)
    sample_rate: int = 48_000
    #: Ticks per second of the video pts, or None for 1/fps (pts = frame index).
    video_clock_rate: int | None = 90_000
    #: Video frames that may be produced in one burst before the clock skips.
    max_late: int = 3

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.fps > 240:
            raise ValueError(f"fps must be in (0, 240], got {self.fps}")
        if self.audio_frame_size <= 0 or self.sample_rate <= 0:
            raise ValueError("audio frame size and sample rate must be positive")
        if self.video_clock_rate is not None and self.video_clock_rate <= 0:
            raise ValueError("video clock rate must be positive")
        if self.max_late < 1:
            raise ValueError(f"max_late must be >= 1, got {self.max_late}")


def _to_ns(seconds: float) -> int:
    return round(seconds * NS)


class OutputClock:
    """Due video and audio frames from ``now``; see the module docstring."""

    def __init__(self, start: float, config: ClockConfig | None = None) -> None:
        self.config = cfg = config or ClockConfig()
        fps = Fraction(cfg.fps)
        self._num, self._den = fps.numerator, fps.denominator
        self._start_ns = _to_ns(start)
        self._video_next = 0  # index of the next video frame to produce
        self._audio_next = 0
        # Video deadlines: start + floor(k * _v_step_num / _num); audio likewise.
        self._v_step_num = self._den * NS
        self._a_step_num = cfg.audio_frame_size * NS
        # How far back a backlog may reach before skipping, in ns.
        self._max_lag_ns = cfg.max_late * self._v_step_num // self._num
        self.late_video_frames = 0
        self.late_audio_frames = 0

    # -- frame times ----------------------------------------------------------------

    @property
    def video_time_base(self) -> Fraction:
        rate = self.config.video_clock_rate
        return Fraction(1, rate) if rate is not None else Fraction(self._den, self._num)

    @property
    def audio_time_base(self) -> Fraction:
        return Fraction(1, self.config.sample_rate)

    def _video_deadline_ns(self, k: int) -> int:
        return self._start_ns + k * self._v_step_num // self._num

    def _audio_deadline_ns(self, m: int) -> int:
        return self._start_ns + m * self._a_step_num // self.config.sample_rate

    def video_pts(self, k: int) -> int:
        """Pts of video frame ``k`` in :attr:`video_time_base`."""
        rate = self.config.video_clock_rate
        return k if rate is None else k * rate * self._den // self._num

    def audio_pts(self, m: int) -> int:
        return m * self.config.audio_frame_size

    def video_time(self, pts: int) -> float:
        """The output (monotonic) time in seconds that a video pts presents at."""
        return (
            self._start_ns
            + pts * self.video_time_base.numerator * NS // self.video_time_base.denominator
        ) / NS

    def audio_time(self, pts: int) -> float:
        return (self._start_ns + pts * NS // self.config.sample_rate) / NS

    def audio_pts_at(self, t: float) -> int:
        """The audio pts (nearest sample) of output time ``t``; may be negative before start."""
        return (((_to_ns(t) - self._start_ns) * self.config.sample_rate) * 2 + NS) // (2 * NS)

    # -- scheduling -----------------------------------------------------------------

    def next_deadline(self) -> float:
        """The time (seconds) at which the next frame of either kind is due."""
        ns = min(
            self._video_deadline_ns(self._video_next), self._audio_deadline_ns(self._audio_next)
        )
        return ns / NS

    def timeout(self, now: float) -> float:
        """Seconds to sleep from ``now`` until :meth:`next_deadline` (0 if already due)."""
        return max(0.0, self.next_deadline() - now)

    def due(self, now: float) -> list[Due]:
        """The frames due at ``now``, ordered by deadline (audio first on a tie)."""
        now_ns = _to_ns(now)
        elapsed = now_ns - self._start_ns
        if elapsed < 0:
            return []
        # Highest index whose deadline <= now: floor(k * step / rate) <= elapsed
        # <=> k * step < (elapsed + 1) * rate.
        v_last = ((elapsed + 1) * self._num - 1) // self._v_step_num
        rate = self.config.sample_rate
        a_last = ((elapsed + 1) * rate - 1) // self._a_step_num
        video = self._take(v_last, video=True, now_ns=now_ns)
        audio = self._take(a_last, video=False, now_ns=now_ns)
        events = [(self._audio_deadline_ns(m), 0, Due("audio", self.audio_pts(m))) for m in audio]
        events += [(self._video_deadline_ns(k), 1, Due("video", self.video_pts(k))) for k in video]
        events.sort(key=lambda e: (e[0], e[1]))
        return [e[2] for e in events]

    def _take(self, last: int, *, video: bool, now_ns: int) -> range:
        first = self._video_next if video else self._audio_next
        if last < first:
            return range(0)
        deadline = self._video_deadline_ns(first) if video else self._audio_deadline_ns(first)
        if now_ns - deadline >= self._max_lag_ns:  # too far behind: skip to the newest
            skipped = last - first
            if video:
                self.late_video_frames += skipped
            else:
                self.late_audio_frames += skipped
            first = last
        if video:
            self._video_next = last + 1
        else:
            self._audio_next = last + 1
        return range(first, last + 1)
