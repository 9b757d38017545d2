"""TimedFifo: fixed-size chunks on one time line; a jump starts a new one."""

from __future__ import annotations

import av
import numpy as np

from interlive.media.timed_fifo import TimedFifo


def _frame(samples: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, samples), np.float32), format="flt", layout="mono"
    )
    frame.sample_rate = 48_000
    return frame


def test_chunks_are_stamped_on_the_input_time_line() -> None:
    fifo = TimedFifo(48_000, 960, resync=4800)
    fifo.write(_frame(700), 1000)
    assert list(fifo.chunks()) == []
    fifo.write(_frame(1500), 1700)
    out = [(pts, f.samples, f.sample_rate) for pts, f in fifo.chunks()]
    assert out == [(1000, 960, 48_000), (1960, 960, 48_000)]  # 280 samples wait for more
    assert fifo.resyncs == 0


def test_a_jump_starts_a_new_time_line_and_drops_the_partial_chunk() -> None:
    fifo = TimedFifo(48_000, 960, resync=4800)
    fifo.write(_frame(1000), 0)
    assert [pts for pts, _ in fifo.chunks()] == [0]  # 40 samples left over
    fifo.write(_frame(960), 1000 + 4801)  # beyond the resync distance
    assert [pts for pts, _ in fifo.chunks()] == [5801]
    assert fifo.resyncs == 1
    fifo.write(_frame(960), 6761 + 4800)  # within it: the time line goes on
    assert [pts for pts, _ in fifo.chunks()] == [6761] and fifo.resyncs == 1
