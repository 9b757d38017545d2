"""The mixer's outputs: encoded H.264/AAC packets muxed by PyAV into RTMP, HLS and fragmented MP4.

One encoder feeds every output: the mixer encodes once into a *template*
(:class:`Encoders`, two PyAV streams of a ``null`` container whose codec
parameters, extradata included, each output copies with
``add_stream_from_template``), then hands every packet to every output.

Each output is a thread with a bounded queue (:class:`OutputWriter`), because
FFmpeg's muxers block on the network: a slow or dead CDN fills its own queue
(packets dropped and counted), never the mix.  An RTMP output that fails is
closed and reopened after the :class:`~interlive.mix.job.Backoff` delay; it
starts again at the next keyframe (video first, so the CDN sees a decodable
stream).  Files (HLS, MP4) are written the same way and finalized on close.
MP4 recording is fragmented (``frag_keyframe+empty_moov+default_base_moof``):
a crash loses at most the fragment being written (one keyframe interval).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import av
from av.container import OutputContainer
from av.video.frame import PictureType

from interlive.mix.job import Backoff, Encoding

__all__ = ["EncodedPacket", "Encoders", "OutputWriter"]

log = logging.getLogger(__name__)

QUEUE_PACKETS: Final = 600  # about 10 s of 30 fps video and its audio


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    kind: str  # "video" | "audio"
    data: bytes
    pts: int
    dts: int
    time_base: Fraction
    keyframe: bool


class Encoders:
    """libx264 (zerolatency, VBV, fixed GOP) and AAC, opened once in a template container."""

    def __init__(self, enc: Encoding) -> None:
        self.template = av.open(os.devnull, "w", format="null")
        video = self.template.add_stream("libx264", rate=enc.fps)
        ctx = video.codec_context
        ctx.width, ctx.height = enc.width, enc.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 90_000)
        video.time_base = Fraction(1, 90_000)
        ctx.bit_rate = enc.video_bitrate
        ctx.flags |= av.codec.context.Flags.global_header
        gop = max(1, round(enc.fps * enc.keyframe_interval))
        kbps = enc.video_bitrate // 1000
        ctx.options = {
            "preset": enc.preset,
            "tune": "zerolatency",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "maxrate": f"{kbps}k",
            "bufsize": f"{kbps * 2}k",
            "bf": "0",
            "forced-idr": "1",
        }
        audio = self.template.add_stream("aac", rate=48_000)
        actx = audio.codec_context
        actx.layout = "stereo"
        actx.format = "fltp"
        actx.bit_rate = enc.audio_bitrate
        actx.flags |= av.codec.context.Flags.global_header
        self.template.start_encoding()
        self.video = video
        self.audio = audio
        #: keyframes go by output time, not frame count: when a starved mixer skips
        #: frames, a count-based GOP stretches past its seconds, and so would HLS
        #: segments and a player's wait for its first picture
        self._key_every = round(enc.keyframe_interval * 90_000)
        self._next_key: int | None = None

    def encode_video(self, frame: av.VideoFrame) -> list[EncodedPacket]:
        pts = frame.pts if frame.pts is not None else 0
        if self._next_key is None or pts >= self._next_key:
            frame.pict_type = PictureType.I
            self._next_key = pts + self._key_every
        return [_packet("video", p) for p in self.video.codec_context.encode(frame)]

    def encode_audio(self, frame: av.AudioFrame) -> list[EncodedPacket]:
        return [_packet("audio", p) for p in self.audio.codec_context.encode(frame)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.template.close()


def _packet(kind: str, p: Any) -> EncodedPacket:
    tb = p.time_base or Fraction(1, 90_000 if kind == "video" else 48_000)
    pts = p.pts if p.pts is not None else 0
    dts = p.dts if p.dts is not None else pts
    return EncodedPacket(kind, bytes(p), pts, dts, Fraction(tb), bool(p.is_keyframe))


class OutputWriter:
    """One output in its own thread; see the module docstring.

    ``target`` is a URL (``rtmp://``, ``rtmps://``) or a file path; ``fmt`` the
    FFmpeg muxer (``flv``, ``hls``, ``mp4``); ``reconnect`` retries after
    failures (network outputs) instead of giving up (files).
    """

    def __init__(
        self,
        name: str,
        target: str,
        fmt: str,
        encoders: Encoders,
        *,
        options: dict[str, str] | None = None,
        reconnect: bool = False,
    ) -> None:
        self.name = name
        self.target = target
        self.fmt = fmt
        self.options = options or {}
        self.reconnect = reconnect
        self._encoders = encoders
        self._queue: queue.Queue[EncodedPacket | None] = queue.Queue(QUEUE_PACKETS)
        self._stop = threading.Event()
        self.state = "connecting"
        self.error: str | None = None
        self.reconnects = 0
        self.bytes_sent = 0
        self.video_frames = 0
        self.dropped_packets = 0
        self.connected_at: float | None = None
        self._rate: list[tuple[float, int, int]] = []  # (time, bytes, frames) samples
        self._thread = threading.Thread(target=self._run, name=f"output-{name}", daemon=True)
        self._thread.start()

    # --- the mixer's side ------------------------------------------------------------
    def submit(self, packet: EncodedPacket) -> None:
        try:
            self._queue.put_nowait(packet)
        except queue.Full:
            self.dropped_packets += 1

    def close(self, timeout: float = 5.0) -> None:
        """Finish: flush what is queued, write the trailer, stop the thread."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        self._rate.append((now, self.bytes_sent, self.video_frames))
        while len(self._rate) > 2 and now - self._rate[0][0] > 5:
            self._rate.pop(0)
        t0, b0, f0 = self._rate[0]
        span = now - t0
        bitrate = (self.bytes_sent - b0) * 8 / span if span > 0.5 else 0.0
        fps = (self.video_frames - f0) / span if span > 0.5 else 0.0
        return {
            "name": self.name,
            "state": self.state,
            "error": self.error,
            "bitrate": round(bitrate),
            "fps": round(fps, 1),
            "bytes": self.bytes_sent,
            "video_frames": self.video_frames,
            "dropped_packets": self.dropped_packets,
            "reconnects": self.reconnects,
        }

    # --- the thread ------------------------------------------------------------------
    def _open(self) -> tuple[OutputContainer, Any, Any]:
        opts = dict(self.options)
        if self.target.startswith(("rtmp://", "rtmps://")):
            opts.setdefault("rw_timeout", "5000000")  # us: a dead CDN errors out in 5 s
        container = av.open(self.target, "w", format=self.fmt, options=opts)
        video = container.add_stream_from_template(self._encoders.video)
        audio = container.add_stream_from_template(self._encoders.audio)
        return container, video, audio

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            self.state = "connecting"
            try:
                container, video, audio = self._open()
            except Exception as exc:  # FFmpeg reports refusals as OSError or av.FFmpegError
                if not self._failed(exc, backoff):
                    return
                continue
            self.state = "waiting_keyframe"
            self.connected_at = time.monotonic()
            try:
                self._pump(container, video, audio)
            except Exception as exc:
                backoff.connected_for(time.monotonic() - (self.connected_at or 0))
                with contextlib.suppress(Exception):
                    container.close()
                if not self._failed(exc, backoff):
                    return
                continue
            try:
                container.close()
            except Exception as exc:
                log.warning("output %s: closing: %s", self.name, exc)
            self.state = "stopped"
            return

    def _failed(self, exc: BaseException, backoff: Backoff) -> bool:
        """Log the failure; wait the backoff delay; False when this output gives up."""
        self.error = str(exc) or type(exc).__name__
        if not self.reconnect or self._stop.is_set():
            self.state = "failed" if not self._stop.is_set() else "stopped"
            log.warning("output %s failed: %s", self.name, self.error)
            return False
        delay = backoff.next_delay()
        self.state = "reconnecting"
        self.reconnects += 1
        log.warning("output %s: %s; reconnecting in %.0f s", self.name, self.error, delay)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self._stop.is_set():
            # drop what piles up meanwhile: a reconnect starts from the next keyframe
            with contextlib.suppress(queue.Empty):
                if self._queue.get(timeout=0.1) is None:
                    return False
        return not self._stop.is_set()

    def _pump(self, container: OutputContainer, video: Any, audio: Any) -> None:
        started = False
        while True:
            item = self._queue.get()
            if item is None:
                return
            if not started:
                if item.kind != "video" or not item.keyframe:
                    continue
                started = True
                self.state = "live"
                self.error = None
            packet = av.Packet(item.data)
            packet.pts, packet.dts, packet.time_base = item.pts, item.dts, item.time_base
            packet.is_keyframe = item.keyframe
            packet.stream = video if item.kind == "video" else audio
            container.mux(packet)
            self.bytes_sent += len(item.data)
            if item.kind == "video":
                self.video_frames += 1
