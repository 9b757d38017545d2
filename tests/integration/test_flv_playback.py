"""A participant played as HTTP-FLV and over RTMP: ffprobe reads both, slow players are dropped.

Publishers: Debian's ffmpeg pushing RTMP (the documented test push) and the
SDK's WhipPublisher (H.264).  ``ffprobe`` reads ``/live/{room}/{identity}.flv``
and ``rtmp://.../live/{room}/{identity}``: an H.264 stream of the published
size and AAC at 48 kHz stereo.  A player whose socket never reads is dropped
to the next keyframe, then disconnected, while a normal player of the same
feed goes on; bad tokens and the room-mix paths are refused with clear errors.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlive.client import WhipPublisher
from interlive.client.media import TestPatternVideoTrack, ToneAudioTrack
from tests.helpers.rtmp import (
    FfprobeError,
    ffmpeg_publisher,
    ffprobe,
    rtmp_server_args,
    streams_by_type,
)
from tests.helpers.server import RunningServer
from tests.helpers.wait import poll_async as poll

TIMEOUT = 25.0


def assert_h264_aac(probe: dict[str, Any], width: int, height: int) -> None:
    streams = streams_by_type(probe)
    video, audio = streams.get("video"), streams.get("audio")
    assert video is not None and audio is not None, probe
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", width, height)
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", 48000, 2)


def flv_metrics(server: RunningServer) -> dict[str, float]:
    return {k: v for k, v in server.metrics().items() if k.startswith("interlive_flv_")}


async def test_an_rtmp_push_plays_as_http_flv_and_rtmp(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "flv-rtmp"
    viewer = server.token(room, "viewer", "audience")
    push = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={server.token(room, 'obs', 'cohost')}"
    with ffmpeg_publisher(push, tmp_path) as ffmpeg:
        host = server.token(room, "host", "host")
        await poll(wait_publishing_with(server, room, "obs", host), bool, TIMEOUT,
                   "the RTMP push to join the room")  # fmt: skip
        flv, rtmp = await asyncio.gather(
            ffprobe(f"{server.base_url}/live/{room}/obs.flv?token={viewer}"),
            ffprobe(f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={viewer}"),
        )
        assert_h264_aac(flv, 640, 360)
        assert_h264_aac(rtmp, 640, 360)
        metrics = flv_metrics(server)
        assert metrics["interlive_flv_players_total"] == 2
        assert metrics["interlive_flv_feeds_total"] >= 1
        assert metrics["interlive_flv_bytes_sent_total"] > 10_000
        assert ffmpeg.running(), ffmpeg.log()
        # the last player left: the plain subscription ended with it
        await poll(lambda: flv_metrics(server)["interlive_flv_feeds"], lambda n: n == 0, 10,
                   "the feed to close")  # fmt: skip
    assert "Traceback" not in server.log()


def wait_publishing_with(
    server: RunningServer, room: str, identity: str, host_token: str
) -> Callable[[], bool]:
    def publishing() -> bool:
        import urllib.request

        request = urllib.request.Request(
            server.url(f"/api/rooms/{room}"), headers={"Authorization": f"Bearer {host_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                body = json.loads(response.read())
        except OSError:
            return False
        return any(p["identity"] == identity and p.get("tracks") for p in body["participants"])

    return publishing


async def test_a_whip_publisher_plays_as_http_flv_and_rtmp(
    server_factory: Callable[..., RunningServer],
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "flv-whip"
    video = TestPatternVideoTrack(320, 240, 30)
    audio = ToneAudioTrack()
    publisher = WhipPublisher()
    try:
        await publisher.publish(
            server.base_url, room, server.token(room, "cam", "cohost"),
            audio=audio, video=video, video_codec="H264",
        )  # fmt: skip
        await publisher.wait_connected(TIMEOUT)
        viewer = server.token(room, "viewer", "audience")
        flv, rtmp = await asyncio.gather(
            ffprobe(f"{server.base_url}/live/{room}/cam.flv?token={viewer}"),
            ffprobe(f"rtmp://127.0.0.1:{port}/live/{room}/cam?token={viewer}"),
        )
        assert_h264_aac(flv, 320, 240)
        assert_h264_aac(rtmp, 320, 240)
        # a WebRTC publisher is asked for a keyframe when a player joins: it starts at once
        assert flv_metrics(server)["interlive_flv_keyframe_requests_total"] >= 1
    finally:
        await publisher.close()
        video.stop()
        audio.stop()
    assert "Traceback" not in server.log()


async def test_bad_tokens_and_the_room_mix_are_refused(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "flv-refuse"
    viewer = server.token(room, "viewer", "audience")
    status, body = server.get(f"/live/{room}/obs.flv")
    assert status == 401 and json.loads(body)["error"]["code"] == "no_token"
    status, body = server.get(f"/live/{room}/obs.flv?token=not-a-jwt")
    assert status == 401 and json.loads(body)["error"]["code"] == "bad_token"
    status, body = server.get(
        f"/live/{room}/obs.flv?token={server.token('other', 'v', 'audience')}"
    )
    assert status == 403, body
    status, body = server.get(f"/live/{room}/nobody.flv?token={viewer}")
    assert status == 404 and "not publishing" in json.loads(body)["error"]["message"]
    status, body = server.get(f"/live/{room}.flv?token={viewer}")
    assert status == 404
    assert json.loads(body)["error"]["message"] == "no live mix running for this room"
    # RTMP: the same rules; ffprobe prints the server's reason
    for url, reason in [
        (f"rtmp://127.0.0.1:{port}/live/{room}/obs?token=not-a-jwt", "invalid token"),
        (f"rtmp://127.0.0.1:{port}/live/{room}/obs", "missing ?token="),
        (f"rtmp://127.0.0.1:{port}/live/{room}?token={viewer}", "no live mix running"),
    ]:
        with pytest.raises(FfprobeError) as refused:
            await ffprobe(url)
        assert reason in str(refused.value), refused.value
    refused_metrics = server.metrics()
    assert refused_metrics["interlive_flv_refused_total"] >= 7
    assert refused_metrics["interlive_flv_feeds_total"] == 0
    assert "Traceback" not in server.log()


class StuckPlayer:
    """An HTTP-FLV GET on a socket that never reads (a tiny receive buffer)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def closed_by_server(self) -> bool:
        """Drain what is buffered; True once the server reset or closed the connection."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
        except BlockingIOError:
            return False
        except ConnectionError:
            return True
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


async def test_a_player_that_never_reads_is_dropped_then_disconnected(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "flv-slow"
    viewer = server.token(room, "viewer", "audience")
    push = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={server.token(room, 'obs', 'cohost')}"
    path = f"/live/{room}/obs.flv?token={viewer}"
    with ffmpeg_publisher(push, tmp_path):
        await poll(wait_publishing_with(server, room, "obs", server.token(room, "h", "host")),
                   bool, TIMEOUT, "the RTMP push to join the room")  # fmt: skip
        received = 0
        async with aiohttp.ClientSession() as http, http.get(server.url(path)) as normal:
            assert normal.status == 200 and normal.content_type == "video/x-flv"
            stuck = StuckPlayer(server.http_port, path)
            started = time.monotonic()
            try:

                async def read_normal(seconds: float) -> int:
                    total = 0
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        async with asyncio.timeout(5):
                            chunk = await normal.content.read(1 << 16)
                        assert chunk, "the normal player's stream ended"
                        total += len(chunk)
                    return total

                async def until_disconnected() -> None:
                    while flv_metrics(server).get("interlive_flv_slow_disconnects_total", 0) < 1:
                        await asyncio.sleep(0.2)

                watcher = asyncio.create_task(until_disconnected())
                while not watcher.done():
                    received += await read_normal(0.5)
                    if time.monotonic() - started > 30:
                        watcher.cancel()
                        raise AssertionError(
                            f"the stuck player was not disconnected: {flv_metrics(server)}"
                        )
                metrics = flv_metrics(server)
                assert metrics["interlive_flv_feeds_total"] == 1  # one subscription, two players
                assert metrics["interlive_flv_gop_drops_total"] >= 1  # it dropped before it was cut
                assert metrics["interlive_flv_dropped_tags_total"] > 0
                closed = await asyncio.to_thread(_wait, stuck.closed_by_server, 10)
                assert closed, "the server did not close the stuck player's connection"
                # the normal player goes on
                after = await read_normal(2.0)
                assert after > 10_000
                metrics = flv_metrics(server)
                assert metrics["interlive_flv_players"] == 1
                assert metrics.get("interlive_flv_closed_total", 0) >= 1
            finally:
                stuck.close()
    print(f"normal player read {received} bytes while the stuck one was dropped; {metrics}")
    assert "Traceback" not in server.log()


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False
