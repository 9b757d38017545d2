"""Debian's ffmpeg pushes RTMP into a real server; aiortc WHEP viewers decode it.

The push is the documented one (testsrc2 640x360 at 30 fps, x264 zerolatency
High profile, a 440 Hz tone in AAC).  The viewer must decode H.264 frames of
640x360 and hear the tone (transcoded to Opus); a push with a bad token, for
another identity, to an unknown app or by an audience member is refused and
joins nothing (so is MP3 audio, once the stream shows it); a second push of
the same identity replaces the first; a stalled publisher leaves after 10 s;
random and mutated RTMP streams leave the server healthy and another room's
stream flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from interlive.auth import mint_token
from interlive.client import WhepSubscriber
from interlive.rtmp import amf0
from interlive.rtmp.chunk import ChunkWriter, MessageType
from interlive.rtmp.events import ConnectRequested, MediaKind, MediaMessage, PublishRequested
from interlive.rtmp.handshake import HANDSHAKE_SIZE
from interlive.rtmp.server import RtmpServerConnection
from tests.helpers.rtmp import aiortc_accepts_h264_high, ffmpeg_publisher, rtmp_server_args
from tests.helpers.server import RunningServer
from tests.helpers.wait import poll_async as poll

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"
MEDIA_TIMEOUT = 25.0


def metric(server: RunningServer, name: str) -> float:
    return server.metrics().get(name, 0.0)


def dominant_frequency(frames: list[object]) -> float:
    samples = np.concatenate(
        [f.to_ndarray().reshape(-1, 2)[:, 0].astype(np.float64) for f in frames]  # type: ignore[attr-defined]
    )
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 48000 / len(samples))


async def test_ffmpeg_push_reaches_an_aiortc_viewer(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "rtmp-live"
    with aiortc_accepts_h264_high():
        viewer = WhepSubscriber(kinds=("audio", "video"))
        try:
            await viewer.subscribe(server.base_url, room, server.token(room, "viewer", "audience"))
            token = server.token(room, "obs", "cohost")
            url = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={token}"
            with ffmpeg_publisher(url, tmp_path) as ffmpeg:
                first = await viewer.recv_frames("video", 1, timeout=MEDIA_TIMEOUT)
                first_frame_s = time.monotonic() - ffmpeg.started
                frames = await viewer.recv_frames("video", 60, timeout=MEDIA_TIMEOUT)
                audio = await viewer.recv_frames("audio", 100, timeout=MEDIA_TIMEOUT)
                sizes = {(f.width, f.height) for f in [*first, *frames]}
                assert sizes == {(640, 360)}, sizes
                tone = dominant_frequency(audio[-50:])
                assert abs(tone - 440) < 10, f"the viewer hears {tone:.0f} Hz, not 440 Hz"
                assert audio[-1].sample_rate == 48000
                metrics = server.metrics()
                transcode = metrics["interlive_rtmp_audio_transcode_seconds_total"]
                aac_frames = metrics["interlive_rtmp_audio_frames_total"]
                print(
                    f"RTMP push -> aiortc viewer: first decoded frame {1000 * first_frame_s:.0f} "
                    f"ms after ffmpeg started; {len(frames) + 1} frames of 640x360; tone "
                    f"{tone:.0f} Hz; AAC->Opus {1000 * transcode:.0f} ms for {aac_frames:.0f} "
                    f"AAC frames ({1000 * transcode / (aac_frames * 1024 / 48000):.1f} ms per "
                    "second of audio)"
                )
                assert metrics["interlive_rtmp_publishers"] == 1
                assert metrics["interlive_sessions"] == 2
                assert metrics["interlive_rtmp_rtp_packets_sent_total"] > 100
                assert metrics["interlive_rtmp_keyframe_requests_total"] >= 1  # the viewer's join
                assert ffmpeg.running(), ffmpeg.log()
            # ffmpeg quit ('q'): it unpublished, the session ended, the viewer stays
            await poll(lambda: server.metrics(), lambda m: m["interlive_sessions"] == 1,  # type: ignore[index]
                       10, "the RTMP session to end")  # fmt: skip
            assert metric(server, "interlive_rtmp_publishers") == 0
        finally:
            await viewer.close()
    assert "Traceback" not in server.log()


async def test_refused_pushes_join_nothing(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "guarded"
    forged = mint_token("not-the-secret-" * 3, room=room, identity="obs", role="host")
    cases = [
        (f"live/{room}/obs?token={forged}", "Signature verification failed"),
        (f"live/{room}/obs?token={server.token(room, 'other', 'host')}", "token is for 'other'"),
        (f"live/{room}/obs?token={server.token('elsewhere', 'obs', 'host')}", "room 'elsewhere'"),
        (f"live/{room}/obs?token={server.token(room, 'obs', 'audience')}", "may not publish"),
        (f"live/{room}/obs", "missing ?token="),
        (f"vod/{room}/obs?token={server.token(room, 'obs', 'host')}", "unknown application"),
    ]
    for path, reason in cases:
        with ffmpeg_publisher(f"rtmp://127.0.0.1:{port}/{path}", tmp_path, seconds=5) as ffmpeg:
            code = await asyncio.get_running_loop().run_in_executor(None, ffmpeg.wait, 15)
            assert code != 0, f"{path}: ffmpeg was not refused\n{ffmpeg.log()}"
            assert reason in ffmpeg.log(), f"{path}: {reason!r} not in ffmpeg's log\n{ffmpeg.log()}"
    # a codec we do not carry is refused once the stream shows it, with the reason
    good = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={server.token(room, 'obs', 'host')}"
    with ffmpeg_publisher(good, tmp_path, seconds=5, audio_codec="libmp3lame") as ffmpeg:
        code = await asyncio.get_running_loop().run_in_executor(None, ffmpeg.wait, 15)
        assert code != 0 and "audio codec MP3 is not supported" in ffmpeg.log(), ffmpeg.log()
    metrics = server.metrics()
    assert metrics["interlive_rtmp_rejected_total"] == len(cases) + 1, metrics
    assert metrics["interlive_rtmp_publishers_total"] == 0
    assert metrics["interlive_sessions"] == 0 and metrics["interlive_rooms"] == 0
    log = server.log()
    assert log.count("refused (bad_token)") == 1 and log.count("refused (forbidden)") == 3


async def test_second_push_replaces_the_first_and_a_stalled_one_leaves(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    room = "replace"
    url = f"rtmp://127.0.0.1:{port}/live/{room}/obs?token={server.token(room, 'obs', 'host')}"
    with aiortc_accepts_h264_high():
        viewers = [WhepSubscriber(kinds=("audio", "video")) for _ in range(2)]
        try:
            tokens = [server.token(room, f"viewer{i}", "audience") for i in range(2)]
            with ffmpeg_publisher(url, tmp_path, name="first") as first:
                await viewers[0].subscribe(server.base_url, room, tokens[0])
                await viewers[0].recv_frames("video", 10, timeout=MEDIA_TIMEOUT)
                with ffmpeg_publisher(url, tmp_path, name="second") as second:
                    code = await asyncio.get_running_loop().run_in_executor(None, first.wait, 15)
                    assert code != 0 and "published again" in first.log(), first.log()
                    # The first push's tracks ended (its viewers got an RTCP BYE, which ends
                    # an aiortc track); the second push is the participant now.
                    await viewers[1].subscribe(server.base_url, room, tokens[1])
                    frames = await viewers[1].recv_frames("video", 30, timeout=MEDIA_TIMEOUT)
                    assert {(f.width, f.height) for f in frames} == {(640, 360)}
                    await poll(lambda: metric(server, "interlive_sessions"), lambda n: n == 3,
                               10, "one push and two viewers")  # fmt: skip
                    assert metric(server, "interlive_rtmp_publishers") == 1
                    assert second.running()
                    began = time.monotonic()
                    second.pause()  # stalls with the TCP connection open
                    await poll(lambda: metric(server, "interlive_rtmp_publishers"),
                               lambda n: n == 0, 20, "the stalled publisher to leave")  # fmt: skip
                    stalled_after = time.monotonic() - began
                    assert 9 <= stalled_after <= 16, stalled_after
                    assert metric(server, "interlive_sessions") == 2
            log = server.log()
            assert "(replaced)" in log and "(stalled)" in log
            assert "closed (rtmp-stalled)" in log
        finally:
            for viewer in viewers:
                await viewer.close()


# --- fuzzing the real edge ------------------------------------------------------------------


def _fixture_media() -> list[MediaMessage]:
    server = RtmpServerConnection(random_bytes=bytes)
    server.receive_data(FIXTURE.read_bytes())
    out: list[MediaMessage] = []
    while (event := server.next_event()) is not None:
        if isinstance(event, ConnectRequested):
            server.accept_connect()
        elif isinstance(event, PublishRequested):
            server.accept_publish()
        elif isinstance(event, MediaMessage):
            out.append(event)
    return out


_TYPES = {MediaKind.AUDIO: MessageType.AUDIO, MediaKind.VIDEO: MessageType.VIDEO,
          MediaKind.DATA: MessageType.DATA_AMF0}  # fmt: skip


def publish_stream(
    room: str, identity: str, token: str, rng: random.Random | None = None
) -> tuple[bytes, int]:
    """A client's whole stream (handshake, connect, publish, media) and where its media starts.

    With ``rng``, one media message in ten has bytes of its payload (the FLV tag body)
    overwritten: well-formed RTMP carrying broken FLV, H.264 and AAC.
    """
    writer = ChunkWriter()
    out = bytearray(b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(HANDSHAKE_SIZE))

    def command(name: str, txn: float, *args: amf0.AmfValue, stream_id: int = 0) -> None:
        out.extend(writer.write(3, MessageType.COMMAND_AMF0, stream_id, 0,
                                amf0.encode_all(name, txn, *args)))  # fmt: skip

    command("connect", 1, {"app": f"live/{room}", "tcUrl": f"rtmp://h/live/{room}",
                           "flashVer": "FMLE/3.0"})  # fmt: skip
    command("createStream", 2, None)
    command("publish", 3, None, f"{identity}?token={token}", "live", stream_id=1)
    media_start = len(out)
    for m in _fixture_media():
        payload = bytearray(m.payload)
        if rng is not None and payload and rng.random() < 0.1:
            for _ in range(rng.randint(1, 8)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
        out.extend(writer.write(6, _TYPES[m.kind], 1, m.timestamp, bytes(payload)))
    return bytes(out), media_start


def mutate(data: bytes, start: int, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 30)):
        at = rng.randrange(start, len(buf))
        op = rng.random()
        if op < 0.6:
            buf[at] = rng.randrange(256)
        elif op < 0.8:
            del buf[at : at + rng.randint(1, 64)]
        else:
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(buf)


async def throw(port: int, data: bytes, rng: random.Random) -> None:
    """Send ``data`` in random pieces, reading whatever comes back, then hang up."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        pos = 0
        while pos < len(data) and not writer.is_closing():
            size = rng.choice([1, 13, 500, 4096, 30000])
            writer.write(data[pos : pos + size])
            pos += size
            await writer.drain()
            if rng.random() < 0.2:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(65536), 0.01)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_random_and_mutated_streams_leave_the_server_healthy(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port, args = rtmp_server_args()
    server = server_factory(extra_args=args)
    calm = "calm"
    url = f"rtmp://127.0.0.1:{port}/live/{calm}/obs?token={server.token(calm, 'obs', 'host')}"
    with aiortc_accepts_h264_high():
        viewer = WhepSubscriber(kinds=("audio", "video"))
        try:
            await viewer.subscribe(server.base_url, calm, server.token(calm, "viewer", "audience"))
            with ffmpeg_publisher(url, tmp_path) as ffmpeg:
                await viewer.recv_frames("video", 5, timeout=MEDIA_TIMEOUT)
                track = await viewer.wait_track("video")
                decoded = 0

                async def watch() -> None:
                    nonlocal decoded
                    while True:
                        await track.recv()
                        decoded += 1

                watcher = asyncio.create_task(watch())
                rng = random.Random(6)
                valid, media_start = publish_stream("fuzz", "f", server.token("fuzz", "f", "host"))
                streams = [valid]
                streams += [
                    publish_stream("fuzz", f"p{i % 4}", server.token("fuzz", f"p{i % 4}", "host"),
                                   rng)[0]
                    for i in range(40)
                ]  # fmt: skip
                streams += [mutate(valid, media_start, rng) for _ in range(100)]
                streams += [mutate(valid, 3073, rng) for _ in range(20)]  # commands too
                handshake = b"\x03" + bytes(2 * HANDSHAKE_SIZE)
                streams += [handshake + rng.randbytes(rng.randint(1, 5000)) for _ in range(20)]
                streams += [rng.randbytes(rng.randint(1, 5000)) for _ in range(20)]
                began, before = time.monotonic(), decoded
                for i in range(0, len(streams), 8):
                    await asyncio.gather(*(throw(port, s, rng) for s in streams[i : i + 8]))
                fuzz_seconds = time.monotonic() - began
                await poll(lambda: metric(server, "interlive_rtmp_connections"),
                           lambda n: n == 1, 15, "fuzz connections to close")  # fmt: skip
                await asyncio.sleep(1.0)
                during = decoded - before
                watcher.cancel()
                # the calm room never noticed: about 30 fps all along
                assert during >= 25 * fuzz_seconds, (during, fuzz_seconds)
                assert ffmpeg.running(), ffmpeg.log()
                status, _ = server.get("/healthz")
                assert status == 200
                metrics = server.metrics()
                assert metrics["interlive_rtmp_publishers"] == 1
                assert metrics["interlive_sessions"] == 2  # calm's push and its viewer
                assert metrics["interlive_rtmp_publishers_total"] >= 2  # the valid fuzz stream too
                print(
                    f"fuzz: {len(streams)} streams in {fuzz_seconds:.1f} s; "
                    f"protocol errors {metrics['interlive_rtmp_protocol_errors_total']:.0f}, "
                    f"refused {metrics.get('interlive_rtmp_rejected_total', 0):.0f}; the calm room "
                    f"decoded {during} frames meanwhile"
                )
        finally:
            await viewer.close()
    log = server.log()
    assert "Traceback" not in log and "internal-error" not in log, log[-3000:]


def test_rtmp_port_zero_turns_the_edge_off(server: RunningServer) -> None:
    # test servers run with --rtmp-port 0 unless they ask for a port: nothing listens for RTMP
    assert "RTMP ingest on" not in server.log()
    assert "interlive_rtmp_connections" not in server.metrics()
