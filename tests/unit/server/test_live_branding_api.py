"""The live API's watermark, background image and gain fields, against a fake mixer.

What reaches the mixer for each PATCH (``set_layout`` for a layout or a
watermark, ``set_audio`` for gains), what ``GET`` shows, and the body limit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interlive.server.live_api import MAX_BODY
from tests.unit.mix.test_branding import data_uri, encode_image
from tests.unit.server.test_live_events import HOST, live_app

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def logo() -> str:
    return data_uri(encode_image(np.full((8, 16, 4), 255, np.uint8)))


async def test_patch_passes_each_field_to_its_mixer_op_and_get_shows_them(
    tmp_path: Path,
) -> None:
    async with live_app(tmp_path) as s:
        await s.host()
        background = data_uri(encode_image(np.full((18, 32, 3), 90, np.uint8)))
        body = {
            "outputs": [],
            "layout": {"type": "grid", "background_image": background},
            "watermark": {"image": logo(), "width": 32},
            "audio": {"gains": {"alice": 0.5, "carol": 2}},
        }
        response = await s.client.post("/api/rooms/r/live", json=body, headers=HOST)
        assert response.status == 201, await response.text()
        job = s.manager.jobs["r"]
        mixer = s.mixers[0]
        assert mixer.spec.background is not None and mixer.spec.watermark is not None

        status = await (await s.client.get("/api/rooms/r/live", headers=HOST)).json()
        assert status["audio"] == {"gains": {"alice": 0.5, "carol": 2.0}}
        assert status["watermark"]["width"] == 32 and status["watermark"]["height"] == 16
        shown = status["layout"]["background_image"]
        assert shown["media_type"] == "image/png" and set(shown) == {
            "media_type",
            "bytes",
            "sha256",
        }

        async def patch(change: object) -> int:
            response = await s.client.patch("/api/rooms/r/live", json=change, headers=HOST)
            return response.status

        ops = len(mixer.ops)
        assert await patch({"audio": {"gains": {"alice": 0.1}}}) == 200
        assert mixer.ops[ops:] == ["set_audio"]
        assert job.spec.audio.to_json() == {"gains": {"alice": 0.1, "carol": 2.0}}
        ops = len(mixer.ops)
        assert await patch({"watermark": None}) == 200
        assert mixer.ops[ops:] == ["set_layout"] and job.spec.watermark is None
        assert job.spec.background is not None  # the layout was not touched
        ops = len(mixer.ops)
        # a refused field changes nothing, not even the fields next to it
        assert await patch({"audio": {"gains": {"alice": 1}}, "watermark": {"image": 1}}) == 400
        assert mixer.ops[ops:] == [] and job.spec.audio.gain("alice") == 0.1

        huge = b'{"outputs": [], "x": "' + b"a" * MAX_BODY + b'"}'
        response = await s.client.patch("/api/rooms/r/live", data=huge, headers=HOST)
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "too_large"
        response = await s.client.delete("/api/rooms/r/live", headers=HOST)
        assert response.status == 204
