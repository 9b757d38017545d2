"""The benchmark's synthetic peer against interlive's own server-side transport, in process.

No sockets: datagrams are handed between a :class:`PeerCore` (the client) and
the server's :class:`IceLiteResponder` and :class:`DtlsEndpoint` by hand, with
time passed in, so retransmission after loss is tested exactly.
"""

from __future__ import annotations

import itertools
import struct
import time

import pytest

from interlive.bench.media import (
    AUDIO_PT,
    MAX_PAYLOAD,
    STAMP,
    VIDEO_PT,
    AudioSource,
    StreamCounter,
    VideoSettings,
    VideoSource,
    expected_and_received,
    is_vp8_keyframe_start,
    payload_offset,
    stamp_offset,
)
from interlive.bench.synthetic import (
    AnswerError,
    LocalStreams,
    PeerCore,
    PeerState,
    RemoteDescription,
    build_offer,
    parse_answer,
)
from interlive.codecs.vp8 import parse_vp8
from interlive.rtp.packet import RtpPacket
from interlive.transport.dtls import Certificate, DtlsEndpoint, DtlsState
from interlive.transport.ice import IceEvent, IceLiteResponder, StunError
from interlive.transport.srtp import SrtpContext

SERVER_ADDR = ("127.0.0.1", 40000)
CLIENT_ADDR = ("127.0.0.1", 50000)


class ServerSide:
    """The server's half of one session, as a media worker composes it."""

    def __init__(self, client_fingerprint: str, client_ufrag: str) -> None:
        self.certificate = Certificate.generate()
        self.ice = IceLiteResponder("srvufrag", "server-password-0123456789", client_ufrag)
        self.dtls = DtlsEndpoint(
            self.certificate.make_context(),
            is_server=True,
            remote_fingerprints=[("sha-256", client_fingerprint)],
        )
        self.events: list[IceEvent] = []
        self.srtp: SrtpContext | None = None

    def remote_description(self) -> RemoteDescription:
        return RemoteDescription(
            ice_ufrag=self.ice.local_ufrag,
            ice_pwd=self.ice.local_pwd,
            address=SERVER_ADDR,
            fingerprints=[("sha-256", self.certificate.fingerprint())],
            setup="passive",
        )

    def receive(self, data: bytes, now: float) -> list[bytes]:
        if data[0] < 4:
            result = self.ice.handle_request(data, CLIENT_ADDR, now)
            self.events.append(result.event)
            return [result.response]
        self.dtls.receive(data, now)
        if self.dtls.state is DtlsState.CONNECTED and self.srtp is None:
            assert self.dtls.srtp_keys is not None
            self.srtp = SrtpContext(self.dtls.srtp_keys)
        return self.dtls.datagrams_to_send()


def make_pair() -> tuple[PeerCore, ServerSide]:
    client_cert = Certificate.generate()
    server = ServerSide(client_cert.fingerprint(), "cliufrag")
    core = PeerCore(
        context=client_cert.make_context(),
        local_ufrag="cliufrag",
        local_pwd="client-password-0123456789",
        remote=server.remote_description(),
    )
    return core, server


def run(core: PeerCore, server: ServerSide, now: float, drop: set[int] | None = None) -> float:
    """Exchange datagrams until quiet, firing timers; ``drop`` numbers client datagrams to lose."""
    sent = 0
    for _ in range(200):
        outgoing = core.datagrams_to_send()
        if not outgoing:
            timer = core.get_timer()
            if core.state is PeerState.CONNECTED or timer is None:
                return now
            now = max(now, timer)
            core.handle_timer(now)
            continue
        for datagram in outgoing:
            sent += 1
            if drop and sent in drop:
                continue
            for reply in server.receive(datagram, now):
                core.receive(reply, now)
        now += 0.001
    raise AssertionError(f"no progress: client {core.state}, server DTLS {server.dtls.state}")


def test_ice_dtls_srtp_with_the_server_transport() -> None:
    core, server = make_pair()
    core.start(0.0)
    run(core, server, 0.0)
    assert core.state is PeerState.CONNECTED
    assert IceEvent.NOMINATED in server.events
    assert server.ice.selected == CLIENT_ADDR
    assert core.srtp is not None and server.srtp is not None
    assert core.srtp.profile == "AEAD_AES_128_GCM"

    video = VideoSource(ssrc=1234)
    packet = video.next_frame(now_ns=42)[0].restamp(4242)
    plain = server.srtp.unprotect_rtp(core.srtp.protect_rtp(packet))
    parsed = RtpPacket.parse(plain)
    assert parse_vp8(parsed.payload).is_keyframe  # the first frame is a keyframe
    back = core.srtp.unprotect_rtp(server.srtp.protect_rtp(plain))
    offset = payload_offset(back)
    assert STAMP.unpack_from(back, stamp_offset(back, offset, video=True))[0] == 4242


def test_lost_checks_are_retransmitted() -> None:
    core, server = make_pair()
    core.start(0.0)
    end = run(core, server, 0.0, drop={1, 2})  # the first two Binding requests
    assert core.state is PeerState.CONNECTED
    assert core.checks_sent == 3
    assert end >= PeerCore.CHECK_RTO * 3


def test_lost_client_hello_is_retransmitted() -> None:
    # OpenSSL times DTLS retransmissions on its own clock, so real time has to pass.
    core, server = make_pair()
    core.start(0.0)
    (check,) = core.datagrams_to_send()
    for reply in server.receive(check, 0.0):
        core.receive(reply, 0.0)
    assert core.state is PeerState.HANDSHAKING
    assert core.datagrams_to_send()  # the ClientHello, lost
    timer = core.get_timer()
    assert timer is not None and timer <= 1.5
    time.sleep(timer + 0.05)
    core.handle_timer(timer + 0.05)
    run(core, server, timer + 0.05)
    assert core.state is PeerState.CONNECTED


def test_wrong_server_password_never_connects() -> None:
    core, server = make_pair()
    bad = RemoteDescription(
        ice_ufrag=server.ice.local_ufrag,
        ice_pwd="not-the-password-0123456789",
        address=SERVER_ADDR,
        fingerprints=[("sha-256", server.certificate.fingerprint())],
        setup="passive",
    )
    core = PeerCore(
        context=Certificate.generate().make_context(),
        local_ufrag="cliufrag",
        local_pwd="client-password-0123456789",
        remote=bad,
    )
    core.start(0.0)
    with pytest.raises(StunError):
        server.receive(core.datagrams_to_send()[0], 0.0)
    core.handle_timer(PeerCore.CONNECT_TIMEOUT)
    assert core.state is PeerState.FAILED
    assert core.failure is not None and "not connected" in core.failure


def test_consent_checks_follow_the_connection() -> None:
    core, server = make_pair()
    core.start(0.0)
    now = run(core, server, 0.0)
    timer = core.get_timer()
    assert timer is not None and now < timer <= now + 1.2 * PeerCore.CONSENT_INTERVAL
    core.handle_timer(timer)
    (check,) = core.datagrams_to_send()
    (response,) = server.receive(check, timer)
    core.receive(response, timer)
    assert core.last_response == timer
    # no answers for 30 s: consent is lost
    later = timer
    while core.state is PeerState.CONNECTED:
        later = core.get_timer() or later + 1
        core.handle_timer(later)
        core.datagrams_to_send()
    assert core.state is PeerState.FAILED
    assert later - timer > PeerCore.CONSENT_TIMEOUT


def test_offer_shapes() -> None:
    streams = LocalStreams(111, 222, 333, "cname1", "stream1")
    offer = build_offer(
        publish=True,
        ice_ufrag="abcd",
        ice_pwd="p" * 24,
        fingerprint="AA:BB",
        candidate=("127.0.0.1", 5000),
        streams=streams,
    )
    lines = offer.split("\r\n")
    assert "a=group:BUNDLE 0 1" in lines
    assert lines.count("a=sendonly") == 2
    assert "a=ssrc-group:FID 222 333" in lines
    assert f"a=rtpmap:{AUDIO_PT} opus/48000/2" in lines
    assert f"a=rtpmap:{VIDEO_PT} VP8/90000" in lines
    assert "a=fmtp:97 apt=96" in lines
    assert "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host generation 0" in lines
    sub = build_offer(
        publish=False,
        ice_ufrag="abcd",
        ice_pwd="p" * 24,
        fingerprint="AA:BB",
        candidate=("127.0.0.1", 5000),
    )
    assert sub.count("a=recvonly") == 2 and "a=ssrc:" not in sub
    with pytest.raises(ValueError):
        build_offer(
            publish=True, ice_ufrag="a", ice_pwd="b", fingerprint="c", candidate=("1.2.3.4", 1)
        )


ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=ice-lite",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=ice-ufrag:srv1",
        "a=ice-pwd:serverpasswordserverpassword",
        "a=fingerprint:sha-256 01:02:03",
        "a=setup:passive",
        "a=mid:0",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40123 typ host",
        "a=sendonly",
        "a=ssrc:777 cname:x",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=ice-ufrag:srv1",
        "a=ice-pwd:serverpasswordserverpassword",
        "a=fingerprint:sha-256 01:02:03",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40123 typ host",
        "a=ssrc:888 cname:x",
        "a=ssrc:888 msid:a b",
        "",
    ]
)


def test_parse_answer() -> None:
    remote = parse_answer(ANSWER)
    assert remote.ice_ufrag == "srv1"
    assert remote.ice_pwd == "serverpasswordserverpassword"
    assert remote.address == ("127.0.0.1", 40123)
    assert remote.fingerprints == [("sha-256", "01:02:03")]
    assert remote.setup == "passive"
    assert remote.ssrcs == {"audio": [777], "video": [888]}
    with pytest.raises(AnswerError):
        parse_answer(ANSWER.replace("a=candidate", "a=x-candidate"))


def test_video_frames_look_like_vp8() -> None:
    settings = VideoSettings(bitrate=600_000, fps=30, keyframe_interval=2.0)
    video = VideoSource(ssrc=5, settings=settings)
    total = 0
    keyframes = 0
    seqs: list[int] = []
    for frame in range(60):
        packets = [p.restamp(frame) for p in video.next_frame(now_ns=frame)]
        for i, data in enumerate(packets):
            parsed = RtpPacket.parse(data)
            info = parse_vp8(parsed.payload)
            assert info.start_of_frame == (i == 0)
            assert parsed.marker == (i == len(packets) - 1)
            assert len(parsed.payload) <= MAX_PAYLOAD
            assert len(data) + 16 <= 1200  # with the SRTP tag
            offset = payload_offset(data)
            assert offset == parsed.payload_offset
            assert is_vp8_keyframe_start(data, offset) == info.is_keyframe
            keyframes += info.is_keyframe
            assert STAMP.unpack_from(data, stamp_offset(data, offset, video=True))[0] == frame
            total += len(parsed.payload)
            seqs.append(parsed.sequence_number)
    assert keyframes == 1
    assert total * 8 / 2.0 == pytest.approx(600_000, rel=0.02)
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    video.request_keyframe()
    first = RtpPacket.parse(bytes(video.next_frame(now_ns=0)[0].data))
    assert parse_vp8(first.payload).is_keyframe


def test_audio_packets() -> None:
    audio = AudioSource(ssrc=9, size=100)
    a = audio.next_packet(now_ns=1).restamp(77)
    b = audio.next_packet(now_ns=2).restamp(78)
    pa, pb = RtpPacket.parse(a), RtpPacket.parse(b)
    assert len(pa.payload) == 100 and pa.payload_type == AUDIO_PT
    assert (pb.timestamp - pa.timestamp) & 0xFFFFFFFF == 960
    assert STAMP.unpack_from(a, stamp_offset(a, payload_offset(a), video=False))[0] == 77
    assert struct.unpack_from("!B", a, payload_offset(a))[0] == 0x78


def test_stream_counter_wraps_and_counts_loss() -> None:
    counter = StreamCounter(65534, video=True)
    start = counter.before_first()
    for seq in (65535, 1, 2, 2, 0):  # lose 0 once, then it arrives late; 2 is duplicated
        counter.on_packet(seq)
    end = counter.snapshot()
    assert end.highest == 65534 + 4
    assert counter.duplicates_or_late == 2
    expected, received = expected_and_received(start, end)
    assert expected == 5 and received == 6
