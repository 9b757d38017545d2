"""WhipPublisher / WhepSubscriber against an in-process stand-in endpoint.

The stand-in (fake_whip.py) answers with a second aiortc peer, so these tests
run real ICE, DTLS and SRTP over the machine's host candidates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import pytest

from interlive.client import (
    ClientError,
    ProtocolError,
    TestPatternVideoTrack,
    ToneAudioTrack,
    WhepSubscriber,
    WhipPublisher,
    attach_packet_tap,
    decode_frame_index,
    whep_url,
    whip_url,
)
from interlive.client.raw import RtpPacketView

from .fake_whip import FakeWhipServer

TOKEN = "s3cret"
TIMEOUT = 10.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhipServer]:
    server = FakeWhipServer(TOKEN)
    await server.start()
    yield server
    await server.close()


async def _indexes(fake: FakeWhipServer, n: int) -> list[int | None]:
    return [await fake.video_indexes.get() for _ in range(n)]


def test_urls_encode_room_and_identity() -> None:
    assert whip_url("http://h:1/", "a b/c") == "http://h:1/whip/a%20b%2Fc"
    assert whep_url("http://h:1", "r") == "http://h:1/whep/r"
    assert whep_url("http://h:1", "r", "bob") == "http://h:1/whep/r/bob"


@pytest.mark.parametrize("codec", [None, "H264"])
async def test_published_pattern_reaches_the_server(
    fake: FakeWhipServer, codec: str | None
) -> None:
    video = TestPatternVideoTrack(320, 180)
    async with WhipPublisher() as publisher:
        await publisher.publish(
            fake.base_url, "room 1", TOKEN, audio=ToneAudioTrack(), video=video, video_codec=codec
        )
        # Location "../resources/1" resolves against /whip/room%201
        assert publisher.location == f"{fake.base_url}/resources/1"
        assert publisher.etag == '"v1"'
        await publisher.wait_connected(TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            indexes = await _indexes(fake, 10)
            audio = await fake.audio_frames.get()
    await asyncio.wait_for(fake.deleted.wait(), TIMEOUT)
    assert publisher.location == f"{fake.base_url}/resources/1"  # kept after close

    known = [i for i in indexes if i is not None]
    assert known == indexes, "every received frame carries a readable index"
    assert known == sorted(set(known))  # strictly increasing
    assert known[-1] < video.frames_sent
    assert audio.sample_rate == 48000

    post, delete = fake.requests
    assert (post.method, post.path) == ("POST", "/whip/room%201")
    assert post.authorization == f"Bearer {TOKEN}"
    assert post.content_type == "application/sdp"
    assert post.body.count("a=candidate:") >= 1  # gathered before POST, no trickle
    assert "a=sendonly" in post.body
    if codec == "H264":
        assert "H264/90000" in post.body
        assert "VP8/90000" not in post.body
    assert (delete.method, delete.path, delete.authorization) == (
        "DELETE",
        "/resources/1",
        f"Bearer {TOKEN}",
    )


async def test_subscriber_receives_one_identity_and_taps_packets(fake: FakeWhipServer) -> None:
    packets: list[tuple[int, int, int]] = []

    def tap(packet: RtpPacketView, arrival_ms: int) -> None:
        packets.append((packet.payload_type, packet.sequence_number, arrival_ms))

    async with WhepSubscriber(kinds=("audio", "video")) as subscriber:
        detach = attach_packet_tap(subscriber.receivers[1], tap)
        await subscriber.subscribe(fake.base_url, "room", TOKEN, identity="alice")
        assert subscriber.location == f"{fake.base_url}/resources/1"
        assert [t.kind for t in subscriber.tracks] == ["audio", "video"]
        frames = await subscriber.recv_frames("video", 5, TIMEOUT)
        sounds = await subscriber.recv_frames("audio", 3, TIMEOUT)
        detach()
    await asyncio.wait_for(fake.deleted.wait(), TIMEOUT)

    indexes = [decode_frame_index(f) for f in frames if isinstance(f, av.VideoFrame)]
    known = [i for i in indexes if i is not None]
    assert len(known) == len(indexes) == 5
    assert known == sorted(set(known))
    assert all(isinstance(f, av.AudioFrame) for f in sounds)
    assert packets, "the tap saw no RTP packet"
    assert fake.requests[0].path == "/whep/room/alice"
    assert "a=recvonly" in fake.requests[0].body


async def test_m_lines_beyond_the_servers_streams_produce_no_track(
    fake: FakeWhipServer,
) -> None:
    async with WhepSubscriber(kinds=("video", "video")) as subscriber:
        await subscriber.subscribe(fake.base_url, "room", TOKEN)
        assert [t.kind for t in subscriber.tracks] == ["video"]
        frames = await subscriber.recv_frames("video", 2, TIMEOUT)
        assert len(frames) == 2
        with pytest.raises(TimeoutError):
            await subscriber.wait_track("video", 0.05, index=1)
    assert fake.requests[0].path == "/whep/room"


async def test_bad_token_raises_client_error_with_server_code(fake: FakeWhipServer) -> None:
    publisher = WhipPublisher()
    with pytest.raises(ClientError) as caught:
        await publisher.publish(
            fake.base_url, "room", "wrong", audio=None, video=TestPatternVideoTrack(320, 180)
        )
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    await publisher.close()  # nothing to delete
    assert [r.method for r in fake.requests] == ["POST"]


async def test_unknown_identity_is_404(fake: FakeWhipServer) -> None:
    async with WhepSubscriber() as subscriber:
        with pytest.raises(ClientError) as caught:
            await subscriber.subscribe(fake.base_url, "room", TOKEN, identity="nobody")
    assert (caught.value.status, caught.value.code) == (404, "participant_not_found")


async def test_created_without_location_is_a_protocol_error(fake: FakeWhipServer) -> None:
    fake.omit_location = True
    async with WhepSubscriber(kinds=("video",)) as subscriber:
        with pytest.raises(ProtocolError):
            await subscriber.subscribe(fake.base_url, "room", TOKEN)
        assert subscriber.location is None


async def test_failed_delete_is_raised_after_local_cleanup(fake: FakeWhipServer) -> None:
    subscriber = WhepSubscriber(kinds=("video",))
    await subscriber.subscribe(fake.base_url, "room", TOKEN)
    fake.delete_status = 500
    with pytest.raises(ClientError) as caught:
        await subscriber.close()
    assert caught.value.status == 500
    assert subscriber.pc.connectionState == "closed"
    await subscriber.close()  # idempotent


async def test_negotiation_happens_once(fake: FakeWhipServer) -> None:
    async with WhepSubscriber(kinds=("video",)) as subscriber:
        await subscriber.subscribe(fake.base_url, "room", TOKEN)
        with pytest.raises(RuntimeError):
            await subscriber.subscribe(fake.base_url, "room", TOKEN)


async def test_wait_connected_fails_fast_on_a_closed_connection() -> None:
    publisher = WhipPublisher()
    await publisher.close()
    with pytest.raises(ConnectionError):
        await publisher.wait_connected(TIMEOUT)


async def test_codecs_aiortc_lacks_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="VP9"):
        WhepSubscriber(video_codec="VP9")
    async with WhipPublisher() as publisher:
        with pytest.raises(ValueError, match="VP9"):
            await publisher.publish(
                "http://127.0.0.1:9",
                "r",
                TOKEN,
                audio=None,
                video=TestPatternVideoTrack(),
                video_codec="VP9",
            )
        with pytest.raises(ValueError):
            await publisher.publish("http://127.0.0.1:9", "r", TOKEN, audio=None, video=None)
