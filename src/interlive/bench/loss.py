"""``interlive bench loss``: how well each loss-protection mode hides a lossy viewer leg.

What runs, per protection mode (``none``, ``nack``, ``fec``, ``red``, ``policy``):

* a real ``interlive serve --loss-protection MODE`` as a subprocess (one media
  worker, free ports; :mod:`interlive.bench.serverproc`);
* one SDK publisher (:class:`~interlive.client.WhipPublisher`) in this process,
  straight to the server: the test pattern in VP8 (640x360, 30 fps, the
  server caps it at 800 kbit/s through REMB) and a 440 Hz tone in Opus;

and per cell (a loss and an RTT) two viewers, each behind its own
:class:`~interlive.lab.proxy.ImpairmentProxy`: Debian's Chromium driven by
Playwright (a page of :mod:`interlive.bench.loss_page` on the server's
origin) and an SDK :class:`~interlive.client.WhepSubscriber`.

Theory of operation: the network lab has no netem here, so the viewer leg is
made lossy in user space.  The viewer's WHEP answer is rewritten before it is
applied (:func:`~interlive.bench.loss_measure.redirect_answer`) so that its
candidate is the proxy; the proxy relays to the media worker.  Half the RTT is
added in each direction from the start; the loss (random, or Gilbert-Elliott
with the cell's mean burst) applies to the server→viewer direction only, and is
switched on once both viewers decode, so ICE and DTLS are not what is measured.
After ``settle`` seconds (the server's loss estimate needs a few receiver
reports) a window of ``duration`` seconds is measured: ``getStats()``,
the SDK viewer's frame and packet logs, the proxies' counters and the server's
``/metrics`` are read at both ends and differenced.  Then both viewers leave
(WHEP ``DELETE``) and the next cell starts with fresh proxies.  The loss draws
are seeded from the condition, so every protection sees the same pattern.

The report (:mod:`interlive.bench.loss_report`) prints the tables, checks
the issue's goals, compares the policy with each tool and writes a PNG plot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from yarl import URL

from interlive.auth import mint_token
from interlive.bench.loss_cells import (
    DEFAULT_LOSSES,
    DEFAULT_PROTECTIONS,
    DEFAULT_RTTS,
    VIDEO_BITRATE,
    Cell,
    LossSpec,
    Protection,
    expand_matrix,
    parse_losses,
    parse_protections,
    parse_rtts,
)
from interlive.bench.loss_measure import (
    CountingImpairment,
    SeqLog,
    frame_loss,
    frozen_time,
    payload_classes,
    redirect_answer,
    snapshot_delta,
    stats_delta,
)
from interlive.bench.loss_page import ANSWER_JS, OFFER_JS, PAGE_HTML, PAGE_PATH, STATS_JS
from interlive.bench.loss_report import (
    CellResult,
    ChromiumResult,
    RunInfo,
    SdkResult,
    format_report,
    load_results,
    load_run_info,
    save_results,
    write_plot,
)
from interlive.bench.serverproc import free_tcp_port, launch_server, stop_server
from interlive.bench.system import Metrics, machine_info, system_cpu
from interlive.lab.impair import GilbertElliott, Impairment, ImpairmentConfig
from interlive.lab.proxy import ImpairmentProxy

__all__ = ["LossConfig", "main", "run_loss"]

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
)
ROOM: Final = "loss-bench"
STARTUP_TIMEOUT: Final = 30.0
SERVER_COUNTERS: Final = (
    "interlive_nacks_received_total",
    "interlive_retransmissions_sent_total",
    "interlive_red_packets_sent_total",
    "interlive_fec_packets_sent_total",
)


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class LossConfig:
    cells: tuple[Cell, ...]
    #: seconds measured per cell
    duration: float = 15.0
    #: seconds of loss before the window opens: the server adapts to the loss it measures
    #: from receiver reports, which Chromium sends for audio only every few seconds
    settle: float = 10.0
    #: seconds allowed for both viewers to decode after they are offered
    connect_timeout: float = 20.0
    chromium: bool = True
    sdk: bool = True
    seed: int = 1
    log_level: str = "info"
    verbose: bool = True
    #: called with each cell's result as soon as it is measured
    on_result: Callable[[CellResult], None] | None = field(default=None, compare=False)


def _log(config: LossConfig, text: str) -> None:
    if config.verbose:
        print(text, file=sys.stderr, flush=True)


# --- the server -----------------------------------------------------------------------------


class LossServer:
    """``interlive serve --loss-protection MODE`` on free ports, one media worker."""

    def __init__(self, directory: Path, protection: Protection, log_level: str) -> None:
        self.directory = directory
        self.protection = protection
        self.log_level = log_level
        self.secret = secrets.token_urlsafe(24)
        self.port = free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"server-{protection}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.media: tuple[str, int] | None = None

    def start(self) -> None:
        self.process = launch_server(
            port=self.port,
            data_dir=self.directory / f"data-{self.protection}",
            secret=self.secret,
            log_path=self.log_path,
            workers=1,
            log_level=self.log_level,
            extra_args=[
                "--loss-protection", self.protection,
                "--max-publish-bitrate", str(VIDEO_BITRATE),
            ],
        )  # fmt: skip

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise BenchError(f"interlive serve exited early\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(f"{self.base_url}/healthz") as response:
                    if response.status == 200:
                        found = re.search(
                            r"UDP port\(s\) (\d+), announcing (\S+)",
                            self.log_path.read_text(errors="replace"),
                        )
                        if found:
                            self.media = (found.group(2), int(found.group(1)))
                            return
            await asyncio.sleep(0.1)
        raise BenchError(
            f"the server was not ready within {STARTUP_TIMEOUT:.0f} s\n{self.log_tail()}"
        )

    def token(self, identity: str, role: str) -> str:
        return mint_token(self.secret, room=ROOM, identity=identity, role=role, ttl=3600)

    async def counters(self, http: aiohttp.ClientSession) -> dict[str, float | None]:
        async with http.get(f"{self.base_url}/metrics") as response:
            text = await response.text()
        metrics = Metrics.parse(text)
        return {
            name: metrics.total(name) if name in metrics.samples else None
            for name in SERVER_COUNTERS
        }

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)


# --- the viewers --------------------------------------------------------------------------------


def _impairment(cell: Cell, seed: str) -> tuple[Impairment, CountingImpairment]:
    """(up, down) for a cell's proxy: half the RTT each way; loss comes later, down only."""
    half = cell.rtt / 2
    up = Impairment(ImpairmentConfig(delay=half), random.Random(f"{seed}:up"))
    down = Impairment(ImpairmentConfig(delay=half), random.Random(f"{seed}:down"))
    return up, CountingImpairment(down)


def _lossy(cell: Cell) -> ImpairmentConfig:
    loss: LossSpec = cell.loss
    half = cell.rtt / 2
    if loss.burst is not None:
        return ImpairmentConfig(
            delay=half, gilbert_elliott=GilbertElliott.from_mean(loss.rate, loss.burst)
        )
    return ImpairmentConfig(delay=half, loss=loss.rate)


class Viewer:
    """One viewer's proxy; subclasses connect a client through it."""

    name = "viewer"

    def __init__(self, cell: Cell, target: tuple[str, int], seed: int) -> None:
        up, down = _impairment(cell, f"{seed}:{cell.loss.token()}:{cell.rtt_ms}:{self.name}")
        self.down = down
        self.proxy = ImpairmentProxy(("127.0.0.1", 0), target, up, down)
        self.target = target
        self.cell = cell

    def rewrite(self, answer: str) -> str:
        """The server's answer pointed at this viewer's proxy (its classes learnt)."""
        self.down.classes.update(payload_classes(answer))
        rewritten, origin = redirect_answer(answer, self.proxy.listen_address)
        if origin[1] != self.target[1]:
            raise BenchError(f"the answer's candidate {origin} is not the worker {self.target}")
        return rewritten

    def impair(self) -> None:
        self.down.inner.set_config(_lossy(self.cell))


class ChromiumViewer(Viewer):
    name = "chromium"

    def __init__(self, cell: Cell, target: tuple[str, int], seed: int, context: Any) -> None:
        super().__init__(cell, target, seed)
        self.context = context
        self.page: Any = None
        self.location: str | None = None
        self.token = ""

    async def connect(self, http: aiohttp.ClientSession, server: LossServer) -> None:
        page = await self.context.new_page()
        self.page = page

        async def serve_page(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html", body=PAGE_HTML)

        url = server.base_url + PAGE_PATH
        await page.route(url, serve_page)
        await page.goto(url)
        offer: str = await page.evaluate(OFFER_JS)
        self.token = server.token(f"chromium-{secrets.token_hex(3)}", "audience")
        whep = f"{server.base_url}/whep/{ROOM}"
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/sdp"}
        async with http.post(whep, data=offer.encode(), headers=headers) as response:
            body = await response.text()
            if response.status != 201:
                raise BenchError(f"WHEP POST -> {response.status}: {body[:300]}")
            self.location = str(response.url.join(URL(response.headers["Location"])))
        await page.evaluate(ANSWER_JS, self.rewrite(body))

    async def stats(self) -> dict[str, Any]:
        assert self.page is not None
        result: dict[str, Any] = await self.page.evaluate(STATS_JS)
        return result

    async def decoding(self) -> bool:
        s = await self.stats()
        video, audio = s.get("video") or {}, s.get("audio") or {}
        return bool(video.get("framesDecoded", 0) > 10 and audio.get("totalSamplesReceived", 0))

    async def close(self, http: aiohttp.ClientSession) -> None:
        if self.location is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                headers = {"Authorization": f"Bearer {self.token}"}
                async with http.delete(self.location, headers=headers) as response:
                    await response.read()
            self.location = None
        if self.page is not None:
            with contextlib.suppress(Exception):
                await self.page.close()
            self.page = None
        self.proxy.close()


class SdkViewer(Viewer):
    name = "sdk"

    def __init__(self, cell: Cell, target: tuple[str, int], seed: int) -> None:
        super().__init__(cell, target, seed)
        from interlive.client import WhepSubscriber

        self.subscriber = WhepSubscriber(kinds=("audio", "video"))
        self.frames: list[tuple[float, int | None]] = []
        self.audio_log = SeqLog()
        self.video_log = SeqLog()
        self._rtx_pts: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, server: LossServer) -> None:
        from interlive.client import attach_packet_tap

        loop = asyncio.get_running_loop()
        audio_rx, video_rx = self.subscriber.receivers

        def on_audio(packet: Any, arrival_ms: int) -> None:
            self.audio_log.add(packet.sequence_number, loop.time())

        def on_video(packet: Any, arrival_ms: int) -> None:
            if packet.payload_type in self._rtx_pts:
                if len(packet.payload) >= 2:
                    osn = int.from_bytes(packet.payload[:2], "big")
                    self.video_log.add_repair(osn, loop.time())
            else:
                self.video_log.add(packet.sequence_number, loop.time())

        attach_packet_tap(audio_rx, on_audio)
        attach_packet_tap(video_rx, on_video)

        def rewrite(answer: str) -> str:
            self._rtx_pts = {pt for pt, c in payload_classes(answer).items() if c == "rtx"}
            return self.rewrite(answer)

        token = server.token(f"sdk-{secrets.token_hex(3)}", "audience")
        await self.subscriber.subscribe(server.base_url, ROOM, token, rewrite_answer=rewrite)
        self._tasks.append(asyncio.create_task(self._read_video()))
        self._tasks.append(asyncio.create_task(self._drain("audio")))

    async def _read_video(self) -> None:
        import av

        from interlive.client import decode_frame_index

        loop = asyncio.get_running_loop()
        track = await self.subscriber.wait_track("video", timeout=30)
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.frames.append((loop.time(), decode_frame_index(frame)))

    async def _drain(self, kind: str) -> None:
        track = await self.subscriber.wait_track(kind, timeout=30)
        with contextlib.suppress(Exception):
            while True:
                await track.recv()

    def decoding(self) -> bool:
        return len(self.frames) > 10

    def result(self, start: float, end: float, published: int) -> SdkResult:
        # aiortc shows what libvpx makes of a frame whose reference was lost: only
        # pictures whose code reads back count as shown (see :mod:`loss_report`)
        times = [t for t, index in self.frames if t <= end and index is not None]
        count, frozen = frozen_time(times, start, end)
        inside = [(t, i) for t, i in self.frames if start < t <= end]
        return SdkResult(
            window=end - start,
            frames=len(inside),
            freeze_count=count,
            freeze_seconds=frozen,
            frame_loss=frame_loss(i for _, i in inside),
            video_packets=self.video_log.window(start, end, repair_grace=1.0),
            audio_packets=self.audio_log.window(start, end),
            published=published,
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.subscriber.close()
        self.proxy.close()


# --- the run ------------------------------------------------------------------------------------


async def _until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() >= deadline:
            raise BenchError(f"{what} within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def _run_cell(
    config: LossConfig,
    cell: Cell,
    server: LossServer,
    http: aiohttp.ClientSession,
    context: Any,
    frames_sent: Callable[[], int],
) -> CellResult:
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = CellResult(cell)
    assert server.media is not None
    chromium = ChromiumViewer(cell, server.media, config.seed, context) if config.chromium else None
    sdk = SdkViewer(cell, server.media, config.seed) if config.sdk else None
    try:
        for viewer in (chromium, sdk):
            if viewer is not None:
                await viewer.proxy.start()
        if chromium is not None:
            await chromium.connect(http, server)
        if sdk is not None:
            await sdk.connect(server)
        if chromium is not None:
            await _until(chromium.decoding, config.connect_timeout, "Chromium was not decoding")
        if sdk is not None:
            await _until(sdk.decoding, config.connect_timeout, "the SDK viewer was not decoding")
        for viewer in (chromium, sdk):
            if viewer is not None:
                viewer.impair()
        await asyncio.sleep(config.settle)

        stats0 = await chromium.stats() if chromium is not None else None
        wire0 = {v.name: v.down.snapshot() for v in (chromium, sdk) if v is not None}
        server0 = await server.counters(http)
        sent0 = frames_sent()
        busy0, total0 = system_cpu()
        t0 = loop.time()
        await asyncio.sleep(config.duration)
        stats1 = await chromium.stats() if chromium is not None else None
        t1 = loop.time()
        wire1 = {v.name: v.down.snapshot() for v in (chromium, sdk) if v is not None}
        server1 = await server.counters(http)
        sent1 = frames_sent()
        busy1, total1 = system_cpu()
        window = t1 - t0
        result.machine_busy = (busy1 - busy0) / max(1e-9, total1 - total0)

        result.publisher_fps = (sent1 - sent0) / window
        result.server = {
            name: None if server1[name] is None else (server1[name] or 0) - (server0[name] or 0)
            for name in server1
        }
        if chromium is not None and stats0 is not None and stats1 is not None:
            result.chromium = ChromiumResult(
                window=window,
                video=stats_delta(stats0.get("video") or {}, stats1.get("video") or {}),
                audio=stats_delta(stats0.get("audio") or {}, stats1.get("audio") or {}),
                wire=snapshot_delta(wire0["chromium"], wire1["chromium"]),
                pair=stats1.get("pair"),
                stall_start=stats0.get("sinceLastFrame") or 0.0,
                stall_end=stats1.get("sinceLastFrame") or 0.0,
                # only Chromium negotiates ulpfec: the server's FEC all went to it
                fec_sent=result.server.get("interlive_fec_packets_sent_total"),
                rtt=stats1.get("rtt"),
            )
        if sdk is not None:
            await asyncio.sleep(1.0)  # late retransmissions of the window's last packets
            sdk_result = sdk.result(t0, t1, sent1 - sent0)
            sdk_result.wire = snapshot_delta(wire0["sdk"], wire1["sdk"])
            result.sdk = sdk_result
    except Exception as exc:  # one failed cell must not end the matrix
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if chromium is not None:
            await chromium.close(http)
        if sdk is not None:
            await sdk.close()
    result.elapsed = loop.time() - began
    return result


def _summary(result: CellResult) -> str:
    parts = [result.cell.label()]
    ch = result.chromium
    if ch is not None:
        freeze = ch.freeze_fraction
        conceal = ch.concealment
        parts.append(
            f"Chromium: wire loss {100 * (ch.wire_video_loss or 0):.1f} %, "
            f"freeze {100 * (freeze or 0):.2f} % ({ch.freeze_count}), "
            f"fps {ch.fps or 0:.1f}, concealed {100 * (conceal or 0):.2f} %, "
            f"NACK {ch.video.get('nackCount', 0):.0f}, "
            f"RTX {ch.video.get('retransmittedPacketsReceived', 0):.0f}, "
            f"FEC sent {ch.fec_sent or 0:.0f}"
        )
    s = result.sdk
    if s is not None:
        parts.append(
            f"SDK: freeze {100 * (s.freeze_fraction or 0):.2f} % ({s.freeze_count}), "
            f"fps {s.fps or 0:.1f}, "
            f"frames missing {100 * (s.frames_missing or 0):.1f} %"
        )
    parts.append(f"{result.elapsed:.0f} s")
    if result.errors:
        parts.append("ERROR " + "; ".join(result.errors))
    return " | ".join(parts)


async def _run_protection(
    config: LossConfig,
    protection: Protection,
    cells: list[Cell],
    directory: Path,
    http: aiohttp.ClientSession,
    context: Any,
) -> list[CellResult]:
    from interlive.client import TestPatternVideoTrack, ToneAudioTrack, WhipPublisher

    server = LossServer(directory, protection, config.log_level)
    results: list[CellResult] = []
    video = TestPatternVideoTrack(640, 360, 30.0)
    audio = ToneAudioTrack(440.0)
    publisher = WhipPublisher()
    try:
        server.start()
        await server.wait_ready(http)
        _log(config, f"server up with --loss-protection {protection}: {server.base_url}")
        await publisher.publish(
            server.base_url,
            ROOM,
            server.token("publisher", "host"),
            audio=audio,
            video=video,
            video_codec="VP8",
        )
        await publisher.wait_connected(timeout=15)
        await asyncio.sleep(2.0)  # the encoder ramps up towards the REMB cap
        for cell in cells:
            result = await _run_cell(config, cell, server, http, context, lambda: video.frames_sent)
            _log(config, _summary(result))
            results.append(result)
            if config.on_result is not None:
                config.on_result(result)
    except BenchError as exc:
        for cell in cells[len(results) :]:
            results.append(CellResult(cell, errors=[f"{protection} server: {exc}"]))
    finally:
        with contextlib.suppress(Exception):
            await publisher.close()
        video.stop()
        audio.stop()
        server.stop()
    return results


async def _run(config: LossConfig) -> list[CellResult]:
    context: Any = None
    results: list[CellResult] = []
    with tempfile.TemporaryDirectory(prefix="interlive-bench-loss-") as tmp:
        directory = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            if config.chromium:
                try:
                    from playwright.async_api import async_playwright
                except ImportError as exc:
                    raise BenchError(
                        "the Chromium viewer needs playwright (pip install -e '.[dev]')"
                    ) from exc
                playwright = await stack.enter_async_context(async_playwright())
                context = await playwright.chromium.launch_persistent_context(
                    user_data_dir=str(directory / "chromium-profile"),
                    executable_path=CHROMIUM,
                    headless=True,
                    args=list(CHROMIUM_ARGS),
                )
                stack.push_async_callback(context.close)
            timeout = aiohttp.ClientTimeout(total=15)
            http = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
            for protection, group in itertools.groupby(config.cells, key=lambda c: c.protection):
                results += await _run_protection(
                    config, protection, list(group), directory, http, context
                )
    return results


def run_loss(config: LossConfig) -> list[CellResult]:
    """Run the cells (blocking) and return their results in order."""
    if config.chromium and not Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is missing: install Debian's chromium package")
    return asyncio.run(_run(config))


# --- the command --------------------------------------------------------------------------------

QUICK_LOSSES: Final = (LossSpec(0.20),)
QUICK_RTTS: Final = (100,)
QUICK_PROTECTIONS: Final[tuple[Protection, ...]] = ("none", "policy")
QUICK_DURATION: Final = 8.0


def _command_line(args: argparse.Namespace) -> str:
    parts = ["interlive bench loss"]
    if args.quick:
        parts.append("--quick")
    for name in ("loss", "rtt", "protection"):
        values = getattr(args, name)
        if values:
            parts.append(f"--{name} {','.join(values)}")
    if args.duration is not None:
        parts.append(f"--duration {args.duration:g}")
    if args.settle != 10.0:
        parts.append(f"--settle {args.settle:g}")
    if args.no_goal_cells:
        parts.append("--no-goal-cells")
    if args.viewers != "both":
        parts.append(f"--viewers {args.viewers}")
    if args.output:
        parts.append(f"--output {args.output}")
    if args.plot != "docs/loss.png":
        parts.append(f"--plot {args.plot or repr('')}")
    return " ".join(parts)


def _plot_reference(plot: Path, output: Path | None) -> str:
    """The plot's path as the markdown file should link it."""
    if output is None:
        return str(plot)
    try:
        return str(plot.resolve().relative_to(output.resolve().parent))
    except ValueError:
        return str(plot.resolve())


def main(args: argparse.Namespace) -> int:
    try:
        losses = parse_losses(args.loss) if args.loss else None
        rtts = parse_rtts(args.rtt) if args.rtt else None
        protections = parse_protections(args.protection) if args.protection else None
    except ValueError as exc:
        print(f"interlive bench loss: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        losses = losses or list(QUICK_LOSSES)
        rtts = rtts or list(QUICK_RTTS)
        protections = protections or list(QUICK_PROTECTIONS)
    duration = args.duration or (QUICK_DURATION if args.quick else 15.0)
    if duration <= 0 or args.settle < 0:
        print("interlive bench loss: --duration must be > 0, --settle >= 0", file=sys.stderr)
        return 2
    cells = expand_matrix(
        losses or list(DEFAULT_LOSSES),
        rtts or list(DEFAULT_RTTS),
        protections or list(DEFAULT_PROTECTIONS),
        goal_cells=not (args.no_goal_cells or args.quick),
    )
    started = datetime.datetime.now(datetime.UTC)
    info = RunInfo(
        command=_command_line(args),
        when=started.strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine_info().describe(),
        duration=duration,
    )
    if args.from_json:
        results = load_results(Path(args.from_json))
        info = load_run_info(Path(args.from_json)) or info
    else:
        json_path = Path(args.json) if args.json else None
        done: list[CellResult] = []

        def measured(result: CellResult) -> None:
            done.append(result)
            if json_path is not None:  # saved as it goes: a long run interrupted keeps its cells
                save_results(done, json_path, info)

        config = LossConfig(
            cells=tuple(cells),
            duration=duration,
            settle=args.settle,
            chromium=args.viewers in ("both", "chromium"),
            sdk=args.viewers in ("both", "sdk"),
            seed=args.seed,
            on_result=measured,
        )
        print(
            f"interlive bench loss: {len(cells)} cells of {duration:g} s "
            f"(+ {args.settle:g} s settle each)",
            file=sys.stderr,
        )
        try:
            results = run_loss(config)
        except BenchError as exc:
            print(f"interlive bench loss: {exc}", file=sys.stderr)
            return 1
        if json_path is not None:
            save_results(results, json_path, info)
    output = Path(args.output) if args.output else None
    plot_ref: str | None = None
    if args.plot:
        plot = Path(args.plot)
        write_plot(results, plot)
        plot_ref = _plot_reference(plot, output)
        print(f"plot written to {plot}", file=sys.stderr)
    report = format_report(
        results,
        command=info.command,
        when=info.when,
        machine=info.machine,
        duration=info.duration,
        plot=plot_ref,
    )
    print(report)
    if output is not None:
        from interlive.bench.fanout import append_report

        append_report(output, report)
        print(f"appended to {output}", file=sys.stderr)
    return 0
