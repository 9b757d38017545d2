"""A media worker driven in memory: real ICE/DTLS/SRTP peers, a manual clock, no sockets.

The peers are the benchmark's sans-IO PeerCore (controlling ICE, DTLS client,
SRTP), so these scenarios exercise the worker exactly as the network would.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlive.bench.synthetic import LocalStreams, PeerCore, PeerState, build_offer, parse_answer
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import Bye, Nack, Pli, parse_rtcp
from interlive.transport.dtls import Certificate
from interlive.transport.ice import random_ice_string
from interlive.worker.channel import Event, RequestError
from interlive.worker.worker import MediaWorker

Address = tuple[str, int]
WORKER = ("127.0.0.1", 40000)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Peer:
    addr: Address
    core: PeerCore
    answer_ssrcs: dict[str, list[int]]
    sid: str
    streams: LocalStreams | None
    rtp: list[RtpPacket] = field(default_factory=list)
    rtcp: list[object] = field(default_factory=list)


class Network:
    """Delivers datagrams between the worker and peers, in order, instantly."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.events: list[Event] = []
        self.to_peers: list[tuple[bytes, Address]] = []
        self.worker = MediaWorker(
            index=0, candidate_ip=WORKER[0], port=WORKER[1],
            sendto=lambda data, addr: self.to_peers.append((data, addr)),
            emit=self.events.append, clock=self.clock,
        )  # fmt: skip
        self.peers: dict[Address, Peer] = {}
        self._ports = iter(range(5000, 6000))

    def join(self, identity: str, *, publish: bool, room: str = "r") -> Peer:
        cert = Certificate.generate()
        ufrag, pwd = random_ice_string(4), random_ice_string(22)
        addr = ("192.0.2.2", next(self._ports))
        streams = (
            LocalStreams(
                random.getrandbits(31),
                random.getrandbits(31),
                random.getrandbits(31),
                "cname",
                "stream",
            )
            if publish
            else None
        )
        offer = build_offer(
            publish=publish,
            ice_ufrag=ufrag,
            ice_pwd=pwd,
            fingerprint=cert.fingerprint(),
            candidate=addr,
            streams=streams,
        )
        result = self.worker.op_create_session(
            room=room, identity=identity, mode="publish" if publish else "subscribe", offer=offer
        )
        remote = parse_answer(result["answer"])
        assert remote.address == WORKER
        core = PeerCore(
            context=cert.make_context(), local_ufrag=ufrag, local_pwd=pwd, remote=remote
        )
        peer = Peer(addr, core, remote.ssrcs, result["sid"], streams)
        self.peers[addr] = peer
        core.start(self.clock.now)
        self.pump()
        return peer

    def send(self, peer: Peer, data: bytes) -> None:
        self.worker.datagram_received(data, peer.addr)
        self.pump()

    def pump(self) -> None:
        for _ in range(50):
            moved = False
            for peer in self.peers.values():
                for data in peer.core.datagrams_to_send():
                    moved = True
                    self.worker.datagram_received(data, peer.addr)
            pending, self.to_peers = self.to_peers, []
            for data, addr in pending:
                moved = True
                peer = self.peers[addr]
                if 127 < data[0] < 192 and peer.core.srtp is not None:
                    if 192 <= data[1] <= 223:
                        peer.rtcp.extend(parse_rtcp(peer.core.srtp.unprotect_rtcp(data)))
                    else:
                        peer.rtp.append(RtpPacket.parse(peer.core.srtp.unprotect_rtp(data)))
                else:
                    peer.core.receive(data, self.clock.now)
            if not moved:
                return

    def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.worker.tick()
        self.pump()


def vp8_packet(seq: int, *, key: bool, ssrc: int, payload: bytes = b"frame") -> bytes:
    body = bytes([0x10, 0x00 if key else 0x01, 0, 0]) + payload
    return bytes(
        RtpPacket(
            payload_type=96,
            sequence_number=seq,
            timestamp=seq * 3000,
            ssrc=ssrc,
            marker=True,
            payload=body,
        )
    )


def connected_pair() -> tuple[Network, Peer, Peer, int]:
    net = Network()
    pub = net.join("alice", publish=True)
    sub = net.join("bob", publish=False)
    assert pub.core.state is PeerState.CONNECTED and sub.core.state is PeerState.CONNECTED
    assert pub.core.srtp is not None
    ssrc = 0x1234
    for seq in range(10, 13):
        net.send(pub, pub.core.srtp.protect_rtp(vp8_packet(seq, key=seq == 10, ssrc=ssrc)))
    return net, pub, sub, ssrc


def test_publisher_media_reaches_the_subscriber_rewritten() -> None:
    net, _pub, sub, _ = connected_pair()
    video_ssrc = sub.answer_ssrcs["video"][0]
    assert [p.ssrc for p in sub.rtp] == [video_ssrc] * 3
    seqs = [p.sequence_number for p in sub.rtp]
    assert seqs == [seqs[0], (seqs[0] + 1) & 0xFFFF, (seqs[0] + 2) & 0xFFFF]
    assert sub.rtp[0].payload == bytes([0x10, 0x00, 0, 0]) + b"frame"
    stats = net.worker.op_stats()
    assert stats["sessions"] == 2 and stats["packets_out"] >= 3


def test_reports_flow_both_ways_on_the_rtcp_schedule() -> None:
    net, pub, sub, _ = connected_pair()
    net.tick(1.5)
    kinds = {type(p).__name__ for p in pub.rtcp}
    assert {"ReceiverReport", "Remb"} <= kinds
    assert any(type(p).__name__ == "SenderReport" for p in sub.rtcp)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pub", "stranger"]),
            st.binary(max_size=200),
            st.sampled_from([0x00, 0x16, 0x80, 0x90, 0xBF, 0x81, None]),
        ),
        max_size=30,
    )
)
def test_malformed_datagrams_never_crash_or_leak(
    garbage: list[tuple[str, bytes, int | None]],
) -> None:
    net, pub, sub, ssrc = _pair_for_fuzz()
    before = len(sub.rtp)
    for who, data, first in garbage:
        if first is not None:
            data = bytes([first]) + data
        if first in (0x80, 0x81) and len(data) > 1:
            data = data[:1] + bytes([200 + data[1] % 8]) + data[2:]  # looks like RTCP
        addr = pub.addr if who == "pub" else ("203.0.113.9", 7777)
        net.worker.datagram_received(data, addr)
    net.pump()
    # Nothing the subscriber received came from the garbage: it all decrypted as
    # the publisher's stream, and the stream still flows afterwards.
    assert len(sub.rtp) == before
    assert pub.core.srtp is not None
    seq = next(_FUZZ_SEQ)  # SRTP refuses a replayed index, so every example sends a new one
    net.send(pub, pub.core.srtp.protect_rtp(vp8_packet(seq, key=False, ssrc=ssrc)))
    assert len(sub.rtp) == before + 1 and sub.rtp[-1].payload.endswith(b"frame")


_FUZZ_PAIR: tuple[Network, Peer, Peer, int] | None = None
_FUZZ_SEQ = itertools.count(100)


def _pair_for_fuzz() -> tuple[Network, Peer, Peer, int]:
    # one connected pair shared by the examples: setting up DTLS per example is slow
    global _FUZZ_PAIR
    if _FUZZ_PAIR is None:
        _FUZZ_PAIR = connected_pair()
    return _FUZZ_PAIR


def test_drops_are_counted_by_reason() -> None:
    net, pub, _, _ = connected_pair()
    net.worker.datagram_received(b"\x80\xc8garbage-rtcp", pub.addr)
    net.worker.datagram_received(b"\x80\x60" + b"\x00" * 30, pub.addr)
    net.worker.datagram_received(b"\x80\x60" + b"\x00" * 30, ("203.0.113.9", 1))
    net.worker.datagram_received(b"\xff", pub.addr)
    drops = net.worker.op_stats()["drops"]
    assert drops["bad_rtcp"] == 1 and drops["srtp_unprotect"] == 1
    assert drops["unknown_address"] == 1 and drops["unknown_datagram"] == 1


def test_silent_publisher_is_cleaned_up_and_subscriber_told() -> None:
    net, pub, sub, _ = connected_pair()
    net.tick(29.0)
    assert pub.sid in net.worker.sessions
    net.tick(2.0)  # no consent checks for over 30 s
    assert pub.sid not in net.worker.sessions and sub.sid not in net.worker.sessions
    ended = [e for e in net.events if e.kind == "session_ended"]
    assert {e.data["reason"] for e in ended} == {"ice-consent-timeout"}
    assert any(isinstance(p, Bye) for p in sub.rtcp)


def test_consent_checks_keep_the_session() -> None:
    net, pub, sub, _ = connected_pair()
    for _ in range(8):
        net.clock.now += 5.0
        pub.core.handle_timer(net.clock.now)
        sub.core.handle_timer(net.clock.now)
        net.tick(0.0)
    assert pub.sid in net.worker.sessions and sub.sid in net.worker.sessions


def test_ice_restart_changes_credentials() -> None:
    net, pub, _, _ = connected_pair()
    session = net.worker.sessions[pub.sid]
    old = session.ice.local_ufrag
    frag = "a=ice-ufrag:abcd\r\na=ice-pwd:" + "p" * 22 + "\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
    result = net.worker.op_ice_restart(sid=pub.sid, fragment=frag)
    assert result["restart"] and "a=ice-lite" in result["fragment"]
    assert session.ice.local_ufrag != old and session.ice.remote_ufrag == "abcd"
    assert old not in net.worker._by_ufrag and session.ice.local_ufrag in net.worker._by_ufrag
    # candidates alone are a trickle, not a restart
    assert net.worker.op_ice_restart(
        sid=pub.sid, fragment="m=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
    ) == {"restart": False}


def test_second_session_of_an_identity_replaces_the_first() -> None:
    net = Network()
    first = net.join("alice", publish=True)
    second = net.join("alice", publish=True)
    assert first.sid not in net.worker.sessions and second.sid in net.worker.sessions
    assert [e.data["reason"] for e in net.events if e.kind == "session_ended"] == ["replaced"]


def rtx_packet(original: bytes, *, rtx_ssrc: int, rtx_pt: int, rtx_seq: int) -> bytes:
    """RFC 4588 §4: the original's header with RTX SSRC/PT/seq; payload = OSN + payload."""
    media = RtpPacket.parse(original)
    return bytes(
        RtpPacket(payload_type=rtx_pt, marker=media.marker, sequence_number=rtx_seq,
                  timestamp=media.timestamp, ssrc=rtx_ssrc,
                  payload=media.sequence_number.to_bytes(2, "big") + media.payload)
    )  # fmt: skip


def lossy_publisher() -> tuple[Network, Peer, Peer, dict[int, bytes]]:
    """A publisher whose video packets 10-14 reached the worker but 12, and a subscriber;
    the worker has had 50 ms to NACK 12."""
    net = Network()
    pub = net.join("alice", publish=True)
    sub = net.join("bob", publish=False)
    assert pub.core.srtp is not None and pub.streams is not None
    ssrc = pub.streams.video_ssrc
    packets = {seq: vp8_packet(seq, key=seq == 10, ssrc=ssrc, payload=bytes([seq]) * 8)
               for seq in range(10, 15)}  # fmt: skip
    for seq in (10, 11, 13, 14):  # 12 is lost on the way in
        net.send(pub, pub.core.srtp.protect_rtp(packets[seq]))
    net.tick(0.05)
    return net, pub, sub, packets


def repair_12(net: Network, pub: Peer, packets: dict[int, bytes]) -> None:
    """The publisher answers the NACK for 12 in RTX."""
    assert pub.core.srtp is not None and pub.streams is not None
    repair = rtx_packet(packets[12], rtx_ssrc=pub.streams.rtx_ssrc, rtx_pt=97, rtx_seq=500)
    net.send(pub, pub.core.srtp.protect_rtp(repair))


def test_publisher_loss_is_nacked_and_repaired_by_rtx() -> None:
    net, pub, sub, packets = lossy_publisher()
    assert pub.streams is not None
    nacks = [p for p in pub.rtcp if isinstance(p, Nack)]
    assert nacks and nacks[0].media_ssrc == pub.streams.video_ssrc and nacks[0].lost == [12]
    repair_12(net, pub, packets)
    # the subscriber gets the repaired packet under the number the gap left for it
    by_payload = {p.payload[-8:]: p.sequence_number for p in sub.rtp}
    assert by_payload[bytes([12]) * 8] == (by_payload[bytes([11]) * 8] + 1) & 0xFFFF
    stats = net.worker.op_stats()
    assert stats["nacks_sent"] == 1 and stats["rtx_received"] == 1
    net.tick(0.5)  # repaired: no further NACK for 12
    assert sum(isinstance(p, Nack) for p in pub.rtcp) == 1


def test_a_publisher_packet_never_repaired_asks_for_a_keyframe_when_given_up() -> None:
    net = Network()
    pub = net.join("alice", publish=True)
    net.join("bob", publish=False)
    assert pub.core.srtp is not None and pub.streams is not None
    ssrc = pub.streams.video_ssrc
    for seq in (10, 11, 13):  # 12 is lost, and the publisher never answers its NACKs
        net.send(pub, pub.core.srtp.protect_rtp(vp8_packet(seq, key=seq == 10, ssrc=ssrc)))
    pub.rtcp.clear()
    for _ in range(60):  # 1.2 s of worker ticks: past the 1 s deadline
        net.tick(0.02)
    nacks = [p for p in pub.rtcp if isinstance(p, Nack)]
    plis = [p for p in pub.rtcp if isinstance(p, Pli)]
    assert len(nacks) >= 2 and all(n.lost == [12] for n in nacks)  # retried first
    assert len(plis) == 1 and plis[0].media_ssrc == ssrc  # then a keyframe, once
    published = net.worker.handle("session_stats", {"sid": pub.sid})["published"]
    video = next(t for t in published if t["kind"] == "video")
    assert video["nack"]["given_up"] == 1 and video["nack"]["keyframes_requested"] == 1


def test_subscriber_nack_is_answered_with_rtx_once_per_rtt() -> None:
    net, _, sub, _ = connected_pair()
    assert sub.core.srtp is not None
    media_ssrc, rtx_ssrc = sub.answer_ssrcs["video"]
    wanted = sub.rtp[1]
    nack = Nack(sender_ssrc=1, media_ssrc=media_ssrc, lost=[wanted.sequence_number])
    for _ in range(2):  # the second, within an RTT, is suppressed
        net.send(sub, sub.core.srtp.protect_rtcp(bytes(nack)))
    rtx = [p for p in sub.rtp if p.ssrc == rtx_ssrc]
    assert len(rtx) == 1
    assert rtx[0].payload_type == 97
    assert rtx[0].payload == wanted.sequence_number.to_bytes(2, "big") + wanted.payload
    assert rtx[0].timestamp == wanted.timestamp
    assert net.worker.op_stats()["retransmissions_sent"] == 1


def test_rtx_copy_of_a_packet_that_arrived_is_not_forwarded_twice() -> None:
    net = Network()
    pub = net.join("alice", publish=True)
    sub = net.join("bob", publish=False)
    assert pub.core.srtp is not None and pub.streams is not None
    ssrc = pub.streams.video_ssrc
    first = vp8_packet(10, key=True, ssrc=ssrc)
    net.send(pub, pub.core.srtp.protect_rtp(first))
    copy = rtx_packet(first, rtx_ssrc=pub.streams.rtx_ssrc, rtx_pt=97, rtx_seq=1)
    net.send(pub, pub.core.srtp.protect_rtp(copy))
    assert len(sub.rtp) == 1
    assert net.worker.op_stats()["drops"]["rtx_duplicate"] == 1


def test_a_second_copy_of_a_repaired_packet_is_not_forwarded() -> None:
    net, pub, sub, packets = lossy_publisher()
    assert pub.core.srtp is not None
    repair_12(net, pub, packets)
    forwarded = len(sub.rtp)
    # the original, late after all: without RTX (Opus) a resend looks just like it
    net.send(pub, pub.core.srtp.protect_rtp(packets[12]))
    assert len(sub.rtp) == forwarded == len(packets)
    assert net.worker.op_stats()["drops"]["rtx_duplicate"] == 1


def test_nack_goes_out_with_the_next_packet_once_due_not_only_on_the_tick() -> None:
    net = Network()
    pub = net.join("alice", publish=True)
    net.join("bob", publish=False)
    assert pub.core.srtp is not None and pub.streams is not None
    ssrc = pub.streams.video_ssrc
    for seq in (10, 11, 13):  # 12 missing
        net.send(pub, pub.core.srtp.protect_rtp(vp8_packet(seq, key=seq == 10, ssrc=ssrc)))
    assert not any(isinstance(p, Nack) for p in pub.rtcp)  # within the reorder grace
    net.clock.now += 0.006  # past the grace; no worker tick runs
    net.send(pub, pub.core.srtp.protect_rtp(vp8_packet(14, key=False, ssrc=ssrc)))
    assert [p.lost for p in pub.rtcp if isinstance(p, Nack)] == [[12]]


def test_session_stats_show_each_stream_and_how_its_loss_is_repaired() -> None:
    net, pub, sub, _ = connected_pair()
    assert sub.core.srtp is not None
    media_ssrc, _ = sub.answer_ssrcs["video"]
    nack = Nack(sender_ssrc=1, media_ssrc=media_ssrc, lost=[sub.rtp[1].sequence_number])
    net.send(sub, sub.core.srtp.protect_rtcp(bytes(nack)))
    viewer = net.worker.handle("session_stats", {"sid": sub.sid})
    assert (viewer["identity"], viewer["mode"], viewer["connected"]) == ("bob", "subscribe", True)
    video = next(d for d in viewer["subscribed"] if d["kind"] == "video")
    assert video["source"]["identity"] == "alice"
    assert video["packets_sent"] == len([p for p in sub.rtp if p.ssrc == media_ssrc])
    assert video["nacks_received"] == 1 and video["retransmissions_sent"] == 1
    assert video["protection"]["mode"] == "policy" and video["protection"]["nack"] is True
    publisher = net.worker.handle("session_stats", {"sid": pub.sid})
    assert publisher["published"][0]["packets_received"] > 0
    with pytest.raises(RequestError) as refused:
        net.worker.handle("session_stats", {"sid": "nope"})
    assert refused.value.status == 404


def test_worker_stats_count_viewer_streams_by_protection() -> None:
    net, _, _, _ = connected_pair()
    # a fresh viewer has reported no loss: NACK answers only, on the stream that negotiated
    # NACK (its video); its audio offered none, so nothing repairs it yet
    assert net.worker.op_stats()["protection"] == {"nack": 1, "none": 1}
