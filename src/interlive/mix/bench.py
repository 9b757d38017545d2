"""Timing helpers for the compositor (not tests): how long one output frame costs.

``time_compose`` measures :meth:`~interlive.mix.compose.Compositor.compose`
alone (pasting pre-scaled pictures, labels, optional watermark);
``time_reformat`` measures the PyAV scaling that precedes it (one
``VideoFrame.reformat`` per visible input), so the two add up to the video
side of a mixer frame without decoding and encoding::

    .venv/bin/python -c "from interlive.mix.bench import report; print(report())"
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from interlive.mix.compose import I420, Compositor, Tile, Watermark
from interlive.mix.layout import GridLayout, compute_layout, fit_rect

__all__ = ["ComposeTiming", "report", "time_compose", "time_reformat"]


@dataclass(frozen=True, slots=True)
class ComposeTiming:
    inputs: int
    width: int
    height: int
    frames: int
    ms_per_frame: float  # mean
    best_ms: float  # fastest frame


def _tiles(inputs: int, width: int, height: int, src: tuple[int, int]) -> list[Tile]:
    rng = np.random.default_rng(1)
    regions = compute_layout(GridLayout(), (width, height), [f"guest {k}" for k in range(inputs)])
    tiles = []
    for region in regions:
        place = fit_rect(region.cell, *src)
        buf = rng.integers(16, 236, (place.scale_h * 3 // 2, place.scale_w), dtype=np.uint8)
        picture = I420.from_packed(buf, place.scale_w, place.scale_h)
        tiles.append(Tile(region, picture, place, region.input_id))
    return tiles


def time_compose(
    inputs: int = 4,
    width: int = 1280,
    height: int = 720,
    frames: int = 300,
    *,
    watermark: bool = True,
) -> ComposeTiming:
    """Compose ``frames`` grid frames of ``inputs`` labelled 16:9 inputs; time per frame."""
    mark = None
    if watermark:
        rgba = np.zeros((64, 160, 4), dtype=np.uint8)
        rgba[..., :3] = 255
        rgba[..., 3] = 128
        mark = Watermark(rgba, width - 176, 16)
    compositor = Compositor(width, height, watermark=mark)
    tiles = _tiles(inputs, width, height, (1280, 720))
    compositor.compose(tiles)  # warm the label cache
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        compositor.compose(tiles)
        times.append(time.perf_counter() - t0)
    return ComposeTiming(
        inputs, width, height, frames, 1000 * sum(times) / frames, 1000 * min(times)
    )


def time_reformat(
    inputs: int = 4, width: int = 1280, height: int = 720, frames: int = 100
) -> ComposeTiming:
    """PyAV ``reformat`` of ``inputs`` 1280x720 yuv420p frames to their grid cells."""
    import av

    regions = compute_layout(GridLayout(), (width, height), [str(k) for k in range(inputs)])
    places = [fit_rect(r.cell, 1280, 720) for r in regions]
    source = av.VideoFrame.from_ndarray(
        np.random.default_rng(2).integers(16, 236, (1080, 1280), dtype=np.uint8),
        format="yuv420p",
    )
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        for place in places:
            scaled = source.reformat(place.scale_w, place.scale_h, "yuv420p")
            packed = np.asarray(scaled.to_ndarray(), dtype=np.uint8)
            I420.from_packed(packed, place.scale_w, place.scale_h)
        times.append(time.perf_counter() - t0)
    return ComposeTiming(
        inputs, width, height, frames, 1000 * sum(times) / frames, 1000 * min(times)
    )


def report() -> str:
    """One line per measurement, for docs/benchmarks.md."""
    lines = []
    for n in (2, 4, 9):
        c = time_compose(n)
        r = time_reformat(n)
        lines.append(
            f"{n} inputs {c.width}x{c.height}: compose {c.ms_per_frame:.3f} ms/frame "
            f"(best {c.best_ms:.3f}), reformat {r.ms_per_frame:.3f} ms/frame "
            f"(best {r.best_ms:.3f})"
        )
    return "\n".join(lines)
