"""A subscriber load-generator process: many synthetic WHEP subscribers on one uvloop.

The parent spawns K of these (multiprocessing, spawn context) and talks to
each over a Pipe. The child connects its share of subscribers, reports
:class:`Progress` every half second, and obeys three commands:

``measure``
    snapshot every stream's counters, clear and arm the latency recorder;
``stop``
    disarm the recorder and send a :class:`WindowResult` for the window;
``close``
    DELETE every session, close the sockets, send :class:`Closed` and exit.

Each subscriber has its own UDP socket (as a browser would), so the kernel's
per-socket receive drops (``/proc/net/udp``) say how much loss the load
generator itself caused by reading too slowly.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import aiohttp

from interlive.auth import mint_token
from interlive.bench.media import StreamSnapshot, expected_and_received
from interlive.bench.synthetic import LatencyRecorder, SyntheticSubscriber
from interlive.bench.system import udp_drops
from interlive.transport.dtls import Certificate

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class LoadSpec:
    index: int
    base_url: str
    room: str
    secret: str
    subscribers: int
    #: number of this process's first subscriber, for unique identities
    first: int
    concurrency: int = 16
    connect_timeout: float = 30.0
    log_level: str = "warning"


@dataclass(frozen=True, slots=True)
class Progress:
    index: int
    connected: int
    failed: int
    pending: int
    receiving: int
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowResult:
    index: int
    seconds: float
    #: subscribers that were receiving audio and video when the window opened
    receiving: int
    #: (expected, received) media packets per subscriber over the window
    per_subscriber: list[tuple[int, int]]
    #: one-way delay samples, microseconds, array('q') bytes
    latency_us: bytes
    cpu_seconds: float
    socket_drops: int
    srtp_errors: int
    pre_keyframe: int
    rtcp_received: int


@dataclass(frozen=True, slots=True)
class Closed:
    index: int


LoadMessage = Progress | WindowResult | Closed


def run_load(spec: LoadSpec, conn: Connection) -> None:
    """Entry point of a spawned load-generator process."""
    logging.basicConfig(
        level=spec.log_level.upper(), format=f"%(asctime)s load{spec.index} %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    asyncio.run(_main(spec, conn))


class _Load:
    def __init__(self, spec: LoadSpec, conn: Connection) -> None:
        self.spec = spec
        self.conn = conn
        certificate = Certificate.generate()
        self.context = certificate.make_context()
        self.fingerprint = certificate.fingerprint()
        self.recorder = LatencyRecorder()
        self.subscribers = [
            SyntheticSubscriber(
                context=self.context,
                fingerprint=self.fingerprint,
                identity=f"bench-sub-{spec.first + i}",
                recorder=self.recorder,
            )
            for i in range(spec.subscribers)
        ]
        self.connected = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self._start: dict[tuple[int, int], StreamSnapshot] = {}
        self._start_time = 0.0
        self._start_cpu = 0.0
        self._start_drops = 0
        self._receiving_at_start = 0

    def progress(self) -> Progress:
        receiving = sum(1 for s in self.subscribers if s.receiving)
        pending = self.spec.subscribers - self.connected - self.failed
        return Progress(
            self.spec.index, self.connected, self.failed, pending, receiving, dict(self.errors)
        )

    async def connect_one(
        self, http: aiohttp.ClientSession, gate: asyncio.Semaphore, sub: SyntheticSubscriber
    ) -> None:
        spec = self.spec
        token = mint_token(spec.secret, room=spec.room, identity=sub.identity, role="audience")
        async with gate:
            try:
                await sub.connect(
                    http, f"{spec.base_url}/whep/{spec.room}", token, spec.connect_timeout
                )
            except Exception as exc:  # every failure is counted and reported, not raised
                self.failed += 1
                message = str(exc).replace(sub.identity, "<subscriber>")
                self.errors[f"{type(exc).__name__}: {message}"[:300]] += 1
                sub.shutdown()
                return
        self.connected += 1

    def inodes(self) -> list[int]:
        return [s.socket_inode for s in self.subscribers if s.socket_inode]

    def measure(self) -> None:
        self._start = {
            (i, ssrc): stream.snapshot()
            for i, sub in enumerate(self.subscribers)
            for ssrc, stream in sub.streams.items()
        }
        self._receiving_at_start = sum(1 for s in self.subscribers if s.receiving)
        self.recorder.samples = array.array("q")
        self.recorder.active = True
        self._start_drops = udp_drops(self.inodes())
        self._start_cpu = time.process_time()
        self._start_time = time.monotonic()

    def stop(self) -> WindowResult:
        self.recorder.active = False
        seconds = time.monotonic() - self._start_time
        cpu = time.process_time() - self._start_cpu
        drops = udp_drops(self.inodes()) - self._start_drops
        per_subscriber: list[tuple[int, int]] = []
        for i, sub in enumerate(self.subscribers):
            expected = received = 0
            for ssrc, stream in sub.streams.items():
                start = self._start.get((i, ssrc)) or stream.before_first()
                e, r = expected_and_received(start, stream.snapshot())
                expected += e
                received += r
            if sub.connected:
                per_subscriber.append((expected, received))
        return WindowResult(
            index=self.spec.index,
            seconds=seconds,
            receiving=self._receiving_at_start,
            per_subscriber=per_subscriber,
            latency_us=self.recorder.samples.tobytes(),
            cpu_seconds=cpu,
            socket_drops=drops,
            srtp_errors=sum(s.srtp_errors for s in self.subscribers),
            pre_keyframe=sum(s.pre_keyframe for s in self.subscribers),
            rtcp_received=sum(s.rtcp_received for s in self.subscribers),
        )

    async def close(self, http: aiohttp.ClientSession) -> None:
        gate = asyncio.Semaphore(self.spec.concurrency)

        async def leave(sub: SyntheticSubscriber) -> None:
            async with gate:
                await sub.close(http)

        await asyncio.gather(*(leave(s) for s in self.subscribers), return_exceptions=True)


async def _main(spec: LoadSpec, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    # A thread blocks on the pipe: the event loop's add_reader would make the pipe
    # non-blocking, and a large WindowResult could then fail half-sent.
    def read_commands() -> None:
        try:
            while True:
                command = str(conn.recv())
                loop.call_soon_threadsafe(commands.put_nowait, command)
                if command == "close":
                    return
        except (EOFError, OSError):  # the parent is gone
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(commands.put_nowait, "close")

    threading.Thread(target=read_commands, name="commands", daemon=True).start()
    load = _Load(spec, conn)
    timeout = aiohttp.ClientTimeout(total=spec.connect_timeout)
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        gate = asyncio.Semaphore(spec.concurrency)
        connecting = [
            asyncio.create_task(load.connect_one(http, gate, s)) for s in load.subscribers
        ]

        async def report() -> None:
            while True:
                conn.send(load.progress())
                await asyncio.sleep(PROGRESS_INTERVAL)

        reporter = asyncio.create_task(report())
        try:
            while True:
                command = await commands.get()
                if command == "measure":
                    load.measure()
                elif command == "stop":
                    conn.send(load.stop())
                elif command == "close":
                    break
        finally:
            reporter.cancel()
            for task in connecting:
                task.cancel()
            await asyncio.gather(reporter, *connecting, return_exceptions=True)
            await load.close(http)
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(Closed(spec.index))
