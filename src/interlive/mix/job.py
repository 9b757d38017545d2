"""A bypass-live job's settings from the REST body, and the reconnect policy of an output.

Values, no I/O: :func:`parse_live_request` validates ``POST
/api/rooms/{room}/live`` (and :func:`parse_live_patch` the ``PATCH`` body)
into a :class:`LiveSpec`; the mixer process and the control process pass it
along as is.  Every refusal is a :class:`LiveRequestError` whose message names
the field, for the 400 body.  The layout is checked by
:func:`~interlive.mix.layout.parse_layout` against the job's canvas.

Images (the layout's ``background_image``, the ``watermark``) come inline as
``data:`` URIs, never as URLs to fetch.  They are decoded here, once, with
PyAV's ``png`` or ``mjpeg`` decoder (the size in the file's header is checked
first, and ``max_pixels`` bounds the decoder), then scaled: the background
to cover the canvas (centred crop) as a packed yuv420p array, the watermark
to its width as RGBA, placed at even coordinates.  The spec carries those
arrays to the mixer, which only wraps them (:class:`~interlive.mix.compose.I420`,
:class:`~interlive.mix.compose.Watermark`).  ``audio.gains`` are linear
per-identity gains (0..4) kept by identity, on stage or not.

:class:`Backoff` is the reconnect schedule of an RTMP output: 1 s, doubling
to 30 s, back to 1 s once a connection has carried media for 10 s.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange

from interlive.mix.compose import I420
from interlive.mix.layout import (
    DataImage,
    Fit,
    LayoutError,
    LayoutSpec,
    Rect,
    fit_rect,
    parse_data_image,
    parse_layout,
)

__all__ = [
    "AudioSpec",
    "Backoff",
    "Encoding",
    "LiveRequestError",
    "LiveSpec",
    "OutputSpec",
    "WatermarkSpec",
    "decode_image",
    "parse_live_patch",
    "parse_live_request",
]

U8: TypeAlias = npt.NDArray[np.uint8]

MAX_OUTPUTS: Final = 8
#: Largest width and height of an inline image, in pixels (checked before decoding).
MAX_IMAGE_SIDE: Final = 4096
#: Per-input gain: linear, 0 (muted) .. 4 (+12 dB).
MAX_GAIN: Final = 4.0
MAX_GAINS: Final = 256
MAX_WATERMARK_MARGIN: Final = 256
CORNERS: Final = ("top-left", "top-right", "bottom-left", "bottom-right")
X264_PRESETS: Final = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_SCHEMES: Final = ("rtmp://", "rtmps://")


class LiveRequestError(ValueError):
    """The body of a live request is invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class Encoding:
    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate: int = 2_500_000
    audio_bitrate: int = 128_000
    keyframe_interval: float = 2.0  # seconds
    preset: str = "veryfast"  # libx264 speed/quality trade-off


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One push destination (``rtmp://`` or ``rtmps://``)."""

    url: str

    def redacted(self) -> str:
        """The URL without its stream key's query (tokens stay out of status and logs)."""
        return self.url.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class WatermarkSpec:
    """A logo decoded to RGBA at its drawn size, at even ``(x, y)`` on the canvas."""

    image: DataImage
    corner: str
    margin: int
    x: int
    y: int
    width: int
    height: int
    rgba: U8 = field(compare=False, repr=False)  # (height, width, 4)

    def describe(self) -> dict[str, Any]:
        """The status form: the image's digest instead of its bytes."""
        return {
            "image": self.image.describe(),
            "corner": self.corner,
            "margin": self.margin,
            "width": self.width,
            "height": self.height,
            "x": self.x,
            "y": self.y,
        }


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """Linear gain per identity (absent: 1.0); kept for identities not on stage too."""

    gains: tuple[tuple[str, float], ...] = ()

    def gain(self, identity: str) -> float:
        for who, gain in self.gains:
            if who == identity:
                return gain
        return 1.0

    def to_json(self) -> dict[str, Any]:
        return {"gains": dict(self.gains)}


@dataclass(frozen=True, slots=True)
class LiveSpec:
    outputs: tuple[OutputSpec, ...]
    layout: LayoutSpec
    #: the layout as given (GET shows it), a background image's bytes replaced by their digest
    layout_json: Any
    encoding: Encoding = field(default_factory=Encoding)
    hls: bool = True
    record: bool = True
    #: the layout's background image decoded, covering the canvas: packed yuv420p
    #: (``(height * 3 // 2, width)``, as :meth:`I420.from_packed` takes it)
    background: U8 | None = field(default=None, compare=False, repr=False)
    watermark: WatermarkSpec | None = None
    audio: AudioSpec = field(default_factory=AudioSpec)


def _int(value: object, where: str, lo: int, hi: int, even: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise LiveRequestError(f"{where}: must be an integer {lo}..{hi}, got {value!r}")
    if even and value % 2:
        raise LiveRequestError(f"{where}: must be even, got {value}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise LiveRequestError(f"{where}: must be true or false, got {value!r}")
    return value


def _known(body: Mapping[str, Any], where: str, allowed: Collection[str]) -> None:
    for key in body:
        if key not in allowed:
            raise LiveRequestError(
                f"{where}: unknown field {key!r} (allowed: {', '.join(sorted(allowed))})"
            )


def _encoding(value: object) -> Encoding:
    if value is None:
        return Encoding()
    if not isinstance(value, Mapping):
        raise LiveRequestError("encoding: must be an object")
    _known(value, "encoding", Encoding.__dataclass_fields__)
    d = Encoding()
    interval = value.get("keyframe_interval", d.keyframe_interval)
    if not isinstance(interval, int | float) or isinstance(interval, bool):
        raise LiveRequestError(f"encoding.keyframe_interval: must be a number, got {interval!r}")
    if not 0.5 <= interval <= 10:
        raise LiveRequestError(f"encoding.keyframe_interval: must be 0.5..10 s, got {interval}")
    return Encoding(
        width=_int(value.get("width", d.width), "encoding.width", 160, 3840, even=True),
        height=_int(value.get("height", d.height), "encoding.height", 90, 2160, even=True),
        fps=_int(value.get("fps", d.fps), "encoding.fps", 1, 60),
        video_bitrate=_int(
            value.get("video_bitrate", d.video_bitrate),
            "encoding.video_bitrate",
            100_000,
            20_000_000,
        ),
        audio_bitrate=_int(
            value.get("audio_bitrate", d.audio_bitrate), "encoding.audio_bitrate", 32_000, 320_000
        ),
        keyframe_interval=float(interval),
        preset=_preset(value.get("preset", d.preset)),
    )


def _preset(value: object) -> str:
    if value not in X264_PRESETS:
        raise LiveRequestError(
            f"encoding.preset: must be one of {', '.join(X264_PRESETS)}, got {value!r}"
        )
    return str(value)


def _outputs(value: object) -> tuple[OutputSpec, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise LiveRequestError('outputs: must be a list of {"url": ...} objects')
    if len(value) > MAX_OUTPUTS:
        raise LiveRequestError(f"outputs: at most {MAX_OUTPUTS}, got {len(value)}")
    outs: list[OutputSpec] = []
    for k, item in enumerate(value):
        where = f"outputs[{k}]"
        if not isinstance(item, Mapping):
            raise LiveRequestError(f"{where}: must be an object with a url")
        _known(item, where, ("url",))
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(_SCHEMES) or len(url) > 2048:
            raise LiveRequestError(f"{where}.url: must be an rtmp:// or rtmps:// URL, got {url!r}")
        if any(c.isspace() for c in url):
            raise LiveRequestError(f"{where}.url: must not contain spaces")
        if any(o.url == url for o in outs):
            raise LiveRequestError(f"{where}.url: the same URL twice")
        outs.append(OutputSpec(url))
    return tuple(outs)


def _layout(value: object, encoding: Encoding, inputs: Collection[str] | None) -> LayoutSpec:
    try:
        return parse_layout(value, canvas=(encoding.width, encoding.height), inputs=inputs)
    except LayoutError as exc:
        raise LiveRequestError(str(exc)) from exc


def _shown_layout(value: object, layout: LayoutSpec) -> Any:
    """The layout as given, with a background image's data URI replaced by its digest."""
    if isinstance(value, Mapping) and layout.background_image is not None:
        return {**value, "background_image": layout.background_image.describe()}
    return value


# -- images ------------------------------------------------------------------------------


def _image_size(image: DataImage) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's SOFn segment; None if not found."""
    data = image.data
    if image.media_type == "image/png":
        if len(data) >= 24 and data[12:16] == b"IHDR":  # the first chunk, after the signature
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return None
    k = 2  # after SOI: marker segments up to the frame header
    while k + 4 <= len(data):
        if data[k] != 0xFF:
            return None
        marker = data[k + 1]
        if marker == 0xFF:  # fill byte
            k += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            k += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            if k + 9 > len(data):
                return None
            height = int.from_bytes(data[k + 5 : k + 7], "big")
            return int.from_bytes(data[k + 7 : k + 9], "big"), height
        length = int.from_bytes(data[k + 2 : k + 4], "big")
        if length < 2:
            return None
        k += 2 + length
    return None


def decode_image(image: DataImage, where: str) -> av.VideoFrame:
    """The picture of a PNG or JPEG, decoded by PyAV; :class:`LiveRequestError` if it is not one.

    The size in the header is checked against :data:`MAX_IMAGE_SIDE` before
    anything is decoded (a small file may claim a huge picture).
    """
    size = _image_size(image)
    if size is None or 0 in size:
        raise LiveRequestError(
            f"{where}: not a valid {image.format} image (no picture size in its header)"
        )
    width, height = size
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise LiveRequestError(
            f"{where}: image too large: {width}x{height} pixels, "
            f"at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}"
        )
    codec = av.CodecContext.create("png" if image.media_type == "image/png" else "mjpeg", "r")
    codec.options = {"max_pixels": str(MAX_IMAGE_SIDE * MAX_IMAGE_SIDE)}
    try:
        frames = list(codec.decode(av.Packet(image.data)))
        if not frames:
            frames = list(codec.decode(None))
    except av.FFmpegError as exc:
        reason = exc.strerror or str(exc)
        raise LiveRequestError(
            f"{where}: the {image.format} data does not decode ({reason})"
        ) from None
    if not frames:
        raise LiveRequestError(f"{where}: the {image.format} data holds no picture")
    frame: av.VideoFrame = frames[0]
    return frame


def _background(image: DataImage, encoding: Encoding) -> U8:
    """``image`` scaled to cover the canvas (centred crop), as packed yuv420p."""
    frame = decode_image(image, "layout.background_image")
    width, height = encoding.width, encoding.height
    place = fit_rect(Rect(0, 0, width, height), frame.width, frame.height, Fit.COVER)
    scaled = frame.reformat(
        place.scale_w, place.scale_h, "yuv420p", dst_color_range=ColorRange.MPEG
    )
    src = I420.from_packed(
        np.asarray(scaled.to_ndarray(), dtype=np.uint8), place.scale_w, place.scale_h
    )
    out = I420.blank(width, height)
    x, y = place.crop_x, place.crop_y
    out.y[...] = src.y[y : y + height, x : x + width]
    cx, cy, cw, ch = x // 2, y // 2, width // 2, height // 2
    out.u[...] = src.u[cy : cy + ch, cx : cx + cw]
    out.v[...] = src.v[cy : cy + ch, cx : cx + cw]
    assert out.packed is not None
    return out.packed


def _layout_background(
    layout: LayoutSpec, encoding: Encoding, previous: LiveSpec | None
) -> U8 | None:
    image = layout.background_image
    if image is None:
        return None
    if (
        previous is not None
        and previous.background is not None
        and previous.layout.background_image == image
    ):
        return previous.background  # the same picture again: no new decode
    return _background(image, encoding)


def _scaled_rgba(frame: av.VideoFrame, width: int, height: int) -> U8:
    """``frame`` as ``(height, width, 4)`` RGBA, scaled with premultiplied alpha.

    Scaling straight RGBA would pull the colour of transparent pixels (often
    black) into the logo's edges; scaling ``rgb * alpha`` and dividing back
    keeps the edges the logo's own colour.
    """
    rgba = np.asarray(frame.reformat(format="rgba").to_ndarray(), dtype=np.uint8)
    if (frame.width, frame.height) == (width, height):
        return np.ascontiguousarray(rgba)
    alpha = rgba[..., 3:].astype(np.uint32)
    pre = rgba.copy()
    pre[..., :3] = (rgba[..., :3] * alpha + 127) // 255
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(pre), format="rgba")
    scaled = np.asarray(picture.reformat(width, height).to_ndarray(), dtype=np.uint8)
    a = scaled[..., 3:].astype(np.uint32)
    rgb = (scaled[..., :3].astype(np.uint32) * 255 + a // 2) // np.maximum(a, 1)
    out = scaled.copy()
    out[..., :3] = np.minimum(rgb, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _data_image(value: object, where: str) -> DataImage:
    try:
        return parse_data_image(value, where)
    except LayoutError as exc:
        raise LiveRequestError(str(exc)) from None


_WATERMARK_FIELDS: Final = ("image", "corner", "margin", "width")


def _watermark(value: object, encoding: Encoding) -> WatermarkSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise LiveRequestError(
            'watermark: must be an object {"image": "data:image/png;base64,..."}'
        )
    _known(value, "watermark", _WATERMARK_FIELDS)
    if "image" not in value:
        raise LiveRequestError("watermark.image: required (a data:image/png;base64,... URI)")
    image = _data_image(value["image"], "watermark.image")
    corner = value.get("corner", "top-right")
    if corner not in CORNERS:
        raise LiveRequestError(
            f"watermark.corner: must be one of {', '.join(CORNERS)}, got {corner!r}"
        )
    margin = _int(value.get("margin", 16), "watermark.margin", 0, MAX_WATERMARK_MARGIN, even=True)
    raw_width = value.get("width")
    if raw_width is not None:
        _int(raw_width, "watermark.width", 2, encoding.width)
    frame = decode_image(image, "watermark.image")
    width = frame.width if raw_width is None else int(raw_width)
    width = max(2, width - width % 2)  # even, as the compositor wants
    height = max(2, 2 * ((frame.height * width + frame.width) // (2 * frame.width)))
    canvas_w, canvas_h = encoding.width, encoding.height
    if width + margin > canvas_w or height + margin > canvas_h:
        raise LiveRequestError(
            f"watermark: {width}x{height} at margin {margin} does not fit the "
            f"{canvas_w}x{canvas_h} canvas (give a smaller width)"
        )
    x = margin if corner.endswith("left") else canvas_w - margin - width
    y = margin if corner.startswith("top") else canvas_h - margin - height
    rgba = _scaled_rgba(frame, width, height)
    return WatermarkSpec(image, str(corner), margin, x, y, width, height, rgba)


# -- audio -------------------------------------------------------------------------------


def _audio(value: object, base: AudioSpec) -> AudioSpec:
    """``base`` with the ``audio`` object's gains merged in (null resets one to 1.0)."""
    if not isinstance(value, Mapping):
        raise LiveRequestError('audio: must be an object like {"gains": {"alice": 0.5}}')
    _known(value, "audio", ("gains",))
    raw = value.get("gains", {})
    if not isinstance(raw, Mapping):
        raise LiveRequestError("audio.gains: must be an object {identity: gain}")
    gains = dict(base.gains)
    for identity, gain in raw.items():
        if not isinstance(identity, str) or not identity or len(identity) > 128:
            raise LiveRequestError(f"audio.gains: {identity!r} is not a participant identity")
        where = f"audio.gains[{identity!r}]"
        if gain is None:
            gains.pop(identity, None)
            continue
        if (
            isinstance(gain, bool)
            or not isinstance(gain, int | float)
            or not math.isfinite(gain)
            or not 0 <= gain <= MAX_GAIN
        ):
            raise LiveRequestError(
                f"{where}: must be a linear gain 0..{MAX_GAIN:g} "
                f"(1 unchanged, 0 muted), got {gain!r}"
            )
        gains[identity] = float(gain)
    if len(gains) > MAX_GAINS:
        raise LiveRequestError(f"audio.gains: at most {MAX_GAINS} identities, got {len(gains)}")
    return AudioSpec(tuple(gains.items()))


_FIELDS: Final = ("outputs", "layout", "encoding", "hls", "record", "watermark", "audio")
_PATCH_FIELDS: Final = ("outputs", "layout", "watermark", "audio")


def parse_live_request(body: object, inputs: Collection[str] | None = None) -> LiveSpec:
    """A validated POST body; ``inputs`` are the identities on stage (for custom layouts)."""
    if not isinstance(body, Mapping):
        raise LiveRequestError("the body must be a JSON object")
    _known(body, "body", _FIELDS)
    if "outputs" not in body:
        raise LiveRequestError("outputs: required (a list, may be empty)")
    outputs = _outputs(body["outputs"])
    encoding = _encoding(body.get("encoding"))
    layout_json = body.get("layout", "grid")
    layout = _layout(layout_json, encoding, inputs)
    hls = _bool(body.get("hls", True), "hls")
    record = _bool(body.get("record", True), "record")
    audio = _audio(body["audio"], AudioSpec()) if "audio" in body else AudioSpec()
    return LiveSpec(
        outputs=outputs,
        layout=layout,
        layout_json=_shown_layout(layout_json, layout),
        encoding=encoding,
        hls=hls,
        record=record,
        background=_layout_background(layout, encoding, None),
        watermark=_watermark(body.get("watermark"), encoding),
        audio=audio,
    )


def parse_live_patch(
    body: object, spec: LiveSpec, inputs: Collection[str] | None = None
) -> LiveSpec:
    """``spec`` with the PATCH body's ``layout``, ``outputs``, ``watermark``, ``audio`` applied.

    A layout replaces the whole layout (its background image included); a
    watermark replaces the watermark (null removes it); ``audio.gains`` are
    merged into the current gains (null resets an identity to 1.0).
    """
    if not isinstance(body, Mapping):
        raise LiveRequestError("the body must be a JSON object")
    _known(body, "body", _PATCH_FIELDS)
    if not body:
        raise LiveRequestError(
            "body: nothing to change (give layout, outputs, watermark and/or audio)"
        )
    outputs = _outputs(body["outputs"]) if "outputs" in body else spec.outputs
    if "layout" in body:
        layout = _layout(body["layout"], spec.encoding, inputs)
        layout_json = _shown_layout(body["layout"], layout)
        background = _layout_background(layout, spec.encoding, spec)
    else:
        layout_json, layout, background = spec.layout_json, spec.layout, spec.background
    watermark = (
        _watermark(body["watermark"], spec.encoding) if "watermark" in body else spec.watermark
    )
    audio = _audio(body["audio"], spec.audio) if "audio" in body else spec.audio
    return LiveSpec(
        outputs=outputs,
        layout=layout,
        layout_json=layout_json,
        encoding=spec.encoding,
        hls=spec.hls,
        record=spec.record,
        background=background,
        watermark=watermark,
        audio=audio,
    )


class Backoff:
    """Delay before reconnect ``n``: ``first * 2**n`` capped at ``cap``; reset after a good run."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, healthy_after: float = 10.0) -> None:
        self.first, self.cap, self.healthy_after = first, cap, healthy_after
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2.0**self.failures)
        self.failures += 1
        return delay

    def connected_for(self, seconds: float) -> None:
        """A connection carried media for ``seconds``: once long enough, start over at ``first``."""
        if seconds >= self.healthy_after:
            self.failures = 0
