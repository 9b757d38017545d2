"""Chromium publishes over WHIP and Chromium plays over WHEP, through a real server.

The publisher is publish.html with its video codec forced (VP8, H.264, VP9); the watcher is
watch.html with recvonly audio and video. The watcher's getStats must show
frames decoded in that codec and audio samples received; /metrics must show
the server forwarded packets; stopping both pages must end both sessions.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers.browser import chromium, open_page, peer_summary, poll
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser

MEDIA_TIMEOUT = 20.0
MIN_FRAMES = 30
MIN_AUDIO_SAMPLES = 48_000  # 1 s at 48 kHz


def page_url(server: RunningServer, page: str, **params: str) -> str:
    return server.url(f"/static/{page}?{urlencode(params)}")


def brief(summary: dict[str, Any]) -> str:
    return json.dumps(summary, sort_keys=True)


def publishing(summary: dict[str, Any]) -> bool:
    if summary["state"] == "error":
        raise AssertionError(f"publish.html failed: {summary['error']}")
    video = summary["outbound"].get("video") or {}
    audio = summary["outbound"].get("audio") or {}
    return (
        (summary["pc"] or {}).get("connection") == "connected"
        and (video.get("framesEncoded") or 0) > 0
        and (audio.get("packetsSent") or 0) > 0
    )


def receiving(mime: str) -> Any:
    def done(summary: dict[str, Any]) -> bool:
        if summary["state"] == "error":
            raise AssertionError(f"watch.html failed: {summary['error']}")
        video = summary["inbound"].get("video") or {}
        audio = summary["inbound"].get("audio") or {}
        return (
            (video.get("framesDecoded") or 0) > MIN_FRAMES
            and video.get("codec") == mime
            and (audio.get("totalSamplesReceived") or 0) > MIN_AUDIO_SAMPLES
        )

    return done


@pytest.mark.parametrize("codec", ["VP8", "H264", "VP9"])
def test_browser_publishes_whip_and_browser_plays_whep(server: RunningServer, codec: str) -> None:
    room = f"e2e-{codec.lower()}"
    publisher_token = server.token(room, "alice", "host")
    viewer_token = server.token(room, "bob", "audience")

    with chromium() as context:
        publisher, publisher_console = open_page(
            context,
            page_url(
                server, "publish.html", room=room, token=publisher_token, codec=codec, autostart="1"
            ),
        )
        sent = poll(
            lambda: peer_summary(publisher),
            publishing,
            timeout=MEDIA_TIMEOUT,
            describe=brief,
            what="publisher connected and sending",
        )
        assert sent["outbound"]["video"]["codec"] == f"video/{codec}", brief(sent)
        assert publisher.evaluate("window.interlive.location").startswith(
            server.url(f"/whip/{room}/sessions/")
        )

        viewer, viewer_console = open_page(
            context, page_url(server, "watch.html", room=room, token=viewer_token, autostart="1")
        )
        got = poll(
            lambda: peer_summary(viewer),
            receiving(f"video/{codec}"),
            timeout=MEDIA_TIMEOUT,
            describe=lambda s: f"viewer {brief(s)}; publisher {brief(peer_summary(publisher))}",
            what=f"viewer decoding {codec} video and receiving audio",
        )
        video, audio = got["inbound"]["video"], got["inbound"]["audio"]
        print(
            f"{codec}: framesDecoded={video['framesDecoded']} fps={video.get('framesPerSecond')} "
            f"{video.get('frameWidth')}x{video.get('frameHeight')} "
            f"video packetsLost={video.get('packetsLost')} "
            f"audio totalSamplesReceived={audio['totalSamplesReceived']} "
            f"audio packetsLost={audio.get('packetsLost')}"
        )
        # The page's own stats line (refreshed every second) shows the decoding too.
        poll(
            lambda: viewer.locator("#stats").inner_text(),
            lambda line: "frames decoded" in line and "samples" in line,
            timeout=3.0,
            what="watch.html stats line",
        )

        metrics = server.metrics()
        assert metrics["interlive_packets_received_total"] > 0, metrics
        # Forwarded: the viewer got at least what it counted, through the server.
        forwarded = (video.get("packetsReceived") or 0) + (audio.get("packetsReceived") or 0)
        assert metrics["interlive_packets_sent_total"] >= forwarded > 0, (metrics, forwarded)
        assert metrics["interlive_sessions"] == 2, metrics

        # Stop both: each page DELETEs its session resource and the server lets go.
        viewer.evaluate("window.interlive.stop()")
        publisher.evaluate("window.interlive.stop()")
        assert viewer.evaluate("window.interlive.state") == "stopped"
        assert publisher.evaluate("window.interlive.state") == "stopped"
        poll(
            server.metrics,
            lambda m: m["interlive_sessions"] == 0,
            timeout=5.0,
            what="sessions closed after DELETE",
        )

        assert publisher_console.errors == [], publisher_console.errors
        assert viewer_console.errors == [], viewer_console.errors
