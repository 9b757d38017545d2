"""The control process's handle on its media workers, and room placement.

Workers are spawned processes (one per core by default); each gets one end
of a Pipe. Requests are matched to replies by id; events (a session ended, a
room finished, ``worker_exited`` when a worker dies) go to the listeners. A
room lives on one worker; a new room goes to the worker hosting the fewest
sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from interlive.config import ServerConfig
from interlive.worker.channel import Event, Ready, Reply, Request, RequestError
from interlive.worker.process import run_worker

log = logging.getLogger(__name__)


@dataclass
class WorkerHandle:
    index: int
    process: BaseProcess
    conn: Connection
    port: int = 0
    ready: asyncio.Future[None] | None = None
    pending: dict[int, asyncio.Future[Reply]] = field(default_factory=dict)
    sessions: int = 0
    alive: bool = True


class WorkerPool:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.workers: list[WorkerHandle] = []
        self.room_worker: dict[str, int] = {}
        self.listeners: list[Callable[[Event], None]] = []
        self._ids = itertools.count(1)
        self._stopping = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        cfg = self.config
        for index in range(max(1, cfg.workers)):
            parent, child = ctx.Pipe()
            port = cfg.udp_port + index if cfg.udp_port else 0
            process = ctx.Process(
                target=run_worker,
                args=(
                    index,
                    cfg.udp_bind,
                    port,
                    cfg.candidate_ip(),
                    cfg.media_settings(),
                    cfg.log_level,
                    child,
                ),
                name=f"interlive-worker-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            handle = WorkerHandle(index, process, parent, ready=loop.create_future())
            self.workers.append(handle)
            loop.add_reader(parent.fileno(), self._on_readable, handle)
            # uvloop makes a watched fd non-blocking; Connection.send expects a blocking pipe.
            os.set_blocking(parent.fileno(), True)
        await asyncio.wait_for(
            asyncio.gather(*(w.ready for w in self.workers if w.ready is not None)), 30
        )

    def _on_readable(self, handle: WorkerHandle) -> None:
        try:
            while handle.conn.poll():
                message = handle.conn.recv()
                if isinstance(message, Reply):
                    future = handle.pending.pop(message.id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, Event):
                    self._on_event(handle, message)
                elif isinstance(message, Ready):
                    handle.port = message.port
                    if handle.ready is not None and not handle.ready.done():
                        handle.ready.set_result(None)
        except (EOFError, OSError):
            self._on_worker_died(handle)

    def _on_worker_died(self, handle: WorkerHandle) -> None:
        if not handle.alive:
            return
        handle.alive = False
        asyncio.get_running_loop().remove_reader(handle.conn.fileno())
        handle.process.join(timeout=1)
        if self._stopping:
            log.info("worker %d stopped", handle.index)
        else:
            log.error("worker %d exited (code %s)", handle.index, handle.process.exitcode)
        if handle.ready is not None and not handle.ready.done():
            handle.ready.set_exception(
                RuntimeError(f"media worker {handle.index} exited during start-up (see above)")
            )
        for future in handle.pending.values():
            if not future.done():
                future.set_exception(RequestError(503, "worker_unavailable", "media worker exited"))
        handle.pending.clear()
        for room in [r for r, i in self.room_worker.items() if i == handle.index]:
            del self.room_worker[room]
        # its sessions are gone without a session_ended each: the listeners clean up
        for listener in self.listeners:
            listener(Event("worker_exited", {"worker": handle.index}))

    def _on_event(self, handle: WorkerHandle, event: Event) -> None:
        if event.kind == "session_ended":
            handle.sessions = max(0, handle.sessions - 1)
        elif (
            event.kind == "room_finished"
            and self.room_worker.get(event.data["room"]) == handle.index
        ):
            del self.room_worker[event.data["room"]]
        for listener in self.listeners:
            listener(event)

    @property
    def ready(self) -> bool:
        return bool(self.workers) and all(
            w.alive and w.ready is not None and w.ready.done() for w in self.workers
        )

    def place(self, room: str) -> WorkerHandle:
        index = self.room_worker.get(room)
        if index is not None:
            return self.workers[index]
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise RequestError(503, "worker_unavailable", "no media worker is running")
        chosen = min(
            alive,
            key=lambda w: (w.sessions, sum(1 for i in self.room_worker.values() if i == w.index)),
        )
        self.room_worker[room] = chosen.index
        return chosen

    async def call(self, handle: WorkerHandle, op: str, timeout: float = 10.0, **args: Any) -> Any:
        if not handle.alive:
            raise RequestError(503, "worker_unavailable", "media worker exited")
        request = Request(next(self._ids), op, args)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        handle.pending[request.id] = future
        handle.conn.send(request)
        try:
            reply = await asyncio.wait_for(future, timeout)
        finally:
            handle.pending.pop(request.id, None)
        if reply.error is not None:
            raise RequestError(*reply.error)
        if op in ("create_session", "create_plain_session") or (
            op == "conference_offer" and reply.result.get("created")
        ):
            handle.sessions += 1
        return reply.result

    async def stop(self) -> None:
        self._stopping = True
        for handle in self.workers:
            if handle.alive:
                with contextlib.suppress(TimeoutError, RequestError, OSError):
                    await self.call(handle, "shutdown", timeout=3)
        for handle in self.workers:
            handle.process.join(timeout=3)
            if handle.process.is_alive():
                handle.process.terminate()
            if handle.alive:
                handle.alive = False
                asyncio.get_running_loop().remove_reader(handle.conn.fileno())
            handle.conn.close()
