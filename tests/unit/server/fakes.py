"""The control process's HTTP app over a fake worker pool: every entry point, no media.

:class:`FakePool` answers the worker operations the way a media worker does
(sessions of the same identity and direction replace each other; ending a
session reports ``session_ended`` before the reply) and records every call, so
tests can check what the SFU was asked to do.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from interlive.auth import mint_token
from interlive.config import ServerConfig
from interlive.server.app import ControlPlane, create_app
from interlive.server.keys import PLANE
from interlive.server.workers import WorkerPool
from interlive.worker.channel import Event, RequestError

SECRET = "test-secret-for-the-control-plane"
SDP_HEADERS = {"Content-Type": "application/sdp"}


@dataclass
class FakeWorker:
    index: int = 0
    alive: bool = True
    port: int = 40000


@dataclass
class FakePool:
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    room_worker: dict[str, int] = field(default_factory=dict)
    workers: list[FakeWorker] = field(default_factory=lambda: [FakeWorker()])
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    ready: bool = True
    #: end each new session before its reply is handled (a racing POST replaced it)
    replace_at_once: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def place(self, room: str) -> FakeWorker:
        self.room_worker[room] = 0
        return self.workers[0]

    async def call(
        self, handle: FakeWorker, op: str, timeout: float = 10.0, **args: Any
    ) -> dict[str, Any]:
        self.calls.append((op, args))
        if op == "create_session":
            key = (args["room"], args["identity"], args["mode"])
            for sid, other in list(self.sessions.items()):
                if other == key:
                    self.end(sid, "replaced")
            sid = f"s{next(self._ids)}"
            self.sessions[sid] = key
            if self.replace_at_once:
                self.sessions[sid] = key
                self.end(sid, "replaced")
            publish = args["mode"] == "publish"
            tracks = [{"mid": "0", "kind": "audio"}, {"mid": "1", "kind": "video"}]
            return {"sid": sid, "answer": "v=0\r\n", "tracks": tracks if publish else []}
        if op == "delete_session":
            if args["sid"] not in self.sessions:
                raise RequestError(404, "not_found", "no such session")
            self.end(args["sid"], "deleted")
            return {}
        if op == "end_sessions":
            ended = [sid for sid in args["sids"] if sid in self.sessions]
            for sid in ended:
                self.end(sid, args["reason"])
            return {"ended": len(ended)}
        return {}

    def end(self, sid: str, reason: str) -> None:
        room, identity, _ = self.sessions.pop(sid)
        event = Event(
            "session_ended", {"sid": sid, "room": room, "identity": identity, "reason": reason}
        )
        for listener in self.listeners:
            listener(event)

    def ops(self, *names: str) -> list[tuple[str, dict[str, Any]]]:
        return [(op, args) for op, args in self.calls if op in names]


def token(room: str, identity: str, role: str, **kwargs: Any) -> str:
    return mint_token(SECRET, room=room, identity=identity, role=role, **kwargs)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@dataclass
class App:
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application]
    pool: FakePool
    plane: ControlPlane

    async def whip(self, room: str, tok: str) -> aiohttp.ClientResponse:
        headers = {**bearer(tok), **SDP_HEADERS}
        return await self.client.post(f"/whip/{room}", data="v=0\r\n", headers=headers)

    async def whep(self, room: str, tok: str) -> aiohttp.ClientResponse:
        headers = {**bearer(tok), **SDP_HEADERS}
        return await self.client.post(f"/whep/{room}", data="v=0\r\n", headers=headers)


@contextlib.asynccontextmanager
async def running_app(**config: Any) -> AsyncIterator[App]:
    pool = FakePool()
    app = create_app(ServerConfig(**config), cast(WorkerPool, pool), SECRET)
    async with TestClient(TestServer(app)) as client:
        yield App(client, pool, app[PLANE])
