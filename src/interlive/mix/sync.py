"""A/V sync of the mixer's inputs: RTP time to output time, and which frame to show.

Every input stream stamps its media with its own RTP clock (32-bit, random
start, nominally 90 kHz for video and 48 kHz for Opus).  Its RTCP sender
reports pair an RTP timestamp with the sender's NTP wall clock (RFC 3550
§6.4.1), which is what lets a receiver line up the audio and the video of one
sender.  The mixer presents everything on its own output clock
(:mod:`interlive.mix.clock`), so each stream's timestamps are mapped:

    RTP timestamp -> capture time on the sender's clock -> local time -> presentation time

Theory of operation
-------------------
1. *Unwrap* the 32-bit timestamp (:class:`~interlive.rtp.seq.TimestampUnwrapper`),
   so a wrap is invisible from here on.
2. *RTP -> sender clock* (:class:`RtpToNtp`).  With sender reports, a
   least-squares line through the last ``sr_history`` (NTP, RTP) pairs: its
   slope is the sender's real RTP clock rate, so a capture clock that runs
   100 ppm fast (360 ms an hour) does not drift.  One report, or a slope off
   the nominal rate by more than ``max_rate_error``, uses the nominal rate
   through the newest report.  A report that contradicts the line by more
   than ``reset_error`` (the sender restarted its clock) starts a new history.
   Before the first report the capture time is ``(ts - first ts) / rate``, a
   clock of the stream's own; such a stream is not *synced* (its A/V offset
   is unknown) until a report arrives.
3. *Sender clock -> local time.*  ``local = capture + offset``, where the
   offset is the minimum of ``arrival - capture`` over the last
   ``offset_window`` seconds: the fastest path through the network, free of
   queueing.  After sender reports the offset belongs to the participant
   (:class:`ParticipantSync`), shared by its audio and video because their
   NTP clock is the same: that is what keeps them in sync.  The window lets
   the offset follow a route change and the slow drift between the sender's
   wall clock and ours.
4. *Render delay.*  A frame is usable ``lateness = ready - local`` after its
   local capture time (network jitter, frame assembly, decoding).  Each
   stream keeps the ``delay_quantile`` of its recent lateness plus a margin;
   the participant's render delay is the largest of its streams' (audio waits
   for the video), clamped to ``[min_delay, max_delay]``; it rises at once
   and falls at most ``delay_decrease`` seconds per second, so shrinking it
   skips no more than a sample or frame at a time.
5. *Presentation.*  Audio presents at ``local + delay`` (the driver turns
   that into an output pts with
   :meth:`~interlive.mix.clock.OutputClock.audio_pts_at`).  At output time
   ``T``, video shows the latest decoded frame with ``local <= T - delay``
   (:meth:`VideoSync.frame_at`), or keeps the previous one.

The A/V offset of a participant (:meth:`ParticipantSync.av_offset_ms`) is
``(T - capture)`` of the video frame last shown minus ``(presentation -
capture)`` of the audio last mapped, both on the sender's NTP clock: positive
when video is shown later than the audio captured with it.  Video frames are
chosen at output frame instants, so it ranges over one output frame interval.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from interlive.rtp.ntp import unix_from_ntp
from interlive.rtp.seq import TimestampUnwrapper

__all__ = [
    "ParticipantSync",
    "RtpToNtp",
    "StreamSync",
    "SyncConfig",
    "Timing",
    "VideoSync",
]

F = TypeVar("F")
Kind = Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class SyncConfig:
    sr_history: int = 8  # sender reports in the RTP->NTP fit
    max_rate_error: float = 0.01  # a fitted rate further off nominal is not trusted
    reset_error: float = 0.05  # a report this far off the fit restarts the history (s)
    offset_window: float = 30.0  # seconds of arrival-offset minimum
    min_delay: float = 0.04  # render delay bounds, seconds
    max_delay: float = 1.0
    delay_margin: float = 0.01
    delay_quantile: float = 0.95
    delay_window: float = 5.0  # seconds of lateness history
    delay_decrease: float = 0.02  # seconds per second the render delay may fall
    max_queued_frames: int = 120

    def __post_init__(self) -> None:
        if self.sr_history < 1 or self.max_queued_frames < 1:
            raise ValueError("sr_history and max_queued_frames must be >= 1")
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if not 0 < self.delay_quantile <= 1:
            raise ValueError("delay_quantile must be in (0, 1]")
        if self.offset_window <= 0 or self.delay_window <= 0 or self.delay_decrease < 0:
            raise ValueError("windows must be positive and delay_decrease >= 0")


@dataclass(frozen=True, slots=True)
class Timing:
    """Where one frame or audio chunk sits in time (all in seconds)."""

    capture: float  # on the sender's NTP clock (Unix seconds) if synced, else the stream's own
    synced: bool  # mapped through a sender report
    local: float  # capture time on the local (output) clock
    presentation: float  # local + the participant's render delay when mapped


class RtpToNtp:
    """Extended RTP timestamps to sender NTP time from sender reports (see module doc)."""

    def __init__(self, clock_rate: int, config: SyncConfig | None = None) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self.config = config or SyncConfig()
        self._reports: deque[tuple[int, int]] = deque(maxlen=self.config.sr_history)
        self._fit: tuple[float, float, float] | None = None  # (x_mean, y_mean, slope)
        self.resets = 0

    @property
    def reports(self) -> int:
        return len(self._reports)

    @property
    def rate(self) -> float | None:
        """The RTP clock rate in use (ticks per sender second), None before a report."""
        return None if self._fit is None else self._fit[2]

    def _x(self, ntp: int) -> float:
        """Seconds since the oldest report in the history."""
        return (ntp - self._reports[0][0]) / 2**32

    def add(self, ntp: int, rtp_ext: int) -> bool:
        """Take a sender report (64-bit NTP, extended RTP); False when ignored (stale)."""
        if self._reports:
            last_ntp, _ = self._reports[-1]
            if ntp <= last_ntp:
                return False
            predicted = self.seconds(rtp_ext)
            actual = unix_from_ntp(ntp)
            if predicted is not None and abs(predicted - actual) > self.config.reset_error:
                self._reports.clear()
                self.resets += 1
        self._reports.append((ntp, rtp_ext))
        self._refit()
        return True

    def _refit(self) -> None:
        reports = self._reports
        ntp0, rtp0 = reports[0]
        xs = [(ntp - ntp0) / 2**32 for ntp, _ in reports]
        ys = [float(rtp - rtp0) for _, rtp in reports]
        nominal = float(self.clock_rate)
        slope = nominal
        if len(reports) >= 2:
            x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
            var = sum((x - x_mean) ** 2 for x in xs)
            cov = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
            if var > 0:
                slope = cov / var
            if abs(slope / nominal - 1) <= self.config.max_rate_error:
                self._fit = (x_mean, y_mean, slope)
                return
        # One report, or an untrusted slope: the nominal rate through the newest report.
        self._fit = (xs[-1], ys[-1], nominal)

    def seconds(self, rtp_ext: int) -> float | None:
        """Sender NTP time (Unix seconds) of ``rtp_ext``, None before any report."""
        if self._fit is None:
            return None
        x_mean, y_mean, slope = self._fit
        ntp0, rtp0 = self._reports[0]
        return unix_from_ntp(ntp0) + x_mean + (rtp_ext - rtp0 - y_mean) / slope


class _WindowMin:
    """Minimum of the values observed over the last ``window`` seconds (8 buckets)."""

    __slots__ = ("_buckets", "_width")

    def __init__(self, window: float) -> None:
        self._width = window / 8
        self._buckets: deque[tuple[int, float]] = deque()

    def observe(self, t: float, value: float) -> None:
        index = math.floor(t / self._width)
        buckets = self._buckets
        if buckets and buckets[-1][0] == index:
            if value < buckets[-1][1]:
                buckets[-1] = (index, value)
        elif not buckets or index > buckets[-1][0]:
            buckets.append((index, value))
        else:  # time went backwards: fold into the newest bucket
            buckets[-1] = (buckets[-1][0], min(buckets[-1][1], value))
        while buckets[0][0] <= buckets[-1][0] - 8:
            buckets.popleft()

    def value(self) -> float | None:
        return min(v for _, v in self._buckets) if self._buckets else None

    def clear(self) -> None:
        self._buckets.clear()


class _Lateness:
    """Recent lateness samples of one stream and their quantile."""

    __slots__ = ("_quantile", "_samples", "_window")

    def __init__(self, window: float, quantile: float) -> None:
        self._window = window
        self._quantile = quantile
        self._samples: deque[tuple[float, float]] = deque()

    def observe(self, t: float, lateness: float) -> None:
        self._samples.append((t, lateness))
        while self._samples[0][0] < t - self._window:
            self._samples.popleft()

    def value(self) -> float:
        if not self._samples:
            return 0.0
        values = sorted(v for _, v in self._samples)
        return values[min(len(values) - 1, math.ceil(self._quantile * len(values)) - 1)]


class ParticipantSync:
    """One participant's shared NTP offset, render delay and A/V offset."""

    def __init__(self, config: SyncConfig | None = None) -> None:
        self.config = config or SyncConfig()
        self._offset = _WindowMin(self.config.offset_window)
        self._streams: list[StreamSync] = []
        self._delay = self.config.min_delay
        self._delay_at: float | None = None
        self._audio_latency: float | None = None
        self._video_latency: float | None = None

    @property
    def render_delay(self) -> float:
        return self._delay

    def ntp_offset(self) -> float | None:
        """local - sender NTP time (seconds), None before a synced packet."""
        return self._offset.value()

    def _update_delay(self, now: float) -> float:
        cfg = self.config
        wanted = max((s._lateness.value() for s in self._streams), default=0.0) + cfg.delay_margin
        wanted = min(cfg.max_delay, max(cfg.min_delay, wanted))
        if wanted >= self._delay or self._delay_at is None:
            self._delay = wanted
        else:
            step = cfg.delay_decrease * max(0.0, now - self._delay_at)
            self._delay = max(wanted, self._delay - step)
        self._delay_at = now
        return self._delay

    def av_offset_ms(self) -> float | None:
        """Video minus audio latency in ms (positive: video late), None until both are synced."""
        if self._audio_latency is None or self._video_latency is None:
            return None
        return (self._video_latency - self._audio_latency) * 1000.0


class StreamSync:
    """One RTP stream of a participant: SR mapping, offset, lateness; see module doc."""

    def __init__(self, participant: ParticipantSync, clock_rate: int, kind: Kind) -> None:
        self.participant = participant
        self.kind = kind
        self.clock_rate = clock_rate
        cfg = participant.config
        self._unwrap = TimestampUnwrapper()
        self._first: int | None = None
        self.mapping = RtpToNtp(clock_rate, cfg)
        self._own_offset = _WindowMin(cfg.offset_window)
        self._lateness = _Lateness(cfg.delay_window, cfg.delay_quantile)
        participant._streams.append(self)

    @property
    def synced(self) -> bool:
        return self.mapping.reports > 0

    def on_sender_report(self, ntp: int, rtp_ts: int) -> bool:
        """Take the stream's RTCP SR (NTP timestamp, RTP timestamp); False if ignored."""
        return self.mapping.add(ntp, self._unwrap.unwrap(rtp_ts))

    def _capture(self, ext: int) -> tuple[float, bool]:
        seconds = self.mapping.seconds(ext)
        if seconds is not None:
            return seconds, True
        if self._first is None:
            self._first = ext
        return (ext - self._first) / self.clock_rate, False

    def _observe(self, capture: float, synced: bool, arrival: float) -> float:
        tracker = self.participant._offset if synced else self._own_offset
        tracker.observe(arrival, arrival - capture)
        offset = tracker.value()
        assert offset is not None
        return offset

    def on_packet(self, rtp_ts: int, arrival: float) -> None:
        """An RTP packet arrived (improves the offset estimate; optional)."""
        capture, synced = self._capture(self._unwrap.unwrap(rtp_ts))
        self._observe(capture, synced, arrival)

    def on_frame(self, rtp_ts: int, ready: float) -> Timing:
        """A decoded frame or audio chunk of ``rtp_ts`` became available at ``ready``."""
        capture, synced = self._capture(self._unwrap.unwrap(rtp_ts))
        local = capture + self._observe(capture, synced, ready)
        self._lateness.observe(ready, ready - local)
        delay = self.participant._update_delay(ready)
        timing = Timing(capture, synced, local, local + delay)
        if self.kind == "audio" and synced:
            self.participant._audio_latency = timing.presentation - capture
        return timing


class VideoSync(StreamSync, Generic[F]):
    """A video stream with its queue of decoded frames (``F``: e.g. PyAV frames)."""

    def __init__(self, participant: ParticipantSync, clock_rate: int = 90_000) -> None:
        super().__init__(participant, clock_rate, "video")
        self._queue: list[tuple[float, int, Timing, F]] = []  # sorted by local time
        self._count = 0
        self._current: tuple[Timing, F] | None = None
        self.frames_dropped = 0  # queued frames never shown (superseded or overflow)

    def push(self, rtp_ts: int, ready: float, frame: F) -> Timing:
        """Queue a decoded (and clear-frame-approved) frame."""
        timing = self.on_frame(rtp_ts, ready)
        self._count += 1
        bisect.insort(self._queue, (timing.local, self._count, timing, frame), key=lambda e: e[:2])
        if len(self._queue) > self.participant.config.max_queued_frames:
            del self._queue[0]
            self.frames_dropped += 1
        return timing

    def frame_at(self, output_time: float) -> F | None:
        """The frame to show at ``output_time``: the latest due one, else the previous one."""
        due = output_time - self.participant.render_delay
        index = bisect.bisect_right(self._queue, due, key=lambda e: e[0])
        if index:
            _, _, timing, frame = self._queue[index - 1]
            self.frames_dropped += index - 1
            del self._queue[:index]
            self._current = (timing, frame)
        if self._current is None:
            return None
        timing, frame = self._current
        if timing.synced:
            self.participant._video_latency = output_time - timing.capture
        return frame

    @property
    def current(self) -> Timing | None:
        """Timing of the frame :meth:`frame_at` last returned."""
        return None if self._current is None else self._current[0]
