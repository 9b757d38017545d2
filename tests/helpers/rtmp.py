"""RTMP publishing from Debian's ffmpeg, and an aiortc viewer that takes libx264's High profile.

``ffmpeg_publisher()`` runs the command a user would (``docs/rtmp.md``) in
its own process group and stops it with ``q`` on stdin (ffmpeg then
unpublishes cleanly), SIGKILL if it lingers.  ``aiortc_accepts_h264_high()``
makes aiortc offer H.264 High next to its Constrained Baseline/Baseline
entries for the duration of a test: aiortc 1.16's FFmpeg decoder decodes
High, only its codec list leaves it out, and interlive forwards H.264 without
transcoding, so a viewer must offer the profile the publisher sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiortc import codecs as aiortc_codecs
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from interlive.bench.serverproc import free_tcp_port

__all__ = [
    "FfmpegPublisher",
    "FfprobeError",
    "aiortc_accepts_h264_high",
    "ffmpeg_publisher",
    "ffprobe",
    "publish_command",
    "require_ffmpeg",
    "require_ffprobe",
    "rtmp_server_args",
    "streams_by_type",
]


class FfprobeError(AssertionError):
    """ffprobe could not read the URL; the message is its own error output."""


def require_ffprobe() -> str:
    """The ffprobe binary; fails the test (never skips) when it is missing."""
    path = shutil.which("ffprobe")
    if path is None:
        pytest.fail(
            "ffprobe is missing: install Debian's ffmpeg (scripts/setup.sh test)", pytrace=False
        )
    return path


async def ffprobe(url: str, timeout: float = 25.0) -> dict[str, Any]:
    """ffprobe's streams and format of a URL (JSON); :class:`FfprobeError` if it cannot read it."""
    process = await asyncio.create_subprocess_exec(
        require_ffprobe(), "-hide_banner", "-v", "error", "-rw_timeout", "15000000",
        "-show_streams", "-show_format", "-of", "json", url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"ffprobe {url.split('?')[0]} took over {timeout:.0f} s") from None
    if process.returncode != 0:
        raise FfprobeError(err.decode(errors="replace"))
    result: dict[str, Any] = json.loads(out)
    return result


def streams_by_type(probe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["codec_type"]: s for s in probe["streams"]}


def require_ffmpeg() -> str:
    """The ffmpeg binary; fails the test (never skips) when it is missing."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail(
            "ffmpeg is missing: RTMP tests need Debian's ffmpeg; `make test` installs it "
            "(scripts/setup.sh test)",
            pytrace=False,
        )
    return path


def rtmp_server_args() -> tuple[int, list[str]]:
    """A free port and the ``interlive serve`` arguments that put RTMP on it."""
    port = free_tcp_port()
    return port, ["--rtmp-port", str(port)]


def rtmp_url(port: int, room: str, identity: str, token: str) -> str:
    return f"rtmp://127.0.0.1:{port}/live/{room}/{identity}?token={token}"


def publish_command(
    url: str, *, seconds: float | None = None, size: str = "640x360", audio_codec: str = "aac"
) -> list[str]:
    """The documented test push: testsrc2 + a 440 Hz tone, x264 zerolatency, AAC, FLV."""
    return [
        require_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "info",
        "-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        *(["-t", str(seconds)] if seconds is not None else []),
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60",
        "-c:a", audio_codec, "-f", "flv", url,
    ]  # fmt: skip


@dataclass
class FfmpegPublisher:
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def pause(self) -> None:
        """SIGSTOP: the publisher stalls with its connection open."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            os.kill(self.process.pid, signal.SIGCONT)
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write(b"q")
            self.process.stdin.flush()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


@contextlib.contextmanager
def ffmpeg_publisher(
    url: str,
    log_dir: Path,
    *,
    seconds: float | None = None,
    name: str = "ffmpeg",
    audio_codec: str = "aac",
) -> Iterator[FfmpegPublisher]:
    """ffmpeg pushing to ``url`` until the context ends (or ``seconds`` of media)."""
    log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            publish_command(url, seconds=seconds, audio_codec=audio_codec),
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    publisher = FfmpegPublisher(process, log_path, time.monotonic())
    try:
        yield publisher
    finally:
        publisher.stop()


_HIGH_PROFILE_LEVEL_IDS = ("640c1f", "64001f")


@contextlib.contextmanager
def aiortc_accepts_h264_high() -> Iterator[None]:
    """aiortc offers H.264 High (packetization-mode 1) too while the context lasts."""
    video = aiortc_codecs.CODECS["video"]
    saved = list(video)
    used = {c.payloadType for kind in aiortc_codecs.CODECS.values() for c in kind}
    free = (pt for pt in range(96, 128) if pt not in used)
    for profile_level_id in _HIGH_PROFILE_LEVEL_IDS:
        media_pt, rtx_pt = next(free), next(free)
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=media_pt,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                    RTCRtcpFeedback(type="goog-remb"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": profile_level_id,
                },
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=rtx_pt,
                parameters={"apt": media_pt},
            )
        )
    try:
        yield
    finally:
        video[:] = saved
