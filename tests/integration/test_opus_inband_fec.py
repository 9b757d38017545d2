"""Opus in-band FEC end to end: SDK publisher → real server → SDK subscriber, both legs lossy.

Each client's media goes through its own :class:`ImpairmentProxy` (its SDP
answer's candidate is pointed at the proxy before aiortc applies it; the proxy
relays to the media worker's UDP port).  Once both peers are connected:

* the publisher leg loses ``PUBLISHER_LOSS`` of what the publisher sends, so
  the server's receiver reports show loss and the publisher's encoder must
  turn in-band FEC on with a non-zero loss hint;
* the subscriber leg loses ``VIEWER_LOSS`` of what the server sends, so the
  subscriber's decoder must rebuild lost frames from the LBRR in the packets
  that follow them (the server forwards Opus unchanged).

The publisher sends a speech-like signal: libopus codes LBRR only for frames
its VAD finds active, and a steady tone stops being active within a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fractions
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import av
import numpy as np
from aiortc import RTCSessionDescription

from interlive.client import FrameSourceTrack, WhepSubscriber, WhipPublisher
from interlive.lab.impair import Impairment, ImpairmentConfig
from interlive.lab.proxy import Address, ImpairmentProxy
from interlive.media.opus import OpusDecoderStats
from tests.helpers.server import RunningServer
from tests.helpers.wait import eventually

ROOM = "fec"
PUBLISHER_LOSS = 0.10
VIEWER_LOSS = 0.15
CONNECT_TIMEOUT = 15.0
FEC_ON_TIMEOUT = 20.0
WINDOW_TIMEOUT = 40.0
#: Lost frames the measurement window must see before the counters are judged.
WINDOW_LOST = 60


def media_address(server: RunningServer) -> Address:
    found = re.search(r"UDP port\(s\) (\d+), announcing (\S+)", server.log())
    assert found, server.log()
    return found.group(2), int(found.group(1))


def via(proxy: ImpairmentProxy, worker: Address) -> Callable[[str], str]:
    """An answer rewrite that puts the proxy's address in place of the worker's candidate."""
    host, port = proxy.listen_address

    def rewrite(sdp: str) -> str:
        original = f" {worker[0]} {worker[1]} typ host"
        assert original in sdp, f"the answer has no candidate at {worker}:\n{sdp}"
        return sdp.replace(original, f" {host} {port} typ host")

    return rewrite


def route_answer(session: WhipPublisher | WhepSubscriber, rewrite: Callable[[str], str]) -> None:
    """Apply ``rewrite`` to the SDP answer before aiortc sees it (test-side seam)."""
    pc = session.pc
    original: Callable[[RTCSessionDescription], Awaitable[None]] = pc.setRemoteDescription

    async def rewritten(description: RTCSessionDescription) -> None:
        await original(RTCSessionDescription(sdp=rewrite(description.sdp), type=description.type))

    pc.setRemoteDescription = rewritten  # type: ignore[method-assign]


async def speech_like_frames() -> AsyncIterator[av.AudioFrame]:
    """20 ms mono frames of a voiced, gliding harmonic signal with a 3 Hz syllable envelope."""
    rate, samples = 48000, 960
    phase = 0.0
    n = 0
    while True:
        t = (n * samples + np.arange(samples)) / rate
        f0 = 140.0 + 30.0 * np.sin(2 * math.pi * 0.7 * t)
        phases = phase + 2 * math.pi * np.cumsum(f0) / rate
        phase = float(phases[-1])
        envelope = 0.5 * (1 + np.sin(2 * math.pi * 3.0 * t))
        voiced = sum(
            a * np.sin(k * phases) for k, a in ((1, 1.0), (2, 0.6), (3, 0.4), (5, 0.25), (8, 0.15))
        )
        pcm = np.round(voiced * envelope * 0.2 * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = n * samples
        frame.time_base = fractions.Fraction(1, rate)
        n += 1
        yield frame


def delta(after: OpusDecoderStats, before: OpusDecoderStats) -> OpusDecoderStats:
    return OpusDecoderStats(
        **{
            f.name: getattr(after, f.name) - getattr(before, f.name)
            for f in dataclasses.fields(OpusDecoderStats)
        }
    )


def lossless() -> Impairment:
    return Impairment(ImpairmentConfig(), random.Random(0))


async def test_publisher_turns_fec_on_and_subscriber_recovers_from_it(
    server: RunningServer,
) -> None:
    worker = media_address(server)
    publisher_up, publisher_down = lossless(), lossless()
    viewer_up, viewer_down = lossless(), lossless()
    publisher_leg = ImpairmentProxy(("127.0.0.1", 0), worker, publisher_up, publisher_down)
    viewer_leg = ImpairmentProxy(("127.0.0.1", 0), worker, viewer_up, viewer_down)
    pub = WhipPublisher()
    sub = WhepSubscriber(kinds=("audio",))
    frames_read = 0

    async def drain() -> None:
        nonlocal frames_read
        track = await sub.wait_track("audio", CONNECT_TIMEOUT)
        while True:
            await track.recv()
            frames_read += 1

    reader: asyncio.Task[None] | None = None
    async with publisher_leg, viewer_leg:
        try:
            route_answer(pub, via(publisher_leg, worker))
            source = FrameSourceTrack("audio", speech_like_frames())
            await pub.publish(
                server.base_url,
                ROOM,
                server.token(ROOM, "speaker", "host"),
                audio=source,
                video=None,
            )
            route_answer(sub, via(viewer_leg, worker))
            await sub.subscribe(server.base_url, ROOM, server.token(ROOM, "viewer", "audience"))
            await asyncio.gather(
                pub.wait_connected(CONNECT_TIMEOUT), sub.wait_connected(CONNECT_TIMEOUT)
            )
            reader = asyncio.create_task(drain())
            await eventually(
                lambda: sub.audio_fec_stats().frames_decoded >= 25, "first audio", 10.0
            )
            clean = sub.audio_fec_stats()
            assert clean.frames_lost == 0, f"loss before any impairment: {clean}"

            # Loss only from here: ICE and DTLS above ran over a clean path.
            publisher_up.set_config(ImpairmentConfig(loss=PUBLISHER_LOSS))
            viewer_down.set_config(ImpairmentConfig(loss=VIEWER_LOSS))

            state = await eventually(
                lambda: (s := pub.audio_fec_state()) is not None and s.inband_fec and s,
                "the publisher to turn FEC on",
                FEC_ON_TIMEOUT,
            )
            print(f"publisher FEC on: {state}")
            assert state.negotiated
            assert 1 <= state.packet_loss_perc <= 100
            assert state.fraction_lost is not None and state.fraction_lost > 0

            # Give the first LBRR-bearing packets time to pass the server, then measure.
            start = sub.audio_fec_stats()
            await eventually(
                lambda: delta(sub.audio_fec_stats(), start).frames_lost >= WINDOW_LOST,
                f"{WINDOW_LOST} lost frames at the subscriber",
                WINDOW_TIMEOUT,
            )
            window = delta(sub.audio_fec_stats(), start)
            end_state = pub.audio_fec_state()
        finally:
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await asyncio.gather(sub.close(), pub.close(), return_exceptions=True)

    print(
        f"subscriber window: {window}; frames read {frames_read}\n"
        f"publisher leg: {publisher_leg.stats()}; up {publisher_up.stats()}\n"
        f"viewer leg: {viewer_leg.stats()}; down {viewer_down.stats()}\n"
        f"publisher at the end: {end_state}"
    )
    # the proxies really dropped packets on both legs
    assert publisher_up.stats().lost > 0
    assert viewer_down.stats().lost > 0
    # the lost frames were rebuilt from the next packet's LBRR far more often than
    # concealed: a frame is FEC-recoverable when the packet after it arrived (about
    # (1 - 0.10) * (1 - 0.15) of the time) and carries LBRR (libopus's VAD keeps it
    # for most frames of this signal), so expect roughly 0.7 of the losses
    lost = window.frames_lost
    assert lost >= WINDOW_LOST
    assert window.frames_recovered_fec >= 0.4 * lost, window
    assert window.frames_concealed < 0.6 * lost, window
    assert window.decode_errors == 0
