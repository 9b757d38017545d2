"""Background image, watermark and per-input gain: from the REST body to the mixer.

Real PNG and JPEG files (encoded here with PyAV) go through
:func:`parse_live_request` / :func:`parse_live_patch` as data URIs; the
mixer's compositor then draws them and its audio mixer applies the gains.
"""

from __future__ import annotations

import asyncio
import base64
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import pytest

from interlive.mix.compose import I420, rgb_to_yuv
from interlive.mix.job import (
    AudioSpec,
    LiveRequestError,
    LiveSpec,
    parse_live_patch,
    parse_live_request,
)
from interlive.mix.layout import MAX_IMAGE_BYTES, DataImage, layout_to_json, parse_layout
from interlive.mix.process import Mixer

W, H = 320, 180
CANVAS = {"width": W, "height": H, "fps": 30}


def encode_image(pixels: npt.NDArray[np.uint8], codec: str = "png") -> bytes:
    """An (h, w, 3 or 4) RGB(A) array as one PNG (RGBA) or JPEG file."""
    ctx = cast(av.VideoCodecContext, av.CodecContext.create(codec, "w"))
    ctx.height, ctx.width = pixels.shape[:2]
    ctx.pix_fmt = "rgba" if codec == "png" else "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    if pixels.shape[2] == 3:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgba")
    frame = frame.reformat(format=ctx.pix_fmt)
    return b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def solid(width: int, height: int, rgb: tuple[int, int, int], alpha: int = 255) -> bytes:
    pixels = np.zeros((height, width, 4), np.uint8)
    pixels[..., :3] = rgb
    pixels[..., 3] = alpha
    return encode_image(pixels)


def logo() -> bytes:
    """20x10: white, opaque on the left half, alpha 128 on the right half."""
    pixels = np.full((10, 20, 4), 255, np.uint8)
    pixels[:, 10:, 3] = 128
    return encode_image(pixels)


def body(**fields: Any) -> dict[str, Any]:
    return {"outputs": [], "encoding": CANVAS, **fields}


def near(value: int, expected: int, tolerance: int = 2) -> bool:
    return abs(int(value) - expected) <= tolerance


# -- parsing ----------------------------------------------------------------------------------

PNG = data_uri(solid(8, 8, (255, 0, 0)))
HUGE_PNG = bytearray(solid(8, 8, (255, 0, 0)))
HUGE_PNG[16:24] = (5000).to_bytes(4, "big") + (5000).to_bytes(4, "big")  # IHDR says 5000x5000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"layout": {"type": "grid", "background_image": "https://example.com/bg.png"}},
            "layout.background_image: only data: URIs are taken "
            "('data:image/png;base64,...'), no URL is fetched; "
            "got 'https://example.com/bg.png'",
        ),
        (
            {"layout": {"type": "grid", "background_image": 7}},
            "layout.background_image: expected a data URI ('data:image/png;base64,...' or "
            "'data:image/jpeg;base64,...'), got the number 7",
        ),
        (
            {"layout": {"type": "pip", "background_image": "data:image/gif;base64,R0lG"}},
            "layout.background_image: media type must be image/png or image/jpeg, got 'image/gif'",
        ),
        (
            {"layout": {"type": "grid", "background_image": "data:image/png,rawbytes"}},
            "layout.background_image: the data URI must be base64 (';base64,')",
        ),
        (
            {"layout": {"type": "grid", "background_image": "data:image/png;base64,iVBOR*"}},
            "layout.background_image: not valid base64 (Only base64 data is allowed)",
        ),
        (
            {"layout": {"type": "grid", "background_image": "data:image/png;base64,"}},
            "layout.background_image: the image is empty",
        ),
        (
            {"layout": {"type": "grid", "background_image": data_uri(b"GIF89a" + bytes(20))}},
            "layout.background_image: not a PNG image (its signature is missing)",
        ),
        (
            {
                "layout": {
                    "type": "grid",
                    "background_image": data_uri(b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES)),
                }
            },
            f"layout.background_image: image too large: {MAX_IMAGE_BYTES + 3} bytes, "
            f"at most {MAX_IMAGE_BYTES}",
        ),
        (
            {"layout": {"type": "grid", "background_image": data_uri(bytes(HUGE_PNG))}},
            "layout.background_image: image too large: 5000x5000 pixels, at most 4096x4096",
        ),
        (
            {"layout": {"type": "grid", "background_image": data_uri(solid(8, 8, (1, 2, 3))[:40])}},
            "layout.background_image: the PNG data does not decode "
            "(Invalid data found when processing input)",
        ),
        (
            {
                "layout": {
                    "type": "grid",
                    "background_image": data_uri(b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
                }
            },
            "layout.background_image: not a valid JPEG image (no picture size in its header)",
        ),
        ({"watermark": "logo.png"}, 'watermark: must be an object {"image": "data:image/png'),
        ({"watermark": {}}, "watermark.image: required (a data:image/png;base64,... URI)"),
        (
            {"watermark": {"image": PNG, "opacity": 1}},
            "watermark: unknown field 'opacity' (allowed: corner, image, margin, width)",
        ),
        (
            {"watermark": {"image": PNG, "corner": "middle"}},
            "watermark.corner: must be one of top-left, top-right, bottom-left, bottom-right, "
            "got 'middle'",
        ),
        ({"watermark": {"image": PNG, "margin": 15}}, "watermark.margin: must be even, got 15"),
        (
            {"watermark": {"image": PNG, "width": 4000}},
            "watermark.width: must be an integer 2..320, got 4000",
        ),
        (
            {"watermark": {"image": PNG, "width": 300, "margin": 32}},
            "watermark: 300x300 at margin 32 does not fit the 320x180 canvas "
            "(give a smaller width)",
        ),
        (
            {"watermark": {"image": "data:text/plain;base64,aGk="}},
            "watermark.image: media type must be image/png or image/jpeg, got 'text/plain'",
        ),
        ({"audio": 1}, 'audio: must be an object like {"gains": {"alice": 0.5}}'),
        ({"audio": {"volume": 1}}, "audio: unknown field 'volume' (allowed: gains)"),
        ({"audio": {"gains": [1]}}, "audio.gains: must be an object {identity: gain}"),
        (
            {"audio": {"gains": {"alice": 5}}},
            "audio.gains['alice']: must be a linear gain 0..4 (1 unchanged, 0 muted), got 5",
        ),
        (
            {"audio": {"gains": {"alice": "loud"}}},
            "audio.gains['alice']: must be a linear gain 0..4 (1 unchanged, 0 muted), got 'loud'",
        ),
        (
            {"audio": {"gains": {"alice": True}}},
            "audio.gains['alice']: must be a linear gain 0..4 (1 unchanged, 0 muted), got True",
        ),
        (
            {"audio": {"gains": {"alice": float("nan")}}},
            "audio.gains['alice']: must be a linear gain 0..4 (1 unchanged, 0 muted), got nan",
        ),
        ({"audio": {"gains": {"": 1}}}, "audio.gains: '' is not a participant identity"),
    ],
)
def test_invalid_images_and_gains_are_refused_with_the_reason(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(LiveRequestError) as info:
        parse_live_request(body(**fields))
    assert str(info.value).startswith(message), str(info.value)


def test_a_background_image_is_decoded_once_and_covers_the_canvas() -> None:
    # 64x18 (wider than 16:9): cover scales it to 640x180 and keeps the centre 320 columns
    pixels = np.zeros((18, 64, 3), np.uint8)
    pixels[:, :16] = (255, 255, 255)  # cropped away
    pixels[:, 16:32] = (200, 30, 60)
    pixels[:, 32:48] = (20, 200, 40)
    pixels[:, 48:] = (255, 255, 255)  # cropped away
    uri = data_uri(encode_image(pixels))
    spec = parse_live_request(body(layout={"type": "grid", "background_image": uri}))
    assert spec.background is not None and spec.background.shape == (H * 3 // 2, W)
    picture = I420.from_packed(spec.background, W, H)
    left, right = rgb_to_yuv((200, 30, 60)), rgb_to_yuv((20, 200, 40))
    for x, colour in ((20, left), (140, left), (180, right), (300, right)):
        assert near(picture.y[90, x], colour[0]), (x, picture.y[90, x], colour)
        assert near(picture.u[45, x // 2], colour[1]) and near(picture.v[45, x // 2], colour[2])
    # the status shows a digest, not the bytes; layout_to_json gives the data URI back
    assert spec.layout_json["background_image"]["media_type"] == "image/png"
    assert spec.layout_json["background_image"]["bytes"] == len(encode_image(pixels))
    assert layout_to_json(spec.layout)["background_image"] == uri
    # the same picture again in a PATCH is not decoded again
    same = parse_live_patch({"layout": {"type": "speaker", "background_image": uri}}, spec)
    assert same.background is spec.background
    gone = parse_live_patch({"layout": "grid"}, spec)
    assert gone.background is None and gone.layout.background_image is None


def test_a_jpeg_background_is_converted_to_limited_range() -> None:
    jpeg = encode_image(np.full((36, 64, 3), (200, 30, 60), np.uint8), "mjpeg")
    uri = data_uri(jpeg, "image/jpeg")
    spec = parse_live_request(body(layout={"type": "grid", "background_image": uri}))
    assert spec.background is not None
    picture = I420.from_packed(spec.background, W, H)
    y, u, v = rgb_to_yuv((200, 30, 60))
    assert near(picture.y[90, 160], y, 3)
    assert near(picture.u[45, 80], u, 3) and near(picture.v[45, 80], v, 3)


def test_watermark_size_and_corner() -> None:
    spec = parse_live_request(body(watermark={"image": data_uri(logo()), "width": 41}))
    mark = spec.watermark
    assert mark is not None
    # width 41 -> 40 (even), the height keeps the 2:1 aspect; top-right, 16 px margin
    assert (mark.width, mark.height, mark.x, mark.y) == (40, 20, W - 16 - 40, 16)
    assert mark.rgba.shape == (20, 40, 4)
    shown = mark.describe()
    assert shown["corner"] == "top-right" and shown["image"]["media_type"] == "image/png"
    spec = parse_live_request(
        body(watermark={"image": data_uri(logo()), "corner": "bottom-left", "margin": 0})
    )
    assert spec.watermark is not None
    assert (spec.watermark.x, spec.watermark.y, spec.watermark.width) == (0, H - 10, 20)


def test_a_scaled_watermark_keeps_its_colour_at_soft_edges() -> None:
    pixels = np.zeros((16, 32, 4), np.uint8)
    pixels[:, :16] = 255  # opaque white; the right half is transparent black
    uri = data_uri(encode_image(pixels))
    spec = parse_live_request(body(watermark={"image": uri, "width": 12}))
    assert spec.watermark is not None
    rgba = spec.watermark.rgba
    alpha = rgba[..., 3]
    edge = (alpha > 0) & (alpha < 255)
    assert edge.any()  # 32 -> 12 leaves a partly transparent column
    # premultiplied scaling: no black pulled in from the transparent half
    assert (rgba[..., :3][alpha > 0] >= 250).all(), rgba[0]
    straight = av.VideoFrame.from_ndarray(pixels, format="rgba").reformat(12, 6).to_ndarray()
    assert (straight[..., :3][edge] < 200).any()  # what scaling straight RGBA would give


def test_patch_replaces_or_removes_the_watermark_and_merges_the_gains() -> None:
    spec = parse_live_request(
        body(watermark={"image": data_uri(logo())}, audio={"gains": {"alice": 0.5, "bob": 2}})
    )
    assert spec.audio == AudioSpec((("alice", 0.5), ("bob", 2.0)))
    patched = parse_live_patch({"audio": {"gains": {"bob": None, "carol": 0}}}, spec)
    assert patched.audio.to_json() == {"gains": {"alice": 0.5, "carol": 0.0}}
    assert patched.audio.gain("bob") == 1.0 and patched.watermark == spec.watermark
    assert patched.layout == spec.layout and patched.outputs == spec.outputs
    removed = parse_live_patch({"watermark": None}, spec)
    assert removed.watermark is None and removed.audio == spec.audio
    with pytest.raises(LiveRequestError, match=r"^body: nothing to change \(give layout"):
        parse_live_patch({}, spec)
    with pytest.raises(LiveRequestError, match=r"^watermark\.margin: must be even"):
        parse_live_patch({"watermark": {"image": data_uri(logo()), "margin": 3}}, spec)


def test_data_images_compare_by_content() -> None:
    a = parse_layout({"type": "grid", "background_image": PNG}).background_image
    b = parse_layout({"type": "pip", "background_image": PNG.replace("base64,", "base64,\n")})
    assert isinstance(a, DataImage) and a == b.background_image
    assert "data" not in repr(a).replace("DataImage", "")  # no bytes in logs


# -- the mixer --------------------------------------------------------------------------------


def _canvas(mixer: Mixer) -> I420:
    return I420.from_packed(mixer._compositor.compose([]).copy(), W, H)


async def _compose_and_mix(tmp: Path) -> None:
    green = (20, 200, 40)
    spec = parse_live_request(
        body(
            layout={"type": "grid", "background_image": data_uri(solid(32, 18, green))},
            watermark={"image": data_uri(logo()), "width": 40, "margin": 8},
            audio={"gains": {"alice": 0.5, "carol": 2.0}},
            hls=False,
            record=False,
        )
    )
    mixer = Mixer(spec, tmp, "127.0.0.1")
    try:
        bg = rgb_to_yuv(green)
        canvas = _canvas(mixer)
        x0, y0 = W - 8 - 40, 8  # the watermark's top-left corner
        assert near(canvas.y[100, 100], bg[0]) and near(canvas.u[50, 50], bg[1])
        assert near(canvas.y[y0 + 10, x0 - 4], bg[0])  # just left of the watermark
        assert near(canvas.y[y0 + 10, x0 + 8], 235)  # opaque white
        assert near(canvas.u[(y0 + 10) // 2, (x0 + 8) // 2], 128)
        blended = (235 * 128 + bg[0] * 127 + 127) // 255  # white at alpha 128
        assert near(canvas.y[y0 + 10, x0 + 32], blended)
        assert near(canvas.y[y0 + 30, x0 + 8], bg[0])  # below it

        # PATCH: no watermark, a colour background; the encoder is not touched
        encoders = mixer.encoders
        mixer.set_layout(
            parse_live_patch(
                {"watermark": None, "layout": {"type": "grid", "background": "#ffffff"}}, spec
            )
        )
        canvas = _canvas(mixer)
        assert mixer.encoders is encoders
        assert canvas.y[y0 + 10, x0 + 8] == 235 and canvas.y[100, 100] == 235
        assert canvas.u[50, 50] == 128

        # gains: kept by identity, applied on join and on PATCH
        await mixer.add_input("alice")
        await mixer.add_input("bob")
        assert mixer.audio.gain("alice") == 0.5 and mixer.audio.gain("bob") == 1.0
        status = {i["identity"]: i["gain"] for i in mixer.status()["inputs"]}
        assert status == {"alice": 0.5, "bob": 1.0}
        patched = parse_live_patch({"audio": {"gains": {"bob": 0.25}}}, mixer.spec)
        mixer.set_audio(patched)
        assert mixer.audio.gain("alice") == 0.5 and mixer.audio.gain("bob") == 0.25
        await mixer.add_input("carol")
        assert mixer.audio.gain("carol") == 2.0

        # the gain reaches the samples: 0.1 in, 0.1 * gain out (after the one-frame ramp)
        n = 1024
        level = np.full((2, n * 4), 0.1, np.float32)
        mixer.remove_input("alice")
        mixer.remove_input("carol")
        mixer.audio.push("bob", level, 0)
        frames = [mixer.audio.mix(k * n, n) for k in range(3)]
        assert np.allclose(frames[2], 0.025, atol=1e-4), frames[2][:, :4]
    finally:
        for who in list(mixer.inputs):
            mixer.remove_input(who)
        mixer.close()


def test_the_mixer_draws_the_background_and_watermark_and_applies_gains(tmp_path: Path) -> None:
    asyncio.run(_compose_and_mix(tmp_path))


def test_live_spec_without_the_new_fields_keeps_its_defaults() -> None:
    spec = LiveSpec(outputs=(), layout=parse_layout("grid"), layout_json="grid")
    assert spec.background is None and spec.watermark is None and spec.audio == AudioSpec()
    assert parse_live_request({"outputs": []}).audio.gain("anyone") == 1.0
