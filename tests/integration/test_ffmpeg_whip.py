"""FFmpeg's own WHIP muxer (through PyAV) publishes H.264 + Opus into interlive.

FFmpeg is a client nobody here wrote; an aiortc WHEP viewer decodes what it sent.
"""

from __future__ import annotations

import asyncio
import datetime
import fractions
import threading
import time
from pathlib import Path

import av
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from interlive.client import WhepSubscriber
from tests.helpers.server import RunningServer

ROOM = "ffmpeg"


def _p256_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ffmpeg")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "whip.crt", directory / "whip.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _publish(
    url: str,
    token: str,
    seconds: float,
    options: dict[str, str],
    stop: threading.Event,
    errors: list[BaseException],
) -> None:
    try:
        out = av.open(url, "w", format="whip", options={"authorization": token, **options})
        video = out.add_stream(
            "libx264",
            rate=30,
            options={
                "tune": "zerolatency",
                "preset": "ultrafast",
                "profile": "baseline",
                "g": "30",
            },
        )
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = out.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        start = time.monotonic()
        i = 0
        while not stop.is_set() and time.monotonic() - start < seconds:
            picture = np.zeros((240, 320, 3), np.uint8)
            picture[:, (i * 4) % 320 :] = 200
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 30)
            for packet in video.encode(frame):
                out.mux(packet)
            tone = (np.sin(np.arange(1600) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
            samples = av.AudioFrame.from_ndarray(
                np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
            )
            samples.sample_rate, samples.pts = 48000, i * 1600
            for packet in audio.encode(samples):
                out.mux(packet)
            i += 1
            time.sleep(max(0.0, start + i / 30 - time.monotonic()))
        out.close()
    except BaseException as exc:  # reported to the test thread
        errors.append(exc)


async def test_ffmpeg_whip_muxer_with_p256_certificate(
    server: RunningServer, tmp_path: Path
) -> None:
    cert, key = _p256_certificate(tmp_path)
    stop, errors = threading.Event(), []
    publisher = threading.Thread(
        target=_publish,
        args=(
            server.url(f"/whip/{ROOM}"),
            server.token(ROOM, "obs", "host"),
            30.0,
            {"cert_file": str(cert), "key_file": str(key)},
            stop,
            errors,
        ),
    )
    publisher.start()
    viewer = WhepSubscriber(kinds=("audio", "video"))
    try:
        # subscribe once the publisher's tracks exist: the stage fills slots as they appear
        await viewer.subscribe(server.base_url, ROOM, server.token(ROOM, "viewer", "audience"))
        frames = await viewer.recv_frames("video", 20, timeout=20)
        assert (frames[-1].width, frames[-1].height) == (320, 240)
        audio = await viewer.recv_frames("audio", 20, timeout=20)
        assert np.abs(audio[-1].to_ndarray()).max() > 1000
    finally:
        stop.set()
        await viewer.close()
        await asyncio.to_thread(publisher.join, 15)
    assert not errors, f"ffmpeg's whip muxer failed: {errors[0]!r}"


async def test_ffmpeg_default_p224_certificate_is_refused_with_a_clear_reason(
    server: RunningServer,
) -> None:
    stop, errors = threading.Event(), []
    await asyncio.to_thread(
        _publish,
        server.url(f"/whip/{ROOM}"),
        server.token(ROOM, "obs", "host"),
        3.0,
        {},
        stop,
        errors,
    )
    assert errors, "FFmpeg's default certificate unexpectedly worked: drop the P-224 note"
    deadline = time.monotonic() + 10
    while "P-224" not in server.log():
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.1)
    assert "-cert_file/-key_file" in server.log()
    assert server.metrics().get("interlive_dropped_packets_total", 0) >= 1
