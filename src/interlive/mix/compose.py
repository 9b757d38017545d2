"""Video composition: paste already-scaled input pictures onto the output canvas.

Arrays in, array out.  The mixer process decodes each input with PyAV,
scales it with one ``VideoFrame.reformat(scale_w, scale_h, "yuv420p")`` per
visible input (the :class:`~interlive.mix.layout.Placement` from
:func:`~interlive.mix.layout.fit_rect` says the size), wraps the result with
:meth:`I420.from_packed` (``frame.to_ndarray()``), and hands the tiles to
:meth:`Compositor.compose`, whose return value goes to
``VideoFrame.from_ndarray(canvas, format="yuv420p")`` and the H.264 encoder.
Scaling is left to PyAV (libswscale, in C); this module only copies pixels.

Why I420 and not RGB
--------------------
The decoders (VP8, VP9, H.264) produce yuv420p and libx264 consumes it, so
I420 end to end means no colour conversion at either edge; an I420 frame is
1.5 bytes per pixel against RGB's 3, so every copy and fill moves half the
memory.  The price is that rectangles must be even-aligned (the layout
guarantees it) and colours are given as BT.601 limited-range Y'CbCr
(:func:`rgb_to_yuv`), the matrix libswscale assumes by default.

Theory of operation
-------------------
One canvas buffer is allocated once in the packed layout PyAV uses for
yuv420p (``(height * 3 // 2, width)`` bytes: the Y plane, then U, then V),
with plane views into it; :meth:`Compositor.compose` rewrites it every frame
and returns it (consume or copy it before the next call;
``VideoFrame.from_ndarray`` copies).  Per frame:

1. the background: a colour fill, or a copy of a background picture;
2. tiles in ascending z (stable): the cell is filled with the tile colour
   unless the picture covers it (letterbox/pillarbox bars), then the
   picture's crop window is copied to its destination; a tile without a
   picture is a *placeholder*: the cell in the placeholder colour with the
   participant's name in large block letters (luma only) in the middle;
3. name labels on picture tiles: a box at the layout's label position, luma
   halved towards black and chroma made neutral, the name in white (235);
4. the watermark: an alpha blend of a pre-converted RGBA picture,
   ``(w * a + bg * (255 - a) + 127) // 255`` per plane, over its rectangle only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from interlive.mix.font import ADVANCE, GLYPH_HEIGHT, render_text
from interlive.mix.layout import Placement, Rect, Region, Rgb

__all__ = [
    "BLACK_YUV",
    "I420",
    "Compositor",
    "Tile",
    "Watermark",
    "Yuv",
    "rgb_to_yuv",
    "rgba_to_yuva",
]

U8: TypeAlias = npt.NDArray[np.uint8]
Yuv: TypeAlias = tuple[int, int, int]

#: Luma of label text and placeholder names (limited-range white).
INK = 235
BLACK_YUV: Yuv = (16, 128, 128)


def rgb_to_yuv(rgb: Rgb) -> Yuv:
    """BT.601 limited-range Y'CbCr of an 8-bit RGB colour (libswscale's default)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (round(y), round(u), round(v))


def rgba_to_yuva(rgba: npt.NDArray[np.uint8]) -> tuple[U8, U8, U8, U8, U8]:
    """Planes (Y, U, V, alpha at luma size, alpha at chroma size) of an RGBA picture.

    Chroma and its alpha are the means of each 2x2 block (rounded); the
    picture must have even width and height.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 4) uint8 RGBA array, got {rgba.shape} {rgba.dtype}")
    h, w = rgba.shape[:2]
    if h % 2 or w % 2 or h == 0 or w == 0:
        raise ValueError(f"RGBA picture must have even, positive dimensions, got {w}x{h}")
    rgb = rgba[:, :, :3].astype(np.float64)
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]

    def quarter(plane: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        blocks: npt.NDArray[np.float64] = plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return blocks

    def u8(plane: npt.NDArray[np.float64]) -> U8:
        return np.clip(np.rint(plane), 0, 255).astype(np.uint8)

    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    rq, gq, bq = quarter(r), quarter(g), quarter(b)
    u = 128 + (-37.797 * rq - 74.203 * gq + 112.0 * bq) / 255
    v = 128 + (112.0 * rq - 93.786 * gq - 18.214 * bq) / 255
    alpha = rgba[:, :, 3]
    return u8(y), u8(u), u8(v), alpha.copy(), u8(quarter(alpha.astype(np.float64)))


class I420:
    """A yuv420p picture as three uint8 planes (Y full size, U and V half size)."""

    __slots__ = ("height", "packed", "u", "v", "width", "y")

    def __init__(self, y: U8, u: U8, v: U8, packed: U8 | None = None) -> None:
        h, w = y.shape
        if h % 2 or w % 2 or h == 0 or w == 0:
            raise ValueError(f"I420 needs even, positive dimensions, got {w}x{h}")
        if u.shape != (h // 2, w // 2) or v.shape != (h // 2, w // 2):
            raise ValueError(f"chroma planes must be {w // 2}x{h // 2}, got {u.shape} {v.shape}")
        if y.dtype != np.uint8 or u.dtype != np.uint8 or v.dtype != np.uint8:
            raise ValueError("I420 planes must be uint8")
        self.width = w
        self.height = h
        self.y = y
        self.u = u
        self.v = v
        #: The contiguous (h * 3 // 2, w) buffer behind the planes, when there is one.
        self.packed = packed

    @classmethod
    def from_packed(cls, buf: U8, width: int, height: int) -> I420:
        """Views on PyAV's yuv420p ``to_ndarray()`` layout: Y, then U, then V."""
        size = width * height
        if buf.size != size * 3 // 2 or width % 2 or height % 2:
            raise ValueError(
                f"a packed {width}x{height} yuv420p buffer has {size * 3 // 2} bytes, "
                f"got {buf.size}"
            )
        flat = buf.reshape(-1)
        quarter = size // 4
        ch, cw = height // 2, width // 2
        y = flat[:size].reshape(height, width)
        u = flat[size : size + quarter].reshape(ch, cw)
        v = flat[size + quarter :].reshape(ch, cw)
        return cls(y, u, v, buf)

    @classmethod
    def blank(cls, width: int, height: int, colour: Yuv = BLACK_YUV) -> I420:
        """A new packed picture filled with ``colour``."""
        buf = np.empty((height * 3 // 2, width), dtype=np.uint8)
        picture = cls.from_packed(buf, width, height)
        picture.fill(colour)
        return picture

    def fill(self, colour: Yuv, rect: Rect | None = None) -> None:
        """Fill the whole picture, or an even-aligned ``rect`` of it, with ``colour``."""
        y, u, v = colour
        if rect is None:
            self.y.fill(y)
            self.u.fill(u)
            self.v.fill(v)
            return
        self.y[rect.y : rect.bottom, rect.x : rect.right] = y
        cy, cx, cb, cr = rect.y // 2, rect.x // 2, rect.bottom // 2, rect.right // 2
        self.u[cy:cb, cx:cr] = u
        self.v[cy:cb, cx:cr] = v


@dataclass(frozen=True, slots=True)
class Tile:
    """One region's content for this frame.

    ``picture`` is the input already scaled to ``placement.scale_w x
    scale_h``; None makes a placeholder tile showing ``name``.  ``name``
    is also the label text (the layout decides whether a label is drawn).
    """

    region: Region
    picture: I420 | None = None
    placement: Placement | None = None
    name: str = ""


class Watermark:
    """An RGBA logo converted once to Y, U, V and alpha planes, placed at even (x, y)."""

    __slots__ = ("alpha", "alpha_uv", "rect", "u", "v", "y")

    def __init__(self, rgba: npt.NDArray[np.uint8], x: int, y: int) -> None:
        if x < 0 or y < 0 or x % 2 or y % 2:
            raise ValueError(f"watermark position must be even and not negative, got ({x}, {y})")
        self.y, self.u, self.v, self.alpha, self.alpha_uv = rgba_to_yuva(rgba)
        self.rect = Rect(x, y, rgba.shape[1], rgba.shape[0])


def _blend(dst: U8, src: U8, alpha: U8) -> None:
    a = alpha.astype(np.uint16)
    mixed = (src.astype(np.uint16) * a + dst.astype(np.uint16) * (255 - a) + 127) // 255
    dst[...] = mixed.astype(np.uint8)


@lru_cache(maxsize=256)
def _fitted_text(text: str, scale: int, max_width: int) -> npt.NDArray[np.bool_]:
    """The ink mask of as many leading characters of ``text`` as fit ``max_width``."""
    chars = max(0, (max_width + scale) // (ADVANCE * scale))
    return render_text(text[:chars], scale)


def _inside(rect: Rect, width: int, height: int) -> bool:
    return rect.x >= 0 and rect.y >= 0 and rect.right <= width and rect.bottom <= height


class Compositor:
    """Draws tiles onto one reused canvas; see the module docstring."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        background: Rgb = (0, 0, 0),
        tile_colour: Rgb | None = None,
        placeholder_colour: Rgb = (40, 40, 48),
        background_image: I420 | None = None,
        watermark: Watermark | None = None,
    ) -> None:
        self.canvas = I420.blank(width, height)
        self.background = rgb_to_yuv(background)
        self.tile_colour = rgb_to_yuv(tile_colour if tile_colour is not None else background)
        self.placeholder_colour = rgb_to_yuv(placeholder_colour)
        if background_image is not None and (
            background_image.width != width or background_image.height != height
        ):
            raise ValueError("the background picture must have the canvas size")
        self.background_image = background_image
        if watermark is not None and not _inside(watermark.rect, width, height):
            raise ValueError(f"watermark {watermark.rect} is outside the {width}x{height} canvas")
        self.watermark = watermark

    def compose(self, tiles: Sequence[Tile]) -> U8:
        """Draw one frame; returns the canvas's packed yuv420p buffer (reused next call)."""
        canvas = self.canvas
        if self.background_image is not None:
            image = self.background_image
            canvas.y[...] = image.y
            canvas.u[...] = image.u
            canvas.v[...] = image.v
        else:
            canvas.fill(self.background)
        order = sorted(range(len(tiles)), key=lambda k: tiles[k].region.z)
        for k in order:
            self._draw(tiles[k])
        if self.watermark is not None:
            self._draw_watermark(self.watermark)
        assert canvas.packed is not None
        return canvas.packed

    # -- pieces ---------------------------------------------------------------------

    def _draw(self, tile: Tile) -> None:
        canvas = self.canvas
        cell = tile.region.cell
        if not _inside(cell, canvas.width, canvas.height):
            raise ValueError(f"tile cell {cell} is outside the canvas")
        if tile.picture is None:
            canvas.fill(self.placeholder_colour, cell)
            self._draw_placeholder_name(cell, tile.name)
            return
        place = tile.placement
        if place is None:
            raise ValueError("a tile with a picture needs its placement")
        picture = tile.picture
        if (picture.width, picture.height) != (place.scale_w, place.scale_h):
            raise ValueError(
                f"picture is {picture.width}x{picture.height}, "
                f"placement expects {place.scale_w}x{place.scale_h}"
            )
        dest = place.dest
        if dest != cell:
            canvas.fill(self.tile_colour, cell)
        sx, sy, w, h = place.crop_x, place.crop_y, dest.w, dest.h
        canvas.y[dest.y : dest.bottom, dest.x : dest.right] = picture.y[sy : sy + h, sx : sx + w]
        cx, cy, cw, ch = sx // 2, sy // 2, w // 2, h // 2
        dy, dx = dest.y // 2, dest.x // 2
        canvas.u[dy : dy + ch, dx : dx + cw] = picture.u[cy : cy + ch, cx : cx + cw]
        canvas.v[dy : dy + ch, dx : dx + cw] = picture.v[cy : cy + ch, cx : cx + cw]
        if tile.region.label is not None and tile.name:
            self._draw_label(tile.region.label, tile.name)

    def _draw_label(self, box: Rect, name: str) -> None:
        scale = max(1, (box.h - 4) // GLYPH_HEIGHT)
        pad_x = 2 * scale
        mask = _fitted_text(name, scale, box.w - 2 * pad_x)
        if mask.shape[1] == 0:
            return
        width = min(box.w, mask.shape[1] + 2 * pad_x)
        width += width % 2
        width = min(width, box.w - box.w % 2)
        back = Rect(box.x, box.y, width, box.h)
        y_plane = self.canvas.y[back.y : back.bottom, back.x : back.right]
        y_plane[...] = y_plane // 2 + 8  # halfway to black (16)
        self.canvas.u[back.y // 2 : back.bottom // 2, back.x // 2 : back.right // 2] = 128
        self.canvas.v[back.y // 2 : back.bottom // 2, back.x // 2 : back.right // 2] = 128
        top = (box.h - mask.shape[0]) // 2
        region = y_plane[top : top + mask.shape[0], pad_x : pad_x + mask.shape[1]]
        region[mask[: region.shape[0], : region.shape[1]]] = INK

    def _draw_placeholder_name(self, cell: Rect, name: str) -> None:
        if not name:
            return
        margin = max(2, cell.w // 16)
        one = len(name) * ADVANCE - 1
        scale = max(1, min(cell.h // (5 * GLYPH_HEIGHT), (cell.w - 2 * margin) // one))
        mask = _fitted_text(name, scale, cell.w - 2 * margin)
        mh, mw = mask.shape
        if mw == 0 or mh > cell.h:
            return
        top = cell.y + (cell.h - mh) // 2
        left = cell.x + (cell.w - mw) // 2
        self.canvas.y[top : top + mh, left : left + mw][mask] = INK

    def _draw_watermark(self, mark: Watermark) -> None:
        r = mark.rect
        canvas = self.canvas
        _blend(canvas.y[r.y : r.bottom, r.x : r.right], mark.y, mark.alpha)
        cy, cx, cb, cr = r.y // 2, r.x // 2, r.bottom // 2, r.right // 2
        _blend(canvas.u[cy:cb, cx:cr], mark.u, mark.alpha_uv)
        _blend(canvas.v[cy:cb, cx:cr], mark.v, mark.alpha_uv)
