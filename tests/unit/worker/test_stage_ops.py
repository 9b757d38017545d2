"""The stage's decisions applied by a media worker: demotion, re-promotion, mute, kick.

Driven in memory (real ICE/DTLS/SRTP peers, a manual clock) like test_media_worker.
"""

from __future__ import annotations

import itertools
from typing import Any

from interlive.rtp.rtcp import Bye
from tests.unit.worker.test_media_worker import Network, Peer, vp8_packet

_SEQ = itertools.count(10)


def _send_video(net: Network, pub: Peer, n: int, *, key_first: bool) -> None:
    assert pub.core.srtp is not None and pub.streams is not None
    for i in range(n):
        packet = vp8_packet(next(_SEQ), key=key_first and i == 0, ssrc=pub.streams.video_ssrc)
        net.send(pub, pub.core.srtp.protect_rtp(packet))


def _stage(net: Network) -> tuple[Peer, Peer]:
    pub = net.join("carol", publish=True)
    sub = net.join("dave", publish=False)
    _send_video(net, pub, 3, key_first=True)
    assert len(sub.rtp) == 3
    return pub, sub


def _byes(peer: Peer) -> list[Bye]:
    return [p for p in peer.rtcp if isinstance(p, Bye)]


def test_create_session_returns_the_tracks_a_publisher_sends_on() -> None:
    net = Network()
    results: list[dict[str, Any]] = []
    original = net.worker.op_create_session

    def capture(**kwargs: Any) -> dict[str, Any]:
        result = original(**kwargs)
        results.append(result)
        return result

    net.worker.op_create_session = capture  # type: ignore[method-assign]
    net.join("carol", publish=True)
    net.join("dave", publish=False)
    assert results[0]["tracks"] == [{"mid": "0", "kind": "audio"}, {"mid": "1", "kind": "video"}]
    assert results[1]["tracks"] == []


def test_demotion_stops_forwarding_with_bye_and_keeps_the_session() -> None:
    net = Network()
    pub, sub = _stage(net)
    assert net.worker.op_stop_publishing(room="r", identity="carol") == {"tracks": 1}
    net.pump()
    assert _byes(sub), "the viewer's slot must say goodbye"
    before = len(sub.rtp)
    _send_video(net, pub, 5, key_first=True)
    assert len(sub.rtp) == before, "a demoted participant's media still reached a viewer"
    assert pub.sid in net.worker.sessions and sub.sid in net.worker.sessions
    room = net.worker.rooms["r"]
    assert not room.tracks and len(room.held) == 1


def test_a_new_viewer_never_gets_held_tracks() -> None:
    net = Network()
    pub, _ = _stage(net)
    net.worker.op_stop_publishing(room="r", identity="carol")
    late = net.join("erin", publish=False)
    _send_video(net, pub, 3, key_first=True)
    assert late.rtp == []


def test_promotion_again_forwards_the_held_tracks_from_a_keyframe() -> None:
    net = Network()
    pub, sub = _stage(net)
    net.worker.op_stop_publishing(room="r", identity="carol")
    last = sub.rtp[-1].sequence_number
    assert net.worker.op_allow_publishing(room="r", identity="carol") == {"tracks": 1}
    _send_video(net, pub, 2, key_first=False)  # delta frames: the viewer waits for a keyframe
    assert len(sub.rtp) == 3
    _send_video(net, pub, 3, key_first=True)
    assert len(sub.rtp) == 6
    # the same slot continues: contiguous numbering on the viewer's SSRC
    assert sub.rtp[3].sequence_number == (last + 1) & 0xFFFF
    assert {p.ssrc for p in sub.rtp} == {sub.answer_ssrcs["video"][0]}


def test_mute_pauses_the_fan_out_and_unmute_resumes_on_a_keyframe() -> None:
    net = Network()
    pub, sub = _stage(net)
    assert net.worker.op_set_muted(room="r", identity="carol", kind="video", muted=True) == {
        "tracks": 1
    }
    _send_video(net, pub, 4, key_first=True)
    assert len(sub.rtp) == 3, "muted video reached the viewer"
    assert not _byes(sub), "a mute is not a goodbye: the slot stays"
    assert net.worker.op_stats()["drops"]["paused"] == 4
    net.worker.op_set_muted(room="r", identity="carol", kind="video", muted=False)
    _send_video(net, pub, 2, key_first=True)
    assert len(sub.rtp) == 5
    assert sub.rtp[3].sequence_number == (sub.rtp[2].sequence_number + 1) & 0xFFFF


def test_mute_holds_for_viewers_who_come_later_and_audio_mute_leaves_video() -> None:
    net = Network()
    pub, sub = _stage(net)
    net.worker.op_set_muted(room="r", identity="carol", kind="audio", muted=True)
    net.worker.op_set_muted(room="r", identity="carol", kind="video", muted=True)
    net.worker.op_set_muted(room="r", identity="carol", kind="audio", muted=False)
    late = net.join("erin", publish=False)
    _send_video(net, pub, 3, key_first=True)
    assert late.rtp == [] and len(sub.rtp) == 3
    net.worker.op_forget_participant(room="r", identity="carol")
    _send_video(net, pub, 2, key_first=True)
    assert len(late.rtp) == 2 and len(sub.rtp) == 5


def test_end_sessions_is_a_kick_with_bye_both_ways() -> None:
    net = Network()
    pub, sub = _stage(net)
    result = net.worker.op_end_sessions(sids=[pub.sid, "no-such-session"], reason="kicked")
    assert result == {"ended": 1}
    net.pump()
    assert pub.sid not in net.worker.sessions and sub.sid in net.worker.sessions
    assert _byes(pub) and _byes(sub)
    ended = [e.data for e in net.events if e.kind == "session_ended"]
    assert [(e["sid"], e["reason"]) for e in ended] == [(pub.sid, "kicked")]


def test_stage_ops_on_a_room_the_worker_does_not_host_are_no_ops() -> None:
    net = Network()
    assert net.worker.op_stop_publishing(room="nowhere", identity="x") == {"tracks": 0}
    assert net.worker.op_allow_publishing(room="nowhere", identity="x") == {"tracks": 0}
    assert net.worker.op_set_muted(room="nowhere", identity="x", kind="audio", muted=True) == {
        "tracks": 0
    }
    assert net.worker.op_forget_participant(room="nowhere", identity="x") == {}
