"""Conference sessions on a media worker: offers both ways over one peer connection.

Driven in memory like test_media_worker (real ICE/DTLS/SRTP peers, a manual
clock): the client's offer creates the session, the worker reports
``negotiation_needed`` when the room's tracks change, its re-offer adds or
idles m-lines, the client's answer applies them, and the same DTLS-SRTP session
carries the new tracks.  An offer with new ICE credentials restarts ICE.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field, replace

import pytest

from interlive.bench.synthetic import LocalStreams, PeerCore, build_offer, parse_answer
from interlive.rtp.extensions import build_audio_level
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import Bye
from interlive.sdp import SessionDescription
from interlive.transport.dtls import Certificate
from interlive.transport.ice import random_ice_string
from interlive.worker.channel import RequestError
from interlive.worker.conference import ConferenceSession
from tests.unit.worker.test_media_worker import Network, Peer, vp8_packet

_SEQ = itertools.count(10)


@dataclass
class Client:
    """A synthetic conference client: its peer, ICE credentials, and what it was told."""

    peer: Peer
    ufrag: str
    pwd: str
    cert: Certificate
    offer: str
    answers: list[str] = field(default_factory=list)

    @property
    def sid(self) -> str:
        return self.peer.sid


def join(
    net: Network, identity: str, *, publish: bool, may_publish: bool | None = None
) -> tuple[Client, dict[str, object]]:
    cert = Certificate.generate()
    ufrag, pwd = random_ice_string(4), random_ice_string(22)
    addr = ("192.0.2.7", 7000 + len(net.peers))
    streams = (
        LocalStreams(
            random.getrandbits(31), random.getrandbits(31), random.getrandbits(31), "c", "s"
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
    result = net.worker.op_conference_offer(
        room="r",
        identity=identity,
        offer=offer,
        may_publish=publish if may_publish is None else may_publish,
    )
    remote = parse_answer(result["answer"])
    core = PeerCore(context=cert.make_context(), local_ufrag=ufrag, local_pwd=pwd, remote=remote)
    peer = Peer(addr, core, remote.ssrcs, result["sid"], streams)
    net.peers[addr] = peer
    core.start(net.clock.now)
    net.pump()
    return Client(peer, ufrag, pwd, cert, offer, [result["answer"]]), result


def send_video(net: Network, client: Client, n: int = 3) -> None:
    pub = client.peer
    assert pub.core.srtp is not None and pub.streams is not None
    for i in range(n):
        packet = vp8_packet(next(_SEQ), key=i == 0, ssrc=pub.streams.video_ssrc)
        net.send(pub, pub.core.srtp.protect_rtp(packet))


def answer_to(offer_text: str, client: Client, *, decline: frozenset[str] = frozenset()) -> str:
    """What a browser answers to the server's offer: each direction reversed."""
    offer = SessionDescription.parse(offer_text)
    flip = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
    media = []
    for m in offer.media:
        direction = flip.get(m.effective_direction, "inactive")
        if m.mid in decline:
            direction = "inactive"
        media.append(
            replace(
                m,
                direction=direction,  # type: ignore[arg-type]
                candidates=[],
                end_of_candidates=False,
                ice_ufrag=client.ufrag,
                ice_pwd=client.pwd,
                setup="active",
                msid=None,
                ssrcs={},
                ssrc_groups=[],
            )
        )
    answer = replace(offer, ice_lite=False, media=media, msid_semantic="WMS")
    return str(answer)


def session(net: Network, client: Client) -> ConferenceSession:
    s = net.worker.sessions[client.sid]
    assert isinstance(s, ConferenceSession)
    return s


def needed(net: Network) -> set[str]:
    sids = {e.data["sid"] for e in net.events if e.kind == "negotiation_needed"}
    net.events.clear()
    return sids


def test_a_recvonly_offer_is_answered_with_the_stage_tracks_there_are() -> None:
    net = Network()
    carol, created = join(net, "carol", publish=True)
    assert created["created"] is True and created["streams"] == []
    send_video(net, carol)
    dave, result = join(net, "dave", publish=False)
    # dave's recvonly video line carries carol's video; his audio line has nothing yet
    assert result["streams"] == [{"mid": "1", "identity": "carol", "kind": "video"}]
    answer = SessionDescription.parse(result["answer"])
    assert [m.direction for m in answer.media] == ["inactive", "sendonly"]
    send_video(net, carol, 2)
    video_ssrc = dave.peer.answer_ssrcs["video"][0]
    assert [p.ssrc for p in dave.peer.rtp] == [video_ssrc] * 2


def test_new_tracks_are_offered_on_new_lines_and_forwarded_after_the_answer() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    dave, _ = join(net, "dave", publish=False)
    net.tick(0.02)
    assert needed(net) == set()  # no tracks yet: nothing to offer
    send_video(net, carol)
    net.tick(0.02)
    # dave's recvonly video line is idle: the re-offer pins carol's video there
    assert needed(net) == {dave.sid}
    result = net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)
    assert result["streams"] == [{"mid": "1", "identity": "carol", "kind": "video"}]
    # a second track of the kind has no idle line: it gets a new one
    erin, _ = join(net, "erin", publish=True)
    net.worker.op_conference_answer(sid=dave.sid, answer=answer_to(result["offer"], dave))
    send_video(net, erin)
    net.tick(0.02)
    assert needed(net) == {dave.sid, carol.sid, erin.sid}  # erin has carol to see
    result = net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)
    offer = SessionDescription.parse(result["offer"])
    assert [(m.mid, m.direction) for m in offer.media] == [
        ("0", "inactive"),
        ("1", "sendonly"),
        ("s1", "sendonly"),
    ]
    assert offer.bundle_group() is not None and offer.bundle_group().mids == ("0", "1", "s1")  # type: ignore[union-attr]
    assert [m.setup for m in offer.media] == ["actpass"] * 3
    new_ssrc = int(next(iter(offer.media[2].ssrcs)))
    assert result["streams"][-1] == {"mid": "s1", "identity": "erin", "kind": "video"}
    net.worker.op_conference_answer(sid=dave.sid, answer=answer_to(result["offer"], dave))
    dave.peer.rtp.clear()
    send_video(net, erin, 2)
    assert [p.ssrc for p in dave.peer.rtp] == [new_ssrc] * 2
    # up to date: nothing more to offer
    assert net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)["offer"] is None


def test_demotion_idles_the_line_and_the_client_can_decline() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    send_video(net, carol)
    dave, _ = join(net, "dave", publish=False)
    assert session(net, dave).pinned.slots[0].source is not None
    net.worker.op_stop_publishing(room="r", identity="carol")
    net.pump()
    assert any(isinstance(p, Bye) for p in dave.peer.rtcp), "the held track's slot says goodbye"
    net.tick(0.02)
    assert dave.sid in needed(net)
    result = net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)
    assert result["streams"] == []
    offer = SessionDescription.parse(result["offer"])
    assert [m.direction for m in offer.media] == ["inactive", "inactive"]
    net.worker.op_conference_answer(sid=dave.sid, answer=answer_to(result["offer"], dave))
    # promoted again: the line is reused, and a client that declines it is not asked again
    net.worker.op_allow_publishing(room="r", identity="carol")
    net.tick(0.02)
    assert dave.sid in needed(net)
    result = net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)
    assert [(s["mid"], s["identity"]) for s in result["streams"]] == [("1", "carol")]
    net.worker.op_conference_answer(
        sid=dave.sid, answer=answer_to(result["offer"], dave, decline=frozenset({"1"}))
    )
    assert net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)["offer"] is None


def test_the_publisher_stops_being_received_when_it_may_not_publish() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    send_video(net, carol)
    assert len(net.worker.rooms["r"].tracks) == 1
    result = net.worker.op_conference_reoffer(sid=carol.sid, may_publish=False)
    offer = SessionDescription.parse(result["offer"])
    assert [m.direction for m in offer.media] == ["inactive", "inactive"]
    net.worker.op_conference_answer(sid=carol.sid, answer=answer_to(result["offer"], carol))
    assert net.worker.rooms["r"].tracks == []  # its up-tracks ended with the line
    result = net.worker.op_conference_reoffer(sid=carol.sid, may_publish=True)
    offer = SessionDescription.parse(result["offer"])
    assert [m.direction for m in offer.media] == ["recvonly", "recvonly"]
    net.worker.op_conference_answer(sid=carol.sid, answer=answer_to(result["offer"], carol))
    send_video(net, carol)
    assert len(net.worker.rooms["r"].tracks) == 1


def test_an_audience_offer_to_send_is_answered_inactive() -> None:
    net = Network()
    _, result = join(net, "bob", publish=True, may_publish=False)
    answer = SessionDescription.parse(result["answer"])
    assert [m.direction for m in answer.media] == ["inactive", "inactive"]


def test_a_client_offer_crossing_the_servers_rolls_it_back() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    send_video(net, carol)
    erin, _ = join(net, "erin", publish=True)
    send_video(net, erin)
    dave, _ = join(net, "dave", publish=False)
    server_offer = net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)["offer"]
    assert server_offer is not None
    # glare: dave's own offer arrives first; the server's is dropped
    net.worker.op_conference_offer(
        room="r", identity="dave", offer=dave.offer, may_publish=False, sid=dave.sid
    )
    with pytest.raises(RequestError) as stale:
        net.worker.op_conference_answer(sid=dave.sid, answer=answer_to(server_offer, dave))
    assert stale.value.status == 409
    assert net.worker.op_conference_reoffer(sid=dave.sid, may_publish=False)["offer"] is not None


def test_a_bad_subsequent_offer_changes_nothing() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    before = [line.copy() for line in session(net, carol).table.lines]
    reordered = carol.offer.replace("a=mid:0", "a=mid:x").replace(
        "a=group:BUNDLE 0 1", "a=group:BUNDLE x 1"
    )
    with pytest.raises(RequestError) as bad:
        net.worker.op_conference_offer(
            room="r", identity="carol", offer=reordered, may_publish=True, sid=carol.sid
        )
    assert bad.value.status == 400
    assert session(net, carol).table.lines == before
    with pytest.raises(RequestError) as other:
        net.worker.op_conference_offer(
            room="r", identity="mallory", offer=carol.offer, may_publish=True, sid=carol.sid
        )
    assert other.value.status == 403
    with pytest.raises(RequestError):
        net.worker.op_conference_offer(
            room="elsewhere", identity="carol", offer=carol.offer, may_publish=True, sid=carol.sid
        )


def test_an_offer_with_new_ice_credentials_restarts_ice_on_the_same_session() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    send_video(net, carol)
    dave, _ = join(net, "dave", publish=False)
    old_local = session(net, dave).ice.local_ufrag  # type: ignore[union-attr]
    ufrag, pwd = random_ice_string(4), random_ice_string(22)
    restart = dave.offer.replace(dave.ufrag, ufrag).replace(dave.pwd, pwd)
    result = net.worker.op_conference_offer(
        room="r", identity="dave", offer=restart, may_publish=False, sid=dave.sid
    )
    assert result["restart"] is True and result["sid"] == dave.sid
    remote = parse_answer(result["answer"])
    assert remote.ice_ufrag != old_local
    # the client checks with the new credentials on the same DTLS-SRTP session
    core = dave.peer.core
    core.remote = replace(core.remote, ice_ufrag=remote.ice_ufrag, ice_pwd=remote.ice_pwd)
    core._key = remote.ice_pwd.encode()
    core.local_ufrag, core.local_pwd = ufrag, pwd
    net.clock.now += 1.0
    core._send_check(net.clock.now, nominate=True)
    net.pump()
    assert core.last_response == net.clock.now, "the worker answers checks with the new ufrag"
    dave.peer.rtp.clear()
    send_video(net, carol, 2)
    assert len(dave.peer.rtp) == 2


def _speak(net: Network, client: Client, seq: int, *, level: int, vad: bool = True) -> None:
    pub = client.peer
    assert pub.core.srtp is not None and pub.streams is not None
    packet = RtpPacket(
        payload_type=111,
        sequence_number=seq,
        timestamp=seq * 960,
        ssrc=pub.streams.audio_ssrc,
        payload=b"\xfc\xff\xfe",
        extensions={1: build_audio_level(vad, level)},  # the synthetic offer's audio-level id
    )
    net.send(pub, pub.core.srtp.protect_rtp(bytes(packet)))


def speakers(net: Network) -> list[str | None]:
    out = [e.data["identity"] for e in net.events if e.kind == "active_speaker"]
    net.events[:] = [e for e in net.events if e.kind != "active_speaker"]
    return out


def test_the_active_speaker_follows_the_audio_levels_with_dwell() -> None:
    net = Network()
    carol, _ = join(net, "carol", publish=True)
    erin, _ = join(net, "erin", publish=True)
    seq = itertools.count(1)
    for _ in range(50):  # a second of carol talking (-20 dBov), erin quiet
        s = next(seq)
        _speak(net, carol, s, level=20)
        _speak(net, erin, s, level=120, vad=False)
        net.tick(0.02)
    assert speakers(net) == ["carol"]
    for _ in range(10):  # erin interrupts for 0.2 s: less than the dwell, no switch
        s = next(seq)
        _speak(net, carol, s, level=90, vad=False)
        _speak(net, erin, s, level=15)
        net.tick(0.02)
    assert speakers(net) == []
    net.worker.op_stop_publishing(room="r", identity="erin")  # demoted: erin does not count
    for _ in range(150):
        s = next(seq)
        _speak(net, carol, s, level=120, vad=False)
        _speak(net, erin, s, level=10)
        net.tick(0.02)
    assert speakers(net) == [None]  # the stage went quiet
