"""ffmpeg pushes RTMP into a real server; Chromium's watch.html decodes its video and hears it.

The push is the documented one (x264 High profile 640x360, AAC).  The page
plays the room over WHEP: its getStats must show H.264 frames decoded at
640x360 and Opus audio samples received; /metrics must show the RTMP
publisher, and ending the push must end its session.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers.browser import chromium, open_page, peer_summary, poll
from tests.helpers.rtmp import ffmpeg_publisher, rtmp_server_args
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser

MEDIA_TIMEOUT = 25.0
MIN_FRAMES = 30
MIN_AUDIO_SAMPLES = 48_000  # 1 s at 48 kHz


def receiving(summary: dict[str, Any]) -> bool:
    if summary["state"] == "error":
        raise AssertionError(f"watch.html failed: {summary['error']}")
    video = summary["inbound"].get("video") or {}
    audio = summary["inbound"].get("audio") or {}
    return (video.get("framesDecoded") or 0) > MIN_FRAMES and (
        audio.get("totalSamplesReceived") or 0
    ) > MIN_AUDIO_SAMPLES


def test_chromium_watches_an_rtmp_push(server_factory: Any, tmp_path: Path) -> None:
    port, args = rtmp_server_args()
    server: RunningServer = server_factory(extra_args=args)
    room = "rtmp-e2e"
    url = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={server.token(room, 'obs', 'host')}"
    params = urlencode({"room": room, "token": server.token(room, "bob", "audience"),
                        "autostart": "1"})  # fmt: skip
    with ffmpeg_publisher(url, tmp_path) as ffmpeg, chromium() as context:
        poll(
            lambda: server.metrics().get("interlive_rtmp_publishers", 0),
            lambda n: n == 1,
            timeout=MEDIA_TIMEOUT,
            what="the RTMP push in the room",
        )
        opened = time.monotonic()
        viewer, console = open_page(context, server.url(f"/static/watch.html?{params}"))
        first = poll(
            lambda: peer_summary(viewer),
            lambda s: ((s["inbound"].get("video") or {}).get("framesDecoded") or 0) > 0,
            timeout=MEDIA_TIMEOUT,
            describe=lambda s: json.dumps(s, sort_keys=True),
            what="the first decoded frame",
        )
        first_frame_s = time.monotonic() - opened
        got = poll(
            lambda: peer_summary(viewer),
            receiving,
            timeout=MEDIA_TIMEOUT,
            describe=lambda s: json.dumps(s, sort_keys=True),
            what="H.264 decoded and audio received",
        )
        video, audio = got["inbound"]["video"], got["inbound"]["audio"]
        print(
            f"RTMP push -> Chromium: first frame {1000 * first_frame_s:.0f} ms after the page "
            f"opened; framesDecoded={video['framesDecoded']} "
            f"{video.get('frameWidth')}x{video.get('frameHeight')} keyFramesDecoded="
            f"{video.get('keyFramesDecoded')} audio totalSamplesReceived="
            f"{audio['totalSamplesReceived']} concealed={audio.get('concealedSamples')}"
        )
        assert first["inbound"]["video"]["codec"] == "video/H264"
        assert audio["codec"] == "audio/opus"
        assert (video.get("frameWidth"), video.get("frameHeight")) == (640, 360)
        assert ffmpeg.running(), ffmpeg.log()
        ffmpeg.stop()
        poll(
            server.metrics,
            lambda m: m["interlive_sessions"] == 1 and m["interlive_rtmp_publishers"] == 0,
            timeout=10.0,
            what="the RTMP session to end with the push",
        )
        viewer.evaluate("window.interlive.stop()")
        assert console.errors == [], console.errors
