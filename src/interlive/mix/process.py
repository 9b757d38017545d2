"""The mixer process of one bypass-live job: RTP in, one H.264/AAC mix out (docs/mixer.md).

Spawned by the control process (``server/live_api.py``) with the job's
:class:`~interlive.mix.job.LiveSpec` and one end of a Pipe carrying
:class:`~interlive.worker.channel.Request` / ``Reply`` (ops ``add_input``,
``remove_input``, ``set_layout`` (the layout, its background image and the
watermark), ``set_outputs``, ``set_audio`` (per-input gains), ``set_speaker``,
``status``, ``flv``, ``stop``);
with ``flv`` on, every encoded packet also goes up the pipe as an ``Event``
(the control process serves HTTP-FLV of the mix from them).

Each input (a stage participant) gets a UDP socket of its own; the control
process gives its address as ``remote`` of a plain *subscribe* session on
the room's worker, restricted to that participant, so the RTP arrives here
without passing through the control process.  Payload types are fixed by
:data:`SUBSCRIBE_MEDIA`.  Video is reassembled into frames (VP8, VP9 by
their descriptors, H.264 by :class:`~interlive.media.h264_rtp.H264Depacketizer`),
decoded by PyAV and gated by :class:`~interlive.mix.clearframe.ClearFrameGate`
(a PLI goes back on that socket when it asks); Opus is decoded by
:class:`~interlive.media.opus.OpusFecDecoder` (in-band FEC).  Sender reports
feed :mod:`interlive.mix.sync`.  The :class:`~interlive.mix.clock.OutputClock`
drives composition and audio mixing, never waiting for an input; packets
from :class:`~interlive.mix.outputs.Encoders` go to every
:class:`~interlive.mix.outputs.OutputWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final, cast

import av
import numpy as np

from interlive.codecs.vp8 import Vp8Descriptor, parse_vp8
from interlive.codecs.vp9 import Vp9Descriptor, parse_vp9
from interlive.media.h264_rtp import H264Depacketizer, nals_to_annexb
from interlive.media.opus import OpusFecDecoder
from interlive.mix.audio import AudioMixer
from interlive.mix.clearframe import ClearFrameGate, Display, FrameFacts
from interlive.mix.clock import ClockConfig, OutputClock
from interlive.mix.compose import I420, Compositor, Tile, Watermark
from interlive.mix.job import LiveSpec, OutputSpec
from interlive.mix.layout import Region, compute_layout, fit_rect
from interlive.mix.outputs import EncodedPacket, Encoders, OutputWriter
from interlive.mix.sync import ParticipantSync, StreamSync, VideoSync
from interlive.rtp.packet import RtpPacket
from interlive.rtp.reorder import REPAIR_WAIT, ReorderBuffer
from interlive.rtp.rtcp import (
    Pli,
    ReceiverReport,
    SenderReport,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from interlive.worker.channel import Event, Reply, Request

__all__ = ["SUBSCRIBE_MEDIA", "Mixer", "run_mixer"]

log = logging.getLogger(__name__)

PT_OPUS: Final = 111
PT_VP8: Final = 96
PT_VP9: Final = 98
PT_H264: Final = 102
#: the plain subscribe session's media: one audio slot, one video slot per codec
SUBSCRIBE_MEDIA: Final = [
    {"mid": "a", "kind": "audio", "mime": "audio/opus", "payload_type": PT_OPUS},
    {"mid": "vp8", "kind": "video", "mime": "video/VP8", "payload_type": PT_VP8},
    {"mid": "vp9", "kind": "video", "mime": "video/VP9", "payload_type": PT_VP9},
    {
        "mid": "h264",
        "kind": "video",
        "mime": "video/H264",
        "payload_type": PT_H264,
        "fmtp": {
            "packetization-mode": "1",
            # High 4:4:4 Predictive covers every profile (FFmpeg decodes them all),
            # so a Baseline (42001f) publisher such as aiortc reaches the mixer too
            "profile-level-id": "f40034",
            "level-asymmetry-allowed": "1",
        },
    },
]
_DECODERS: Final = {PT_VP8: "vp8", PT_VP9: "vp9", PT_H264: "h264"}
#: width of the JPEG snapshot of the mix (``preview`` op) the studio shows
PREVIEW_WIDTH: Final = 480


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, owner: _Input) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.owner.on_datagram(data, (addr[0], addr[1]))
        except Exception:  # one bad datagram never ends the job
            self.owner.errors += 1
            log.debug("input %s: datagram dropped", self.owner.identity, exc_info=True)

    def error_received(self, exc: Exception) -> None:
        log.debug("input socket: %s", exc)


class _Input:
    """One participant: its socket, depacketizer, decoders, gate and sync."""

    def __init__(self, identity: str, mixer: Mixer) -> None:
        self.identity = identity
        self.mixer = mixer
        self.socket = _Socket(self)
        self.peer: tuple[str, int] | None = None
        self.ssrc = secrets.randbits(31) + 1
        self.sync = ParticipantSync()
        self.video = VideoSync[av.VideoFrame](self.sync)
        self.audio = StreamSync(self.sync, 48_000, "audio")
        self.gate = ClearFrameGate()
        self.opus = OpusFecDecoder()
        self.video_ssrc: int | None = None
        self.audio_ssrc: int | None = None
        self.decoder: Any = None
        self.decoder_pt: int | None = None
        self.h264 = H264Depacketizer()
        self.video_order: ReorderBuffer[RtpPacket] = ReorderBuffer(REPAIR_WAIT)
        self._ts: int | None = None
        self._parts: list[bytes] = []
        self._key = False
        self._last_seq: int | None = None
        self._gap = False
        self.packets = 0
        self.frames_decoded = 0
        self.decode_errors = 0
        self.errors = 0
        self._scaled: tuple[int, int, int, I420] | None = None  # (frame id, w, h, picture)

    # --- input ---------------------------------------------------------------------
    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        now = self.mixer.loop.time()
        self.peer = addr
        if is_rtcp(data):
            for packet in parse_rtcp(data):
                if isinstance(packet, SenderReport):
                    if packet.ssrc == self.video_ssrc:
                        self.video.on_sender_report(packet.ntp_timestamp, packet.rtp_timestamp)
                    elif packet.ssrc == self.audio_ssrc:
                        self.audio.on_sender_report(packet.ntp_timestamp, packet.rtp_timestamp)
            return
        self.packets += 1
        pkt = RtpPacket.parse(data)
        if pkt.payload_type == PT_OPUS:
            self.audio_ssrc = pkt.ssrc
            self.audio.on_packet(pkt.timestamp, now)
            for frame in self.opus.receive(pkt.sequence_number, pkt.timestamp, pkt.payload):
                timing = self.audio.on_frame(frame.timestamp & 0xFFFFFFFF, now)
                pcm = np.frombuffer(frame.pcm, dtype=np.int16).reshape(-1, 2).T
                pts = self.mixer.clock.audio_pts_at(timing.presentation)
                self.mixer.audio.push(self.identity, pcm, pts)
        elif pkt.payload_type in _DECODERS:
            self.video_ssrc = pkt.ssrc
            self.video.on_packet(pkt.timestamp, now)
            # a repaired packet (the worker's NACK/RTX) arrives a round trip late
            for ready in self.video_order.push(pkt.sequence_number, pkt, now):
                self._on_video(ready, now)

    def poll(self, now: float) -> None:
        """Video packets whose missing predecessors were waited for long enough."""
        for ready in self.video_order.poll(now):
            self._on_video(ready, now)

    def _on_video(self, pkt: RtpPacket, now: float) -> None:
        pt = pkt.payload_type
        if pt != self.decoder_pt:
            self.decoder = av.CodecContext.create(_DECODERS[pt], "r")
            self.decoder_pt = pt
            self._ts, self._parts, self._last_seq = None, [], None
        if pt == PT_H264:
            for unit in self.h264.push_packet(pkt):
                self._decode(
                    nals_to_annexb(unit.nals), unit.timestamp, unit.is_keyframe, False, now
                )
            return
        seq = pkt.sequence_number
        if self._last_seq is not None and seq != (self._last_seq + 1) & 0xFFFF:
            self._gap = True
        self._last_seq = seq
        payload = pkt.payload
        if pt == PT_VP8:
            info = parse_vp8(payload)
            size = Vp8Descriptor.parse(payload).header_size
        else:
            info = parse_vp9(payload)
            size = Vp9Descriptor.parse(payload).header_size
        if pkt.timestamp != self._ts or info.start_of_frame:
            if self._parts:
                self._gap = True  # the previous frame never completed
            self._ts, self._parts, self._key = pkt.timestamp, [], info.is_keyframe
        self._parts.append(payload[size:])
        if pkt.marker:
            data = b"".join(self._parts)
            self._parts = []
            gap, self._gap = self._gap, False
            self._decode(data, pkt.timestamp, self._key, gap, now)

    def _decode(self, data: bytes, ts: int, key: bool, gap: bool, now: float) -> None:
        frames: list[av.VideoFrame] = []
        error = False
        try:
            frames = list(self.decoder.decode(av.Packet(data)))
        except av.FFmpegError:
            error = True
            self.decode_errors += 1
        verdict = self.gate.on_frame(
            FrameFacts(keyframe=key, gap_before=gap, decode_error=error), now
        )
        if verdict.request_keyframe:
            self.request_keyframe()
        if verdict.show:
            for frame in frames:
                self.frames_decoded += 1
                self.video.push(ts, now, frame)

    # --- output --------------------------------------------------------------------
    def send(self, packets: list[Any]) -> None:
        transport = self.socket.transport
        if transport is not None and self.peer is not None:
            transport.sendto(serialize_rtcp(packets), self.peer)

    def request_keyframe(self) -> None:
        if self.video_ssrc is not None:
            self.send([Pli(self.ssrc, self.video_ssrc)])

    def picture(self, frame: av.VideoFrame, w: int, h: int) -> I420:
        cached = self._scaled
        if cached is not None and cached[0] == id(frame) and cached[1:3] == (w, h):
            return cached[3]
        scaled = frame.reformat(w, h, "yuv420p")
        picture = I420.from_packed(np.asarray(scaled.to_ndarray(), dtype=np.uint8), w, h)
        self._scaled = (id(frame), w, h, picture)
        return picture

    def status(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "packets": self.packets,
            "frames_decoded": self.frames_decoded,
            "decode_errors": self.decode_errors,
            "keyframe_requests": self.gate.keyframe_requests,
            "frames_held": self.gate.frames_held,
            "display": self.gate.display(self.mixer.loop.time()).value,
            "av_offset_ms": self.sync.av_offset_ms(),
            "gain": self.mixer.audio.gain(self.identity),
        }


class Mixer:
    """The job: inputs, clock, compositor, audio mixer, encoders and outputs."""

    def __init__(self, spec: LiveSpec, out_dir: Path, host: str) -> None:
        self.spec = spec
        self.host = host
        self.loop = asyncio.get_running_loop()
        enc = spec.encoding
        self.clock = OutputClock(self.loop.time(), ClockConfig(fps=Fraction(enc.fps)))
        self.audio = AudioMixer()
        self.encoders = Encoders(enc)
        self.inputs: dict[str, _Input] = {}
        self.started = time.time()
        self.video_frames = 0
        #: the last composed canvas (I420), for the studio's preview
        self.last_canvas: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        self._regions: tuple[Region, ...] | None = None
        self.active_speaker: str | None = None
        self._compositor = _compositor(spec)
        self.outputs: dict[str, OutputWriter] = {}
        self.files: dict[str, OutputWriter] = {}
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        if spec.hls:
            hls = out_dir / "hls"
            hls.mkdir(exist_ok=True)
            self.files["hls"] = OutputWriter(
                "hls",
                str(hls / "index.m3u8"),
                "hls",
                self.encoders,
                options={
                    "hls_time": str(min(2.0, enc.keyframe_interval)),
                    "hls_list_size": "6",
                    "hls_flags": "delete_segments+independent_segments+temp_file",
                },
            )
        if spec.record:
            self.files["record"] = OutputWriter(
                "record",
                str(out_dir / "recording.mp4"),
                "mp4",
                self.encoders,
                options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
            )
        self.set_outputs(spec.outputs)
        self._stopped = asyncio.Event()
        #: every encoded packet also goes here when set (the control process's HTTP-FLV)
        self.tap: Callable[[EncodedPacket], None] | None = None

    # --- control ops -------------------------------------------------------------------
    async def add_input(self, identity: str) -> dict[str, Any]:
        if identity in self.inputs:
            raise ValueError(f"input {identity!r} exists")
        inp = _Input(identity, self)
        await self.loop.create_datagram_endpoint(lambda: inp.socket, local_addr=(self.host, 0))
        assert inp.socket.transport is not None
        self.inputs[identity] = inp
        self.audio.add_input(identity, self.spec.audio.gain(identity))
        self._regions = None
        port: int = inp.socket.transport.get_extra_info("sockname")[1]
        return {"host": self.host, "port": port}

    def remove_input(self, identity: str) -> dict[str, Any]:
        inp = self.inputs.pop(identity, None)
        if inp is not None:
            if inp.socket.transport is not None:
                inp.socket.transport.close()
            self.audio.remove_input(identity)
            self._regions = None
        return {}

    def set_speaker(self, identity: str | None) -> dict[str, Any]:
        """The room's active speaker (the ``speaker`` and ``pip`` layouts follow it)."""
        if identity != self.active_speaker:
            self.active_speaker = identity
            self._regions = None
        return {}

    def set_layout(self, spec: LiveSpec) -> dict[str, Any]:
        """The layout, its background image and the watermark (the encoder is not touched)."""
        self.spec = spec
        self._compositor = _compositor(spec)
        self._regions = None
        return {}

    def set_audio(self, spec: LiveSpec) -> dict[str, Any]:
        """Per-input gains; each change ramps over one output frame (``AudioMixer``)."""
        self.spec = spec
        for identity in self.audio.inputs:
            self.audio.set_gain(identity, spec.audio.gain(identity))
        return {}

    def set_outputs(self, outputs: tuple[OutputSpec, ...]) -> dict[str, Any]:
        wanted = {o.url: o for o in outputs}
        for url in [u for u in self.outputs if u not in wanted]:
            self.outputs.pop(url).close(timeout=0.5)
        for k, (url, _o) in enumerate(wanted.items()):
            if url not in self.outputs:
                self.outputs[url] = OutputWriter(
                    f"rtmp{k}", url, "flv", self.encoders, reconnect=True
                )
        return {}

    def status(self) -> dict[str, Any]:
        return {
            "uptime": round(time.time() - self.started, 1),
            "video_frames": self.video_frames,
            "dropped_frames": self.clock.late_video_frames,
            "late_audio_frames": self.clock.late_audio_frames,
            "outputs": [
                {"url": o.redacted(), **self.outputs[o.url].status()}
                for o in self.spec.outputs
                if o.url in self.outputs
            ],
            "files": {name: w.status() for name, w in self.files.items()},
            "inputs": [inp.status() for inp in self.inputs.values()],
        }

    # --- the output clock ----------------------------------------------------------------
    async def run(self) -> None:
        next_rtcp = self.loop.time()
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopped.wait(), max(0.0, self.clock.timeout(self.loop.time()))
                )
            now = self.loop.time()
            for due in self.clock.due(now):
                if due.kind == "video":
                    self._video(due.pts, now)
                else:
                    self._audio(due.pts)
            for inp in self.inputs.values():
                inp.poll(now)
                if inp.gate.poll(now):
                    inp.request_keyframe()
            if now >= next_rtcp:  # keeps the plain sessions alive
                next_rtcp = now + 1.0
                for inp in self.inputs.values():
                    inp.send([ReceiverReport(inp.ssrc, [])])

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        for writer in [*self.outputs.values(), *self.files.values()]:
            writer.close()
        self.encoders.close()

    def _fan_out(self, packets: list[EncodedPacket]) -> None:
        for packet in packets:
            if self.tap is not None:
                self.tap(packet)
            for writer in self.outputs.values():
                writer.submit(packet)
            for writer in self.files.values():
                writer.submit(packet)

    def _video(self, pts: int, now: float) -> None:
        enc = self.spec.encoding
        layout = self.spec.layout
        if self._regions is None:
            self._regions = compute_layout(
                layout, (enc.width, enc.height), list(self.inputs), self.active_speaker
            )
        t = self.clock.video_time(pts)
        tiles: list[Tile] = []
        for region in self._regions:
            inp = self.inputs.get(region.input_id)
            if inp is None:
                continue
            frame = None
            if inp.gate.display(now) is not Display.PLACEHOLDER:
                frame = inp.video.frame_at(t)
            if frame is None:
                tiles.append(Tile(region, None, None, inp.identity))
                continue
            place = fit_rect(region.cell, frame.width, frame.height, layout.fit)
            picture = inp.picture(frame, place.scale_w, place.scale_h)
            tiles.append(Tile(region, picture, place, inp.identity))
        canvas = self._compositor.compose(tiles)
        self.last_canvas = canvas
        out = av.VideoFrame.from_ndarray(canvas, format="yuv420p")
        out.pts = pts
        out.time_base = Fraction(1, 90_000)
        self._fan_out(self.encoders.encode_video(out))
        self.video_frames += 1

    def preview(self, width: int = PREVIEW_WIDTH) -> bytes:
        """A JPEG of the last composed picture, ``width`` wide (encoded only when asked)."""
        if self.last_canvas is None:
            raise LookupError("no picture composed yet")
        frame = av.VideoFrame.from_ndarray(self.last_canvas, format="yuv420p")
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        small = frame.reformat(width, height, "yuvj420p")
        small.pts = 0
        jpeg = av.CodecContext.create("mjpeg", "w")
        assert isinstance(jpeg, av.VideoCodecContext)
        jpeg.width, jpeg.height, jpeg.pix_fmt = width, height, "yuvj420p"
        jpeg.time_base = Fraction(1, 1)
        return b"".join(bytes(p) for p in [*jpeg.encode(small), *jpeg.encode(None)])

    def _audio(self, pts: int) -> None:
        samples = self.audio.mix(pts, 1024)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = 48_000
        frame.pts = pts
        frame.time_base = Fraction(1, 48_000)
        self._fan_out(self.encoders.encode_audio(frame))


def _compositor(spec: LiveSpec) -> Compositor:
    """The job's compositor: background colour or picture, the watermark (arrays from the spec)."""
    enc = spec.encoding
    picture = None
    if spec.background is not None:
        picture = I420.from_packed(spec.background, enc.width, enc.height)
    mark = spec.watermark
    return Compositor(
        enc.width,
        enc.height,
        background=spec.layout.background,
        background_image=picture,
        watermark=None if mark is None else Watermark(mark.rgba, mark.x, mark.y),
    )


# --- the process ---------------------------------------------------------------------------


async def _serve(spec: LiveSpec, out_dir: str, host: str, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    mixer = Mixer(spec, Path(out_dir), host)
    requests: asyncio.Queue[Request | None] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if isinstance(message, Request):
                    requests.put_nowait(message)
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            requests.put_nowait(None)  # the control process is gone: stop

    loop.add_reader(conn.fileno(), readable)
    os.set_blocking(conn.fileno(), True)
    send_lock = threading.Lock()  # the encode thread sends FLV packets on the same pipe

    def send(message: Reply) -> None:
        with send_lock:
            conn.send(message)

    send(Reply(0, {"ready": True}))
    runner = asyncio.create_task(mixer.run())
    request: Request | None = None
    try:
        while True:
            request = await requests.get()
            if request is None or request.op == "stop":
                break
            try:
                if request.op == "add_input":
                    result = await mixer.add_input(request.args["identity"])
                elif request.op == "remove_input":
                    result = mixer.remove_input(request.args["identity"])
                elif request.op == "set_layout":
                    result = mixer.set_layout(request.args["spec"])
                elif request.op == "set_audio":
                    result = mixer.set_audio(request.args["spec"])
                elif request.op == "set_outputs":
                    mixer.spec = request.args["spec"]
                    result = mixer.set_outputs(mixer.spec.outputs)
                elif request.op == "set_speaker":
                    result = mixer.set_speaker(request.args.get("identity"))
                elif request.op == "status":
                    result = mixer.status()
                elif request.op == "preview":
                    result = {"jpeg": mixer.preview()}
                elif request.op == "flv":
                    on = request.args.get("on")
                    mixer.tap = _pipe_tap(conn, send_lock) if on else None
                    result = {
                        "video": bytes(mixer.encoders.video.codec_context.extradata or b""),
                        "audio": bytes(mixer.encoders.audio.codec_context.extradata or b""),
                    }
                else:
                    raise ValueError(f"unknown op {request.op!r}")
                send(Reply(request.id, result))
            except LookupError as exc:  # asked for something there is none of yet
                send(Reply(request.id, None, (404, "not_yet", str(exc))))
            except Exception as exc:
                log.exception("mixer op %s", request.op)
                send(Reply(request.id, None, (500, "mixer_error", str(exc))))
    finally:
        mixer.stop()
        await runner
        await loop.run_in_executor(None, mixer.close)
        with contextlib.suppress(OSError):
            send(Reply(request.id if request is not None else 0, {}))


def _pipe_tap(conn: Connection, lock: threading.Lock) -> Callable[[EncodedPacket], None]:
    def send(packet: EncodedPacket) -> None:
        with lock, contextlib.suppress(OSError):
            conn.send(Event("packet", {"packet": packet}))

    return send


def run_mixer(spec: LiveSpec, out_dir: str, host: str, log_level: str, conn: Connection) -> None:
    """Process entry point (multiprocessing spawn)."""
    logging.basicConfig(level=log_level, format="%(asctime)s mixer %(levelname)s %(message)s")
    try:
        import uvloop

        uvloop.run(_serve(spec, out_dir, host, conn))
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(spec, out_dir, host, conn))
