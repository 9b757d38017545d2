"""``interlive bench fanout``: one publisher, N SRTP subscribers, a real ``interlive serve``.

What runs:

* the server, as a subprocess on free ports with one media worker
  (``interlive serve --workers 1 --udp-port 0 ...``), ready when ``/healthz`` is 200;
* one :class:`SyntheticPublisher` in this process (WHIP): 600 kbit/s of VP8-like
  video at 30 fps with a keyframe every 2 s, plus 20 ms Opus-like audio;
* N :class:`SyntheticSubscriber` (WHEP) spread over K spawned load processes
  (:mod:`interlive.bench.loadgen`), each with its own socket and DTLS session.

Theory of operation: the subscribers join first, then the publisher starts,
so the window measures fan-out to exactly N. Once every subscriber receives
audio and video (or the warm-up deadline passes) and after a short settle, the
window opens: this process
scrapes ``/metrics`` and reads CPU counters while the load processes snapshot
their stream counters and arm their latency recorders; ``--duration`` seconds
later the same happens again, and every figure is a difference of the two.
One-way delay is the subscriber's ``monotonic_ns()`` minus the send time the
publisher wrote into the payload (one CLOCK_MONOTONIC for all processes);
loss compares each subscriber's extended highest sequence numbers with what it
received. The load generator shares the machine's cores with the server, so its
own CPU is reported next to the server's, and the raw loopback ``sendto`` rate
of one Python process is measured first as the ceiling for one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import multiprocessing
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from interlive.auth import mint_token
from interlive.bench.loadgen import Closed, LoadSpec, Progress, WindowResult, run_load
from interlive.bench.serverproc import free_tcp_port, launch_server, stop_server
from interlive.bench.synthetic import SyntheticPublisher
from interlive.bench.system import (
    MachineInfo,
    Metrics,
    machine_info,
    process_cpu_seconds,
    sendto_ceiling,
    system_cpu,
    udp_port_stats,
)
from interlive.transport.dtls import Certificate

__all__ = [
    "FanoutConfig",
    "FanoutResult",
    "append_report",
    "format_report",
    "main",
    "run_fanout",
]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLOSE_TIMEOUT = 60.0


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    subscribers: int = 100
    duration: float = 10.0
    load_processes: int = 1
    #: seconds to wait for every subscriber to receive; default 30 s + 60 ms per subscriber
    warmup_timeout: float | None = None
    settle: float = 1.0
    room: str = "bench"
    server_workers: int = 1
    log_level: str = "warning"
    ceiling_seconds: float = 1.0
    #: print warm-up progress to stderr
    verbose: bool = True

    def warmup_deadline(self) -> float:
        if self.warmup_timeout is not None:
            return self.warmup_timeout
        return 30.0 + 0.06 * self.subscribers


@dataclass(slots=True)
class FanoutResult:
    config: FanoutConfig
    machine: MachineInfo
    started_at: datetime.datetime
    ceiling_pps: float
    connected: int = 0
    failed: int = 0
    receiving: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    window: float = 0.0
    publisher_pps: float = 0.0
    server_in_pps: float = 0.0
    server_out_pps: float = 0.0
    #: CPU of each media worker over the window, in cores (1.0 = one core busy)
    worker_cpu: dict[str, float] = field(default_factory=dict)
    control_cpu: float | None = None
    loadgen_cpu: float = 0.0
    machine_busy: float = 0.0
    latency_ms: tuple[float, float, float] | None = None
    latency_samples: int = 0
    expected: int = 0
    received: int = 0
    worst_loss: float | None = None
    socket_drops: int = 0
    #: datagrams the kernel dropped at the media worker's socket, and its queue at the end
    worker_socket_drops: int = 0
    worker_queue_bytes: int = 0
    server_log: str = ""
    #: sessions the server still held after every peer sent its DELETE
    sessions_left: int = -1
    server_drops: dict[str, float] = field(default_factory=dict)
    keyframes: int = 0
    keyframe_requests: int = 0
    late_ticks: int = 0
    srtp_errors: int = 0
    pre_keyframe: int = 0

    @property
    def demand_pps(self) -> float:
        """Packets/s a perfect SFU sends: the publisher's rate times the receiving subscribers."""
        return self.publisher_pps * self.receiving

    @property
    def worker_cores(self) -> float:
        return sum(self.worker_cpu.values())

    @property
    def out_per_cpu_second(self) -> float | None:
        cores = self.worker_cores
        return self.server_out_pps / cores if cores > 0 else None

    @property
    def delivered(self) -> float | None:
        """Server out / demand: below 1 the worker cannot keep up and its input queue grows."""
        return self.server_out_pps / self.demand_pps if self.demand_pps > 0 else None

    @property
    def overloaded(self) -> bool:
        return self.delivered is not None and self.delivered < 0.95

    @property
    def other_cpu(self) -> float:
        """Cores used by everything else on the machine during the window."""
        ours = self.worker_cores + (self.control_cpu or 0.0) + self.loadgen_cpu
        return max(0.0, self.machine_busy * self.machine.nproc - ours)

    @property
    def loss(self) -> float | None:
        if self.expected <= 0:
            return None
        return max(0.0, (self.expected - self.received) / self.expected)


# --- the server ---------------------------------------------------------------------------


class BenchServer:
    """``interlive serve`` in its own session, on free ports, with a random secret."""

    def __init__(self, directory: Path, *, workers: int, log_level: str) -> None:
        self.directory = directory
        self.workers = workers
        self.log_level = log_level
        self.secret = secrets.token_urlsafe(24)
        self.port = free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = launch_server(
            port=self.port,
            data_dir=self.directory / "data",
            secret=self.secret,
            log_path=self.log_path,
            workers=self.workers,
            log_level=self.log_level,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(
        self, http: aiohttp.ClientSession, timeout: float = STARTUP_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise BenchError(
                    f"interlive serve exited ({code}) before /healthz answered 200\n"
                    f"--- server log ---\n{self.log_tail()}"
                )
            try:
                async with http.get(f"{self.base_url}/healthz") as response:
                    if response.status == 200:
                        return
                    last = f"{response.status} {(await response.text())[:200]}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last = str(exc)
            await asyncio.sleep(0.1)
        raise BenchError(
            f"/healthz not 200 within {timeout:.0f} s ({last})\n--- server log ---\n"
            f"{self.log_tail()}"
        )

    async def metrics(self, http: aiohttp.ClientSession) -> Metrics:
        async with http.get(f"{self.base_url}/metrics") as response:
            text = await response.text()
            if response.status != 200:
                raise BenchError(f"GET /metrics -> {response.status}: {text[:300]}")
        return Metrics.parse(text)

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process, STOP_TIMEOUT)


# --- the load processes ----------------------------------------------------------------------


class LoadProcess:
    """The parent's handle on one load-generator process."""

    def __init__(self, spec: LoadSpec, loop: asyncio.AbstractEventLoop) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.spec = spec
        self.conn: Connection = parent
        self.process: BaseProcess = ctx.Process(
            target=run_load, args=(spec, child), name=f"interlive-bench-load-{spec.index}"
        )
        self.process.daemon = True
        self.process.start()
        child.close()
        self.progress = Progress(spec.index, 0, 0, spec.subscribers, 0)
        self.reported = False
        self.dead = False
        self.result: asyncio.Future[WindowResult] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        # A thread blocks on the pipe: add_reader would make it non-blocking, and a
        # multi-megabyte WindowResult must be read whole.
        self._reader = threading.Thread(
            target=self._read, name=f"load-{spec.index}-reader", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message: Any = self.conn.recv()
            except (EOFError, OSError):
                with contextlib.suppress(RuntimeError):  # the loop may be closed already
                    self._loop.call_soon_threadsafe(self._gone)
                return
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_message, message)
            if isinstance(message, Closed):
                return

    def _on_message(self, message: object) -> None:
        if isinstance(message, Progress):
            self.progress = message
            self.reported = True
        elif isinstance(message, WindowResult) and not self.result.done():
            self.result.set_result(message)
        elif isinstance(message, Closed) and not self.closed.done():
            self.closed.set_result(None)

    def _gone(self) -> None:
        self.dead = True
        error = BenchError(f"load process {self.spec.index} exited ({self.process.exitcode})")
        if not self.result.done():
            self.result.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, command: str) -> None:
        if not self.dead:
            try:
                self.conn.send(command)
            except OSError:
                self.dead = True

    def stop(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self._reader.join(timeout=1)
        self.conn.close()
        if self.result.done() and not self.result.cancelled():
            self.result.exception()  # retrieved: the run already reported what went wrong


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total)) if total else 1
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- the run -----------------------------------------------------------------------------------


def run_fanout(config: FanoutConfig) -> FanoutResult:
    """Run the benchmark (blocking) and return its figures."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result: FanoutResult = runner(_run(config))
    return result


def _log(config: FanoutConfig, text: str) -> None:
    if config.verbose:
        print(text, file=sys.stderr, flush=True)


async def _run(config: FanoutConfig) -> FanoutResult:
    result = FanoutResult(
        config=config,
        machine=machine_info(),
        started_at=datetime.datetime.now(datetime.UTC),
        ceiling_pps=sendto_ceiling(1200, config.ceiling_seconds),
    )
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="interlive-bench-") as tmp:
        server = BenchServer(Path(tmp), workers=config.server_workers, log_level=config.log_level)
        loads: list[LoadProcess] = []
        publisher: SyntheticPublisher | None = None
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            server.start()
            async with aiohttp.ClientSession(timeout=timeout) as http:
                await server.wait_ready(http)
                # The audience joins first and the stream starts once everyone is in, so
                # the window measures fan-out to exactly N subscribers.
                first = 0
                for index, count in enumerate(_split(config.subscribers, config.load_processes)):
                    spec = LoadSpec(
                        index=index,
                        base_url=server.base_url,
                        room=config.room,
                        secret=server.secret,
                        subscribers=count,
                        first=first,
                        log_level=config.log_level,
                    )
                    loads.append(LoadProcess(spec, loop))
                    first += count
                deadline = time.monotonic() + config.warmup_deadline()
                await _warm_up(config, loads, server, deadline, media=False)
                certificate = Certificate.generate()
                publisher = SyntheticPublisher(
                    context=certificate.make_context(),
                    fingerprint=certificate.fingerprint(),
                    identity="bench-publisher",
                )
                token = mint_token(
                    server.secret, room=config.room, identity=publisher.identity, role="host"
                )
                try:
                    await publisher.connect(http, f"{server.base_url}/whip/{config.room}", token)
                except Exception as exc:
                    raise BenchError(
                        f"publisher: {exc}\n--- server log ---\n{server.log_tail()}"
                    ) from exc
                await _warm_up(config, loads, server, deadline, media=True)
                await asyncio.sleep(config.settle)
                await _measure(config, result, server, http, publisher, loads)
                for load in loads:
                    load.send("close")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(load.closed for load in loads)), CLOSE_TIMEOUT
                    )
                await publisher.close(http)
                publisher = None
                result.sessions_left = int((await server.metrics(http)).total("interlive_sessions"))
        finally:
            result.server_log = server.log_tail(60)
            if publisher is not None:
                publisher.shutdown()
            for load in loads:
                load.send("close")
            for load in loads:
                load.stop()
            server.stop()
    return result


async def _warm_up(
    config: FanoutConfig,
    loads: list[LoadProcess],
    server: BenchServer,
    deadline: float,
    *,
    media: bool,
) -> None:
    """Wait until every subscriber is connected (or, with ``media``, receiving)."""
    start = time.monotonic()
    next_note = start + 2.0
    while True:
        for load in loads:
            if load.dead:
                raise BenchError(f"load process {load.spec.index} died during warm-up")
        if server.process is not None and server.process.poll() is not None:
            raise BenchError(f"the server exited during warm-up\n{server.log_tail()}")
        progress = [load.progress for load in loads]
        connected = sum(p.connected for p in progress)
        receiving = sum(p.receiving for p in progress)
        pending = sum(p.pending for p in progress)
        failed = sum(p.failed for p in progress)
        now = time.monotonic()
        if now >= next_note:
            _log(
                config,
                f"warm-up: connected {connected}/{config.subscribers}, receiving {receiving}, "
                f"failed {failed}",
            )
            next_note = now + 2.0
        reported = all(load.reported for load in loads)
        if reported and pending == 0 and (not media or receiving >= connected):
            return
        if now >= deadline:
            _log(
                config,
                f"warm-up deadline: connected {connected}, receiving {receiving}, "
                f"failed {failed} of {config.subscribers}",
            )
            return
        await asyncio.sleep(0.2)


async def _measure(
    config: FanoutConfig,
    result: FanoutResult,
    server: BenchServer,
    http: aiohttp.ClientSession,
    publisher: SyntheticPublisher,
    loads: list[LoadProcess],
) -> None:
    def published() -> int:
        return publisher.video.packets_sent + publisher.audio.packets_sent

    port = publisher.core.remote.address[1] if publisher.core is not None else 0
    socket0 = udp_port_stats(port)
    before = await server.metrics(http)
    control0 = process_cpu_seconds(server.pid)
    busy0, total0 = system_cpu()
    own0 = time.process_time()
    pub0 = published()
    keyframes0, requests0, late0 = (
        publisher.video.keyframes_sent,
        publisher.keyframe_requests,
        publisher.late_ticks,
    )
    t0 = time.monotonic()
    for load in loads:
        load.send("measure")
    _log(config, f"measuring for {config.duration:g} s")
    await asyncio.sleep(config.duration)
    for load in loads:
        load.send("stop")
    t1 = time.monotonic()
    pub1 = published()
    own1 = time.process_time()
    busy1, total1 = system_cpu()
    control1 = process_cpu_seconds(server.pid)
    after = await server.metrics(http)
    socket1 = udp_port_stats(port)
    result.worker_socket_drops = socket1[1] - socket0[1]
    result.worker_queue_bytes = socket1[0]
    windows = await asyncio.wait_for(asyncio.gather(*(load.result for load in loads)), 120)

    window = t1 - t0
    result.window = window
    progress = [load.progress for load in loads]
    result.connected = sum(p.connected for p in progress)
    result.failed = sum(p.failed for p in progress)
    for p in progress:
        for error, count in p.errors.items():
            result.errors[error] = result.errors.get(error, 0) + count
    result.receiving = sum(w.receiving for w in windows)
    result.publisher_pps = (pub1 - pub0) / window
    result.keyframes = publisher.video.keyframes_sent - keyframes0
    result.keyframe_requests = publisher.keyframe_requests - requests0
    result.late_ticks = publisher.late_ticks - late0

    def delta(name: str) -> float:
        return after.total(name) - before.total(name)

    result.server_in_pps = delta("interlive_packets_received_total") / window
    result.server_out_pps = delta("interlive_packets_sent_total") / window
    cpu0 = before.by_label("interlive_worker_cpu_seconds_total", "worker")
    cpu1 = after.by_label("interlive_worker_cpu_seconds_total", "worker")
    result.worker_cpu = {w: (cpu1[w] - cpu0.get(w, 0.0)) / window for w in sorted(cpu1)}
    if control0 is not None and control1 is not None:
        result.control_cpu = (control1 - control0) / window
    drops0 = before.by_label("interlive_dropped_packets_total", "reason")
    drops1 = after.by_label("interlive_dropped_packets_total", "reason")
    result.server_drops = {
        reason: value - drops0.get(reason, 0.0)
        for reason, value in sorted(drops1.items())
        if value - drops0.get(reason, 0.0) > 0
    }
    cores = max(1, result.machine.nproc)
    result.machine_busy = (busy1 - busy0) / max(1e-9, total1 - total0) if cores else 0.0
    result.loadgen_cpu = (sum(w.cpu_seconds for w in windows) + own1 - own0) / window

    samples = np.concatenate(
        [np.frombuffer(w.latency_us, dtype=np.int64) for w in windows]
        or [np.empty(0, dtype=np.int64)]
    )
    result.latency_samples = int(samples.size)
    if samples.size:
        p50, p99 = np.percentile(samples, [50, 99])
        result.latency_ms = (float(p50) / 1000, float(p99) / 1000, float(samples.max()) / 1000)
    worst: float | None = None
    for w in windows:
        for expected, received in w.per_subscriber:
            result.expected += expected
            result.received += received
            if expected > 0:
                loss = max(0.0, (expected - received) / expected)
                worst = loss if worst is None else max(worst, loss)
        result.socket_drops += w.socket_drops
        result.srtp_errors += w.srtp_errors
        result.pre_keyframe += w.pre_keyframe
    result.worst_loss = worst


# --- the report -------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def command_line(args: argparse.Namespace) -> str:
    text = (
        f"interlive bench fanout --subscribers {args.subscribers} --duration {args.duration:g} "
        f"--workers {args.workers}"
    )
    if getattr(args, "output", None):
        text += f" --output {args.output}"
    return text


def format_table(r: FanoutResult) -> str:
    latency = "n/a" if r.latency_ms is None else " / ".join(f"{v:.2f}" for v in r.latency_ms)
    per_cpu = r.out_per_cpu_second
    header = (
        "| Subscribers receiving / asked | Server in pkt/s | Server out pkt/s "
        "| Demand out pkt/s | Out / demand | Worker CPU | Out pkt/s per worker CPU-s "
        "| Latency p50 / p99 / max (ms) | Added loss | Load generator CPU |"
    )
    rule = "|" + "---|" * 10
    row = (
        f"| {r.receiving} / {r.config.subscribers} | {r.server_in_pps:,.0f} "
        f"| {r.server_out_pps:,.0f} | {r.demand_pps:,.0f} | {_pct(r.delivered, 0)} "
        f"| {_pct(r.worker_cores, 0)} "
        f"| {'n/a' if per_cpu is None else f'{per_cpu:,.0f}'} | {latency} "
        f"| {_pct(r.loss, 3)}{' (overloaded)' if r.overloaded else ''} "
        f"| {_pct(r.loadgen_cpu, 0)} |"
    )
    return "\n".join([header, rule, row])


def format_notes(r: FanoutResult) -> str:
    c = r.config
    us = 1e6 / r.ceiling_pps if r.ceiling_pps else 0.0
    control = "n/a" if r.control_cpu is None else _pct(r.control_cpu, 0)
    notes = [
        f"- Window {r.window:.1f} s after warm-up; {r.connected} connected, {r.failed} failed, "
        f"{r.receiving} receiving audio and video when it opened. One publisher "
        f"(600 kbit/s VP8-like video at 30 fps, keyframe every 2 s, 20 ms Opus-like audio) "
        f"sent {r.publisher_pps:,.0f} pkt/s; {r.keyframes} keyframes in the window, "
        f"{r.keyframe_requests} PLI/FIR received, {r.late_ticks} late frame ticks.",
        f"- Ceiling: one Python process `sendto`s {r.ceiling_pps:,.0f} datagrams/s of 1200 bytes "
        f"on loopback ({us:.2f} us each), measured just before the run.",
        f"- Server: {c.server_workers} media worker(s), CPU per worker "
        + ", ".join(f"#{w} {_pct(v, 0)}" for w, v in r.worker_cpu.items())
        + f"; control process {control}. Whole machine busy {_pct(r.machine_busy, 0)} of "
        f"{r.machine.nproc} cores, of which other processes (not this benchmark) used "
        f"{_pct(r.other_cpu, 0)} of one core.",
        f"- The load generator ({len(_split(c.subscribers, c.load_processes))} subscriber "
        f"process(es) plus the publisher) runs on the same {r.machine.nproc} cores as the server "
        f"and used {_pct(r.loadgen_cpu, 0)} of one core: the server's figures are what it "
        "achieved while sharing the machine.",
        f"- Latency: {r.latency_samples:,} samples, send time in the publisher to receipt and "
        "decryption in a subscriber, so it includes both load-generator event loops.",
        f"- Loss: {r.expected - r.received:,} of {r.expected:,} expected packets "
        f"(worst subscriber {_pct(r.worst_loss, 2)}); {r.socket_drops:,} were dropped by "
        "the kernel at subscriber sockets (the load generator reading too slowly). "
        f"SRTP errors {r.srtp_errors}, packets before the first keyframe {r.pre_keyframe}.",
    ]
    notes.append(
        f"- Media worker socket: {r.worker_socket_drops:,} datagrams dropped by the kernel on "
        f"arrival (receive queue full) in the window; {r.worker_queue_bytes / 1024:,.0f} KiB "
        "queued at its end."
    )
    if r.overloaded:
        notes.append(
            f"- Overloaded: the worker sent {_pct(r.delivered, 0)} of what {r.receiving} "
            "subscribers need; the rest waits in its socket's receive queue, so latency grows "
            "by the second. Loss by sequence numbers counts only packets already delivered "
            "past, so it understates what an overloaded worker will lose once that queue "
            "overflows."
        )
    if r.sessions_left > 0:
        notes.append(
            f"- After every peer sent its DELETE the server still held {r.sessions_left} sessions."
        )
    if r.server_drops:
        drops = ", ".join(f"{k} {v:,.0f}" for k, v in r.server_drops.items())
        notes.append(f"- Server drop counters in the window: {drops}.")
    if r.errors:
        errors = "; ".join(f"{n} x {e}" for e, n in sorted(r.errors.items(), key=lambda x: -x[1]))
        notes.append(f"- Connection failures: {errors[:1000]}")
    return "\n".join(notes)


def format_report(r: FanoutResult, command: str) -> str:
    when = r.started_at.strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"## Fan-out: {r.config.subscribers} subscribers ({when})",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {r.machine.describe()}.",
            "",
            format_table(r),
            "",
            format_notes(r),
            "",
        ]
    )


def main(args: argparse.Namespace) -> int:
    if args.subscribers < 1 or args.duration <= 0 or args.workers < 1:
        print("interlive bench fanout: --subscribers, --duration and --workers must be positive",
              file=sys.stderr)  # fmt: skip
        return 2
    config = FanoutConfig(
        subscribers=args.subscribers, duration=args.duration, load_processes=args.workers
    )
    try:
        result = run_fanout(config)
    except BenchError as exc:
        print(f"interlive bench fanout: {exc}", file=sys.stderr)
        return 1
    report = format_report(result, command_line(args))
    if result.failed and result.server_log:
        print(f"--- server log (tail) ---\n{result.server_log}", file=sys.stderr)
    print(report)
    if args.output:
        append_report(Path(args.output), report)
        print(f"appended to {args.output}", file=sys.stderr)
    return 0


def append_report(path: Path, report: str) -> None:
    """Append a report section to a markdown file, creating it with a title if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else ""
    with path.open("a") as f:
        if not existing:
            f.write("# Benchmarks\n\n")
        elif not existing.endswith("\n\n"):
            f.write("\n" if existing.endswith("\n") else "\n\n")
        f.write(report)
