"""RTMP play of the room mix: ``rtmp://HOST/live/{room}`` while a live job runs.

Two aiortc publishers on stage, a live job with no outputs (HLS and the
recording only); ``ffprobe`` of the room's RTMP path, with no token (the mix
is the broadcast, like its HLS and HTTP-FLV) and with tokens of the room,
reads H.264 + AAC at the job's size; a bad token, or one of another room, is
refused, over RTMP and HTTP-FLV alike.  An HTTP-FLV player of the mix that
never reads drops to the next keyframe, then is disconnected, while an RTMP
player of the mix goes on; a player still watching when the job stops is
disconnected.  Before the job starts and after it stops the same path is
refused with ``no live mix running for this room``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable

import aiohttp
import pytest

from interlive.client import TestPatternVideoTrack, ToneAudioTrack, WhipPublisher
from tests.helpers.rtmp import FfprobeError, ffprobe, require_ffmpeg, rtmp_server_args
from tests.helpers.server import RunningServer
from tests.helpers.wait import poll_async as poll
from tests.integration.test_flv_playback import StuckPlayer

ROOM = "mixplay"


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    require_ffmpeg()  # ffprobe comes with it; missing, the test fails (never skips)


async def refused(url: str) -> str:
    with pytest.raises(FfprobeError) as exc:
        await ffprobe(url)
    return str(exc.value)


async def test_rtmp_plays_the_room_mix_while_live(
    server_factory: Callable[..., RunningServer],
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    viewer = server.token(ROOM, "viewer", "audience")
    mix_url = f"rtmp://127.0.0.1:{port}/live/{ROOM}"  # no token: anyone may play the mix
    host = server.token(ROOM, "alice", "host")
    headers = {"Authorization": f"Bearer {host}"}
    async with (
        WhipPublisher() as alice,
        WhipPublisher() as bob,
        aiohttp.ClientSession(server.base_url) as http,
    ):
        await alice.publish(
            server.base_url, ROOM, host, audio=ToneAudioTrack(440.0), video=TestPatternVideoTrack()
        )
        await bob.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, "bob", "cohost"),
            audio=ToneAudioTrack(660.0),
            video=TestPatternVideoTrack(),
        )
        assert "no live mix running" in await refused(mix_url)

        body = {"outputs": [], "layout": "grid", "encoding": {"width": 320, "height": 180}}
        async with http.post(f"/api/rooms/{ROOM}/live", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()

        deadline = asyncio.get_running_loop().time() + 20
        while True:  # both inputs in the mix
            async with http.get(f"/api/rooms/{ROOM}/live", headers=headers) as r:
                st = await r.json()
            inputs = st.get("inputs", [])
            if len(inputs) == 2 and all(i["frames_decoded"] > 0 for i in inputs):
                break
            assert asyncio.get_running_loop().time() < deadline, st
            await asyncio.sleep(0.2)

        # three RTMP players at once: no token, a viewer's, a co-host's
        other = server.token(ROOM, "bob", "cohost")
        probes = await asyncio.gather(
            ffprobe(mix_url),
            ffprobe(f"{mix_url}?token={viewer}"),
            ffprobe(f"{mix_url}?token={other}"),
        )
        for probe in probes:
            s = {x["codec_type"]: x for x in probe["streams"]}
            assert s["video"]["codec_name"] == "h264", probe
            assert (s["video"]["width"], s["video"]["height"]) == (320, 180), probe
            assert s["audio"]["codec_name"] == "aac", probe
        # a token that is given must be valid and name the room, over RTMP and HTTP-FLV
        bad = await refused(f"{mix_url}?token=not-a-jwt")
        assert "invalid token" in bad, bad
        foreign = server.token("elsewhere", "v", "audience")
        assert "not 'mixplay'" in await refused(f"{mix_url}?token={foreign}")
        status, text = server.get(f"/live/{ROOM}.flv?token=not-a-jwt")
        assert status == 401 and json.loads(text)["error"]["code"] == "bad_token", text
        status, text = server.get(f"/live/{ROOM}.flv?token={foreign}")
        assert status == 403, text

        # an RTMP player that watches on ...
        watcher = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-v", "error", "-rw_timeout", "15000000",
            "-i", mix_url, "-f", "null", "-",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        # ... while an HTTP-FLV player of the mix that never reads drops, then is cut off
        stuck = StuckPlayer(server.http_port, f"/live/{ROOM}.flv")
        try:
            metrics = await poll(
                server.metrics,
                lambda m: m.get("interlive_flv_slow_disconnects_total", 0) >= 1,
                30,
                "the stuck HTTP-FLV player of the mix to be disconnected",
            )
            assert metrics["interlive_flv_gop_drops_total"] >= 1, metrics  # dropped first
            assert metrics["interlive_flv_dropped_tags_total"] > 0, metrics
            await poll(stuck.closed_by_server, bool, 10, "the stuck socket to close")
        finally:
            stuck.close()
        await asyncio.sleep(2)
        assert watcher.returncode is None, "the RTMP player of the mix stopped early"
        # a player still watching when the job stops is told the stream ended
        async with http.delete(f"/api/rooms/{ROOM}/live", headers=headers) as r:
            assert r.status == 204
        try:
            await asyncio.wait_for(watcher.wait(), 10)
        finally:
            if watcher.returncode is None:
                watcher.kill()
                await watcher.wait()
        assert "no live mix running" in await refused(mix_url)
    log = server.log()
    assert "Traceback" not in log
    assert "plays the mix of room mixplay" in log
    assert "fell behind: dropped to the next keyframe" in log
    metrics = server.get("/metrics")[1]
    assert 'interlive_rtmp_closed_total{reason="play-ended"} 1' in metrics, metrics
