"""Live-job events: webhooks for a job's start, stop and outputs, and the room's live flag.

The mixer is a fake: a thread on the other end of a real pipe that answers the
control operations the way ``interlive.mix.process`` does, with output states
the test sets, and that can "crash" (close its end of the pipe).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlive.config import ServerConfig
from interlive.mix.job import LiveSpec
from interlive.server.app import create_app
from interlive.server.keys import LIVE
from interlive.server.live_api import LIVE_ACTOR, LiveManager
from interlive.server.rooms import LiveOutputState, LiveStarted, LiveStopped
from interlive.server.webhooks import SIGNATURE_HEADER, event_payload, mask_url, verify_signature
from interlive.server.workers import WorkerPool
from interlive.worker.channel import Reply
from tests.unit.server.fakes import SECRET, bearer, token
from tests.unit.server.test_signaling_ws import ConferencePool, Ws, connect
from tests.unit.server.test_webhooks import Receiver, receiver

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtmp://cdn.example/app/streamkey", "rtmp://cdn.example/app/***"),
        ("rtmps://u:pw@cdn.example:443/live2/k?token=1", "rtmps://cdn.example:443/live2/***"),
        ("rtmp://cdn.example/app/", "rtmp://cdn.example/app/"),
        ("rtmp://cdn.example/app", "rtmp://cdn.example/app"),
        ("rtmp://[::1]:1935/a/b/key", "rtmp://[::1]:1935/a/b/***"),
    ],
)
def test_stream_keys_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_live_payloads() -> None:
    assert event_payload("r", LiveStarted("j1", 2)) == {
        "event": "live_started",
        "room": "r",
        "job": "j1",
        "outputs": 2,
    }
    assert event_payload("r", LiveStopped("j1", "deleted")) == {
        "event": "live_stopped",
        "room": "r",
        "job": "j1",
        "reason": "deleted",
    }
    assert event_payload("r", LiveOutputState("j1", "rtmp://h/app/key", "failed", 3)) == {
        "event": "live_output_state",
        "room": "r",
        "job": "j1",
        "url": "rtmp://h/app/***",
        "state": "failed",
        "reconnects": 3,
    }


# --- the manager with a fake mixer ------------------------------------------------------------


class FakeMixer:
    """The child end of the pipe, served by a thread; also the job's ``process``."""

    pid = 4242

    def __init__(self, spec: LiveSpec) -> None:
        self.spec = spec
        self.parent, self.child = multiprocessing.Pipe()
        #: what ``status`` reports as the RTMP outputs (set by the test)
        self.outputs: list[dict[str, Any]] = []
        self.ops: list[str] = []
        self.dead = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.child.send(Reply(0, {"ready": True}))
            while not self.dead.is_set():
                if not self.child.poll(0.01):
                    continue
                request = self.child.recv()
                self.ops.append(request.op)
                result: dict[str, Any] = {}
                if request.op == "add_input":
                    result = {"host": "127.0.0.1", "port": 50000}
                elif request.op == "status":
                    result = {"outputs": [dict(o) for o in self.outputs]}
                self.child.send(Reply(request.id, result))
                if request.op == "stop":
                    break
        except (EOFError, OSError):
            pass
        finally:
            self.child.close()  # the control process sees EOF: the mixer exited

    # the BaseProcess surface LiveManager uses
    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def kill(self) -> None:
        self.dead.set()


@dataclass
class Setup:
    client: TestClient[Any, Any]
    manager: LiveManager
    hook: Receiver
    mixers: list[FakeMixer]

    async def host(self) -> Ws:
        return await connect(self.client, "alice", "host")

    async def room_live(self) -> bool:
        response = await self.client.get("/api/rooms/r", headers=bearer(token("r", "x", "host")))
        return bool((await response.json())["live"])

    async def events(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` webhook bodies, each checked against its signature."""
        await self.hook.wait_for(n)
        for headers, body in self.hook.requests:
            assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
        return [b for b in self.hook.bodies() if b["event"].startswith("live")]


@contextlib.asynccontextmanager
async def live_app(tmp_path: Path) -> AsyncIterator[Setup]:
    mixers: list[FakeMixer] = []

    def spawn(spec: LiveSpec, out_dir: Path, room: str) -> tuple[Any, Connection]:
        mixer = FakeMixer(spec)
        mixers.append(mixer)
        return mixer, mixer.parent

    async with receiver() as hook:
        config = ServerConfig(data_dir=tmp_path, webhooks=(hook.url,))
        app = create_app(config, cast(WorkerPool, ConferencePool()), SECRET)
        manager: LiveManager = app[LIVE]
        manager.status_interval = 0.02
        manager._spawn = spawn  # type: ignore[method-assign]
        async with TestClient(TestServer(app)) as client:
            yield Setup(client, manager, hook, mixers)
        for mixer in mixers:
            mixer.kill()


HOST = bearer(token("r", "alice", "host"))
RTMP = "rtmp://cdn.example/app/streamkey"


async def test_rest_job_sends_started_output_states_and_stopped_in_order(
    tmp_path: Path,
) -> None:
    async with live_app(tmp_path) as s:
        alice = await s.host()
        body = {"outputs": [{"url": RTMP + "?secret=1"}]}
        response = await s.client.post("/api/rooms/r/live", json=body, headers=HOST)
        assert response.status == 201
        job_id = (await response.json())["id"]
        assert (await alice.until("live"))["live"] is True
        assert await s.room_live()
        assert s.manager.jobs["r"].alive

        mixer = s.mixers[0]
        # the mixer's status already strips the query (OutputSpec.redacted)
        mixer.outputs = [{"url": RTMP, "state": "connecting", "reconnects": 0}]
        mixer.outputs = [{"url": RTMP, "state": "live", "reconnects": 0}]
        await s.events(4)  # room_started, participant_joined, live_started, connected
        mixer.outputs = [{"url": RTMP, "state": "reconnecting", "reconnects": 1}]
        await s.events(5)
        mixer.outputs = [{"url": RTMP, "state": "live", "reconnects": 1}]
        await s.events(6)
        response = await s.client.delete("/api/rooms/r/live", headers=HOST)
        assert response.status == 204
        live = await s.events(7)
        off = await alice.until("live")
        assert off["live"] is False and off["by"] == LIVE_ACTOR
        assert not await s.room_live()

        masked = "rtmp://cdn.example/app/***"
        state = {"event": "live_output_state", "room": "r", "job": job_id, "url": masked}
        assert [{k: v for k, v in b.items() if k not in ("id", "created_at")} for b in live] == [
            {"event": "live_started", "room": "r", "job": job_id, "outputs": 1},
            {**state, "state": "connected", "reconnects": 0},
            {**state, "state": "reconnecting", "reconnects": 1},
            {**state, "state": "connected", "reconnects": 1},
            {"event": "live_stopped", "room": "r", "job": job_id, "reason": "deleted"},
        ]
        assert "streamkey" not in str(s.hook.bodies()) and "secret" not in str(s.hook.bodies())
        assert mixer.ops[-1] == "stop"


async def test_a_mixer_that_exits_is_reported_once(tmp_path: Path) -> None:
    async with live_app(tmp_path) as s:
        alice = await s.host()
        body: dict[str, Any] = {"outputs": []}
        assert (await s.client.post("/api/rooms/r/live", json=body, headers=HOST)).status == 201
        assert (await alice.until("live"))["live"] is True
        s.mixers[0].kill()  # the mixer dies: its end of the pipe closes
        assert (await alice.until("live"))["live"] is False
        live = await s.events(4)
        assert [(b["event"], b.get("reason")) for b in live] == [
            ("live_started", None),
            ("live_stopped", "mixer_exited"),
        ]
        assert not await s.room_live()
        # the dead job is still there to read and remove; its end is not sent again
        assert (await s.client.delete("/api/rooms/r/live", headers=HOST)).status == 204
        assert (await s.client.post("/api/rooms/r/live", json=body, headers=HOST)).status == 201
        live = await s.events(5)
        assert [b["event"] for b in live] == ["live_started", "live_stopped", "live_started"]


async def test_start_and_stop_live_over_ws_run_a_job_without_outputs(tmp_path: Path) -> None:
    async with live_app(tmp_path) as s:
        alice = await s.host()
        await alice.send("start_live", id="s")
        assert (await alice.until_reply("s"))["type"] == "ack"
        on = await alice.until("live")
        assert on == {"v": 1, "type": "live", "live": True, "by": "alice"}
        live = await s.events(3)
        assert live[0]["event"] == "live_started" and live[0]["outputs"] == 0
        job = s.manager.jobs["r"]
        assert s.mixers[0].spec.outputs == () and s.mixers[0].spec.hls and s.mixers[0].spec.record
        # the REST endpoint sees the same job
        response = await s.client.post("/api/rooms/r/live", json={"outputs": []}, headers=HOST)
        assert response.status == 409

        await alice.send("stop_live", id="t")
        assert (await alice.until_reply("t"))["type"] == "ack"
        assert (await alice.until("live"))["live"] is False
        live = await s.events(4)
        assert live[-1] == {**live[-1], "event": "live_stopped", "job": job.id}
        assert live[-1]["reason"] == "stop_live"
        assert "r" not in s.manager.jobs and s.mixers[0].ops[-1] == "stop"
        assert not await s.room_live()


async def test_a_room_that_comes_back_while_its_job_runs_is_live_again(tmp_path: Path) -> None:
    async with live_app(tmp_path) as s:
        alice = await s.host()
        assert (
            await s.client.post("/api/rooms/r/live", json={"outputs": []}, headers=HOST)
        ).status == 201
        await alice.until("live")
        await alice.send("leave", id="l")
        await alice.close_code()
        assert s.manager.jobs["r"].alive  # the job outlives its room
        bob = await connect(s.client, "bob", "host")
        assert (await bob.until("live")) == {"v": 1, "type": "live", "live": True, "by": LIVE_ACTOR}
        assert await s.room_live()
        await s.hook.wait_for(7)
        assert [b["event"] for b in s.hook.bodies()][:7] == [
            "room_started",
            "participant_joined",
            "live_started",
            "participant_left",
            "room_finished",
            "room_started",
            "participant_joined",
        ]
