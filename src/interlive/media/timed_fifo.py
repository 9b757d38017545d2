"""Audio frames in at their sample time, fixed-size frames out on one continuous time line.

Encoders want frames of a fixed size (Opus 960 samples, AAC 1024) while
decoders hand out whatever they decoded.  :class:`TimedFifo` buffers the
samples (PyAV's ``AudioFifo``) and stamps each chunk it hands out with its
time on the input's clock.  Input that jumps from the running time line by
more than ``resync`` samples (a publisher restart, a long gap) starts a new
time line: the partial chunk of the old one is dropped, so timestamps never
run backwards and never lag behind a gap.  No I/O.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator

import av

__all__ = ["TimedFifo"]


class TimedFifo:
    """Samples in at ``pts`` (in ``rate`` units), ``chunk``-sample frames out with their pts."""

    def __init__(self, rate: int, chunk: int, resync: int) -> None:
        self.rate = rate
        self.chunk = chunk
        self.resync = resync
        self.resyncs = 0
        self._time_base = fractions.Fraction(1, rate)
        self._fifo = av.AudioFifo()
        #: time of the next sample written; None before the first frame
        self._write_pts: int | None = None
        #: time of the first sample in the FIFO
        self._read_pts = 0

    def write(self, frame: av.AudioFrame, pts: int) -> None:
        """``frame``'s first sample is at ``pts`` (its own pts is ignored)."""
        if self._write_pts is None or abs(pts - self._write_pts) > self.resync:
            if self._write_pts is not None:
                self.resyncs += 1
            self._fifo = av.AudioFifo()  # the partial chunk of the old time line is dropped
            self._read_pts = pts
            self._write_pts = pts
        frame.pts = None
        self._fifo.write(frame)
        self._write_pts += frame.samples

    def chunks(self) -> Iterator[tuple[int, av.AudioFrame]]:
        """Every whole chunk buffered: (pts, frame with ``pts``, ``time_base``, ``sample_rate``)."""
        while self._fifo.samples >= self.chunk:
            frame = self._fifo.read(self.chunk)
            if frame is None:
                return
            frame.pts = self._read_pts
            frame.time_base = self._time_base
            frame.sample_rate = self.rate
            yield self._read_pts, frame
            self._read_pts += self.chunk
