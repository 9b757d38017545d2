"""The mix's encoders: keyframes follow output time even when the mixer skips frames."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from interlive.mix.job import Encoding
from interlive.mix.outputs import EncodedPacket, Encoders

TICKS = 90_000


def _frame(pts: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.full((72, 128, 3), pts % 255, np.uint8), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, TICKS)
    return frame


def _keyframe_times(times: list[float], enc: Encoding) -> list[float]:
    encoders = Encoders(enc)
    packets: list[EncodedPacket] = []
    try:
        for t in times:
            packets += encoders.encode_video(_frame(round(t * TICKS)))
    finally:
        encoders.close()
    assert len(packets) == len(times)  # zerolatency: a packet per frame, nothing held
    return [round(p.pts / TICKS, 2) for p in packets if p.keyframe]


def test_keyframes_every_interval_when_no_frame_is_skipped() -> None:
    enc = Encoding(width=128, height=72, fps=10, video_bitrate=200_000, keyframe_interval=1.0)
    times = [i / 10 for i in range(35)]
    assert _keyframe_times(times, enc) == [0.0, 1.0, 2.0, 3.0]


def test_skipped_frames_do_not_stretch_the_keyframe_interval() -> None:
    # a starved mixer skipped 0.6..1.3 s: counted in frames the GOP would end at
    # 1.75 s; counted in time, the first frame at or past 1.0 s is a keyframe
    enc = Encoding(width=128, height=72, fps=10, video_bitrate=200_000, keyframe_interval=1.0)
    times = [i / 10 for i in range(6)] + [1.35 + i / 10 for i in range(13)]
    keys = _keyframe_times(times, enc)
    assert keys == [0.0, 1.35, 2.35]
