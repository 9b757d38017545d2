"""WebSocket signaling (/ws) through the real server, with aiortc peer connections.

Every participant has one peer connection (unified plan) and one /ws
connection (``interlive.client.StageClient``).  The stage's media reaches it by
server-initiated renegotiation on that same peer connection: host and co-host
decode each other; an audience member raises a hand, the host accepts it over
/ws, the member adds its tracks and the host decodes them after the server's
re-offer; demotion takes them away again.  Bad frames get ``error`` replies and
change nothing; a token for another room cannot act here; a dropped WebSocket
resumed within the window keeps the role and the media.

Each publisher's test pattern carries its frame index offset per publisher, so
a receiver can tell whose video it decodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiortc.mediastreams import MediaStreamError

from interlive.client import (
    StageClient,
    StageError,
    TestPatternVideoTrack,
    ToneAudioTrack,
    decode_frame_index,
)
from tests.helpers.server import RunningServer
from tests.helpers.wait import eventually

ROOM = "show"
OFFSET = 1_000_000  # publisher i's frame indices start at i * OFFSET
HOST, COHOST, AUDIENCE = 0, 1, 2


@pytest.fixture(autouse=True)
def clean_server_log(server: RunningServer) -> Any:
    """No traceback in the server's log: a bad frame must never crash a handler."""
    yield
    log = server.log()
    assert "Traceback" not in log, log[-4000:]


def media(index: int) -> dict[str, Any]:
    return {
        "audio": ToneAudioTrack(frequency=300 + 200 * index),
        "video": TestPatternVideoTrack(320, 180, fps=15, start_index=index * OFFSET),
    }


async def owners(client: StageClient, identity: str, n: int = 10) -> set[int]:
    """Whose test pattern ``client`` decodes on ``identity``'s video line (latest frames)."""
    frames = await client.recv_frames(identity, "video", n, timeout=30)
    indices = {decode_frame_index(f) for f in frames[-5:]}  # type: ignore[arg-type]
    assert None not in indices, "a decoded frame lost its block code"
    return {i // OFFSET for i in indices if i is not None}


@contextlib.asynccontextmanager
async def stage(*clients: StageClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def room_state(server: RunningServer) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.token(ROOM, 'ops', 'host')}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url(f"/api/rooms/{ROOM}"), headers=headers) as r:
            body: dict[str, Any] = await r.json()
            return body


async def test_host_and_cohost_decode_each_other(server: RunningServer) -> None:
    host, cohost = StageClient(), StageClient()
    async with stage(host, cohost):
        joined = await host.join(server.base_url, server.token(ROOM, "alice", "host"))
        assert joined["role"] == "host" and joined["resumed"] is False
        assert joined["room"]["participants"][0]["identity"] == "alice"
        await host.publish(**media(HOST))
        await cohost.join(server.base_url, server.token(ROOM, "carol", "cohost"))
        mids = await cohost.publish(**media(COHOST))
        assert len(mids) == 2
        # carol learns of alice's tracks and alice of carol's by the server's offers
        assert await owners(host, "carol") == {COHOST}
        assert await owners(cohost, "alice") == {HOST}
        assert host.server_offers >= 1 and cohost.server_offers >= 1
        # the room lists the tracks each client announced
        await host.wait_for(lambda m: m["type"] == "track_published" and m["identity"] == "carol")
        state = await room_state(server)
        tracks = {p["identity"]: len(p["tracks"]) for p in state["participants"]}
        assert tracks == {"alice": 2, "carol": 2}
        kinds = {s["kind"] for p in state["participants"] for s in p["sessions"]}
        assert kinds == {"ws"}


async def test_raise_hand_accept_publish_and_demote_on_the_same_peer_connections(
    server: RunningServer,
) -> None:
    host, cohost, viewer = StageClient(), StageClient(), StageClient()
    async with stage(host, cohost, viewer):
        await host.join(server.base_url, server.token(ROOM, "alice", "host"))
        await host.publish(**media(HOST))
        await cohost.join(server.base_url, server.token(ROOM, "carol", "cohost"))
        await cohost.publish(**media(COHOST))
        joined = await viewer.join(server.base_url, server.token(ROOM, "bob", "audience"))
        assert joined["role"] == "audience"
        await viewer.connect(receive=("audio", "video"))
        # the audience watches the stage at conference latency
        assert await owners(viewer, "alice") == {HOST}
        assert await owners(viewer, "carol") == {COHOST}
        pcs = (host.pc, cohost.pc, viewer.pc)

        # the audience may not publish: announcing a track is refused, nothing changes
        with pytest.raises(StageError) as refused:
            await viewer.request("publish", track_id="9", kind="video")
        assert refused.value.code == "forbidden"

        await viewer.request("raise_hand")
        raised = await host.wait_for(lambda m: m["type"] == "hand_raised")
        assert raised["identity"] == "bob"
        assert [h["identity"] for h in (await room_state(server))["hands"]] == ["bob"]
        await host.request("accept_hand", identity="bob")
        changed = await viewer.wait_for(lambda m: m["type"] == "role_changed")
        assert (changed["identity"], changed["old"], changed["new"]) == (
            "bob",
            "audience",
            "cohost",
        )
        await viewer.wait_for(lambda m: m["type"] == "hand_lowered" and m["reason"] == "accepted")

        # promoted: bob adds its tracks to the peer connection it has; the others get
        # them through the server's re-offer, no new peer connection anywhere
        offers_before = host.server_offers
        await viewer.publish(**media(AUDIENCE))
        assert await owners(host, "bob") == {AUDIENCE}
        assert await owners(cohost, "bob") == {AUDIENCE}
        assert host.server_offers > offers_before
        assert (host.pc, cohost.pc, viewer.pc) == pcs
        assert await owners(viewer, "alice") == {HOST}

        # demoted: bob's media stops reaching anyone within a second, and the server's
        # re-offer takes its lines away (inactive) on the others' peer connections
        mid = host.mid_of("bob", "video")
        assert mid is not None
        await host.request("demote", identity="bob")
        await viewer.wait_for(lambda m: m["type"] == "role_changed" and m["new"] == "audience")
        track = host.track("bob", "video")
        assert track is not None
        loop = asyncio.get_running_loop()
        demoted_at = last_frame = loop.time()
        # aiortc ends the track on the RTCP BYE; a quiet second also counts as stopped
        with contextlib.suppress(MediaStreamError, TimeoutError):
            while loop.time() - demoted_at < 10:
                await asyncio.wait_for(track.recv(), 1.0)
                last_frame = loop.time()
        assert last_frame - demoted_at < 1.5, "bob's video still flowed after the demotion"
        await eventually(
            lambda: host.mid_of("bob", "video") is None, "the host's re-offer without bob"
        )
        transceiver = host.transceiver(mid)
        assert transceiver is not None
        await eventually(lambda: transceiver.currentDirection == "inactive", "bob's line inactive")
        state = await room_state(server)
        bob = next(p for p in state["participants"] if p["identity"] == "bob")
        assert bob["role"] == "audience" and bob["tracks"] == []
        # bob still watches the stage on its peer connection
        assert await owners(viewer, "carol") == {COHOST}
        assert (host.pc, cohost.pc, viewer.pc) == pcs


async def test_bad_messages_get_errors_and_change_nothing(server: RunningServer) -> None:
    host, viewer = StageClient(), StageClient()
    async with stage(host, viewer):
        await host.join(server.base_url, server.token(ROOM, "alice", "host"))
        await viewer.join(server.base_url, server.token(ROOM, "bob", "audience"))
        before = await room_state(server)

        async def error_for(frame: str | bytes) -> dict[str, Any]:
            seen = len(viewer.messages)
            await viewer.send_raw(frame)
            return await viewer.wait_for(
                lambda m: m["type"] == "error" and viewer.messages.index(m) >= seen
            )

        assert (await error_for("{not json"))["code"] == "bad_request"
        assert (await error_for(b"\x00binary"))["code"] == "bad_request"
        assert (await error_for(json.dumps({"v": 2, "type": "ping"})))["code"] == (
            "unsupported_version"
        )
        unknown = await error_for(json.dumps({"v": 1, "type": "promote", "id": "x"}))
        assert (unknown["code"], unknown["id"]) == ("bad_request", "x")  # identity missing
        huge = await error_for(json.dumps({"v": 1, "type": "offer", "sdp": "x" * 70_000}))
        assert huge["code"] == "too_large"
        for request, code in [
            ({"type": "promote", "identity": "alice"}, "forbidden"),  # audience may not
            ({"type": "kick", "identity": "alice"}, "forbidden"),
            ({"type": "mute", "muted": True, "identity": "alice"}, "forbidden"),
            ({"type": "lower_hand"}, None),  # a no-op, acknowledged
            ({"type": "answer", "sdp": "v=0"}, "bad_request"),  # no server offer outstanding
            ({"type": "offer", "sdp": "v=0\r\n"}, "bad_request"),  # not an SDP offer
            ({"type": "join", "token": server.token(ROOM, "bob", "host")}, "bad_request"),
        ]:
            fields = {k: v for k, v in request.items() if k != "type"}
            if code is None:
                await viewer.request(str(request["type"]), **fields)
                continue
            with pytest.raises(StageError) as refused:
                await viewer.request(str(request["type"]), **fields)
            assert refused.value.code == code, request
        # a host cannot be the target of another host's action either
        with pytest.raises(StageError) as host_target:
            await host.request("demote", identity="alice")
        assert host_target.value.code == "forbidden"
        with pytest.raises(StageError) as nobody:
            await host.request("promote", identity="nobody")
        assert nobody.value.code == "not_found"
        assert await room_state(server) == before
        # the connection is still usable
        assert (await viewer.request("ping", ts=1.5))["ts"] == 1.5


async def test_a_token_for_another_room_cannot_act_here(server: RunningServer) -> None:
    host, viewer, stranger = StageClient(), StageClient(), StageClient()
    async with stage(host, viewer, stranger):
        await host.join(server.base_url, server.token(ROOM, "alice", "host"))
        joined = await viewer.join(server.base_url, server.token(ROOM, "bob", "audience"))
        before = await room_state(server)
        # a host of another room joins that room, and only that one
        other = await stranger.join(server.base_url, server.token("elsewhere", "mallory", "host"))
        assert other["room"]["name"] == "elsewhere"
        for request in [
            {"type": "promote", "identity": "bob"},
            {"type": "kick", "identity": "alice"},
            {"type": "mute", "muted": True, "identity": "alice"},
            {"type": "accept_hand", "identity": "bob"},
        ]:
            fields = {k: v for k, v in request.items() if k != "type"}
            with pytest.raises(StageError) as refused:
                await stranger.request(str(request["type"]), **fields)
            assert refused.value.code == "not_found", request
        # nor can it take over a session of this room by its number
        intruder = StageClient()
        async with stage(intruder):
            with pytest.raises(StageError) as resumed:
                await intruder.join(
                    server.base_url,
                    server.token("elsewhere", "bob", "audience"),
                    resume=joined["session"],
                )
            assert resumed.value.code == "not_found"
        # an admin token names no room to join; a forged one is refused
        admin = StageClient()
        async with stage(admin):
            with pytest.raises(StageError) as star:
                await admin.join(server.base_url, server.token("*", "ops", "host"))
            assert star.value.code == "bad_request"
            with pytest.raises(StageError) as forged:
                await admin.join(server.base_url, server.token(ROOM, "x", "host") + "x")
            assert forged.value.code == "unauthorized"
        assert await room_state(server) == before


async def test_resume_within_the_window_keeps_role_and_media(server: RunningServer) -> None:
    host, carol = StageClient(), StageClient()
    async with stage(host, carol):
        await host.join(server.base_url, server.token(ROOM, "alice", "host"))
        await host.publish(**media(HOST))
        # carol joins as audience and is promoted: her role lives in the room, not her token
        await carol.join(server.base_url, server.token(ROOM, "carol", "audience"))
        await carol.connect()
        await host.request("promote", identity="carol")
        await carol.wait_for(lambda m: m["type"] == "role_changed" and m["new"] == "cohost")
        await carol.publish(**media(COHOST))
        assert await owners(host, "carol") == {COHOST}
        pc = carol.pc
        assert carol.joined is not None
        session = carol.joined["session"]

        await carol.drop_socket()
        lost = await host.wait_for(
            lambda m: m["type"] == "connection_state" and m["state"] == "reconnecting"
        )
        assert lost["identity"] == "carol"
        # the media does not depend on the WebSocket
        assert await owners(host, "carol") == {COHOST}

        resumed = await carol.resume()
        assert resumed["resumed"] is True and resumed["role"] == "cohost"
        assert resumed["session"] == session
        await host.wait_for(lambda m: m["type"] == "connection_state" and m["state"] == "connected")
        assert carol.pc is pc
        assert await owners(host, "carol") == {COHOST}
        assert await owners(carol, "alice") == {HOST}
        # an audience member's raised hand survives a resume too
        bob = StageClient()
        async with stage(bob):
            await bob.join(server.base_url, server.token(ROOM, "bob", "audience"))
            await bob.request("raise_hand")
            await bob.drop_socket()
            back = await bob.resume()
            assert back["resumed"] is True and back["role"] == "audience"
            assert [h["identity"] for h in back["room"]["hands"]] == ["bob"]
            assert [h["identity"] for h in (await room_state(server))["hands"]] == ["bob"]
        # a stale session number is refused
        late = StageClient()
        async with stage(late):
            with pytest.raises(StageError) as stale:
                await late.join(
                    server.base_url, server.token(ROOM, "carol", "audience"), resume=999
                )
            assert stale.value.code == "not_found"
        # a second join of the identity replaces the older connection
        again = StageClient()
        async with stage(again):
            await again.join(server.base_url, server.token(ROOM, "carol", "audience"))
            await eventually(
                lambda: carol.close_code == 4001, "the older connection closed (replaced)"
            )
