from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from interlive.mix.bench import time_compose
from interlive.mix.compose import I420, Compositor, Tile, Watermark, rgb_to_yuv, rgba_to_yuva
from interlive.mix.font import glyph
from interlive.mix.layout import Fit, Placement, Rect, Region, fit_rect

U8 = npt.NDArray[np.uint8]


def picture(width: int, height: int, y: int | U8, u: int = 100, v: int = 150) -> I420:
    pic = I420.blank(width, height, (0, u, v))
    pic.y[...] = y
    return pic


def exact(cell: Rect, pic: I420) -> Placement:
    return Placement(pic.width, pic.height, 0, 0, cell)


def region(cell: Rect, z: int = 0, label: Rect | None = None, input_id: str = "a") -> Region:
    return Region(cell, z, input_id, label)


# -- colours and planes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "yuv"),
    [
        ((0, 0, 0), (16, 128, 128)),
        ((255, 255, 255), (235, 128, 128)),
        ((255, 0, 0), (81, 90, 240)),
        ((0, 255, 0), (145, 54, 34)),
        ((0, 0, 255), (41, 240, 110)),
    ],
)
def test_rgb_to_yuv_bt601_limited(rgb: tuple[int, int, int], yuv: tuple[int, int, int]) -> None:
    assert rgb_to_yuv(rgb) == yuv


def test_rgba_to_yuva_averages_chroma_and_alpha() -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[1, 1] = (255, 0, 0, 1)
    y, u, v, alpha, alpha_uv = rgba_to_yuva(rgba)
    assert y.tolist() == [[81, 16], [16, 81]]
    # Chroma of the mean colour (127.5, 0, 0): U = 128 - 18.9 = 109.1, V = 128 + 56 = 184.
    assert u.tolist() == [[109]] and v.tolist() == [[184]]
    assert alpha.tolist() == [[255, 0], [0, 1]] and alpha_uv.tolist() == [[64]]
    with pytest.raises(ValueError):
        rgba_to_yuva(np.zeros((3, 2, 4), dtype=np.uint8))


def test_i420_packed_views_share_the_buffer() -> None:
    buf = np.arange(4 * 4 * 3 // 2, dtype=np.uint8).reshape(6, 4)
    pic = I420.from_packed(buf, 4, 4)
    assert pic.y.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    assert pic.u.tolist() == [[16, 17], [18, 19]]
    assert pic.v.tolist() == [[20, 21], [22, 23]]
    pic.v[1, 1] = 99
    assert buf[5, 3] == 99
    with pytest.raises(ValueError):
        I420.from_packed(buf, 4, 2)
    with pytest.raises(ValueError):
        I420(np.zeros((3, 4), np.uint8), np.zeros((1, 2), np.uint8), np.zeros((1, 2), np.uint8))


# -- composition ----------------------------------------------------------------------


def test_background_fill() -> None:
    out = Compositor(4, 2, background=(255, 0, 0)).compose([])
    assert out.shape == (3, 4)
    assert out.tolist() == [[81] * 4, [81] * 4, [90, 90, 240, 240]]


def test_tiles_are_pasted_in_z_order() -> None:
    comp = Compositor(8, 4)
    left = picture(4, 4, 50, 60, 70)
    over = picture(4, 2, 200, 210, 220)
    tiles = [
        Tile(region(Rect(2, 0, 4, 2), z=1), over, exact(Rect(2, 0, 4, 2), over)),
        Tile(region(Rect(0, 0, 4, 4), z=0), left, exact(Rect(0, 0, 4, 4), left)),
    ]
    out = I420.from_packed(comp.compose(tiles).copy(), 8, 4)
    assert out.y.tolist() == [
        [50, 50, 200, 200, 200, 200, 16, 16],
        [50, 50, 200, 200, 200, 200, 16, 16],
        [50, 50, 50, 50, 16, 16, 16, 16],
        [50, 50, 50, 50, 16, 16, 16, 16],
    ]
    assert out.u.tolist() == [[60, 210, 210, 128], [60, 60, 128, 128]]
    assert out.v.tolist() == [[70, 220, 220, 128], [70, 70, 128, 128]]


def test_contain_letterbox_bars_take_the_tile_colour() -> None:
    comp = Compositor(8, 8, tile_colour=(255, 255, 255))
    cell = Rect(0, 0, 8, 8)
    place = fit_rect(cell, 16, 8)  # 2:1 into a square: 8x4 at y = 2
    assert place == Placement(8, 4, 0, 0, Rect(0, 2, 8, 4))
    src = picture(8, 4, 90)
    out = I420.from_packed(comp.compose([Tile(region(cell), src, place)]), 8, 8)
    assert out.y[:, 0].tolist() == [235, 235, 90, 90, 90, 90, 235, 235]
    assert out.u[:, 0].tolist() == [128, 100, 100, 128]


def test_cover_pastes_the_centre_window() -> None:
    comp = Compositor(8, 4)
    cell = Rect(0, 0, 8, 4)
    place = fit_rect(cell, 12, 4, Fit.COVER)
    assert place == Placement(12, 4, 2, 0, cell)
    ramp = np.tile(np.arange(12, dtype=np.uint8) * 10, (4, 1))
    src = picture(12, 4, ramp)
    src.u[...] = np.arange(6, dtype=np.uint8)
    out = I420.from_packed(comp.compose([Tile(region(cell), src, place)]), 8, 4)
    assert out.y[0].tolist() == [20, 30, 40, 50, 60, 70, 80, 90]
    assert out.u[0].tolist() == [1, 2, 3, 4]


def test_placeholder_shows_the_name_in_block_letters() -> None:
    comp = Compositor(32, 32, placeholder_colour=(0, 0, 255))
    cell = Rect(0, 0, 32, 32)
    out = I420.from_packed(comp.compose([Tile(region(cell), None, None, "A")]), 32, 32)
    expected = np.full((32, 32), 41, dtype=np.uint8)
    # One 5x7 glyph at scale 1, centred: rows 12..18, columns 13..17.
    expected[12:19, 13:18][glyph("A")] = 235
    assert np.array_equal(out.y, expected)
    assert (out.u == 240).all() and (out.v == 110).all()


def test_placeholder_scales_the_name_up_in_a_large_cell() -> None:
    comp = Compositor(640, 360)
    out = comp.compose([Tile(region(Rect(0, 0, 640, 360)), None, None, "BOB")])
    ink = np.argwhere(I420.from_packed(out, 640, 360).y == 235)
    rows = ink[:, 0].max() - ink[:, 0].min() + 1
    assert rows == 7 * 10  # scale = 360 // 35


def test_label_box_and_text() -> None:
    comp = Compositor(16, 16)
    cell = Rect(0, 0, 16, 16)
    box = Rect(0, 4, 16, 12)
    src = picture(16, 16, 200)
    tile = Tile(region(cell, label=box), src, exact(cell, src), "AB")
    out = I420.from_packed(comp.compose([tile]), 16, 16)
    expected = np.full((16, 16), 200, dtype=np.uint8)
    expected[4:16, 0:16] = 200 // 2 + 8  # darkened box: 11 + 2 * 2 pad = 15 -> 16 wide
    text = expected[4 + 2 : 4 + 9, 2:13]  # 7 rows at (12 - 7) // 2 = 2, from pad_x = 2
    text[:, 0:5][glyph("A")] = 235
    text[:, 6:11][glyph("B")] = 235
    assert np.array_equal(out.y, expected)
    assert out.u[:2].tolist() == [[100] * 8] * 2
    assert out.u[2:].tolist() == [[128] * 8] * 6


def test_label_truncates_a_long_name_to_whole_letters() -> None:
    comp = Compositor(32, 16)
    cell = Rect(0, 0, 32, 16)
    src = picture(32, 16, 200)
    tile = Tile(region(cell, label=Rect(0, 4, 20, 12)), src, exact(cell, src), "ABCDEF")
    out = I420.from_packed(comp.compose([tile]), 32, 16)
    # Room for (20 - 4 + 1) // 6 = 2 letters; the box never passes its 20 columns.
    assert (out.y[6:13, 2:13] == 235).sum() == glyph("A").sum() + glyph("B").sum()
    assert (out.y[4:16, 20:] == 200).all()


def test_no_label_without_a_label_box_or_name() -> None:
    comp = Compositor(16, 16)
    cell = Rect(0, 0, 16, 16)
    src = picture(16, 16, 200)
    for tile in (
        Tile(region(cell), src, exact(cell, src), "AB"),
        Tile(region(cell, label=Rect(0, 4, 16, 12)), src, exact(cell, src), ""),
    ):
        assert (I420.from_packed(comp.compose([tile]), 16, 16).y == 200).all()


def test_watermark_alpha_blend() -> None:
    rgba = np.zeros((2, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white
    rgba[:, 0:2, 3] = 128  # half transparent on the left, opaque on the right
    rgba[:, 2:4, 3] = 255
    comp = Compositor(8, 4, watermark=Watermark(rgba, 4, 2))
    out = I420.from_packed(comp.compose([]), 8, 4)
    # (235 * 128 + 16 * 127 + 127) // 255 = 126
    assert out.y.tolist() == [
        [16] * 8,
        [16] * 8,
        [16] * 4 + [126, 126, 235, 235],
        [16] * 4 + [126, 126, 235, 235],
    ]
    assert out.u.tolist() == [[128] * 4, [128] * 4]
    with pytest.raises(ValueError, match="outside"):
        Compositor(8, 4, watermark=Watermark(rgba, 6, 2))
    with pytest.raises(ValueError, match="even"):
        Watermark(rgba, 1, 0)


def test_background_image_is_copied() -> None:
    image = picture(4, 2, np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.uint8), 9, 10)
    out = Compositor(4, 2, background_image=image).compose([])
    assert out.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 10, 10]]
    with pytest.raises(ValueError):
        Compositor(8, 2, background_image=image)


def test_tile_errors() -> None:
    comp = Compositor(8, 4)
    src = picture(4, 4, 1)
    with pytest.raises(ValueError, match="placement"):
        comp.compose([Tile(region(Rect(0, 0, 4, 4)), src)])
    with pytest.raises(ValueError, match="placement expects 2x2"):
        comp.compose([Tile(region(Rect(0, 0, 2, 2)), src, Placement(2, 2, 0, 0, Rect(0, 0, 2, 2)))])
    with pytest.raises(ValueError, match="outside"):
        comp.compose([Tile(region(Rect(6, 0, 4, 4)), None)])


def test_output_feeds_pyav() -> None:
    av = pytest.importorskip("av")
    comp = Compositor(16, 8, background=(0, 0, 255))
    out = comp.compose([])
    frame = av.VideoFrame.from_ndarray(out, format="yuv420p")
    assert (frame.width, frame.height) == (16, 8)
    assert np.array_equal(frame.to_ndarray(), out)


def test_benchmark_helper_runs() -> None:
    timing = time_compose(inputs=4, frames=3)
    assert timing.inputs == 4 and timing.frames == 3
    assert 0 < timing.best_ms <= timing.ms_per_frame
