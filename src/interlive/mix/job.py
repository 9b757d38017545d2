"""A bypass-live job's settings from the REST body, and the reconnect policy of an output.

Pure values, no I/O: :func:`parse_live_request` validates ``POST
/api/rooms/{room}/live`` (and :func:`parse_live_patch` the ``PATCH`` body)
into a :class:`LiveSpec`; the mixer process and the control process pass it
along as is.  Every refusal is a :class:`LiveRequestError` whose message names
the field, for the 400 body.  The layout is checked by
:func:`~interlive.mix.layout.parse_layout` against the job's canvas.

:class:`Backoff` is the reconnect schedule of an RTMP output: 1 s, doubling
to 30 s, back to 1 s once a connection has carried media for 10 s.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from interlive.mix.layout import LayoutError, LayoutSpec, parse_layout

__all__ = [
    "Backoff",
    "Encoding",
    "LiveRequestError",
    "LiveSpec",
    "OutputSpec",
    "parse_live_patch",
    "parse_live_request",
]

MAX_OUTPUTS: Final = 8
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
class LiveSpec:
    outputs: tuple[OutputSpec, ...]
    layout: LayoutSpec
    layout_json: Any
    encoding: Encoding = field(default_factory=Encoding)
    hls: bool = True
    record: bool = True


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


_FIELDS: Final = ("outputs", "layout", "encoding", "hls", "record")


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
    return LiveSpec(
        outputs=outputs,
        layout=layout,
        layout_json=layout_json,
        encoding=encoding,
        hls=_bool(body.get("hls", True), "hls"),
        record=_bool(body.get("record", True), "record"),
    )


def parse_live_patch(
    body: object, spec: LiveSpec, inputs: Collection[str] | None = None
) -> LiveSpec:
    """``spec`` with the PATCH body's ``layout`` and/or ``outputs`` applied."""
    if not isinstance(body, Mapping):
        raise LiveRequestError("the body must be a JSON object")
    _known(body, "body", ("outputs", "layout"))
    if not body:
        raise LiveRequestError("body: nothing to change (give layout and/or outputs)")
    outputs = _outputs(body["outputs"]) if "outputs" in body else spec.outputs
    if "layout" in body:
        layout_json = body["layout"]
        layout = _layout(layout_json, spec.encoding, inputs)
    else:
        layout_json, layout = spec.layout_json, spec.layout
    return LiveSpec(
        outputs=outputs,
        layout=layout,
        layout_json=layout_json,
        encoding=spec.encoding,
        hls=spec.hls,
        record=spec.record,
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
