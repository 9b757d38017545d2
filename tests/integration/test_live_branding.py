"""Background image, watermark and per-input gain over REST, seen in the mix's HTTP-FLV.

A real server and an aiortc publisher (test pattern + 440 Hz tone); the job
is started with a PNG background, a PNG watermark with alpha and gains; the
mix is played back over ``GET /live/{room}.flv`` and decoded with PyAV: the
watermark's and the background's pixels are there, and a ``PATCH`` of the
publisher's gain lowers the level (RMS) of the mix's audio.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import statistics
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
import numpy.typing as npt

from interlive.client import TestPatternVideoTrack, ToneAudioTrack, WhipPublisher
from interlive.server.live_api import MAX_BODY
from tests.helpers.server import RunningServer
from tests.helpers.wait import eventually

ROOM = "brand"
W, H = 320, 180
GREEN = (20, 200, 40)  # the background picture; Y' about 130
MARK_X, MARK_Y, MARK_W, MARK_H = W - 16 - 64, 16, 64, 32  # top-right, margin 16, width 64


def png(pixels: npt.NDArray[np.uint8]) -> str:
    """An (h, w, 4) RGBA array as a PNG data URI."""
    ctx = av.CodecContext.create("png", "w")
    ctx.height, ctx.width = pixels.shape[:2]
    ctx.pix_fmt = "rgba"
    ctx.time_base = Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgba")
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def background() -> str:
    pixels = np.zeros((36, 64, 4), np.uint8)
    pixels[..., :3] = GREEN
    pixels[..., 3] = 255
    return png(pixels)


def watermark() -> str:
    """32x16: opaque white on the left half, fully transparent on the right half."""
    pixels = np.full((16, 32, 4), 255, np.uint8)
    pixels[:, 16:, 3] = 0
    return png(pixels)


@dataclass
class Playback:
    luma: npt.NDArray[np.uint8] | None = None  # the last video frame's Y plane
    frames: int = 0
    rms: list[float] = field(default_factory=list)  # per audio frame

    def level(self) -> float:
        """The median RMS of the later half of the audio frames (the start may be ramping)."""
        later = self.rms[len(self.rms) // 2 :]
        return statistics.median(later) if later else 0.0


def read_flv(url: str, seconds: float) -> Playback:
    """Decode the mix's HTTP-FLV for ``seconds`` (blocking: run it in a thread)."""
    out = Playback()
    container = av.open(url, options={"rw_timeout": "10000000"}, timeout=10.0)
    deadline = time.monotonic() + seconds
    try:
        for packet in container.demux():
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    planes = frame.reformat(format="yuv420p").to_ndarray()
                    out.luma = np.asarray(planes[: frame.height], dtype=np.uint8)
                    out.frames += 1
                elif isinstance(frame, av.AudioFrame):
                    samples = frame.to_ndarray().astype(np.float64)
                    out.rms.append(float(np.sqrt(np.mean(np.square(samples)))))
            if time.monotonic() > deadline:
                break
    finally:
        container.close()
    return out


def near(value: int, expected: int, tolerance: int = 16) -> bool:
    return abs(int(value) - expected) <= tolerance


async def test_background_watermark_and_gain_reach_the_mix(server: RunningServer) -> None:
    token = server.token(ROOM, "alice", "host")
    headers = {"Authorization": f"Bearer {token}"}
    flv = server.url(f"/live/{ROOM}.flv")
    async with WhipPublisher() as alice, aiohttp.ClientSession(server.base_url) as http:
        await alice.publish(
            server.base_url,
            ROOM,
            token,
            audio=ToneAudioTrack(440.0),
            video=TestPatternVideoTrack(),
        )

        async def call(method: str, body: Any = None, data: bytes | None = None) -> tuple[int, Any]:
            path = f"/api/rooms/{ROOM}/live"
            kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
            async with http.request(method, path, headers=headers, **kwargs) as r:
                text = await r.text()
                return r.status, json.loads(text) if text else None

        # a bad image is 400 with the reason; a body over the limit is 413
        status, answer = await call(
            "POST", {"outputs": [], "watermark": {"image": "http://example.com/logo.png"}}
        )
        assert status == 400, answer
        assert answer["error"]["message"].startswith(
            "watermark.image: only data: URIs are taken"
        ), answer
        pad = b'{"outputs": [], "x": "' + b"a" * MAX_BODY + b'"}'
        status, answer = await call("POST", data=pad)
        assert status == 413 and answer["error"]["code"] == "too_large", answer

        layout = {
            "type": "custom",
            "labels": False,
            "background_image": background(),
            "regions": [{"x": 0, "y": 0, "w": 160, "h": 90}],  # the rest shows the background
        }
        status, answer = await call(
            "POST",
            {
                "outputs": [],
                "layout": layout,
                "watermark": {"image": watermark(), "corner": "top-right", "width": MARK_W},
                "audio": {"gains": {"alice": 1.0, "carol": 0.5}},
                "encoding": {"width": W, "height": H, "fps": 15},
                "hls": False,
                "record": False,
            },
        )
        assert status == 201, answer

        async def decoding() -> dict[str, Any] | None:
            code, st = await call("GET")
            assert code == 200, st
            ok = st["inputs"] and st["inputs"][0]["frames_decoded"] > 0
            return st if ok else None

        st = await eventually(decoding, "alice's input to decode", 60, 0.5)
        assert st["inputs"][0]["gain"] == 1.0
        assert st["audio"] == {"gains": {"alice": 1.0, "carol": 0.5}}
        assert st["layout"]["background_image"]["media_type"] == "image/png"
        assert st["watermark"]["x"] == MARK_X and st["watermark"]["y"] == MARK_Y
        assert (st["watermark"]["width"], st["watermark"]["height"]) == (MARK_W, MARK_H)

        # the picture: the watermark's opaque half is white, its transparent half and the
        # rest of the canvas show the background picture
        green_y = 16 + (65.481 * GREEN[0] + 128.553 * GREEN[1] + 24.966 * GREEN[2]) / 255

        async def branded() -> Playback | None:
            play = await asyncio.to_thread(read_flv, flv, 4.0)
            y = play.luma
            if y is None or len(play.rms) < 20:
                return None
            ok = (
                near(y[MARK_Y + 16, MARK_X + 16], 235)  # opaque white
                and near(y[MARK_Y + 16, MARK_X + 48], round(green_y))  # alpha 0
                and near(y[140, 80], round(green_y))  # the background picture
                and near(y[140, 240], round(green_y))
            )
            return play if ok else None

        loud = await eventually(branded, "the watermark and background in the mix", 60, 0.5)
        assert loud.level() > 0.02, loud.rms

        # the studio's preview: a JPEG snapshot of the same mix, 480 wide
        async with aiohttp.ClientSession() as viewer:
            async with viewer.get(server.url(f"/live/{ROOM}/preview.jpg")) as response:
                assert response.status == 200, await response.text()
                assert response.content_type == "image/jpeg"
                assert response.headers["Cache-Control"] == "no-store"
                jpeg = await response.read()
        with av.open(io.BytesIO(jpeg)) as snapshot:
            picture = next(snapshot.decode(video=0))
        assert (picture.width, picture.height) == (480, 480 * H // W)
        luma = picture.to_ndarray(format="gray")
        scale = 480 / W
        assert luma[round((MARK_Y + 8) * scale), round((MARK_X + 8) * scale)] > 200  # white
        assert luma[round(140 * scale), round(80 * scale)] < 200  # the green background

        # the gain changes live: the output's level follows
        status, answer = await call("PATCH", {"audio": {"gains": {"alice": 0.2}}})
        assert status == 200, answer
        code, st = await call("GET")
        assert code == 200 and st["inputs"][0]["gain"] == 0.2
        assert st["audio"] == {"gains": {"alice": 0.2, "carol": 0.5}}

        async def quieter() -> Playback | None:
            play = await asyncio.to_thread(read_flv, flv, 3.0)
            return play if play.rms and play.level() < 0.3 * loud.level() else None

        quiet = await eventually(quieter, "the mix to get quieter", 60, 0.5)
        # 0.2 of the level (-14 dB), not muted: the AAC encoder and the limiter are linear here
        assert quiet.level() > 0.1 * loud.level(), (quiet.level(), loud.level())

        # the watermark goes away with a PATCH of null; the output keeps going
        status, answer = await call("PATCH", {"watermark": None})
        assert status == 200, answer

        async def unmarked() -> bool:
            play = await asyncio.to_thread(read_flv, flv, 3.0)
            y = play.luma
            return y is not None and near(y[MARK_Y + 16, MARK_X + 16], round(green_y))

        await eventually(unmarked, "the watermark to go away", 60, 0.5)
        code, st = await call("GET")
        assert code == 200 and st["watermark"] is None and st["state"] == "running"

        status, _ = await call("DELETE")
        assert status == 204
        async with (
            aiohttp.ClientSession() as viewer,
            viewer.get(server.url(f"/live/{ROOM}/preview.jpg")) as response,
        ):
            assert response.status == 404  # not live: no preview
