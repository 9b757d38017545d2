"""``interlive bench mix``: the mixer's CPU per job and realtime factor for 2, 4 and 9 inputs.

Each input is a VP8 test pattern (libvpx realtime, one keyframe per 2 s) and
a 20 ms Opus tone, encoded once before the clock starts and fed as RTP
datagrams to the mixer's own input path (:meth:`_Input.on_datagram`: RTP
parse, depacketize, decode, clear-frame gate, sync; Opus FEC decode, audio
mix).  The mixer then produces its output frames back to back, as fast as it
can, through the same code the live job runs (layout, scaling, composition,
libx264 veryfast zerolatency, AAC); packets are encoded and dropped (no
muxing, no network).  Reported per input count:

* **CPU per job** = process CPU seconds (all threads, x264's included) per
  second of output: the share of one core the job needs in real time;
* **realtime factor** = seconds of output per wall-clock second when run flat
  out (> 1 means faster than real time).

``--e2e`` (:func:`e2e`) measures the delay from a publisher's frame to the
mix instead: a real server, one SDK publisher whose test pattern carries its
frame index, a job without labels at the pattern's size, and the mix's
HTTP-FLV decoded with PyAV; plus the job's A/V offset at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np

from interlive.auth import mint_token
from interlive.bench.serverproc import temporary_server
from interlive.client import (
    TestPatternVideoTrack,
    ToneAudioTrack,
    WhipPublisher,
    decode_frame_index,
)
from interlive.media.opus import OpusFecEncoder
from interlive.mix.clock import ClockConfig, OutputClock
from interlive.mix.job import Encoding, LiveSpec
from interlive.mix.layout import parse_layout
from interlive.mix.process import PT_OPUS, PT_VP8, Mixer
from interlive.rtp.packet import RtpPacket

__all__ = ["main", "opus_packets", "run", "vp8_frames", "vp8_packets"]

MTU_PAYLOAD = 1200


def vp8_frames(
    width: int, height: int, fps: int, count: int, seed: int
) -> list[tuple[bytes, bool]]:
    """``count`` VP8 frames of a moving pattern: (bitstream, keyframe)."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.bit_rate = 1_200_000
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": str(2 * fps)}
    # a camera-like picture: smooth gradients and a moving box (noise would make every
    # codec work far harder than a real scene does)
    yy, xx = np.mgrid[0 : height * 3 // 2, 0:width]
    base = ((xx * 255 // width + yy * 64 // height + 16 * seed) % 220 + 16).astype(np.uint8)
    out: list[tuple[bytes, bool]] = []
    for k in range(count):
        picture = base.copy()
        x = (8 * k) % max(1, width - height // 4)
        picture[height // 3 : height // 3 + height // 4, x : x + height // 4] = 235
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = k
        out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]
    return out


def vp8_packets(frame: bytes, seq: int, ts: int, ssrc: int) -> list[bytes]:
    chunks = [frame[i : i + MTU_PAYLOAD] for i in range(0, len(frame), MTU_PAYLOAD)] or [b""]
    packets = []
    for k, chunk in enumerate(chunks):
        descriptor = b"\x10" if k == 0 else b"\x00"  # S=1 on the first packet, partition 0
        packets.append(
            bytes(
                RtpPacket(
                    payload_type=PT_VP8,
                    marker=k == len(chunks) - 1,
                    sequence_number=(seq + k) & 0xFFFF,
                    timestamp=ts & 0xFFFFFFFF,
                    ssrc=ssrc,
                    payload=descriptor + chunk,
                )
            )
        )
    return packets


def opus_packets(count: int, frequency: float) -> list[bytes]:
    enc = OpusFecEncoder(2, bitrate=32_000)
    t = np.arange(960) / 48_000
    out = []
    for k in range(count):
        tone = 0.2 * np.sin(2 * np.pi * frequency * (t + k * 0.02))
        pcm = (np.repeat(tone[:, None], 2, axis=1) * 32767).astype(np.int16).tobytes()
        out.append(enc.encode(pcm))
    return out


async def _run_one(
    inputs: int, seconds: float, in_size: tuple[int, int], enc: Encoding
) -> dict[str, Any]:
    fps = enc.fps
    gop = vp8_frames(in_size[0], in_size[1], fps, 2 * fps, seed=inputs)
    opus = opus_packets(50, 440.0)
    spec = LiveSpec(
        outputs=(),
        layout=parse_layout("grid"),
        layout_json="grid",
        encoding=enc,
        hls=False,
        record=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        mixer = Mixer(spec, Path(tmp), "127.0.0.1")
        # output times far ahead of the inputs': every output frame shows the newest input frame
        mixer.clock = OutputClock(mixer.loop.time() + 1000.0, ClockConfig(fps=Fraction(enc.fps)))
        feeds = []
        for k in range(inputs):
            await mixer.add_input(f"guest{k}")
            feeds.append(mixer.inputs[f"guest{k}"])
        addr = ("127.0.0.1", 9)
        n_frames = round(seconds * fps)
        seq = [0] * inputs
        aseq = 0
        audio_done = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for k in range(n_frames):
            frame, _key = gop[k % len(gop)]
            for i, inp in enumerate(feeds):
                for data in vp8_packets(frame, seq[i], k * 90_000 // fps, 1000 + i):
                    inp.on_datagram(data, addr)
                    seq[i] += 1
            # audio: 20 ms packets up to this video frame's time
            while audio_done * 0.02 <= (k + 1) / fps:
                payload = opus[audio_done % len(opus)]
                for i, inp in enumerate(feeds):
                    packet = RtpPacket(
                        payload_type=PT_OPUS,
                        sequence_number=aseq & 0xFFFF,
                        timestamp=(audio_done * 960) & 0xFFFFFFFF,
                        ssrc=2000 + i,
                        payload=payload,
                    )
                    inp.on_datagram(bytes(packet), addr)
                aseq += 1
                audio_done += 1
            now = mixer.loop.time()
            mixer._video(mixer.clock.video_pts(k), now)
            for m in range(k * 48_000 // fps // 1024, (k + 1) * 48_000 // fps // 1024):
                mixer._audio(mixer.clock.audio_pts(m))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        decoded = sum(inp.frames_decoded for inp in feeds)
        for name in list(mixer.inputs):
            mixer.remove_input(name)
        mixer.close()
    media = n_frames / fps
    return {
        "inputs": inputs,
        "seconds": media,
        "cpu_per_job": cpu / media,
        "realtime_factor": media / wall,
        "frames_decoded": decoded,
    }


def run(
    counts: list[int], seconds: float, in_size: tuple[int, int], enc: Encoding
) -> list[dict[str, Any]]:
    return [asyncio.run(_run_one(n, seconds, in_size, enc)) for n in counts]


def report(results: list[dict[str, Any]], in_size: tuple[int, int], enc: Encoding) -> str:
    lines = [
        f"Mixer, {enc.width}x{enc.height}@{enc.fps} H.264 out (libx264 veryfast zerolatency, "
        f"{enc.video_bitrate // 1000} kbit/s) + AAC, "
        f"inputs VP8 {in_size[0]}x{in_size[1]}@{enc.fps} + Opus:",
        "",
        "| inputs | CPU per job (cores) | realtime factor | frames decoded |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['inputs']} | {r['cpu_per_job']:.2f} | {r['realtime_factor']:.1f}x "
            f"| {r['frames_decoded']} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.e2e:
        result = e2e(args.duration)
        text = (
            f"End to end, SDK publisher frame -> mix -> HTTP-FLV decoded "
            f"({result['frames']} frames): median {result['median_ms']:.0f} ms, "
            f"p95 {result['p95_ms']:.0f} ms, min {result['min_ms']:.0f} ms; "
            f"A/V offset {[round(x, 1) for x in result['av_offset_ms']]} ms"
        )
        print(text)
        if args.output:
            with open(args.output, "a") as f:
                f.write("\n" + text + "\n")
        return 0
    counts = [int(x) for x in str(args.inputs).split(",")]
    w, h = (int(x) for x in str(args.input_size).split("x"))
    enc = Encoding()
    results = run(counts, args.duration, (w, h), enc)
    text = report(results, (w, h), enc)
    print(text)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n" + text + "\n")
    return 0


# --- end to end: a publisher's frame to the mix's HTTP-FLV output --------------------------


class _StampedPattern(TestPatternVideoTrack):
    """The SDK's test pattern, remembering when each frame index left the track."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__(640, 360)
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        self.sent_at[self.frames_sent - 1] = time.monotonic()
        return frame


def _read_flv(url: str, seconds: float, seen: list[tuple[int, float]]) -> None:
    """Decode the FLV from ``url`` for ``seconds``; (frame index, monotonic time) per frame."""
    container = av.open(url, options={"fflags": "nobuffer", "probesize": "32768"})
    deadline = time.monotonic() + seconds
    try:
        for frame in container.decode(video=0):
            index = decode_frame_index(frame)
            if index is not None:
                seen.append((index, time.monotonic()))
            if time.monotonic() > deadline:
                break
    finally:
        container.close()


async def _e2e(base: str, secret: str, seconds: float) -> dict[str, Any]:
    token = mint_token(secret, room="bench", identity="host", role="host", ttl=600)
    track = _StampedPattern()
    async with WhipPublisher() as pub, aiohttp.ClientSession(base) as http:
        await pub.publish(base, "bench", token, audio=ToneAudioTrack(), video=track)
        body = {
            "outputs": [],
            "layout": {"type": "grid", "labels": False},
            "encoding": {"width": 640, "height": 360, "fps": 30},
        }
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post("/api/rooms/bench/live", json=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"POST live: {r.status} {await r.text()}")
        await asyncio.sleep(3)  # the first keyframe, the render delay settling
        seen: list[tuple[int, float]] = []
        await asyncio.to_thread(_read_flv, f"{base}/live/bench.flv", seconds, seen)
        async with http.get("/api/rooms/bench/live", headers=headers) as r:
            status = await r.json()
        async with http.delete("/api/rooms/bench/live", headers=headers):
            pass
    # the first second of the FLV is what the player buffered at its start: skip it
    start = seen[0][1] + 1.0 if seen else 0.0
    delays = sorted(
        (t - track.sent_at[i]) * 1000 for i, t in seen if t >= start and i in track.sent_at
    )
    if not delays:
        raise RuntimeError("no frame index could be read back from the mix")
    offsets = [i["av_offset_ms"] for i in status["inputs"] if i["av_offset_ms"] is not None]
    return {
        "frames": len(delays),
        "median_ms": delays[len(delays) // 2],
        "p95_ms": delays[int(len(delays) * 0.95)],
        "min_ms": delays[0],
        "av_offset_ms": offsets,
    }


def e2e(seconds: float) -> dict[str, Any]:
    """Start a server, publish one SDK test pattern, mix it, read the mix back over HTTP-FLV."""
    with temporary_server("interlive-bench-mix-") as (base, secret):
        return asyncio.run(_e2e(base, secret, seconds))
