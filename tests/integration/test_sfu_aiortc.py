"""aiortc clients through the real server: WHIP publishers, WHEP subscribers.

Each publisher's test pattern carries its frame index in a block code, offset
per publisher, so a subscriber can tell whose video it decodes.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from interlive.client import (
    ClientError,
    TestPatternVideoTrack,
    ToneAudioTrack,
    WhepSubscriber,
    WhipPublisher,
    decode_frame_index,
)
from tests.helpers.server import RunningServer

ROOM = "stage"
OFFSET = 1_000_000  # publisher i's frame indices start at i * OFFSET


def _publisher_of(index: int) -> int:
    return index // OFFSET


def _tone_power(frames: list[object]) -> float:
    samples = np.concatenate([f.to_ndarray().astype(np.float64).ravel() for f in frames])  # type: ignore[attr-defined]
    return float(np.sqrt(np.mean(samples**2)))


async def _publish(server: RunningServer, n: int, codec: str) -> list[WhipPublisher]:
    publishers = []
    for i in range(n):
        pub = WhipPublisher()
        await pub.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, f"pub{i}", "cohost"),
            audio=ToneAudioTrack(frequency=300 + 200 * i),
            video=TestPatternVideoTrack(320, 180, fps=15, start_index=i * OFFSET),
            video_codec=codec,
        )
        publishers.append(pub)
    await asyncio.gather(*(p.wait_connected(15) for p in publishers))
    return publishers


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_three_publishers_three_subscribers(server: RunningServer, codec: str) -> None:
    publishers = await _publish(server, 3, codec)
    subscribers = []
    try:
        for i in range(3):
            sub = WhepSubscriber(kinds=("audio", "video") * 3)
            await sub.subscribe(server.base_url, ROOM, server.token(ROOM, f"viewer{i}", "audience"))
            subscribers.append(sub)

        async def check(sub: WhepSubscriber) -> set[int]:
            seen: set[int] = set()
            for slot in range(3):
                frames = await sub.recv_frames("video", 10, timeout=30, index=slot)
                indices = {decode_frame_index(f) for f in frames[-5:]}
                assert None not in indices, "a decoded frame lost its block code"
                owners = {_publisher_of(i) for i in indices if i is not None}
                assert len(owners) == 1, f"slot {slot} mixes publishers {owners}"
                seen |= owners
                audio = await sub.recv_frames("audio", 25, timeout=30, index=slot)
                assert _tone_power(audio[-10:]) > 100, "audio slot is silent"
            return seen

        results = await asyncio.gather(*(check(s) for s in subscribers))
        for seen in results:
            assert seen == {0, 1, 2}, f"a subscriber decoded publishers {seen}, not all three"
        metrics = server.metrics()
        assert metrics["interlive_sessions"] == 6
        assert metrics["interlive_packets_sent_total"] > 0
    finally:
        await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)
        await asyncio.gather(*(p.close() for p in publishers), return_exceptions=True)


async def test_subscriber_of_one_identity_and_leave(server: RunningServer) -> None:
    publishers = await _publish(server, 2, "VP8")
    sub = WhepSubscriber(kinds=("audio", "video"))
    try:
        await sub.subscribe(
            server.base_url, ROOM, server.token(ROOM, "viewer", "audience"), identity="pub1"
        )
        frames = await sub.recv_frames("video", 10, timeout=30)
        assert {
            _publisher_of(i) for f in frames[-5:] if (i := decode_frame_index(f)) is not None
        } == {1}
        # The publisher leaves: DELETE ends its session and the server says so in metrics.
        await publishers[1].close()
        deadline = asyncio.get_running_loop().time() + 10
        while server.metrics()["interlive_sessions"] != 2:
            assert asyncio.get_running_loop().time() < deadline, "session not cleaned up"
            await asyncio.sleep(0.1)
    finally:
        await sub.close()
        for p in publishers:
            await p.close()


async def test_bad_requests(server: RunningServer) -> None:
    pub = WhipPublisher()
    with pytest.raises(ClientError) as bad_token:
        await pub.publish(server.base_url, ROOM, "not-a-jwt", audio=ToneAudioTrack(), video=None)
    assert bad_token.value.status == 401
    await pub.close()
    viewer = WhipPublisher()
    with pytest.raises(ClientError) as forbidden:
        await viewer.publish(
            server.base_url,
            ROOM,
            server.token(ROOM, "v", "audience"),
            audio=ToneAudioTrack(),
            video=None,
        )
    assert forbidden.value.status == 403
    await viewer.close()
    other_room = WhipPublisher()
    with pytest.raises(ClientError) as wrong_room:
        await other_room.publish(
            server.base_url,
            ROOM,
            server.token("elsewhere", "x", "host"),
            audio=ToneAudioTrack(),
            video=None,
        )
    assert wrong_room.value.status == 403
    await other_room.close()
