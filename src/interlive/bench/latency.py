"""``interlive bench latency``: glass-to-glass latency of each way into and out of a room.

Every path publishes the SDK's test pattern (:func:`~interlive.client.media.render_test_pattern`),
whose pictures carry their frame index as a block code, and remembers when
each index was handed to the encoder; the receiving side decodes pictures,
reads the index back (:func:`~interlive.client.media.decode_frame_index`)
and takes the difference on the same monotonic clock.  Everything runs on
this machine, over loopback, against a real ``interlive serve`` (one media
worker).  The paths:

* ``webrtc-sdk``: SDK WHIP publisher (H.264) to an SDK WHEP viewer;
* ``webrtc-chromium``: the same publisher to Debian's Chromium (headless,
  Playwright), whose page reads the code from a canvas at each presented
  frame (``bench/latency_page.py``);
* ``rtmp-webrtc``: Debian's ffmpeg pushing RTMP (pictures rendered here and
  piped to it as raw video, x264 zerolatency) to an SDK WHEP viewer;
* ``rtmp-chromium``: the same push to Chromium (a mini-program or OBS co-host
  seen by a browser co-host);
* ``webrtc-rtmp``: SDK publisher to an RTMP play (PyAV's FFmpeg reading
  ``rtmp://.../live/{room}/{identity}``);
* ``webrtc-flv``: SDK publisher to HTTP-FLV (PyAV reading
  ``/live/{room}/{identity}.flv``);
* ``rtmp-flv``: ffmpeg's RTMP push to HTTP-FLV (an RTMP co-host watching another);
* ``nginx``: the seed's baseline, RTMP co-streaming through nginx-rtmp:
  ffmpeg pushes to nginx, PyAV plays from nginx;
* ``webrtc-hls``: SDK publisher (VP8: the mixer decodes nothing of an H.264
  publisher yet) through the bypass-live mixer (one input,
  grid, no labels, encoded at the publisher's own 640x360@30 so the picture
  and its code are not scaled; default 2 s keyframe interval = HLS segment)
  to interlive's HLS (PyAV's FFmpeg reading ``/live/{room}/index.m3u8`` from
  the newest segment, ``live_start_index=-1``: players that start three
  segments back, as the HLS spec asks, add about two segments more).

The readers decode as soon as bytes arrive (no player buffer), so the
numbers are the server path plus encoding and decoding; a real player adds
its buffer on top.  Results are appended to a markdown file with the command
(``--output``) and plotted (``--plot``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import av

from interlive.auth import mint_token
from interlive.bench.latency_report import (
    PathResult,
    RunInfo,
    load_results,
    plot,
    render_report,
    save_results,
)
from interlive.bench.nginx_rtmp import nginx_rtmp
from interlive.bench.serverproc import free_tcp_port, launch_server, stop_server, wait_healthy
from interlive.client.media import (
    TestPatternVideoTrack,
    ToneAudioTrack,
    decode_frame_index,
    render_test_pattern,
)
from interlive.lab.impair import ImpairmentConfig
from interlive.lab.tunlink import ImpairedNamespace, impaired_namespace

__all__ = ["PATHS", "main"]

log = logging.getLogger(__name__)

WIDTH: Final = 640
HEIGHT: Final = 360
FPS: Final = 30
#: media before the measurement window (start-up, the first keyframe, probing)
WARMUP: Final = 4.0
START_TIMEOUT: Final = 30.0

PATHS: Final = {
    "webrtc-sdk": ("WebRTC → WebRTC (SDK viewer)", "webrtc"),
    "webrtc-chromium": ("WebRTC → WebRTC (Chromium viewer)", "webrtc"),
    "rtmp-webrtc": ("RTMP push (ffmpeg) → WebRTC (SDK viewer)", "webrtc"),
    "rtmp-chromium": ("RTMP push (ffmpeg) → WebRTC (Chromium viewer)", "webrtc"),
    "webrtc-rtmp": ("WebRTC → RTMP play (FFmpeg reader)", "flv"),
    "webrtc-flv": ("WebRTC → HTTP-FLV (FFmpeg reader)", "flv"),
    "rtmp-flv": ("RTMP push (ffmpeg) → HTTP-FLV (FFmpeg reader)", "flv"),
    "nginx": ("baseline: RTMP push → nginx-rtmp → RTMP play", "flv"),
    "webrtc-hls": ("WebRTC → mixer → HLS (FFmpeg reader, newest segment)", "hls"),
}
#: paths listed but not measurable yet (key → why)
NOT_YET: Final[dict[str, str]] = {}
#: FFmpeg options of the readers: FLV/RTMP, and HLS from the live edge
FLV_OPTIONS: Final = {"flags": "low_delay", "rtmp_live": "live", "analyzeduration": "500000"}
HLS_OPTIONS: Final = {"flags": "low_delay", "live_start_index": "-1", "analyzeduration": "500000"}


# --- stamping the published pictures ---------------------------------------------------


@dataclass
class Stamps:
    """Frame index → the monotonic time it went to the encoder, and what came back."""

    sent: dict[int, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    unreadable: int = 0
    measure_from: float = float("inf")
    measure_until: float = float("inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, index: int) -> None:
        self.sent[index] = time.monotonic()

    def received(self, frame: av.VideoFrame, now: float) -> None:
        self.record(decode_frame_index(frame), now)

    def record(self, index: int | None, now: float) -> None:
        """A picture decoded or shown at ``now`` whose code read ``index`` (None: unreadable)."""
        sent = self.sent.get(index) if index is not None else None
        with self.lock:
            if not self.measure_from <= now <= self.measure_until:
                return
            if sent is None:
                self.unreadable += 1
                return
            self.latencies_ms.append(1000.0 * (now - sent))

    def frames_in_window(self) -> int:
        return sum(1 for t in self.sent.values() if self.measure_from <= t <= self.measure_until)


class StampedPattern(TestPatternVideoTrack):
    """The SDK's test pattern, noting when each picture goes to the encoder."""

    def __init__(self, stamps: Stamps, start_index: int) -> None:
        super().__init__(WIDTH, HEIGHT, FPS, start_index=start_index)
        self.stamps = stamps

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        self.stamps.mark(self.start_index + self.frames_sent - 1)
        return frame


# --- sources -------------------------------------------------------------------------------


class RawPush:
    """ffmpeg pushing RTMP from raw pictures written to its stdin at 30 fps, plus a tone."""

    def __init__(self, url: str, stamps: Stamps, start_index: int, log_path: Path) -> None:
        self.url = url
        self.stamps = stamps
        self.start_index = start_index
        self._stop = threading.Event()
        command = [
            "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostats",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
            "-i", "-",
            # no -re: ffmpeg reads the tone as the piped pictures need it, so the
            # muxer never holds pictures back waiting for audio to catch up
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-profile:v", "baseline", "-g", str(FPS), "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-f", "flv", url,
        ]  # fmt: skip
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._thread = threading.Thread(target=self._feed, name="raw-push", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        start = time.monotonic()
        n = 0
        try:
            while not self._stop.is_set():
                delay = start + n / FPS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                index = self.start_index + n
                picture = render_test_pattern(index, WIDTH, HEIGHT).to_ndarray()
                self.stamps.mark(index)
                stdin.write(picture.tobytes())
                stdin.flush()
                n += 1
        except (BrokenPipeError, ValueError, OSError):
            return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


# --- readers -------------------------------------------------------------------------------


class FfmpegReader:
    """PyAV (FFmpeg) reading and decoding a live URL in a thread, as fast as bytes arrive."""

    def __init__(self, url: str, stamps: Stamps, options: dict[str, str] | None = None) -> None:
        self.url = url
        self.stamps = stamps
        self.options = dict(FLV_OPTIONS if options is None else options)
        self.error: BaseException | None = None
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ffmpeg-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            container = av.open(
                self.url,
                # no "nobuffer": it would discard the keyframe read while probing, and
                # a WebRTC publisher sends the next one only when asked
                options=self.options,
                timeout=(START_TIMEOUT, 10.0),
            )
        except (av.FFmpegError, OSError) as exc:
            self.error = exc
            return
        try:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threads would hold pictures back
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                for frame in packet.decode():
                    self.frames += 1
                    self.stamps.received(frame, time.monotonic())
        except (av.FFmpegError, OSError, IndexError) as exc:
            if not self._stop.is_set():
                self.error = exc
        finally:
            container.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


async def sdk_viewer(
    base_url: str, room: str, token: str, identity: str, stamps: Stamps, until: float
) -> int:
    """Decode the participant's video over WHEP until ``until``; returns frames decoded."""
    from interlive.client import WhepSubscriber

    viewer = WhepSubscriber(kinds=("video",), video_codec="H264")
    frames = 0
    try:
        await viewer.subscribe(base_url, room, token, identity=identity)
        track = await viewer.wait_track("video", START_TIMEOUT)
        while time.monotonic() < until:
            async with asyncio.timeout(START_TIMEOUT):
                frame = await track.recv()
            if isinstance(frame, av.VideoFrame):
                frames += 1
                stamps.received(frame, time.monotonic())
    finally:
        await viewer.close()
    return frames


# --- the run -------------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    rtmp_port: int
    secret: str
    host: str = "127.0.0.1"
    #: runs a command where the server runs (``ip netns exec NAME`` behind an impaired link)
    wrapper: list[str] = field(default_factory=list)

    def token(self, room: str, identity: str, role: str = "host") -> str:
        return mint_token(self.secret, room=room, identity=identity, role=role)


@contextlib.contextmanager
def running_server(workdir: Path, link: ImpairedNamespace | None = None) -> Iterator[Server]:
    """``interlive serve`` on loopback, or inside ``link``'s namespace, reached through it."""
    secret = secrets.token_hex(24)
    http_port, rtmp_port = free_tcp_port(), free_tcp_port()
    host = link.address if link is not None else "127.0.0.1"
    wrapper = link.command() if link is not None else []
    process = launch_server(
        host=host,
        wrapper=wrapper,
        port=http_port,
        data_dir=workdir / "data",
        secret=secret,
        log_path=workdir / "server.log",
        workers=1,
        log_level=os.environ.get("INTERLIVE_BENCH_LOG", "warning"),
        extra_args=["--rtmp-port", str(rtmp_port)],
    )
    try:
        base = f"http://{host}:{http_port}"
        wait_healthy(base, process, workdir / "server.log", START_TIMEOUT)
        yield Server(base, rtmp_port, secret, host, wrapper)
    finally:
        stop_server(process)


class Runner:
    def __init__(self, server: Server, workdir: Path, duration: float) -> None:
        self.server = server
        self.workdir = workdir
        self.duration = duration

    def _window(self, stamps: Stamps) -> float:
        """Open the measurement window after the warm-up; returns when it closes."""
        now = time.monotonic()
        stamps.measure_from = now + WARMUP
        stamps.measure_until = now + WARMUP + self.duration
        return stamps.measure_until

    async def run(self, key: str, index: int) -> PathResult:
        label, family = PATHS[key]
        result = PathResult(key, label, family)
        if key in NOT_YET:
            result.note = NOT_YET[key]
            return result
        stamps = Stamps()
        start_index = (index + 1) * 1_000_000
        try:
            await getattr(self, "_" + key.replace("-", "_"))(stamps, start_index)
        except Exception as exc:  # a failed path is reported, the others still run
            log.exception("latency %s failed", key)
            result.note = f"failed: {type(exc).__name__}: {exc}"[:200]
        result.latencies_ms = stamps.latencies_ms
        result.frames_sent = stamps.frames_in_window()
        result.unreadable = stamps.unreadable
        return result

    # --- publishers -----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _sdk_publisher(
        self, room: str, identity: str, stamps: Stamps, start: int, video_codec: str = "H264"
    ) -> Any:
        from interlive.client import WhipPublisher

        video = StampedPattern(stamps, start)
        audio = ToneAudioTrack()
        publisher = WhipPublisher()
        try:
            await publisher.publish(
                self.server.base_url,
                room,
                self.server.token(room, identity),
                audio=audio,
                video=video,
                video_codec=video_codec,
            )
            await publisher.wait_connected(START_TIMEOUT)
            yield publisher
        finally:
            await publisher.close()
            video.stop()
            audio.stop()

    @contextlib.contextmanager
    def _raw_push(self, url: str, stamps: Stamps, start: int, name: str) -> Iterator[RawPush]:
        push = RawPush(url, stamps, start, self.workdir / f"{name}.log")
        try:
            yield push
        finally:
            push.stop()

    def _rtmp_url(self, room: str, identity: str, token: str) -> str:
        return f"rtmp://{self.server.host}:{self.server.rtmp_port}/live/{room}/{identity}?token={token}"

    async def _read(self, url: str, stamps: Stamps, options: dict[str, str] | None = None) -> None:
        until = self._window(stamps)
        reader = FfmpegReader(url, stamps, options)
        try:
            while time.monotonic() < until:
                await asyncio.sleep(0.2)
                if reader.error is not None:
                    raise RuntimeError(f"reading {url.split('?')[0]}: {reader.error}")
        finally:
            await asyncio.to_thread(reader.stop)

    # --- paths ----------------------------------------------------------------------------
    async def _webrtc_sdk(self, stamps: Stamps, start: int) -> None:
        room = "lat-webrtc"
        async with self._sdk_publisher(room, "cam", stamps, start):
            token = self.server.token(room, "viewer", "audience")
            await sdk_viewer(self.server.base_url, room, token, "cam", stamps, self._window(stamps))

    async def _webrtc_chromium(self, stamps: Stamps, start: int) -> None:
        room = "lat-chromium"
        async with self._sdk_publisher(room, "cam", stamps, start):
            await self._chromium_viewer(room, "cam", stamps)

    async def _rtmp_chromium(self, stamps: Stamps, start: int) -> None:
        room = "lat-rtmp-chromium"
        url = self._rtmp_url(room, "obs", self.server.token(room, "obs", "cohost"))
        with self._raw_push(url, stamps, start, "rtmp-chromium"):
            await self._wait_publishing(room, "obs")
            await self._chromium_viewer(room, "obs", stamps)

    async def _chromium_viewer(self, room: str, identity: str, stamps: Stamps) -> None:
        """Debian's Chromium plays ``identity`` over WHEP; each presented picture is a sample."""
        from playwright.async_api import async_playwright

        from interlive.bench.latency_page import (
            CHROMIUM,
            CHROMIUM_ARGS,
            DRAIN_JS,
            PAGE_HTML,
            PAGE_PATH,
            START_JS,
        )

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package")
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                user_data_dir=str(self.workdir / f"chromium-profile-{room}"),
                executable_path=CHROMIUM,
                headless=True,
                args=list(CHROMIUM_ARGS),
            )
            try:
                page = await context.new_page()
                url = self.server.base_url + PAGE_PATH

                async def serve_page(route: Any) -> None:
                    await route.fulfill(status=200, content_type="text/html", body=PAGE_HTML)

                await page.route(url, serve_page)
                await page.goto(url)
                token = self.server.token(room, "viewer", "audience")
                whep = f"{self.server.base_url}/whep/{room}/{identity}"
                await page.evaluate(START_JS, [whep, token])
                # the page stamps frames with the wall clock: map it to the monotonic one
                offset = time.time() - time.monotonic()
                until = self._window(stamps)
                state: dict[str, Any] = {}
                while time.monotonic() < until:
                    await asyncio.sleep(0.5)
                    state = await page.evaluate(DRAIN_JS)
                    for index, wall_ms in state["frames"]:
                        stamps.record(int(index), wall_ms / 1000 - offset)
                if not stamps.latencies_ms:
                    raise RuntimeError(f"Chromium showed no readable frame: {state}")
            finally:
                await context.close()

    async def _rtmp_webrtc(self, stamps: Stamps, start: int) -> None:
        room = "lat-rtmp-webrtc"
        url = self._rtmp_url(room, "obs", self.server.token(room, "obs", "cohost"))
        with self._raw_push(url, stamps, start, "rtmp-webrtc"):
            await self._wait_publishing(room, "obs")
            token = self.server.token(room, "viewer", "audience")
            await sdk_viewer(self.server.base_url, room, token, "obs", stamps, self._window(stamps))

    async def _webrtc_rtmp(self, stamps: Stamps, start: int) -> None:
        room = "lat-webrtc-rtmp"
        async with self._sdk_publisher(room, "cam", stamps, start):
            await self._wait_publishing(room, "cam")
            token = self.server.token(room, "viewer", "audience")
            await self._read(self._rtmp_url(room, "cam", token), stamps)

    async def _webrtc_flv(self, stamps: Stamps, start: int) -> None:
        room = "lat-webrtc-flv"
        async with self._sdk_publisher(room, "cam", stamps, start):
            await self._wait_publishing(room, "cam")
            token = self.server.token(room, "viewer", "audience")
            await self._read(f"{self.server.base_url}/live/{room}/cam.flv?token={token}", stamps)

    async def _rtmp_flv(self, stamps: Stamps, start: int) -> None:
        room = "lat-rtmp-flv"
        url = self._rtmp_url(room, "obs", self.server.token(room, "obs", "cohost"))
        with self._raw_push(url, stamps, start, "rtmp-flv"):
            await self._wait_publishing(room, "obs")
            token = self.server.token(room, "viewer", "audience")
            await self._read(f"{self.server.base_url}/live/{room}/obs.flv?token={token}", stamps)

    async def _webrtc_hls(self, stamps: Stamps, start: int) -> None:
        import aiohttp

        room = "lat-webrtc-hls"
        headers = {"Authorization": f"Bearer {self.server.token(room, 'bench', 'host')}"}
        job = {
            "outputs": [],
            # one input at its native size: no scaling, no label over the code
            "layout": {"type": "grid", "labels": False, "gap": 0},
            "encoding": {"width": WIDTH, "height": HEIGHT, "fps": FPS},
            "record": False,
        }
        live = f"{self.server.base_url}/api/rooms/{room}/live"
        playlist = f"{self.server.base_url}/live/{room}/index.m3u8"
        async with (
            # VP8: the mixer decodes no video from an H.264 publisher (packets
            # arrive, no frame is decoded, it keeps asking for keyframes)
            self._sdk_publisher(room, "cam", stamps, start, video_codec="VP8"),
            aiohttp.ClientSession() as http,
        ):
            await self._wait_publishing(room, "cam")
            async with http.post(live, json=job, headers=headers) as response:
                if response.status != 201:
                    raise RuntimeError(
                        f"starting the live job: {response.status} {await response.text()}"
                    )
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while True:  # the playlist lists a segment
                    async with http.get(playlist) as response:
                        if response.status == 200 and "#EXTINF" in await response.text():
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no HLS segment within {START_TIMEOUT:.0f} s")
                    await asyncio.sleep(0.2)
                await self._read(playlist, stamps, HLS_OPTIONS)
            finally:
                async with http.delete(live, headers=headers):
                    pass

    async def _nginx(self, stamps: Stamps, start: int) -> None:
        with (
            nginx_rtmp(host=self.server.host, wrapper=self.server.wrapper) as nginx,
            self._raw_push(nginx.url("cohost"), stamps, start, "nginx"),
        ):
            await asyncio.sleep(1.0)  # the push is up before the player asks for it
            await self._read(nginx.url("cohost"), stamps)

    async def _wait_publishing(self, room: str, identity: str) -> None:
        """Until the room lists the participant's tracks (REST)."""
        import aiohttp

        deadline = time.monotonic() + START_TIMEOUT
        headers = {"Authorization": f"Bearer {self.server.token(room, 'bench', 'host')}"}
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                async with http.get(
                    f"{self.server.base_url}/api/rooms/{room}", headers=headers
                ) as response:
                    if response.status == 200:
                        body = await response.json()
                        for p in body.get("participants", []):
                            if p.get("identity") == identity and p.get("tracks"):
                                return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{identity} did not publish in {room} within {START_TIMEOUT:.0f} s")


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def network_label(loss_percent: float, rtt_ms: float) -> str:
    """How the run's network is described in the report."""
    if loss_percent <= 0 and rtt_ms <= 0:
        return "loopback"
    return (
        f"lab link: {loss_percent:g} % random loss each way, {rtt_ms:g} ms RTT "
        "(every packet, UDP and TCP, through `interlive.lab.tunlink`)"
    )


@contextlib.contextmanager
def _network(loss_percent: float, rtt_ms: float) -> Iterator[ImpairedNamespace | None]:
    """Nothing on loopback; else the server side sits behind an impaired TUN link."""
    if loss_percent <= 0 and rtt_ms <= 0:
        yield None
        return
    one_way = ImpairmentConfig(loss=loss_percent / 100.0, delay=rtt_ms / 2000.0)
    # a subnet of its own, so runs side by side do not share addresses or routes
    subnet = f"10.203.{secrets.randbelow(256)}"
    with impaired_namespace(one_way, one_way, subnet=subnet) as link:
        yield link
    if link.stats is not None:
        print(
            f"latency: link to the server: {link.stats.to_namespace}\n"
            f"latency: link from the server: {link.stats.from_namespace}",
            file=sys.stderr,
        )


async def _run_all(
    keys: list[str], duration: float, loss_percent: float = 0.0, rtt_ms: float = 0.0
) -> list[PathResult]:
    with (
        tempfile.TemporaryDirectory(prefix="interlive-latency-") as tmp,
        _network(loss_percent, rtt_ms) as link,
    ):
        workdir = Path(tmp)
        with running_server(workdir, link) as server:
            runner = Runner(server, workdir, duration)
            results = []
            for i, key in enumerate(keys):
                print(f"latency: {key} ...", file=sys.stderr, flush=True)
                result = await runner.run(key, i)
                print(
                    f"latency: {key}: {len(result.latencies_ms)} samples, "
                    f"p50 {result.stat(50):.0f} ms, p95 {result.stat(95):.0f} ms"
                    + (f" ({result.note})" if result.note else ""),
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
            return results


def main(args: argparse.Namespace) -> int:
    if args.from_json:
        info, results = load_results(Path(args.from_json))
    else:
        keys = [k.strip() for k in (args.paths or ",".join(PATHS)).split(",") if k.strip()]
        unknown = [k for k in keys if k not in PATHS]
        if unknown:
            print(f"interlive bench latency: unknown paths {unknown}", file=sys.stderr)
            return 2
        if args.loss < 0 or args.loss >= 100 or args.rtt < 0:
            print("interlive bench latency: --loss in [0, 100), --rtt >= 0", file=sys.stderr)
            return 2
        logging.basicConfig(level=logging.WARNING)
        results = asyncio.run(_run_all(keys, args.duration, args.loss, args.rtt))
        info = RunInfo(
            network=network_label(args.loss, args.rtt),
            command="interlive bench latency " + " ".join(shlex.quote(a) for a in sys.argv[3:]),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            commit=_commit(),
            duration_s=args.duration,
            machine=_machine(),
        )
        if args.json:
            save_results(Path(args.json), info, results)
    report = render_report(info, results)
    print(report)
    if args.output:
        with Path(args.output).open("a") as out:
            out.write("\n" + report)
    if args.plot:
        plot(results, Path(args.plot), info.network)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0 if all(r.note is None or r.key in NOT_YET for r in results) else 1
