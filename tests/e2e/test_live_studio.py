"""Going live from the studio page: Chromium's host and an aiortc co-host mixed into nginx-rtmp.

The host's studio (``studio.html``) runs in headless Chromium with its fake
camera and microphone; a co-host publishes from aiortc over WHIP (its event
loop in a thread of its own, beside Playwright's synchronous driver).  The
host then drives the go-live panel the way a person would: types the nginx
URL into *Destinations*, picks a layout, presses **Start live**, later picks
another layout and presses **Apply layout**, and finally **Stop**.

What reaches nginx is read back with Debian's ffprobe/ffmpeg, not taken from
the job's word: H.264 + AAC at the job's size and rate; pictures where the
host's tile is Chromium's fake camera (green, moving, not the grey
placeholder) and the co-host's the aiortc test pattern; sound; a player that
stays connected across the layout change, receiving video and audio without
a stall; the picture rearranged for the new layout, and again when the
co-host leaves.  The job's ``GET`` says both inputs decode, the push never
reconnects while nginx is up, the co-host leaving drops the mix to one input,
a CDN outage (nginx killed, then restarted) is ridden out with a reconnect,
and **Stop** ends the job.  Run with ``-s`` to see the measured values.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import numpy as np
import pytest
from playwright.sync_api import Page

from interlive.client import TestPatternVideoTrack, ToneAudioTrack, WhipPublisher
from interlive.mix.layout import GridLayout, PipLayout, Rect, compute_layout, fit_rect
from tests.helpers.browser import ConsoleLog, chromium, open_page, peer_summary, poll
from tests.helpers.nginx import NginxRtmp, nginx_rtmp
from tests.helpers.rtmp import require_ffmpeg
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser

ROOM = "show"
HOST, COHOST = "alice", "bob"
# The panel sends no encoding: the job runs at the documented defaults.
WIDTH, HEIGHT, FPS = 1280, 720, 30
MEDIA_TIMEOUT = 60.0  # two cores shared with other jobs: generous, but polled
MIN_FRAMES = 30  # decoded frames per input that count as "decoding"
PROBE_SECONDS = 12  # how much of the nginx stream the player reads (from its first packet)
GRAB_FRAMES = 3  # pictures decoded from nginx, every 15th frame (0.5 s apart at 30 fps)
# What a player of nginx must get.  The mixer's output clock skips frames rather
# than fall behind when the machine is busy, and counts them (docs/bypass-live.md):
# a gap the player sees must be one of those, never one made by the push or nginx.
# On a quiet machine the player gets 30 fps with no step over 34 ms (video) or 22 ms
# (audio); with other benchmarks running (load 6-9 on the 2 cores) 8-28 fps and
# steps up to 1.3 s were measured, every one of them skipped and counted by the mixer.
VIDEO_STEP = 1 / FPS
AUDIO_STEP = 1024 / 48_000  # one AAC frame
MAX_STALL = 2.0  # s: the mix never stops
UNACCOUNTED = 3  # frames of slack for rounding at the window's edges
PLACEHOLDER_RGB = (40, 40, 48)  # compose.py's placeholder tile
# What the grabbed pictures must show (luma and RGB levels, 0-255).
MIN_MOTION = 2.0  # a live tile changes over 1 s; a frozen or placeholder one does not
MIN_SPREAD = 20.0  # the co-host's test pattern is stripes, not one colour
MIN_FROM_PLACEHOLDER = 20.0
MIN_GREEN = 40.0  # Chromium's fake camera: a pacman on green
MAX_BLACK = 10.0  # the layout's background
MIN_AUDIO_RMS = 300.0  # s16: a tone, not silence

T = TypeVar("T")


# --- the co-host: aiortc on an event loop of its own ------------------------------------


class LoopThread:
    """An asyncio loop running in a daemon thread; ``run`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiortc", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = MEDIA_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.close()


async def publish_cohost(server: RunningServer) -> WhipPublisher:
    """A co-host on stage over WHIP: the moving test pattern and a 660 Hz tone."""
    publisher = WhipPublisher()
    try:
        await publisher.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, COHOST, "cohost"),
            audio=ToneAudioTrack(660.0),
            video=TestPatternVideoTrack(),
        )
        await publisher.wait_connected(timeout=MEDIA_TIMEOUT)
    except BaseException:
        await publisher.close()
        raise
    return publisher


# --- the job, as its REST API reports it -------------------------------------------------


def live_status(server: RunningServer, token: str) -> tuple[int, dict[str, Any] | None]:
    """``GET /api/rooms/{room}/live`` with the host's token: (status, body)."""
    request = urllib.request.Request(
        server.url(f"/api/rooms/{ROOM}/live"), headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return response.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, None


def decoded(job: dict[str, Any] | None) -> dict[str, int]:
    """frames_decoded per input identity."""
    if job is None:
        return {}
    return {i["identity"]: i["frames_decoded"] for i in job["inputs"]}


def brief(value: tuple[int, dict[str, Any] | None]) -> str:
    status, job = value
    if job is None:
        return f"HTTP {status}"
    keep = ("state", "video_frames", "dropped_frames", "layout", "outputs", "inputs")
    return json.dumps({k: job.get(k) for k in keep})


def output(job: dict[str, Any] | None) -> dict[str, Any]:
    assert job is not None and len(job["outputs"]) == 1, job
    out: dict[str, Any] = job["outputs"][0]
    return out


# --- what nginx relays, read back with Debian's ffprobe and ffmpeg ------------------------


def ffprobe_streams(url: str) -> dict[str, dict[str, Any]]:
    """The streams of ``url`` by codec type."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "15000000", "-show_streams", "-of", "json", url],
        capture_output=True,
        timeout=MEDIA_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"ffprobe {url}: {result.stderr.decode(errors='replace')}"
    return {s["codec_type"]: s for s in json.loads(result.stdout)["streams"]}


@dataclass(frozen=True)
class Timing:
    """The timestamps (dts, s) of one stream as a player received them."""

    count: int
    span: float  # from the first to the last timestamp
    max_gap: float  # the longest step between successive timestamps
    worst_at: float  # where that step starts
    monotonic: bool
    missing: int  # frames absent between the first and the last, for the given frame step

    @property
    def rate(self) -> float:
        return (self.count - 1) / self.span if self.span > 0 else 0.0

    @classmethod
    def of(cls, times: list[float], step: float) -> Timing:
        gaps = [(b - a, a) for a, b in itertools.pairwise(times)]
        worst = max(gaps, default=(0.0, 0.0))
        return cls(
            count=len(times),
            span=times[-1] - times[0] if times else 0.0,
            max_gap=worst[0],
            worst_at=worst[1],
            monotonic=all(g >= 0 for g, _ in gaps),
            missing=sum(max(0, round(g / step) - 1) for g, _ in gaps),
        )


class PacketReader:
    """A player of ``url``: ffmpeg copying ``seconds`` of it to a per-packet log (framecrc).

    Each packet's line (stream, dts, pts, duration, size) is flushed as it
    arrives, so the test can tell when the player is receiving, act, and then
    read the timing of everything the player got across that moment.
    """

    def __init__(self, url: str, log: Path, seconds: int) -> None:
        self.log = log
        command = [
            require_ffmpeg(), "-v", "error", "-y", "-rw_timeout", "15000000", "-i", url,
            "-t", str(seconds), "-c", "copy", "-flush_packets", "1", "-f", "framecrc", str(log),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.received: dict[str, list[float]] = {}

    def times(self) -> dict[str, list[float]]:
        """The dts (s) of the packets received so far, per media type."""
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return {}
        lines = text[: text.rfind("\n") + 1].splitlines()  # whole lines only
        kinds: dict[str, str] = {}
        dts: dict[str, list[float]] = {}
        for line in lines:
            if line.startswith("#media_type"):
                index, kind = line.removeprefix("#media_type").split(":")
                kinds[index.strip()] = kind.strip()
            elif line[:1].isdigit():
                fields = [f.strip() for f in line.split(",")]
                dts.setdefault(kinds[fields[0]], []).append(int(fields[1]) / 1000)  # FLV: ms
        return dts

    def finish(self) -> dict[str, Timing]:
        """The timing per media type once the player has read its window.

        A player that joins mid-stream may get its first audio packet with a
        stale timestamp (seen: 192 ms before the next) and its video from the
        next keyframe: each stream's timing starts at its second packet.
        """
        try:
            _, err = self.process.communicate(timeout=MEDIA_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        assert self.process.returncode == 0, f"player: {err.decode(errors='replace')}"
        self.received = {kind: times[1:] for kind, times in self.times().items()}
        return {kind: self.window(kind, 0.0, float("inf")) for kind in self.received}

    def window(self, kind: str, start: float, end: float) -> Timing:
        """The timing of ``kind`` between ``start`` and ``end`` s (after :meth:`finish`)."""
        step = VIDEO_STEP if kind == "video" else AUDIO_STEP
        return Timing.of([t for t in self.received[kind] if start <= t <= end], step)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@dataclass(frozen=True)
class Grab:
    frames: np.ndarray  # (n, HEIGHT, WIDTH, 3) uint8 RGB, 15 frames apart
    audio: np.ndarray  # mono s16 at 48 kHz


def grab(url: str, tmp: Path, name: str) -> Grab:
    """Decode ``GRAB_FRAMES`` pictures 15 frames apart and 2 s of sound from ``url``.

    The pictures are picked by frame count, not by time: ``fps=2`` would repeat
    the first picture to fill the time before the player's first keyframe.
    """
    video, audio = tmp / f"{name}.rgb", tmp / f"{name}.s16"
    command = [
        require_ffmpeg(), "-v", "error", "-y", "-rw_timeout", "15000000", "-i", url,
        "-map", "0:v:0", "-vf", r"select=not(mod(n\,15))", "-fps_mode", "passthrough",
        "-frames:v", str(GRAB_FRAMES),
        "-f", "rawvideo", "-pix_fmt", "rgb24", str(video),
        "-map", "0:a:0", "-t", "2", "-ac", "1", "-ar", "48000", "-f", "s16le", str(audio),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        timeout=MEDIA_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"ffmpeg {url}: {result.stderr.decode(errors='replace')}"
    frames = np.frombuffer(video.read_bytes(), np.uint8)
    assert frames.size == GRAB_FRAMES * HEIGHT * WIDTH * 3, (frames.size, "decoded bytes")
    for k, frame in enumerate(frames.reshape(GRAB_FRAMES, HEIGHT, WIDTH, 3)):
        _write_ppm(tmp / f"{name}-{k}.ppm", frame)  # for a person looking at a failure
    return Grab(
        frames.reshape(GRAB_FRAMES, HEIGHT, WIDTH, 3),
        np.frombuffer(audio.read_bytes(), np.int16),
    )


def _write_ppm(path: Path, frame: np.ndarray) -> None:
    height, width, _ = frame.shape
    path.write_bytes(f"P6 {width} {height} 255\n".encode() + frame.tobytes())


def crop(frames: np.ndarray, rect: Rect, inset: int = 8) -> np.ndarray:
    """The pixels of ``rect`` (all frames), ``inset`` pixels in from each edge."""
    y0, y1 = rect.y + inset, rect.bottom - inset
    x0, x1 = rect.x + inset, rect.right - inset
    return frames[:, y0:y1, x0:x1].astype(np.float64)


def luma(frames: np.ndarray) -> np.ndarray:
    weights = np.asarray([0.299, 0.587, 0.114])
    result: np.ndarray = frames @ weights
    return result


@dataclass(frozen=True)
class TileLook:
    """How the pixels of one rectangle look over the grabbed frames."""

    mean: float  # mean luma
    spread: float  # standard deviation of the luma within the first frame
    motion: float  # mean absolute luma change from the first to the last frame (1 s)
    from_placeholder: float  # mean absolute distance from the placeholder colour
    green: float  # mean green minus the larger of mean red and mean blue

    @classmethod
    def of(cls, frames: np.ndarray, rect: Rect) -> TileLook:
        tile = crop(frames, rect)
        y = luma(tile)
        r, g, b = (float(tile[..., c].mean()) for c in range(3))
        return cls(
            mean=float(y.mean()),
            spread=float(y[0].std()),
            motion=float(np.abs(y[-1] - y[0]).mean()),
            from_placeholder=float(np.abs(tile - np.asarray(PLACEHOLDER_RGB, float)).mean()),
            green=g - max(r, b),
        )


def picture_rect(layout: Any, inputs: list[str], who: str, source: tuple[int, int]) -> Rect:
    """Where ``who``'s picture (``source`` w x h, fit contain) lands in the mix."""
    regions = compute_layout(layout, (WIDTH, HEIGHT), inputs)
    cell = next(r.cell for r in regions if r.input_id == who)
    return fit_rect(cell, *source).dest


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


# --- the studio page ------------------------------------------------------------------------


def page_state(page: Page) -> str:
    state: str = page.evaluate("window.interlive.state")
    return state


def click_live(page: Page, selector: str, method: str) -> int:
    """Click a go-live control; the status of the ``method`` call it makes to the job."""
    with page.expect_response(
        lambda r: r.request.method == method and r.url.endswith(f"/api/rooms/{ROOM}/live"),
        timeout=MEDIA_TIMEOUT * 1000,
    ) as response:
        page.click(selector)
    status: int = response.value.status
    return status


def sent_video_size(page: Page) -> tuple[int, int]:
    out = peer_summary(page)["outbound"].get("video") or {}
    return int(out.get("frameWidth") or 0), int(out.get("frameHeight") or 0)


def page_errors(console: ConsoleLog) -> list[str]:
    return [e for e in console.errors if e.startswith("pageerror")]


# --- the test ---------------------------------------------------------------------------------


def test_host_goes_live_from_the_studio_to_nginx(server: RunningServer, tmp_path: Path) -> None:
    token = server.token(ROOM, HOST, "host")
    measured: dict[str, Any] = {}
    (tmp_path / "nginx").mkdir()
    with (
        nginx_rtmp(tmp_path / "nginx") as nginx,
        loop_thread() as aio,
        chromium() as context,
    ):
        push = nginx.url("mix")
        studio, console = open_page(
            context, server.url(f"/static/studio.html?{urlencode({'token': token})}")
        )
        studio.set_viewport_size({"width": 1280, "height": 900})
        poll(lambda: page_state(studio), lambda s: s == "on stage", timeout=MEDIA_TIMEOUT,
             what="the host's studio publishing")  # fmt: skip
        cohost = aio.run(publish_cohost(server))
        try:
            _run_show(server, token, nginx, push, studio, console, cohost, aio, tmp_path, measured)
        finally:
            aio.run(cohost.close())
    print(f"measured: {json.dumps(measured, sort_keys=True)}")


def _run_show(
    server: RunningServer,
    token: str,
    nginx: NginxRtmp,
    push: str,
    studio: Page,
    console: ConsoleLog,
    cohost: WhipPublisher,
    aio: LoopThread,
    tmp_path: Path,
    measured: dict[str, Any],
) -> None:
    status_text = studio.locator("#live-status")
    poll(status_text.inner_text, lambda t: t == "not live", timeout=MEDIA_TIMEOUT,
         what="the go-live panel reading the job")  # fmt: skip
    # both on stage before going live: the host's page decodes the co-host
    poll(
        lambda: (peer_summary(studio)["inbound"].get("video") or {}).get("framesDecoded") or 0,
        lambda n: n >= MIN_FRAMES,
        timeout=MEDIA_TIMEOUT,
        what="the studio decoding the co-host",
    )

    # 1. go live from the panel: destination, layout, Start live
    studio.fill("#destinations", push)
    studio.select_option("#layout", "grid")
    assert click_live(studio, "#live-start", "POST") == 201
    first = poll(
        lambda: live_status(server, token),
        lambda v: (
            v[0] == 200
            and output(v[1])["state"] == "live"
            and sorted(decoded(v[1])) == sorted([HOST, COHOST])
            and min(decoded(v[1]).values()) >= MIN_FRAMES
        ),
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the push live with both inputs decoding",
    )[1]
    assert first["layout"] == "grid" and output(first)["url"] == push, brief((200, first))
    poll(status_text.inner_text, lambda t: t.startswith("running") and "rtmp0: live" in t,
         timeout=MEDIA_TIMEOUT, what="the panel showing the push live")  # fmt: skip
    assert studio.locator("#live-badge").is_visible()
    # the panel's live preview of the mix: GET /live/{room}/preview.jpg, once a second
    preview = studio.locator("#live-preview")
    first_src = poll(
        lambda: studio.evaluate(
            "(() => { const i = document.getElementById('live-preview');"
            " return i.naturalWidth === 480 && !i.hidden ? i.currentSrc : null; })()"
        ),
        lambda src: bool(src),
        timeout=MEDIA_TIMEOUT,
        what="the mix's preview in the go-live panel",
    )
    assert preview.is_visible() and "/preview.jpg" in first_src
    poll(lambda: preview.evaluate("i => i.currentSrc"), lambda src: src != first_src,
         timeout=MEDIA_TIMEOUT, what="the preview refreshing")  # fmt: skip
    inputs = [i["identity"] for i in first["inputs"]]  # the mix's display order
    assert inputs == [HOST, COHOST], inputs  # in the order they joined

    # both inputs keep decoding, the host's Chromium included
    before = decoded(first)
    poll(
        lambda: live_status(server, token),
        lambda v: all(decoded(v[1]).get(who, 0) >= before[who] + MIN_FRAMES for who in before),
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="both inputs' frames_decoded growing",
    )

    # 2. what nginx relays: H.264 + AAC at the job's size and rate
    streams = ffprobe_streams(push)
    video, audio = streams["video"], streams["audio"]
    assert video["codec_name"] == "h264", video
    assert (video["width"], video["height"]) == (WIDTH, HEIGHT), video
    assert video["r_frame_rate"] == f"{FPS}/1", video
    assert audio["codec_name"] == "aac", audio
    assert int(audio["sample_rate"]) == 48000, audio

    # the host's tile is its camera, live: not the grey placeholder, moving.  A tile
    # may hold its last clean frame for a while after a loss (the clear-frame gate
    # waits for a keyframe), so pictures are grabbed until both tiles move.
    source = sent_video_size(studio)
    assert source[0] > 0 and source[1] > 0, source
    host_rect = picture_rect(GridLayout(), inputs, HOST, source)
    cohost_rect = picture_rect(GridLayout(), inputs, COHOST, (640, 360))
    grabs: list[Grab] = []
    tries: list[tuple[float, float, dict[str, str]]] = []

    def look() -> tuple[Grab, TileLook, TileLook, str]:
        picture = grab(push, tmp_path, f"grid{len(grabs)}")
        grabs.append(picture)
        job = live_status(server, token)[1] or {"inputs": []}
        displays = {i["identity"]: i["display"] for i in job["inputs"]}
        host_look = TileLook.of(picture.frames, host_rect)
        cohost_look = TileLook.of(picture.frames, cohost_rect)
        tries.append((round(host_look.motion, 1), round(cohost_look.motion, 1), displays))
        return picture, host_look, cohost_look, str(displays)

    grid, host_look, cohost_look, _ = poll(
        look,
        lambda v: min(v[1].motion, v[2].motion) >= MIN_MOTION,
        timeout=MEDIA_TIMEOUT,
        interval=0,
        describe=lambda v: f"host {v[1]}, co-host {v[2]}, inputs' display {v[3]}",
        what="both tiles of the mix moving",
    )
    measured["grid_grabs"] = tries  # (host motion, co-host motion, displays) per grab
    measured["grid_host_tile"] = vars(host_look)
    measured["grid_cohost_tile"] = vars(cohost_look)
    measured["grid_audio_rms"] = rms(grid.audio)
    print(f"grid tiles: host {host_look} co-host {cohost_look} audio rms {rms(grid.audio):.0f}")
    assert host_look.green >= MIN_GREEN, ("the host's tile is not its camera", host_look)
    assert host_look.from_placeholder >= MIN_FROM_PLACEHOLDER, host_look
    assert host_look.motion >= MIN_MOTION, ("the host's tile is not moving", host_look)
    assert cohost_look.spread >= MIN_SPREAD, ("the co-host's tile is flat", cohost_look)
    assert cohost_look.motion >= MIN_MOTION, ("the co-host's tile is not moving", cohost_look)
    assert cohost_look.green < MIN_GREEN, ("the co-host's tile shows the host", cohost_look)
    assert rms(grid.audio) >= MIN_AUDIO_RMS, rms(grid.audio)

    # 3. the layout changes from the page while a player of nginx has video
    before_player = live_status(server, token)[1]
    assert before_player is not None
    player = PacketReader(push, tmp_path / "player.framecrc", PROBE_SECONDS)
    try:
        poll(
            lambda: len(player.times().get("video", [])),
            lambda n: n > FPS,
            timeout=MEDIA_TIMEOUT,
            what="a player of the nginx stream receiving video",
        )
    except BaseException:
        player.stop()
        raise
    change_at = player.times()["video"][-1]
    studio.select_option("#layout", "pip")
    assert click_live(studio, "#live-apply", "PATCH") == 200
    changed = poll(
        lambda: live_status(server, token),
        lambda v: v[1] is not None and v[1]["layout"] == "pip",
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the job on the pip layout",
    )[1]
    timing = player.finish()
    after_window = live_status(server, token)[1]
    assert after_window is not None
    measured["probe"] = {kind: {**vars(t), "rate": t.rate} for kind, t in timing.items()}
    measured["probe_change_at"] = change_at
    measured["max_gap_around_change"] = {
        kind: player.window(kind, change_at - 0.5, change_at + 2.0).max_gap
        for kind in ("video", "audio")
    }
    measured["inputs_after_change"] = after_window["inputs"]
    counted = {
        key: after_window[key] - before_player[key]
        for key in ("video_frames", "dropped_frames", "late_audio_frames")
    }
    counted["dropped_packets"] = (
        output(after_window)["dropped_packets"] - output(before_player)["dropped_packets"]
    )
    measured["window_counters"] = counted
    print(f"packets across the layout change at {change_at} s: {measured}")
    video_t, audio_t = timing["video"], timing["audio"]
    assert video_t.monotonic and audio_t.monotonic, timing
    assert video_t.span >= PROBE_SECONDS - 4, timing  # video starts at a keyframe
    assert audio_t.span >= PROBE_SECONDS - 1, timing
    assert video_t.max_gap <= MAX_STALL and audio_t.max_gap <= MAX_STALL, timing
    # every frame the player missed is one the mixer skipped (and counted)
    lost = counted["dropped_packets"] + UNACCOUNTED
    assert video_t.missing <= counted["dropped_frames"] + lost, (timing, counted)
    assert audio_t.missing <= counted["late_audio_frames"] + lost, (timing, counted)
    after = poll(
        lambda: live_status(server, token),
        lambda v: v[1] is not None and v[1]["video_frames"] > after_window["video_frames"] + FPS,
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the mix going on after the layout change",
    )[1]
    assert output(after)["state"] == "live" and output(after)["reconnects"] == 0, output(after)
    assert output(changed)["reconnects"] == 0, output(changed)

    # the picture is rearranged: in pip the host fills the canvas where grid had bars
    pip = grab(push, tmp_path, "pip")
    host_pip = picture_rect(PipLayout(), inputs, HOST, source)
    bar = Rect(host_pip.x, 0, host_pip.w, host_rect.y)  # above the host's grid tile
    assert bar.h >= 32, (bar, host_rect)
    bar_grid, bar_pip = TileLook.of(grid.frames, bar), TileLook.of(pip.frames, bar)
    measured["bar_grid"], measured["bar_pip"] = vars(bar_grid), vars(bar_pip)
    print(f"band above the grid tiles: grid {bar_grid} pip {bar_pip}")
    assert bar_grid.mean <= MAX_BLACK and bar_grid.spread <= MAX_BLACK, bar_grid
    assert bar_pip.green >= MIN_GREEN, ("pip: the host's camera does not fill the canvas", bar_pip)
    inset = picture_rect(PipLayout(), inputs, COHOST, (640, 360))
    inset_pip = TileLook.of(pip.frames, inset)
    assert inset_pip.green < MIN_GREEN and inset_pip.spread >= MIN_SPREAD, inset_pip
    assert inset_pip.motion >= MIN_MOTION, ("the co-host's inset is not moving", inset_pip)

    # 4. the co-host leaves: the mix goes on with the host alone
    frames_before = after["video_frames"]
    aio.run(cohost.close())
    alone = poll(
        lambda: live_status(server, token),
        lambda v: (
            v[1] is not None
            and [i["identity"] for i in v[1]["inputs"]] == [HOST]
            and v[1]["video_frames"] > frames_before + FPS
        ),
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the mix going on with the host alone",
    )[1]
    host_frames = decoded(alone)[HOST]
    alone = poll(
        lambda: live_status(server, token),
        lambda v: decoded(v[1]).get(HOST, 0) >= host_frames + MIN_FRAMES,
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the host's input still decoding",
    )[1]
    assert output(alone)["state"] == "live" and output(alone)["reconnects"] == 0, output(alone)
    # the stream reflows: the host's camera where the co-host's inset was
    inset_alone = TileLook.of(grab(push, tmp_path, "alone").frames, inset)
    measured["inset_pip"], measured["inset_alone"] = vars(inset_pip), vars(inset_alone)
    assert inset_alone.green >= MIN_GREEN, ("the co-host's inset is still drawn", inset_alone)

    # 5. a CDN outage: nginx killed, then back; the push reconnects by itself
    nginx.stop()
    poll(status_text.inner_text, lambda t: "rtmp0: reconnecting" in t, timeout=MEDIA_TIMEOUT,
         what="the panel showing the push reconnecting")  # fmt: skip
    nginx.start()
    back = poll(
        lambda: live_status(server, token),
        lambda v: (
            v[1] is not None and output(v[1])["state"] == "live" and output(v[1])["reconnects"] >= 1
        ),
        timeout=MEDIA_TIMEOUT,
        describe=brief,
        what="the push live again after the outage",
    )[1]
    measured["reconnects"] = output(back)["reconnects"]
    poll(status_text.inner_text, lambda t: "rtmp0: live" in t, timeout=MEDIA_TIMEOUT,
         what="the panel showing the push live again")  # fmt: skip
    streams = ffprobe_streams(push)
    assert (streams["video"]["width"], streams["video"]["height"]) == (WIDTH, HEIGHT)

    # 6. Stop from the page: the job ends
    assert click_live(studio, "#live-stop", "DELETE") == 204
    poll(status_text.inner_text, lambda t: t == "not live", timeout=MEDIA_TIMEOUT,
         what="the panel showing not live")  # fmt: skip
    assert live_status(server, token)[0] == 404
    assert studio.locator("#live-badge").is_hidden()
    assert preview.is_hidden()
    assert page_errors(console) == []
