"""Real H.264 from libx264 (through PyAV) for the media tests."""

from __future__ import annotations

import fractions
import functools

import av
import numpy as np
import pytest

from interlive.media.h264_rtp import annexb_to_nals


def encode_h264(
    width: int,
    height: int,
    frames: int,
    *,
    gop: int = 10,
    noise: bool = False,
    x264_params: str = "bframes=0:sliced-threads=0:slices=1:crf=18",
) -> list[list[bytes]]:
    """Encode a moving pattern (or noise) with libx264; one NAL list per access unit."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 15)
    codec.framerate = fractions.Fraction(15)
    codec.gop_size = gop
    codec.options = {"x264-params": x264_params, "preset": "veryfast"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width]
    aus: list[list[bytes]] = []
    for i in range(frames):
        if noise:
            img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            img = np.stack(
                [(xx + 4 * i) % 256, (yy + 2 * i) % 256, ((xx ^ yy) + i) % 256], axis=-1
            ).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        aus.extend(annexb_to_nals(bytes(p)) for p in codec.encode(frame))
    aus.extend(annexb_to_nals(bytes(p)) for p in codec.encode(None))
    return aus


@functools.cache
def real_access_units() -> list[list[bytes]]:
    """45 access units of 320x240, an IDR every 10 frames, no B-frames (cached)."""
    return encode_h264(320, 240, 45)


@pytest.fixture
def x264_aus() -> list[list[bytes]]:
    """A fresh copy of :func:`real_access_units`."""
    return [list(au) for au in real_access_units()]
