"""Bypass live end to end: two aiortc publishers on stage, the mix pushed to a real nginx-rtmp.

nginx with Debian's ``libnginx-mod-rtmp`` runs as a normal user process on a
loopback port, configured by the test.  The mix is pulled back from nginx
with Debian's ``ffprobe`` (H.264 + AAC at the configured size and rate), the
HLS that interlive writes is probed through interlive's HTTP server, nginx is
stopped for 10 s and restarted (the push resumes by itself, a reconnect is
counted), and the fragmented MP4 is still valid after a SIGKILL of the mixer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlive.client import TestPatternVideoTrack, ToneAudioTrack, WhipPublisher
from tests.helpers.nginx import NginxRtmp, nginx_rtmp
from tests.helpers.rtmp import ffprobe, streams_by_type
from tests.helpers.server import RunningServer
from tests.helpers.wait import eventually

ROOM = "show"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxRtmp]:
    with nginx_rtmp(tmp_path) as server:
        yield server


async def test_live_mix_to_nginx_hls_reconnect_and_crash_safe_mp4(
    server: RunningServer, nginx: NginxRtmp
) -> None:
    push = f"rtmp://127.0.0.1:{nginx.port}/live/mix"
    async with (
        WhipPublisher() as alice,
        WhipPublisher() as bob,
        aiohttp.ClientSession(server.base_url) as http,
    ):
        await alice.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, "alice", "host"),
            audio=ToneAudioTrack(440.0),
            video=TestPatternVideoTrack(),
        )
        await bob.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, "bob", "cohost"),
            audio=ToneAudioTrack(660.0),
            video=TestPatternVideoTrack(),
        )
        headers = {"Authorization": f"Bearer {server.token(ROOM, 'alice', 'host')}"}

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, path, json=body, headers=headers) as r:
                text = await r.text()
                return r.status, json.loads(text) if text else None

        # invalid layout -> 400 with parse_layout's reason
        status, body = await call(
            "POST",
            f"/api/rooms/{ROOM}/live",
            {"outputs": [], "layout": {"type": "grid", "gapp": 2}},
        )
        assert status == 400
        assert "unknown field 'gapp'" in body["error"]["message"]

        status, body = await call(
            "POST",
            f"/api/rooms/{ROOM}/live",
            {
                "outputs": [{"url": push}],
                "layout": "grid",
                "encoding": {"width": 640, "height": 360, "fps": 25},
            },
        )
        assert status == 201, body
        assert body["id"]

        async def live_state() -> dict[str, Any] | None:
            code, st = await call("GET", f"/api/rooms/{ROOM}/live")
            assert code == 200, st
            decoding = [i for i in st["inputs"] if i["frames_decoded"] > 0]
            ok = st["outputs"] and st["outputs"][0]["state"] == "live" and len(decoding) == 2
            return st if ok else None

        st = await eventually(live_state, "the push to go live with both inputs decoding", 30)
        probe = await ffprobe(push)
        s = streams_by_type(probe)
        assert s["video"]["codec_name"] == "h264"
        assert (s["video"]["width"], s["video"]["height"]) == (640, 360)
        assert s["video"]["r_frame_rate"] == "25/1"
        assert s["audio"]["codec_name"] == "aac"
        assert int(s["audio"]["sample_rate"]) == 48000

        # the layout changes live: same encoder, same connection
        status, body = await call("PATCH", f"/api/rooms/{ROOM}/live", {"layout": "speaker"})
        assert status == 200, body

        # HLS written by interlive, served by interlive
        hls = server.url(f"/live/{ROOM}/index.m3u8")
        await eventually(
            lambda: server.get(f"/live/{ROOM}/index.m3u8")[0] == 200, "the HLS playlist", 20
        )
        s = streams_by_type(await ffprobe(hls))
        assert s["video"]["codec_name"] == "h264" and s["audio"]["codec_name"] == "aac"
        # HTTP-FLV of the mix, from interlive itself
        s = streams_by_type(await ffprobe(server.url(f"/live/{ROOM}.flv")))
        assert s["video"]["codec_name"] == "h264" and s["audio"]["codec_name"] == "aac"
        assert (s["video"]["width"], s["video"]["height"]) == (640, 360)
        playlist = server.get(f"/live/{ROOM}/index.m3u8")[1]
        assert "#EXT-X-TARGETDURATION:2" in playlist, playlist

        # a participant leaving reflows the layout; the output keeps going
        status, _ = await call("DELETE", f"/api/rooms/{ROOM}/participants/bob")
        assert status == 204
        frames = st["video_frames"]

        async def one_input() -> dict[str, Any] | None:
            _, st = await call("GET", f"/api/rooms/{ROOM}/live")
            ok = [i["identity"] for i in st["inputs"]] == ["alice"] and st["video_frames"] > frames
            return st if ok and st["outputs"][0]["state"] == "live" else None

        await eventually(one_input, "bob's input to leave the mix", 20)

        # outputs change live: the first push ends, a second one starts
        push = f"rtmp://127.0.0.1:{nginx.port}/live/mix2"
        status, body = await call("PATCH", f"/api/rooms/{ROOM}/live", {"outputs": [{"url": push}]})
        assert status == 200, body

        async def second_push() -> bool:
            _, st = await call("GET", f"/api/rooms/{ROOM}/live")
            outs = st["outputs"]
            return len(outs) == 1 and outs[0]["url"] == push and outs[0]["state"] == "live"

        await eventually(second_push, "the second push to go live", 20)
        s = streams_by_type(await ffprobe(push))
        assert s["video"]["codec_name"] == "h264" and s["audio"]["codec_name"] == "aac"

        # a CDN outage of 10 s: the push reconnects by itself
        nginx.stop()

        async def output_state() -> dict[str, Any]:
            _, st = await call("GET", f"/api/rooms/{ROOM}/live")
            out: dict[str, Any] = st["outputs"][0]
            return out

        await eventually(lambda: _not_live(output_state()), "the output to notice the outage", 20)
        await asyncio.sleep(10)  # the outage itself
        nginx.start()
        out = await eventually(lambda: _live_again(output_state()), "the push to resume", 60)
        assert out["reconnects"] >= 1
        s = streams_by_type(await ffprobe(push))
        assert s["video"]["codec_name"] == "h264"

        # SIGKILL of the mixer: the fragmented MP4 stays valid
        _, st = await call("GET", f"/api/rooms/{ROOM}/live")
        written = st["files"]["record"]["video_frames"] / 25  # seconds muxed into the MP4
        os.kill(st["pid"], signal.SIGKILL)
        recording = server.data_dir / "live" / ROOM / "recording.mp4"
        probe = await ffprobe(str(recording))
        s = streams_by_type(probe)
        assert s["video"]["codec_name"] == "h264" and s["audio"]["codec_name"] == "aac"
        assert float(probe["format"]["duration"]) > 10
        # at most the fragment being written is lost: one keyframe interval (2 s)
        assert float(probe["format"]["duration"]) >= written - 2.2, (probe["format"], written)

        status, _ = await call("DELETE", f"/api/rooms/{ROOM}/live")
        assert status == 204
        status, _ = await call("GET", f"/api/rooms/{ROOM}/live")
        assert status == 404


async def _not_live(state: Any) -> bool:
    out = await state
    return bool(out["state"] != "live")


async def _live_again(state: Any) -> dict[str, Any] | None:
    out = await state
    return out if out["state"] == "live" and out["reconnects"] >= 1 else None


async def test_delete_finalizes_the_files_and_ends_the_mixer(server: RunningServer) -> None:
    async with WhipPublisher() as alice, aiohttp.ClientSession(server.base_url) as http:
        token = server.token(ROOM, "alice", "host")
        await alice.publish(
            server.base_url, ROOM, token, audio=ToneAudioTrack(), video=TestPatternVideoTrack()
        )
        headers = {"Authorization": f"Bearer {token}"}
        body = {"outputs": [], "layout": "pip", "encoding": {"width": 320, "height": 180}}
        async with http.post(f"/api/rooms/{ROOM}/live", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()
        async with http.post(f"/api/rooms/{ROOM}/live", json=body, headers=headers) as r:
            assert r.status == 409  # one job per room

        async def decoding() -> dict[str, Any] | None:
            async with http.get(f"/api/rooms/{ROOM}/live", headers=headers) as r:
                st: dict[str, Any] = await r.json()
            files = st["files"]
            ok = files["record"]["video_frames"] >= 90 and st["inputs"][0]["frames_decoded"] > 0
            return st if ok else None

        st = await eventually(decoding, "three seconds of the mix in the files", 20)
        async with http.delete(f"/api/rooms/{ROOM}/live", headers=headers) as r:
            assert r.status == 204
        with pytest.raises(ProcessLookupError):
            os.kill(st["pid"], 0)  # the mixer process has exited (and was reaped)
        playlist = server.get(f"/live/{ROOM}/index.m3u8")[1]
        assert "#EXT-X-ENDLIST" in playlist, playlist
        probe = await ffprobe(str(server.data_dir / "live" / ROOM / "recording.mp4"))
        s = streams_by_type(probe)
        assert (s["video"]["width"], s["video"]["height"]) == (320, 180)
        assert float(probe["format"]["duration"]) >= 2.5
        assert server.get(f"/live/{ROOM}.flv")[0] != 200  # not live any more
