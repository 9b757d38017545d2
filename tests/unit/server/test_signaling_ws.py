"""GET /ws over a fake worker pool: the order of offers and answers, glare, and closing.

No media: the pool answers the conference operations with canned SDP and lets
the test raise ``negotiation_needed`` when it likes, so each step of the
server's negotiation state can be checked exactly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlive.config import ServerConfig
from interlive.server.app import create_app
from interlive.server.workers import WorkerPool
from interlive.worker.channel import Event
from tests.unit.server.fakes import SECRET, FakePool, FakeWorker, token


class ConferencePool(FakePool):
    """A FakePool that also answers the conference operations."""

    offers = 0
    #: what conference_reoffer returns next (None: nothing to offer)
    next_offer: str | None = "server-offer"

    async def call(
        self, handle: FakeWorker, op: str, timeout: float = 10.0, **args: Any
    ) -> dict[str, Any]:
        if op == "conference_offer":
            self.calls.append((op, args))
            sid = args.get("sid")
            created = sid is None
            if created:
                sid = f"c{len(self.sessions) + 1}"
                self.sessions[sid] = (args["room"], args["identity"], "conference")
            return {"sid": sid, "answer": "answer-sdp", "streams": [], "created": created}
        if op == "conference_reoffer":
            self.calls.append((op, args))
            offer, self.next_offer = self.next_offer, None
            return {"offer": offer, "streams": [{"mid": "s1", "identity": "x", "kind": "video"}]}
        if op in ("conference_answer", "conference_rollback", "session_stats"):
            self.calls.append((op, args))
            return {"streams": []}
        return await super().call(handle, op, timeout, **args)

    def emit(self, kind: str, **data: Any) -> None:
        for listener in self.listeners:
            listener(Event(kind, data))


@contextlib.asynccontextmanager
async def app() -> AsyncIterator[tuple[TestClient[Any, Any], ConferencePool]]:
    pool = ConferencePool()
    application = create_app(ServerConfig(), cast(WorkerPool, pool), SECRET)
    async with TestClient(TestServer(application)) as client:
        yield client, pool


class Ws:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"v": 1, "type": kind, **fields}))

    async def recv(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def until(self, kind: str, **fields: Any) -> dict[str, Any]:
        while True:
            message = await self.recv()
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def until_reply(self, request_id: object) -> dict[str, Any]:
        """The ack or error answering the request ``request_id``."""
        while True:
            message = await self.recv()
            if message["type"] in ("ack", "error") and message.get("id") == request_id:
                return message

    async def close_code(self) -> int:
        """Read on until the server closes; its close code."""
        while True:
            message = await self.ws.receive(timeout=5)
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            assert message.type is aiohttp.WSMsgType.TEXT, message


async def connect(client: TestClient[Any, Any], identity: str, role: str) -> Ws:
    ws = Ws(await client.ws_connect("/ws"))
    await ws.send("join", id="j", token=token("r", identity, role))
    joined = await ws.until("joined")
    assert joined["role"] == role
    return ws


def ops(pool: ConferencePool) -> list[str]:
    return [op for op, _ in pool.calls if op.startswith("conference_")]


async def test_glare_the_clients_offer_wins_and_the_server_offers_again() -> None:
    async with app() as (client, pool):
        ws = await connect(client, "alice", "host")
        await ws.send("offer", id="o1", sdp="client-offer")
        answer = await ws.until("answer")
        assert (answer["id"], answer["sdp"]) == ("o1", "answer-sdp")
        first = await ws.until("offer")  # the look after a new session found something
        assert first["id"] == "srv-1" and first["streams"][0]["mid"] == "s1"
        # the client's offer crosses the server's: answered; the server's is dropped
        pool.next_offer = "server-offer-2"
        await ws.send("offer", id="o2", sdp="client-offer-2")
        assert (await ws.until("answer"))["id"] == "o2"
        second = await ws.until("offer")
        assert (second["id"], second["sdp"]) == ("srv-2", "server-offer-2")
        # the answer to the dropped offer is refused and reaches no worker
        await ws.send("answer", id="srv-1", sdp="late")
        stale = await ws.until("error")
        assert (stale["id"], stale["code"]) == ("srv-1", "bad_request")
        await ws.send("answer", id="srv-2", sdp="client-answer")
        assert (await ws.until("ack"))["id"] == "srv-2"
        assert ops(pool) == [
            "conference_offer",
            "conference_reoffer",
            "conference_offer",
            "conference_reoffer",
            "conference_answer",
        ]
        assert pool.calls[-1][1] == {"sid": "c1", "answer": "client-answer"}
        # the first offer went to a new session; the second renegotiated it
        offers = [args for op, args in pool.calls if op == "conference_offer"]
        assert "sid" not in offers[0] and offers[1]["sid"] == "c1"


async def test_worker_and_role_events_lead_to_offers_one_at_a_time() -> None:
    async with app() as (client, pool):
        host = await connect(client, "alice", "host")
        bob = await connect(client, "bob", "audience")
        await bob.send("offer", id="o1", sdp="client-offer")
        await bob.until("answer")
        await bob.until("offer")  # srv-1, outstanding
        # more reasons to renegotiate while srv-1 is outstanding: no second offer yet
        pool.next_offer = "after-promotion"
        pool.emit("negotiation_needed", sid="c1", room="r", identity="bob")
        await host.send("promote", id="p", identity="bob")
        assert (await host.until("ack"))["id"] == "p"
        changed = await bob.until("role_changed")
        assert changed["new"] == "cohost"
        assert ops(pool).count("conference_reoffer") == 1
        await bob.send("answer", id="srv-1", sdp="a1")
        await bob.until("ack")
        follow = await bob.until("offer")
        assert (follow["id"], follow["sdp"]) == ("srv-2", "after-promotion")
        reoffers = [args for op, args in pool.calls if op == "conference_reoffer"]
        assert reoffers[-1] == {"sid": "c1", "may_publish": True}


async def test_events_reach_the_room_and_a_kick_closes_the_connection() -> None:
    async with app() as (client, pool):
        host = await connect(client, "alice", "host")
        bob = await connect(client, "bob", "audience")
        await host.until("participant_joined", identity="bob")
        await bob.send("raise_hand", id="h")
        assert (await host.until("hand_raised"))["identity"] == "bob"
        pool.emit("active_speaker", room="r", identity="alice")
        assert (await bob.until("active_speaker"))["identity"] == "alice"
        await host.send("kick", id="k", identity="bob")
        left = await bob.until("participant_left")
        assert left["reason"] == "kicked"
        assert await bob.close_code() == 4002
        await host.until("participant_left", identity="bob")


async def test_before_join_only_join_and_ping() -> None:
    async with app() as (client, _pool):
        ws = Ws(await client.ws_connect("/ws"))
        await ws.send("raise_hand", id=1)
        refused = await ws.until("error")
        assert (refused["id"], refused["code"]) == (1, "bad_request")
        await ws.send("ping", id=2, ts=3)
        assert (await ws.until("pong"))["ts"] == 3
        await ws.send("join", id=3, token="nope")
        assert (await ws.until("error"))["code"] == "unauthorized"
        await ws.send("join", id=4, token=token("r", "alice", "host"))
        assert (await ws.until("joined"))["id"] == 4
        await ws.send("leave", id=5)
        assert (await ws.until("ack"))["id"] == 5
        assert (await ws.until("participant_left"))["reason"] == "left"
        assert await ws.close_code() == 1000


# The permission matrix at the signaling entry point: each role (of the caller)
# against each room action, on a room holding a host, a co-host and an audience
# member whose hand is raised.  "ok" is an ack; anything else is the error code,
# and a refused request must leave the room as it was.
_ACTIONS: dict[str, dict[str, Any]] = {
    "publish": {"track_id": "0", "kind": "audio"},
    "raise_hand": {},
    "promote": {"identity": "aud"},
    "demote": {"identity": "co"},
    "kick": {"identity": "aud"},
    "accept_hand": {"identity": "aud"},
    "decline_hand": {"identity": "aud"},
    "mute": {"muted": True, "identity": "co", "kind": "audio"},
    "start_live": {},
}
_ALLOWED: dict[str, set[str]] = {
    "host": {"publish", "promote", "demote", "kick", "accept_hand", "decline_hand", "mute",
             "start_live"},
    "cohost": {"publish"},
    "audience": {"raise_hand"},
}  # fmt: skip
MATRIX = [(role, action) for role in _ALLOWED for action in _ACTIONS]


@pytest.mark.parametrize(("role", "action"), MATRIX)
async def test_signaling_permission_matrix(role: str, action: str) -> None:
    async with app() as (client, _pool):
        await connect(client, "boss", "host")
        co = await connect(client, "co", "cohost")
        await co.ws.send_str(
            json.dumps({"v": 1, "type": "publish", "id": "p", "track_id": "0", "kind": "audio"})
        )
        await co.until("ack", id="p")
        aud = await connect(client, "aud", "audience")
        await aud.send("raise_hand", id="h")
        await aud.until("ack", id="h")
        caller = await connect(client, "caller", role)
        before = await (await client.get("/api/rooms/r", headers=bearer("boss"))).json()
        await caller.ws.send_str(
            json.dumps({"v": 1, "type": action, "id": "x", **_ACTIONS[action]})
        )
        reply = await caller.until_reply("x")
        if action in _ALLOWED[role]:
            assert reply["type"] == "ack", reply
        else:
            assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply
            after = await (await client.get("/api/rooms/r", headers=bearer("boss"))).json()
            assert _roles_and_hands(after) == _roles_and_hands(before)


def bearer(identity: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('r', identity, 'host')}"}


def _roles_and_hands(room: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {p["identity"]: (p["role"], p.get("hand_raised_at")) for p in room["participants"]}
