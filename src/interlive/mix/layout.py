"""Layout geometry of the mixed output: which input goes where on the canvas.

The mixer draws every output frame from a list of :class:`Region` values
(cell rectangle, z-order, input id, name-label box) computed here from the
canvas size, the ordered input ids (the stage), the active speaker and a
layout spec.  :func:`parse_layout` validates the REST body's ``layout`` field
(a name or an object, see docs/mixer.md for the schema) into a spec and raises
:class:`LayoutError` with a precise reason, which the HTTP layer returns as a
400.  :func:`fit_rect` then says how to scale and crop one source picture into
its cell.

Theory of operation
-------------------
*Even integers.*  The compositor works in I420, whose chroma planes are half
size in both directions, so every x, y, width and height produced here is an
even integer: a region then covers whole chroma samples and needs no blending
at its edges.  ``_even_floor`` / ``_even_round`` are the only rounding used.

*Grid* (LiveKit and libwebrtc conference style): ``cols = ceil(sqrt(n))``,
``rows = ceil(n / cols)``, so 1 is full screen, 2 side by side, 3-4 a 2x2,
5-6 3x2, 7-9 3x3 ... 21-25 5x5.  All cells have one size (the canvas divided
by cols and rows, rounded down to even, minus the gaps); the grid is centred,
and an incomplete last row is centred too.  At most :data:`MAX_REGIONS`
inputs are shown; later ones are left out.

*Speaker*: the main cell (the pinned ``main``, else the active speaker, else
the first input) takes the canvas minus a strip along one edge; the others
sit in the strip in input order, in cells of the canvas's aspect ratio,
centred, shrunk equally when they do not all fit.

*Picture in picture*: ``main`` (default: the first input) fills the canvas;
one inset (``inset``, else the active speaker when it is not the main, else
the next input) sits in a corner with a margin, above it (z = 1).  Other
inputs are not shown.

*Custom*: pixel regions with z-order.  A region names an input
(``"input": "alice"``) or is a free slot (no ``input``); free slots take the
inputs no region names, in input order.  Naming a participant who is not on
stage is a mistake unless the region says ``"slot": true`` (reserved for them;
empty until they join).  Regions whose input is absent are left out.  Odd
pixel values are snapped down to even (the region's left/top and its
right/bottom edges).

*Background image.*  Every layout may carry ``background_image``, a PNG or
JPEG given inline as a ``data:`` URI (no URL is ever fetched).
:func:`parse_data_image` checks the URI (media type, base64, size, the
format's signature) into a :class:`DataImage` of undecoded bytes; decoding
and scaling are left to the job (:mod:`interlive.mix.job`, with PyAV).

*Fit.*  A cell has the canvas's shape, a source picture may not.  ``contain``
scales the source to fit inside the cell (letterbox/pillarbox bars in the
tile colour); ``cover`` scales it to fill the cell and crops the overflow
equally on both sides.  :class:`Placement` expresses both as "reformat the
source to ``scale_w x scale_h``, take the ``dest.w x dest.h`` window at
``(crop_x, crop_y)`` and paste it at ``dest``", so the scaling itself is one
PyAV ``reformat`` call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

__all__ = [
    "MAX_REGIONS",
    "CustomLayout",
    "CustomRegion",
    "DataImage",
    "Fit",
    "GridLayout",
    "LayoutError",
    "LayoutSpec",
    "PipLayout",
    "Placement",
    "Rect",
    "Region",
    "Rgb",
    "SpeakerLayout",
    "compute_layout",
    "fit_rect",
    "grid_shape",
    "layout_to_json",
    "parse_data_image",
    "parse_layout",
]

#: The most regions a layout shows (a 5x5 grid).
MAX_REGIONS = 25

#: The largest inline image (``background_image``, a watermark), decoded bytes.
MAX_IMAGE_BYTES = 3 * 1024 * 1024

#: Name-label geometry: the box height is a tenth of the cell height, clamped.
LABEL_MIN_HEIGHT = 14
LABEL_MAX_HEIGHT = 36
LABEL_MARGIN = 8

Rgb: TypeAlias = tuple[int, int, int]
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
Edge = Literal["top", "bottom", "left", "right"]

_CORNERS: tuple[Corner, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")
_EDGES: tuple[Edge, ...] = ("bottom", "top", "left", "right")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class LayoutError(ValueError):
    """A layout that cannot be drawn; the message says where and why (for a 400)."""


class Fit(StrEnum):
    """How a source picture of another shape fills its cell."""

    CONTAIN = "contain"  # whole picture, bars in the tile colour
    COVER = "cover"  # cell filled, overflow cropped


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle in canvas pixels (all even in everything this module returns)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h


@dataclass(frozen=True, slots=True)
class Region:
    """One input's place on the canvas; painted in ascending ``z``."""

    cell: Rect
    z: int
    input_id: str
    #: Where the name label may go (bottom-left of the cell), None for no label.
    label: Rect | None


@dataclass(frozen=True, slots=True)
class Placement:
    """Scale the source to ``scale_w x scale_h``, crop at ``crop_x, crop_y``, paste at ``dest``."""

    scale_w: int
    scale_h: int
    crop_x: int
    crop_y: int
    dest: Rect


@dataclass(frozen=True, slots=True)
class DataImage:
    """A PNG or JPEG given inline as a ``data:`` URI: its media type and bytes, undecoded."""

    media_type: str  # "image/png" or "image/jpeg"
    data: bytes = field(repr=False)

    @property
    def format(self) -> str:
        """``PNG`` or ``JPEG`` (for messages)."""
        return "PNG" if self.media_type == "image/png" else "JPEG"

    def uri(self) -> str:
        """The ``data:`` URI again."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def describe(self) -> dict[str, Any]:
        """What status shows instead of the bytes: media type, size and SHA-256."""
        return {
            "media_type": self.media_type,
            "bytes": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }


@dataclass(frozen=True, slots=True)
class GridLayout:
    fit: Fit = Fit.CONTAIN
    labels: bool = True
    background: Rgb = (0, 0, 0)
    gap: int = 0  # pixels between cells, even
    background_image: DataImage | None = None


@dataclass(frozen=True, slots=True)
class SpeakerLayout:
    fit: Fit = Fit.CONTAIN
    labels: bool = True
    background: Rgb = (0, 0, 0)
    strip: Edge = "bottom"
    strip_size: float = 0.2  # fraction of the canvas height (top/bottom) or width (left/right)
    main: str | None = None  # pinned main input; None follows the active speaker
    background_image: DataImage | None = None


@dataclass(frozen=True, slots=True)
class PipLayout:
    fit: Fit = Fit.CONTAIN
    labels: bool = True
    background: Rgb = (0, 0, 0)
    main: str | None = None  # full-canvas input; None: the first input
    inset: str | None = None  # None: the active speaker if not main, else the next input
    corner: Corner = "bottom-right"
    inset_size: float = 0.25  # inset width as a fraction of the canvas width
    margin: int = 16  # pixels from the canvas edges, even
    background_image: DataImage | None = None


@dataclass(frozen=True, slots=True)
class CustomRegion:
    x: int
    y: int
    w: int
    h: int
    z: int
    input: str | None = None  # None: a free slot
    slot: bool = False  # a named input that may be absent (reserved region)
    label: bool = True


@dataclass(frozen=True, slots=True)
class CustomLayout:
    regions: tuple[CustomRegion, ...]
    fit: Fit = Fit.CONTAIN
    labels: bool = True
    background: Rgb = (0, 0, 0)
    background_image: DataImage | None = None


LayoutSpec: TypeAlias = GridLayout | SpeakerLayout | PipLayout | CustomLayout


# -- rounding -------------------------------------------------------------------------


def _even_floor(value: float) -> int:
    # The epsilon keeps 720 * 0.2 (= 144.00000000000003 or 143.99999999999997) at 144.
    return 2 * math.floor(value / 2 + 1e-9)


def _even_round(num: int, den: int) -> int:
    """``num / den`` rounded to the nearest even integer (ties up), at least 2."""
    return max(2, 2 * ((num + den) // (2 * den)))


# -- geometry -------------------------------------------------------------------------


def grid_shape(n: int) -> tuple[int, int]:
    """(cols, rows) of the near-square grid for ``n`` >= 1 inputs."""
    if n < 1:
        raise ValueError(f"grid needs at least one input, got {n}")
    cols = math.isqrt(n - 1) + 1  # ceil(sqrt(n))
    rows = -(-n // cols)
    return cols, rows


def _label_box(cell: Rect) -> Rect | None:
    height = _even_floor(max(LABEL_MIN_HEIGHT, min(LABEL_MAX_HEIGHT, cell.h // 10)))
    margin = LABEL_MARGIN
    if cell.w < 2 * margin + 2 * height or cell.h < 2 * margin + height:
        return None
    return Rect(cell.x + margin, cell.bottom - margin - height, cell.w - 2 * margin, height)


def _region(cell: Rect, z: int, input_id: str, labels: bool) -> Region:
    return Region(cell, z, input_id, _label_box(cell) if labels else None)


def _check_canvas(width: int, height: int) -> None:
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"canvas must have even, positive dimensions, got {width}x{height}")


def fit_rect(cell: Rect, src_w: int, src_h: int, fit: Fit = Fit.CONTAIN) -> Placement:
    """How a ``src_w x src_h`` picture fills ``cell`` (see the module docstring)."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    cw, ch = cell.w, cell.h
    wider = src_w * ch >= src_h * cw  # the source is at least as wide (relative) as the cell
    if fit is Fit.CONTAIN:
        if wider:
            w, h = cw, min(ch, _even_round(src_h * cw, src_w))
        else:
            w, h = min(cw, _even_round(src_w * ch, src_h)), ch
        dest = Rect(cell.x + _even_floor((cw - w) / 2), cell.y + _even_floor((ch - h) / 2), w, h)
        return Placement(w, h, 0, 0, dest)
    if wider:
        sw, sh = max(cw, _even_round(src_w * ch, src_h)), ch
    else:
        sw, sh = cw, max(ch, _even_round(src_h * cw, src_w))
    return Placement(sw, sh, _even_floor((sw - cw) / 2), _even_floor((sh - ch) / 2), cell)


def _grid(spec: GridLayout, width: int, height: int, inputs: Sequence[str]) -> list[Region]:
    shown = list(inputs[:MAX_REGIONS])
    if not shown:
        return []
    cols, rows = grid_shape(len(shown))
    gap = spec.gap
    cell_w = _even_floor((width - gap * (cols - 1)) / cols)
    cell_h = _even_floor((height - gap * (rows - 1)) / rows)
    if cell_w < 2 or cell_h < 2:
        raise LayoutError(f"layout.gap: {gap} leaves no room for {cols}x{rows} cells")
    y0 = _even_floor((height - (rows * cell_h + (rows - 1) * gap)) / 2)
    regions: list[Region] = []
    for row in range(rows):
        in_row = shown[row * cols : (row + 1) * cols]
        x0 = _even_floor((width - (len(in_row) * cell_w + (len(in_row) - 1) * gap)) / 2)
        y = y0 + row * (cell_h + gap)
        for col, input_id in enumerate(in_row):
            cell = Rect(x0 + col * (cell_w + gap), y, cell_w, cell_h)
            regions.append(_region(cell, 0, input_id, spec.labels))
    return regions


def _main_of(preferred: str | None, inputs: Sequence[str], fallback: str | None) -> str:
    for candidate in (preferred, fallback):
        if candidate is not None and candidate in inputs:
            return candidate
    return inputs[0]


def _speaker(
    spec: SpeakerLayout, width: int, height: int, inputs: Sequence[str], active: str | None
) -> list[Region]:
    if not inputs:
        return []
    main = _main_of(spec.main, inputs, active)
    others = [i for i in inputs if i != main][: MAX_REGIONS - 1]
    if not others:
        return [_region(Rect(0, 0, width, height), 0, main, spec.labels)]
    n = len(others)
    horizontal = spec.strip in ("top", "bottom")
    if horizontal:
        thickness = _even_floor(height * spec.strip_size)
        tile_h = thickness
        tile_w = _even_round(tile_h * width, height)
        if n * tile_w > width:  # shrink equally to fit along the strip
            tile_w = _even_floor(width / n)
            tile_h = min(thickness, _even_round(tile_w * height, width))
        x0 = _even_floor((width - n * tile_w) / 2)
        strip_y = height - thickness if spec.strip == "bottom" else 0
        y = strip_y + _even_floor((thickness - tile_h) / 2)
        tiles = [Rect(x0 + k * tile_w, y, tile_w, tile_h) for k in range(n)]
        main_cell = Rect(0, thickness if spec.strip == "top" else 0, width, height - thickness)
    else:
        thickness = _even_floor(width * spec.strip_size)
        tile_w = thickness
        tile_h = _even_round(tile_w * height, width)
        if n * tile_h > height:
            tile_h = _even_floor(height / n)
            tile_w = min(thickness, _even_round(tile_h * width, height))
        y0 = _even_floor((height - n * tile_h) / 2)
        strip_x = width - thickness if spec.strip == "right" else 0
        x = strip_x + _even_floor((thickness - tile_w) / 2)
        tiles = [Rect(x, y0 + k * tile_h, tile_w, tile_h) for k in range(n)]
        main_cell = Rect(thickness if spec.strip == "left" else 0, 0, width - thickness, height)
    regions = [_region(main_cell, 0, main, spec.labels)]
    regions += [
        _region(cell, 0, other, spec.labels) for cell, other in zip(tiles, others, strict=True)
    ]
    return regions


def _pip(
    spec: PipLayout, width: int, height: int, inputs: Sequence[str], active: str | None
) -> list[Region]:
    if not inputs:
        return []
    main = _main_of(spec.main, inputs, None)
    regions = [_region(Rect(0, 0, width, height), 0, main, spec.labels)]
    others = [i for i in inputs if i != main]
    if not others:
        return regions
    inset = _main_of(spec.inset, others, active)
    w = _even_floor(width * spec.inset_size)
    h = _even_round(w * height, width)
    m = spec.margin
    x = m if spec.corner.endswith("left") else width - m - w
    y = m if spec.corner.startswith("top") else height - m - h
    regions.append(_region(Rect(x, y, w, h), 1, inset, spec.labels))
    return regions


def _snap_region(r: CustomRegion, width: int, height: int, where: str) -> Rect:
    if r.x < 0 or r.y < 0 or r.w <= 0 or r.h <= 0:
        raise LayoutError(f"{where}: position must not be negative and size must be positive")
    if r.x + r.w > width or r.y + r.h > height:
        raise LayoutError(
            f"{where}: extends beyond the {width}x{height} canvas "
            f"(x + w = {r.x + r.w}, y + h = {r.y + r.h})"
        )
    x, y = _even_floor(r.x), _even_floor(r.y)
    w, h = _even_floor(r.x + r.w) - x, _even_floor(r.y + r.h) - y
    if w < 2 or h < 2:
        raise LayoutError(f"{where}: smaller than 2x2 pixels once snapped to even")
    return Rect(x, y, w, h)


def _custom(spec: CustomLayout, width: int, height: int, inputs: Sequence[str]) -> list[Region]:
    if len(spec.regions) > MAX_REGIONS:
        raise LayoutError(f"layout.regions: at most {MAX_REGIONS} regions, got {len(spec.regions)}")
    named = {r.input for r in spec.regions if r.input is not None}
    free = iter([i for i in inputs if i not in named])
    present = set(inputs)
    regions: list[Region] = []
    for index, r in enumerate(spec.regions):
        cell = _snap_region(r, width, height, f"layout.regions[{index}]")
        pinned = r.input if r.input in present else None
        input_id = next(free, None) if r.input is None else pinned
        if input_id is not None:
            regions.append(_region(cell, r.z, input_id, spec.labels and r.label))
    return regions


def compute_layout(
    spec: LayoutSpec,
    canvas: tuple[int, int],
    inputs: Sequence[str],
    active_speaker: str | None = None,
) -> tuple[Region, ...]:
    """The regions to paint, in paint order (ascending z, then layout order).

    ``inputs`` is the stage in display order (ids must be unique); an
    ``active_speaker`` that is not among them is ignored.  Raises
    :class:`LayoutError` only for a custom layout that does not fit ``canvas``
    (validate it with :func:`parse_layout` and the canvas first) or a grid gap
    too large for the cells.
    """
    width, height = canvas
    _check_canvas(width, height)
    if len(set(inputs)) != len(inputs):
        raise ValueError(f"input ids must be unique, got {list(inputs)}")
    if isinstance(spec, GridLayout):
        regions = _grid(spec, width, height, inputs)
    elif isinstance(spec, SpeakerLayout):
        regions = _speaker(spec, width, height, inputs, active_speaker)
    elif isinstance(spec, PipLayout):
        regions = _pip(spec, width, height, inputs, active_speaker)
    else:
        regions = _custom(spec, width, height, inputs)
    order = sorted(range(len(regions)), key=lambda k: (regions[k].z, k))
    return tuple(regions[k] for k in order)


# -- the REST ``layout`` field --------------------------------------------------------

_COMMON = ("type", "fit", "labels", "background", "background_image")
_FIELDS: dict[str, tuple[str, ...]] = {
    "grid": (*_COMMON, "gap"),
    "speaker": (*_COMMON, "strip", "strip_size", "main"),
    "pip": (*_COMMON, "main", "inset", "corner", "inset_size", "margin"),
    "custom": (*_COMMON, "regions"),
}
_REGION_FIELDS = ("x", "y", "w", "h", "z", "input", "slot", "label")
_MAX_GAP = 64
_MAX_MARGIN = 256


def _kind_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _int(value: object, where: str, lo: int, hi: int, even: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayoutError(f"{where}: expected an integer, got {_kind_name(value)}")
    if value < lo:
        raise LayoutError(f"{where}: must be at least {lo}, got {value}")
    if value > hi:
        raise LayoutError(f"{where}: must be at most {hi}, got {value}")
    if even and value % 2:
        raise LayoutError(f"{where}: must be even, got {value}")
    return value


def _fraction(value: object, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LayoutError(f"{where}: expected a number, got {_kind_name(value)}")
    if not lo <= value <= hi:
        raise LayoutError(f"{where}: must be between {lo} and {hi}, got {value}")
    return float(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise LayoutError(f"{where}: expected true or false, got {_kind_name(value)}")
    return value


def _choice(value: object, where: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise LayoutError(f"{where}: expected one of {allowed}, got {_kind_name(value)}")
    return value


def _identity(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LayoutError(f"{where}: expected a participant identity, got {_kind_name(value)}")
    return value


def _colour(value: object, where: str) -> Rgb:
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        raise LayoutError(f"{where}: expected a colour '#rrggbb', got {_kind_name(value)}")
    return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))


_DATA_URI = re.compile(r"data:([^,;]*)((?:;[^,;]*)*),(.*)", re.DOTALL | re.IGNORECASE)
_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def parse_data_image(value: object, where: str, max_bytes: int = MAX_IMAGE_BYTES) -> DataImage:
    """A ``data:image/png;base64,...`` or ``data:image/jpeg;base64,...`` value, checked.

    The media type, the base64 text (ASCII whitespace is ignored), the size
    (at most ``max_bytes`` decoded) and the format's signature are checked;
    the picture itself is not decoded here.  Raises :class:`LayoutError`.
    """
    if not isinstance(value, str):
        raise LayoutError(
            f"{where}: expected a data URI ('data:image/png;base64,...' or "
            f"'data:image/jpeg;base64,...'), got {_kind_name(value)}"
        )
    match = _DATA_URI.fullmatch(value)
    if match is None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise LayoutError(
            f"{where}: only data: URIs are taken ('data:image/png;base64,...'), "
            f"no URL is fetched; got {shown!r}"
        )
    media_type = match[1].strip().lower() or "text/plain"
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in _SIGNATURES:
        raise LayoutError(
            f"{where}: media type must be image/png or image/jpeg, got {media_type!r}"
        )
    if "base64" not in [p.strip().lower() for p in match[2].split(";")]:
        raise LayoutError(f"{where}: the data URI must be base64 (';base64,')")
    text = re.sub(r"[ \t\r\n]", "", match[3])
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LayoutError(f"{where}: not valid base64 ({exc})") from None
    if not data:
        raise LayoutError(f"{where}: the image is empty")
    if len(data) > max_bytes:
        raise LayoutError(f"{where}: image too large: {len(data)} bytes, at most {max_bytes}")
    image = DataImage(media_type, data)
    if not data.startswith(_SIGNATURES[media_type]):
        raise LayoutError(f"{where}: not a {image.format} image (its signature is missing)")
    return image


def _check_known(name: str | None, where: str, inputs: Collection[str] | None) -> None:
    if name is not None and inputs is not None and name not in inputs:
        raise LayoutError(f"{where}: {name!r} is not on stage")


def _parse_region(
    raw: object,
    index: int,
    canvas: tuple[int, int] | None,
    inputs: Collection[str] | None,
) -> CustomRegion:
    where = f"layout.regions[{index}]"
    if not isinstance(raw, Mapping):
        raise LayoutError(f"{where}: expected an object, got {_kind_name(raw)}")
    unknown = sorted(str(k) for k in raw if k not in _REGION_FIELDS)
    if unknown:
        raise LayoutError(
            f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(_REGION_FIELDS)})"
        )
    for key in ("x", "y", "w", "h"):
        if key not in raw:
            raise LayoutError(f"{where}.{key}: required")
    big = 1 << 16
    x = _int(raw["x"], f"{where}.x", 0, big)
    y = _int(raw["y"], f"{where}.y", 0, big)
    w = _int(raw["w"], f"{where}.w", 2, big)
    h = _int(raw["h"], f"{where}.h", 2, big)
    z = _int(raw.get("z", index), f"{where}.z", -1000, 1000)
    input_id = _identity(raw.get("input"), f"{where}.input")
    slot = _bool(raw.get("slot", False), f"{where}.slot")
    label = _bool(raw.get("label", True), f"{where}.label")
    if slot and input_id is None:
        raise LayoutError(f"{where}.slot: a reserved slot needs the 'input' it is reserved for")
    if input_id is not None and not slot and inputs is not None and input_id not in inputs:
        raise LayoutError(
            f"{where}.input: {input_id!r} is not on stage "
            "(add \"slot\": true to reserve the region for them, or omit 'input' for a free slot)"
        )
    region = CustomRegion(x, y, w, h, z, input_id, slot, label)
    if canvas is not None:
        _snap_region(region, canvas[0], canvas[1], where)
    return region


def parse_layout(
    obj: object,
    *,
    canvas: tuple[int, int] | None = None,
    inputs: Collection[str] | None = None,
) -> LayoutSpec:
    """Validate the REST ``layout`` value (a name or an object) into a spec.

    With ``canvas`` (the job's output size) custom regions are checked against
    it; with ``inputs`` (the identities on stage) named inputs are checked.
    Raises :class:`LayoutError` naming the field and the reason.
    """
    if isinstance(obj, str):
        if obj == "custom":
            raise LayoutError("layout: a custom layout is an object with 'regions', not a name")
        _choice(obj, "layout", ("grid", "speaker", "pip"))
        obj = {"type": obj}
    if not isinstance(obj, Mapping):
        raise LayoutError(
            f"layout: expected a layout name ('grid', 'speaker', 'pip') or an object, "
            f"got {_kind_name(obj)}"
        )
    if "type" not in obj:
        raise LayoutError("layout.type: required ('grid', 'speaker', 'pip' or 'custom')")
    kind = _choice(obj["type"], "layout.type", tuple(_FIELDS))
    allowed = _FIELDS[kind]
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise LayoutError(
            f"layout: unknown field {unknown[0]!r} for a {kind} layout "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    fit = Fit(_choice(obj.get("fit", "contain"), "layout.fit", tuple(str(f) for f in Fit)))
    labels = _bool(obj.get("labels", True), "layout.labels")
    background = _colour(obj.get("background", "#000000"), "layout.background")
    raw_image = obj.get("background_image")
    image = None if raw_image is None else parse_data_image(raw_image, "layout.background_image")
    if kind == "grid":
        gap = _int(obj.get("gap", 0), "layout.gap", 0, _MAX_GAP, even=True)
        return GridLayout(fit, labels, background, gap, image)
    if kind == "speaker":
        strip: Any = _choice(obj.get("strip", "bottom"), "layout.strip", _EDGES)
        size = _fraction(obj.get("strip_size", 0.2), "layout.strip_size", 0.05, 0.5)
        main = _identity(obj.get("main"), "layout.main")
        _check_known(main, "layout.main", inputs)
        return SpeakerLayout(fit, labels, background, strip, size, main, image)
    if kind == "pip":
        main = _identity(obj.get("main"), "layout.main")
        inset = _identity(obj.get("inset"), "layout.inset")
        _check_known(main, "layout.main", inputs)
        _check_known(inset, "layout.inset", inputs)
        if main is not None and main == inset:
            raise LayoutError("layout.inset: must differ from layout.main")
        corner: Any = _choice(obj.get("corner", "bottom-right"), "layout.corner", _CORNERS)
        inset_size = _fraction(obj.get("inset_size", 0.25), "layout.inset_size", 0.1, 0.5)
        margin = _int(obj.get("margin", 16), "layout.margin", 0, _MAX_MARGIN, even=True)
        return PipLayout(fit, labels, background, main, inset, corner, inset_size, margin, image)
    raw_regions = obj.get("regions")
    if not isinstance(raw_regions, list) or not raw_regions:
        raise LayoutError(
            f"layout.regions: expected a non-empty list of regions, got {_kind_name(raw_regions)}"
        )
    if len(raw_regions) > MAX_REGIONS:
        raise LayoutError(f"layout.regions: at most {MAX_REGIONS} regions, got {len(raw_regions)}")
    regions = tuple(_parse_region(r, k, canvas, inputs) for k, r in enumerate(raw_regions))
    seen: dict[str, int] = {}
    for k, region in enumerate(regions):
        if region.input is None:
            continue
        if region.input in seen:
            raise LayoutError(
                f"layout.regions[{k}].input: {region.input!r} is already shown by "
                f"layout.regions[{seen[region.input]}]"
            )
        seen[region.input] = k
    return CustomLayout(regions, fit, labels, background, image)


def layout_to_json(spec: LayoutSpec) -> dict[str, Any]:
    """The object form of ``spec`` (what ``GET`` reports; ``parse_layout`` reads it back)."""
    r, g, b = spec.background
    out: dict[str, Any] = {
        "fit": str(spec.fit),
        "labels": spec.labels,
        "background": f"#{r:02x}{g:02x}{b:02x}",
    }
    if spec.background_image is not None:
        out["background_image"] = spec.background_image.uri()
    if isinstance(spec, GridLayout):
        out.update(type="grid", gap=spec.gap)
    elif isinstance(spec, SpeakerLayout):
        out.update(type="speaker", strip=spec.strip, strip_size=spec.strip_size, main=spec.main)
    elif isinstance(spec, PipLayout):
        out.update(
            type="pip",
            main=spec.main,
            inset=spec.inset,
            corner=spec.corner,
            inset_size=spec.inset_size,
            margin=spec.margin,
        )
    else:
        regions = []
        for reg in spec.regions:
            item: dict[str, Any] = {"x": reg.x, "y": reg.y, "w": reg.w, "h": reg.h, "z": reg.z}
            if reg.input is not None:
                item["input"] = reg.input
            if reg.slot:
                item["slot"] = True
            if not reg.label:
                item["label"] = False
            regions.append(item)
        out.update(type="custom", regions=regions)
    return out
