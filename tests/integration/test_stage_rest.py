"""Rooms and the stage through the real server: REST promotes, demotes and kicks aiortc clients.

An audience member is refused on WHIP, promoted by the host over REST, publishes
with its unchanged token, and another viewer decodes its test pattern. Demoted,
its media stops within a second (the viewer's slots get RTCP BYE) while its own
WHEP session stays; promoted again, the same WHIP session reaches a new viewer;
kicked, its sessions end. A webhook receiver in this process checks that every
event arrived, signed with the server's secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiortc.mediastreams import MediaStreamError

from interlive.client import (
    ClientError,
    RtpPacketView,
    TestPatternVideoTrack,
    ToneAudioTrack,
    WhepSubscriber,
    WhipPublisher,
    attach_packet_tap,
    decode_frame_index,
)
from interlive.server.webhooks import SIGNATURE_HEADER, verify_signature
from tests.helpers.server import RunningServer
from tests.helpers.wait import eventually

ROOM = "show"
OFFSET = 7_000_000  # carol's frame indices start here


@dataclass
class Hook:
    """A webhook receiver: answers the first delivery 503 (to see the retry), then 200."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failures_left: int = 1

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.deliveries]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Hook]:
    hook = Hook()

    async def receive(request: web.Request) -> web.Response:
        hook.deliveries.append((dict(request.headers), await request.read()))
        if hook.failures_left:
            hook.failures_left -= 1
            return web.Response(status=503)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield hook
    finally:
        await runner.cleanup()


class Rest:
    def __init__(self, http: aiohttp.ClientSession, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, path, json=body, headers=self.headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None

    async def participant(self, identity: str) -> tuple[int, Any]:
        return await self.call("GET", f"/api/rooms/{ROOM}/participants/{identity}")

    async def set(self, identity: str, body: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/api/rooms/{ROOM}/participants/{identity}", body)


async def carol_frames(sub: WhepSubscriber) -> set[int]:
    frames = await sub.recv_frames("video", 10, timeout=30)
    indices = {decode_frame_index(f) for f in frames[-5:]}
    assert None not in indices, "a decoded frame lost its block code"
    return {i for i in indices if i is not None}


async def read_until_bye(sub: WhepSubscriber, kind: str) -> None:
    """Consume a track's frames until it ends (aiortc ends it on RTCP BYE)."""
    track = await sub.wait_track(kind)
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def test_promote_publish_demote_kick(
    server_factory: Callable[..., RunningServer],
) -> None:
    loop = asyncio.get_running_loop()
    async with webhook_receiver() as hook:
        server = server_factory(extra_args=["--webhook", hook.url])
        carol_token = server.token(ROOM, "carol", "audience")
        clients: list[WhipPublisher | WhepSubscriber] = []
        async with aiohttp.ClientSession(server.base_url) as http:
            host = Rest(http, server.token(ROOM, "alice", "host"))
            try:
                # carol watches the stage: she is in the room as audience
                carol_watch = WhepSubscriber(kinds=("audio", "video"))
                clients.append(carol_watch)
                await carol_watch.subscribe(server.base_url, ROOM, carol_token)
                await carol_watch.wait_connected(15)

                refused = WhipPublisher()
                with pytest.raises(ClientError) as forbidden:
                    await refused.publish(
                        server.base_url, ROOM, carol_token, audio=ToneAudioTrack(), video=None
                    )
                assert forbidden.value.status == 403 and forbidden.value.code == "forbidden"
                await refused.close()

                status, body = await host.set("carol", {"role": "cohost"})
                assert status == 200 and body["role"] == "cohost"

                # the same audience token publishes now
                carol_pub = WhipPublisher()
                clients.append(carol_pub)
                await carol_pub.publish(
                    server.base_url,
                    ROOM,
                    carol_token,
                    audio=ToneAudioTrack(),
                    video=TestPatternVideoTrack(320, 180, fps=15, start_index=OFFSET),
                )
                await carol_pub.wait_connected(15)

                dave = WhepSubscriber(kinds=("audio", "video"))
                clients.append(dave)
                arrivals: list[float] = []

                def tap(packet: RtpPacketView, arrival_ms: int) -> None:
                    arrivals.append(loop.time())

                for receiver in dave.receivers:
                    attach_packet_tap(receiver, tap)
                await dave.subscribe(server.base_url, ROOM, server.token(ROOM, "dave", "audience"))
                assert min(await carol_frames(dave)) >= OFFSET, "dave does not decode carol"
                readers = [
                    asyncio.create_task(read_until_bye(dave, kind)) for kind in ("audio", "video")
                ]

                status, body = await host.participant("carol")
                assert [t["track_id"] for t in body["tracks"]] == ["whip:0", "whip:1"]
                assert sorted(s["kind"] for s in body["sessions"]) == ["whep", "whip"]

                # demotion: carol's media stops within a second, her sessions stay
                demoted_at = loop.time()
                status, body = await host.set("carol", {"role": "audience"})
                assert status == 200 and body["role"] == "audience" and body["tracks"] == []
                async with asyncio.timeout(5):
                    await asyncio.gather(*readers)  # both of dave's slots got BYE
                # watch one more second: nothing of carol's may arrive after the first
                while loop.time() < demoted_at + 2.0:
                    late = [t for t in arrivals if t > demoted_at + 1.0]
                    assert not late, (
                        f"RTP reached dave {late[-1] - demoted_at:.2f} s after demotion"
                    )
                    await asyncio.sleep(0.05)
                status, body = await host.participant("carol")
                assert status == 200 and body["role"] == "audience"
                assert sorted(s["kind"] for s in body["sessions"]) == ["whep", "whip"]
                assert carol_watch.pc.connectionState == "connected"
                assert carol_pub.pc.connectionState == "connected"
                again = WhipPublisher()
                with pytest.raises(ClientError) as forbidden_again:
                    await again.publish(
                        server.base_url, ROOM, carol_token, audio=ToneAudioTrack(), video=None
                    )
                assert forbidden_again.value.status == 403
                await again.close()

                # promoted again: her still-connected WHIP session reaches a new viewer
                status, body = await host.set("carol", {"role": "cohost"})
                assert status == 200 and len(body["tracks"]) == 2
                erin = WhepSubscriber(kinds=("audio", "video"))
                clients.append(erin)
                await erin.subscribe(server.base_url, ROOM, server.token(ROOM, "erin", "audience"))
                assert min(await carol_frames(erin)) >= OFFSET, "erin does not decode carol"

                # kick: every session of carol ends
                status, _ = await host.call("DELETE", f"/api/rooms/{ROOM}/participants/carol")
                assert status == 204
                await eventually(
                    lambda: carol_watch.pc.connectionState in ("closed", "failed"),
                    "carol's WHEP session to close",
                )
                await eventually(
                    lambda: carol_pub.pc.connectionState in ("closed", "failed"),
                    "carol's WHIP session to close",
                )
                status, _ = await host.participant("carol")
                assert status == 404
                status, room = await host.call("GET", f"/api/rooms/{ROOM}")
                assert sorted(p["identity"] for p in room["participants"]) == ["dave", "erin"]
                await eventually(
                    lambda: server.metrics()["interlive_sessions"] == 2, "the kicked sessions"
                )
            finally:
                await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

            status, rooms = await host.call("GET", "/api/rooms")
            assert status == 200 and rooms == {"rooms": []}

        await eventually(
            lambda: any(e["event"] == "room_finished" for e in hook.events()),
            "the room_finished webhook",
            timeout=15,
        )
        for headers, body in hook.deliveries:
            assert verify_signature(server.secret, body, headers[SIGNATURE_HEADER])
        events = hook.events()
        assert events[0]["id"] == events[1]["id"], "the 503 answered delivery was not retried"
        unique = [e for i, e in enumerate(events) if i == 0 or e["id"] != events[i - 1]["id"]]
        assert unique[0]["event"] == "room_started" and unique[-1]["event"] == "room_finished"
        assert len({e["id"] for e in unique}) == len(unique)
        carol = [
            (e["event"], e.get("new_role") or e.get("role") or e.get("reason") or e.get("track_id"))
            for e in unique
            if e.get("identity") == "carol"
        ]
        assert carol == [
            ("participant_joined", "audience"),
            ("role_changed", "cohost"),
            ("track_published", "whip:0"),
            ("track_published", "whip:1"),
            ("role_changed", "audience"),
            ("role_changed", "cohost"),
            ("track_published", "whip:0"),
            ("track_published", "whip:1"),
            ("participant_left", "kicked"),
        ]
        joined = {e["identity"] for e in unique if e["event"] == "participant_joined"}
        assert joined == {"carol", "dave", "erin"}  # the REST host is no participant
        assert all(e["room"] == ROOM for e in unique)
