"""The SDK's Opus FEC adapter: SDP handling, the sender and receiver seams in aiortc.

The sender and receiver tests go through the same private aiortc members the
adapter relies on (the RTCP hook, the encoder slot, the jitter buffer slot), so
a change in aiortc shows up here first.  End-to-end FEC through the real
server is in ``tests/integration/test_opus_inband_fec.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

from interlive.client import ToneAudioTrack, WhepSubscriber, WhipPublisher, render_tone
from interlive.client.opus_fec import (
    PublisherFec,
    answer_accepts_inband_fec,
    offer_with_inband_fec,
)
from interlive.media.opus import FRAME_SAMPLES, OpusPacketInfo

from .fake_whip import FakeWhipServer

TOKEN = "s3cret"
TIMEOUT = 10.0

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
        "a=mid:0",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:1",
        "a=rtpmap:111 OPUS/48000/2",
        "a=fmtp:111 minptime=10",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:2",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
)

ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 minptime=10;useinbandfec=1",
        "",
    ]
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhipServer]:
    server = FakeWhipServer(TOKEN)
    await server.start()
    yield server
    await server.close()


def _report(ssrc: int, fraction_lost: int) -> RtcpRrPacket:
    block = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=fraction_lost,
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1234, reports=[block])


# --- SDP -------------------------------------------------------------------------------


def test_offer_announces_inband_fec_for_every_audio_opus_payload_type() -> None:
    rewritten = offer_with_inband_fec(OFFER)
    lines = rewritten.split("\r\n")
    assert lines[lines.index("a=rtpmap:96 opus/48000/2") + 1] == "a=fmtp:96 useinbandfec=1"
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in lines
    assert "a=fmtp:0" not in rewritten  # PCMU untouched
    video = rewritten[rewritten.index("m=video") :]
    assert "fmtp" not in video  # video's payload type 96 is VP8, not Opus
    assert offer_with_inband_fec(rewritten) == rewritten  # idempotent
    assert offer_with_inband_fec(OFFER.replace("\r\n", "\n")).count("\r") == 0


def test_answer_decides_whether_the_publisher_may_send_fec() -> None:
    assert answer_accepts_inband_fec(ANSWER, "0")
    assert answer_accepts_inband_fec(ANSWER, None)
    assert not answer_accepts_inband_fec(ANSWER, "1")  # no such section
    assert not answer_accepts_inband_fec(ANSWER.replace(";useinbandfec=1", ""), "0")
    assert not answer_accepts_inband_fec(ANSWER.replace("useinbandfec=1", "useinbandfec=0"), "0")
    assert not answer_accepts_inband_fec("this is not SDP", "0")


# --- publisher ---------------------------------------------------------------------------


async def test_receiver_reports_about_the_sender_drive_the_encoders_fec() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver(ToneAudioTrack(realtime=False), direction="sendonly").sender
        fec = PublisherFec(sender)
        encoder: Any = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
        assert encoder is not None, "the adapter's encoder is in aiortc's slot"

        # Reports arrive through the sender's RTCP entry point, as aiortc routes them.
        await sender._handle_rtcp_packet(_report(sender._ssrc, 38))
        state = fec.state()
        assert (state.reports, state.fraction_lost, state.loss_hint) == (1, 38, 0)  # not negotiated

        fec.negotiated = True
        await sender._handle_rtcp_packet(_report(sender._ssrc, 38))
        await sender._handle_rtcp_packet(_report(sender._ssrc ^ 1, 255))  # another stream
        state = fec.state()
        assert (state.reports, state.loss_hint) == (2, 15)
        assert (state.inband_fec, state.packet_loss_perc) == (False, 0)  # not applied yet

        # The encoding thread applies the hint before its next frame.
        timestamps = []
        lbrr = []
        for i in range(30):
            payloads, timestamp = encoder.encode(render_tone(i * FRAME_SAMPLES, FRAME_SAMPLES))
            assert len(payloads) == 1
            lbrr.append(OpusPacketInfo.parse(payloads[0]).lbrr)
            timestamps.append(timestamp)
        state = fec.state()
        assert (state.inband_fec, state.packet_loss_perc, state.frames_encoded) == (True, 15, 30)
        assert timestamps == [i * FRAME_SAMPLES for i in range(30)]
        assert any(lbrr), "no LBRR in 30 frames of a fresh tone with FEC on"

        for _ in range(6):
            await sender._handle_rtcp_packet(_report(sender._ssrc, 0))
        encoder.encode(render_tone(0, FRAME_SAMPLES))
        state = fec.state()
        assert (state.loss_hint, state.inband_fec, state.packet_loss_perc) == (0, False, 0)
    finally:
        await pc.close()


async def test_publisher_keeps_fec_off_when_the_answer_does_not_allow_it(
    fake: FakeWhipServer,
) -> None:
    # The fake answers with aiortc, which echoes no useinbandfec: RFC 7587 then
    # leaves FEC off whatever the loss.
    async with WhipPublisher() as publisher:
        await publisher.publish(fake.base_url, "room", TOKEN, audio=ToneAudioTrack(), video=None)
        body = fake.requests[0].body
        assert "a=fmtp:96 useinbandfec=1" in body
        assert "PCMU" not in body  # Opus only
        await publisher.wait_connected(TIMEOUT)
        sender = publisher.pc.getTransceivers()[0].sender
        await sender._handle_rtcp_packet(_report(sender._ssrc, 128))
        async with asyncio.timeout(TIMEOUT):
            frame = await fake.audio_frames.get()  # the fake decodes what the adapter encoded
        state = publisher.audio_fec_state()
        assert state is not None
        assert not state.negotiated
        assert state.fraction_lost == 128 and state.loss_hint == 0 and not state.inband_fec
        assert state.frames_encoded > 0
        assert frame.sample_rate == 48000


async def test_publisher_without_opus_fec_uses_aiortc_as_before(fake: FakeWhipServer) -> None:
    async with WhipPublisher(opus_fec=False) as publisher:
        await publisher.publish(fake.base_url, "room", TOKEN, audio=ToneAudioTrack(), video=None)
        assert publisher.audio_fec_state() is None
        assert "useinbandfec" not in fake.requests[0].body
        assert "PCMU" in fake.requests[0].body
        await publisher.wait_connected(TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await fake.audio_frames.get()


# --- subscriber --------------------------------------------------------------------------


async def test_subscriber_conceals_lost_packets_in_place(fake: FakeWhipServer) -> None:
    # aiortc's own audio path would stall at each gap and drop frames; the adapter
    # puts one frame in every lost slot, so pts run on without holes. The fake sends
    # aiortc's Opus, which has no LBRR: every loss is concealed, none "recovered".
    dropped: list[int] = []
    async with WhepSubscriber(kinds=("audio",)) as subscriber:
        receiver = subscriber.receivers[0]
        original = receiver._handle_rtp_packet

        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            if packet.sequence_number % 7 == 3:
                dropped.append(packet.sequence_number)
                return
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = lossy  # type: ignore[method-assign]
        await subscriber.subscribe(fake.base_url, "room", TOKEN, identity="alice")
        frames = await subscriber.recv_frames("audio", 60, TIMEOUT)
        stats = subscriber.audio_fec_stats()

    assert all(isinstance(f, av.AudioFrame) for f in frames)
    assert {(f.sample_rate, f.samples, f.layout.name, f.format.name) for f in frames} == {
        (48000, FRAME_SAMPLES, "stereo", "s16")
    }
    pts = [f.pts for f in frames]
    assert pts == [pts[0] + i * FRAME_SAMPLES for i in range(60)]
    assert len(dropped) >= 8
    # a packet dropped before the first one that arrived leaves no slot
    assert stats.frames_concealed >= len(dropped) - 1
    assert stats.frames_recovered_fec == 0 and stats.decode_errors == 0
    assert stats.frames_decoded + stats.frames_concealed >= 60


async def test_subscriber_without_opus_fec_uses_aiortc_as_before(fake: FakeWhipServer) -> None:
    async with WhepSubscriber(kinds=("audio",), opus_fec=False) as subscriber:
        await subscriber.subscribe(fake.base_url, "room", TOKEN)
        frames = await subscriber.recv_frames("audio", 5, TIMEOUT)
        with pytest.raises(ValueError, match="opus_fec=False"):
            subscriber.audio_fec_stats()
    assert len(frames) == 5
    assert "useinbandfec" not in fake.requests[0].body


async def test_audio_fec_stats_index_follows_the_audio_m_lines() -> None:
    async with WhepSubscriber(kinds=("video", "audio", "audio")) as subscriber:
        assert subscriber.audio_fec_stats(1).packets == 0
        with pytest.raises(IndexError):
            subscriber.audio_fec_stats(2)
