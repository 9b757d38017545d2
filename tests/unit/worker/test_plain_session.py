"""Plain-RTP sessions on the in-memory worker: routing by the one remote address, RTCP both ways.

The plain side is a bare address that sends and receives unencrypted RTP/RTCP
(the control process's RTMP ingest in production); the WebRTC side is the
synthetic ICE/DTLS/SRTP peer of ``test_media_worker``.
"""

from __future__ import annotations

from typing import Any

import pytest

from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import (
    Bye,
    Pli,
    ReceiverReport,
    RtcpPacket,
    SenderReport,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from interlive.worker.channel import RequestError
from interlive.worker.peer import PLAIN_TIMEOUT

from .test_media_worker import Address, Network

INGEST: Address = ("127.0.0.1", 7000)
STRANGER: Address = ("127.0.0.1", 7001)

VP8 = {"mid": "video", "kind": "video", "mime": "video/VP8", "clock_rate": 90000}
OPUS = {"mid": "audio", "kind": "audio", "mime": "audio/opus", "clock_rate": 48000, "channels": 2}
H264 = {
    "mid": "video",
    "kind": "video",
    "mime": "video/H264",
    "clock_rate": 90000,
    "fmtp": {"packetization-mode": "1", "profile-level-id": "64001f"},
}


class PlainNetwork(Network):
    """``Network`` plus bare plain-RTP endpoints: what the worker sends them is kept per address."""

    def __init__(self) -> None:
        super().__init__()
        self.plain: dict[Address, list[bytes]] = {}

        def sendto(data: bytes, addr: Address) -> None:
            if addr in self.plain:
                self.plain[addr].append(data)
            else:
                self.to_peers.append((data, addr))

        self.worker._sendto_raw = sendto

    def create_plain(
        self,
        identity: str,
        remote: Address,
        media: list[dict[str, Any]],
        *,
        mode: str = "publish",
        room: str = "r",
    ) -> dict[str, Any]:
        self.plain.setdefault(remote, [])
        result: dict[str, Any] = self.worker.handle(
            "create_plain_session",
            {"room": room, "identity": identity, "mode": mode, "remote": list(remote),
             "media": media},
        )  # fmt: skip
        self.pump()
        return result

    def send_plain(self, remote: Address, data: bytes) -> None:
        self.worker.datagram_received(data, remote)
        self.pump()

    def rtcp_at(self, remote: Address) -> list[RtcpPacket]:
        return [p for d in self.plain[remote] if is_rtcp(d) for p in parse_rtcp(d)]

    def rtp_at(self, remote: Address) -> list[RtpPacket]:
        return [RtpPacket.parse(d) for d in self.plain[remote] if not is_rtcp(d)]


def vp8(seq: int, *, key: bool, ssrc: int, pt: int) -> bytes:
    body = bytes([0x10, 0x00 if key else 0x01, 0, 0]) + b"plain-frame"
    return bytes(
        RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc,
                  marker=True, payload=body)
    )  # fmt: skip


def stream(result: dict[str, Any], kind: str) -> tuple[int, int]:
    """(ssrc, payload type) the worker chose for the plain session's ``kind`` stream."""
    media = next(m for m in result["media"] if m["kind"] == kind)
    return media["ssrc"], media["payload_type"]


def test_plain_publisher_reaches_a_webrtc_viewer_and_only_from_its_address() -> None:
    net = PlainNetwork()
    viewer = net.join("bob", publish=False)
    result = net.create_plain("rtmp-alice", INGEST, [OPUS, VP8])
    assert result["port"] == 40000
    assert result["tracks"] == [
        {"mid": "audio", "kind": "audio"},
        {"mid": "video", "kind": "video"},
    ]
    ssrc, pt = stream(result, "video")
    assert pt == 96 and stream(result, "audio")[1] == 111
    net.send_plain(INGEST, vp8(1, key=True, ssrc=ssrc, pt=pt))
    net.send_plain(INGEST, vp8(2, key=False, ssrc=ssrc, pt=pt))
    assert [p.payload[-11:] for p in viewer.rtp] == [b"plain-frame"] * 2
    # The same bytes from any other address are never routed to the session.
    net.send_plain(STRANGER, vp8(3, key=False, ssrc=ssrc, pt=pt))
    assert len(viewer.rtp) == 2
    assert net.worker.op_stats()["drops"]["unknown_address"] == 1
    described = net.worker.op_session_stats(sid=result["sid"])
    assert described["transport"] == "plain" and described["connected"] is True
    assert described["published"][0]["packets_received"] == 2


def test_plain_publisher_gets_receiver_reports_and_the_viewers_keyframe_requests() -> None:
    net = PlainNetwork()
    viewer = net.join("bob", publish=False)
    result = net.create_plain("rtmp-alice", INGEST, [VP8])
    ssrc, pt = stream(result, "video")
    net.send_plain(INGEST, vp8(1, key=True, ssrc=ssrc, pt=pt))
    assert viewer.core.srtp is not None
    down_ssrc = viewer.answer_ssrcs["video"][0]
    net.clock.now += 2.0  # past the keyframe throttle of the viewer's join
    net.send(viewer, viewer.core.srtp.protect_rtcp(bytes(Pli(sender_ssrc=1, media_ssrc=down_ssrc))))
    plis = [p for p in net.rtcp_at(INGEST) if isinstance(p, Pli)]
    assert plis and all(p.media_ssrc == ssrc for p in plis)
    net.send_plain(INGEST, vp8(2, key=False, ssrc=ssrc, pt=pt))
    net.tick(1.1)
    reports = [p for p in net.rtcp_at(INGEST) if isinstance(p, ReceiverReport)]
    assert reports and reports[-1].reports[0].ssrc == ssrc
    assert reports[-1].reports[0].highest_sequence & 0xFFFF == 2


def test_plain_sender_reports_reach_the_up_track() -> None:
    net = PlainNetwork()
    result = net.create_plain("rtmp-alice", INGEST, [VP8])
    ssrc, pt = stream(result, "video")
    net.send_plain(INGEST, vp8(1, key=True, ssrc=ssrc, pt=pt))
    report = SenderReport(ssrc=ssrc, ntp_timestamp=1 << 40, rtp_timestamp=3000,
                          packet_count=1, octet_count=10)  # fmt: skip
    net.send_plain(INGEST, serialize_rtcp([report]))
    up = net.worker.sessions[result["sid"]].uptracks[ssrc]
    assert up.stats.last_sr == (1 << 40, 3000, net.clock.now)


def test_silent_plain_session_times_out_and_viewers_get_bye() -> None:
    net = PlainNetwork()
    viewer = net.join("bob", publish=False)
    result = net.create_plain("rtmp-alice", INGEST, [VP8])
    ssrc, pt = stream(result, "video")
    net.send_plain(INGEST, vp8(1, key=True, ssrc=ssrc, pt=pt))
    for _ in range(int(PLAIN_TIMEOUT) - 2):
        viewer.core.handle_timer(net.clock.now)  # keep the viewer's consent fresh
        net.tick(1.0)
    assert result["sid"] in net.worker.sessions
    for _ in range(4):
        viewer.core.handle_timer(net.clock.now)
        net.tick(1.0)
    assert result["sid"] not in net.worker.sessions
    ended = [e.data for e in net.events if e.kind == "session_ended"]
    assert ended == [{"sid": result["sid"], "room": "r", "identity": "rtmp-alice",
                      "reason": "plain-timeout"}]  # fmt: skip
    assert any(isinstance(p, Bye) for p in viewer.rtcp)
    assert any(isinstance(p, Bye) for p in net.rtcp_at(INGEST))


def test_second_plain_push_replaces_the_first_and_frees_its_address() -> None:
    net = PlainNetwork()
    first = net.create_plain("alice", INGEST, [VP8])
    second = net.create_plain("alice", STRANGER, [VP8])
    assert first["sid"] not in net.worker.sessions and second["sid"] in net.worker.sessions
    assert [e.data["reason"] for e in net.events if e.kind == "session_ended"] == ["replaced"]
    assert INGEST not in net.worker._by_addr
    # and a WebRTC publish of the same identity replaces the plain one, as WHIP would
    net.join("alice", publish=True)
    assert second["sid"] not in net.worker.sessions


def test_plain_subscriber_receives_a_plain_publisher_h264_with_its_own_numbers() -> None:
    net = PlainNetwork()
    mixer: Address = ("127.0.0.1", 7100)
    baseline: Address = ("127.0.0.1", 7101)
    # a High stream goes to a receiver of High 4:4:4 Predictive (its decoder covers High),
    # not to a Constrained Baseline one
    fmtp_444 = {"packetization-mode": "1", "profile-level-id": "f4001f"}
    sub = net.create_plain(
        "mixer", mixer, [{**H264, "fmtp": fmtp_444, "payload_type": 120}], mode="subscribe"
    )
    fmtp_cb = {"packetization-mode": "1", "profile-level-id": "42e01f"}
    net.create_plain("cb", baseline, [{**H264, "fmtp": fmtp_cb}], mode="subscribe")
    assert sub["tracks"] == []
    out_ssrc, out_pt = stream(sub, "video")
    assert out_pt == 120
    pub = net.create_plain("rtmp-alice", INGEST, [H264])
    ssrc, pt = stream(pub, "video")
    idr = bytes([0x65, 0x88, 0x84, 0x00])  # an IDR slice, first_mb_in_slice 0
    packet = RtpPacket(payload_type=pt, sequence_number=500, timestamp=9000, ssrc=ssrc,
                       marker=True, payload=idr)  # fmt: skip
    net.send_plain(INGEST, bytes(packet))
    got = net.rtp_at(mixer)
    assert len(got) == 1
    assert (got[0].ssrc, got[0].payload_type, got[0].payload) == (out_ssrc, out_pt, idr)
    assert net.rtp_at(baseline) == []


def test_stun_and_dtls_from_the_plain_address_are_dropped() -> None:
    net = PlainNetwork()
    result = net.create_plain("alice", INGEST, [VP8])
    net.send_plain(INGEST, bytes([22]) + bytes(40))  # DTLS content type
    drops = net.worker.op_stats()["drops"]
    assert drops["dtls_on_plain"] == 1
    with pytest.raises(RequestError) as refused:
        net.worker.handle("ice_restart", {"sid": result["sid"], "fragment": "a=ice-ufrag:x\r\n"})
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"remote": ["127.0.0.1", 0]}, "remote"),
        ({"remote": "127.0.0.1:7000"}, "remote"),
        ({"mode": "both"}, "mode"),
        ({"media": []}, "media"),
        ({"media": [{**VP8, "mime": "video/AV1"}]}, "not one the server forwards"),
        ({"media": [{**VP8, "kind": "audio"}]}, "not a audio codec"),
        ({"media": [{**H264, "fmtp": {"packetization-mode": "0"}}]}, "packetization-mode 1"),
        ({"media": [{**H264, "fmtp": {"packetization-mode": "1",
                                       "profile-level-id": "6e001f"}}]}, "profile"),
        ({"media": [VP8, {**OPUS, "mid": "video"}]}, "repeated"),
        ({"media": [{**VP8, "payload_type": 34}]}, "payload_type"),
        ({"media": [{**VP8, "ssrc": 5}, {**OPUS, "ssrc": 5}]}, "SSRC 5"),
    ],
)  # fmt: skip
def test_bad_plain_requests_are_refused(change: dict[str, Any], message: str) -> None:
    net = PlainNetwork()
    args = {"room": "r", "identity": "a", "mode": "publish", "remote": list(INGEST), "media": [VP8]}
    with pytest.raises(RequestError) as refused:
        net.worker.handle("create_plain_session", {**args, **change})
    assert refused.value.status == 400 and message in refused.value.message
    assert not net.worker.sessions


def test_an_address_with_a_live_session_is_not_given_twice() -> None:
    net = PlainNetwork()
    net.create_plain("alice", INGEST, [VP8])
    with pytest.raises(RequestError) as refused:
        net.create_plain("bob", INGEST, [VP8])
    assert refused.value.status == 409


def test_deleting_a_plain_session_says_bye_to_its_remote() -> None:
    net = PlainNetwork()
    result = net.create_plain("alice", INGEST, [VP8])
    ssrc, pt = stream(result, "video")
    net.send_plain(INGEST, vp8(1, key=True, ssrc=ssrc, pt=pt))
    net.worker.handle("delete_session", {"sid": result["sid"]})
    byes = [p for p in net.rtcp_at(INGEST) if isinstance(p, Bye)]
    assert byes and ssrc in byes[0].sources
    assert [e.data["reason"] for e in net.events if e.kind == "session_ended"] == ["deleted"]
    assert INGEST not in net.worker._by_addr
