"""Transceivers: the m-line table of a conference peer connection, pure and exact."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from interlive.bench.synthetic import LocalStreams, build_offer
from interlive.sdp import SdpError, SessionDescription
from interlive.sfu.tracks import Codec
from interlive.worker.negotiation import server_capabilities
from interlive.worker.transceivers import (
    StreamInfo,
    TrackRef,
    Transceivers,
    carries,
    stream_id,
)

FINGERPRINT = ":".join(f"{i:02X}" for i in range(32))
VP8 = Codec(96, "video/VP8", 90000)
H264 = Codec(
    102, "video/H264", 90000, fmtp={"profile-level-id": "42e01f", "packetization-mode": "1"}
)
OPUS = Codec(111, "audio/opus", 48000, 2)


def track(key: str, identity: str, kind: str = "video", codec: Codec = VP8) -> TrackRef:
    return TrackRef(key, identity, kind, (OPUS,) if kind == "audio" else (codec,))


def table() -> Transceivers:
    ssrcs = itertools.count(1000)
    return Transceivers(
        identity="dave",
        caps=server_capabilities(),
        new_ssrc=lambda: next(ssrcs),
        cname="cn",
        session_id=7,
    )


def client_offer(*, publish: bool) -> SessionDescription:
    streams = LocalStreams(11, 22, 33, "c", "s") if publish else None
    text = build_offer(
        publish=publish,
        ice_ufrag="abcd",
        ice_pwd="0123456789abcdefghijkl",
        fingerprint=FINGERPRINT,
        candidate=("192.0.2.1", 5000),
        streams=streams,
    )
    return SessionDescription.parse(text)


def answer(sections: list[tuple[str, str, str]], *, kinds: dict[str, str]) -> SessionDescription:
    """A client answer: ``(mid, direction, port)`` per section, VP8/Opus codecs."""
    lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    for mid, direction, port in sections:
        if kinds[mid] == "audio":
            lines += [f"m=audio {port} UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2"]
        else:
            lines += [f"m=video {port} UDP/TLS/RTP/SAVPF 96", "a=rtpmap:96 VP8/90000"]
        lines += [f"a=mid:{mid}", f"a={direction}", "a=rtcp-mux"]
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


def directions(t: Transceivers) -> list[tuple[str, str]]:
    return [(line.mid, line.direction) for line in t.lines]


def test_an_audience_offer_pins_what_there_is_and_idles_the_rest() -> None:
    t = table()
    answers = t.answer(
        client_offer(publish=False), may_publish=False, available=[track("T1", "alice")]
    )
    assert [a.negotiated.direction if a.negotiated else None for a in answers] == [
        "inactive",
        "sendonly",
    ]
    assert [s.ssrc for a in answers for s in a.send] == [1000]
    assert [s.rtx_ssrc for a in answers for s in a.send] == [1001]
    assert answers[1].send[0].stream_id == stream_id("alice")
    assert t.streams() == [StreamInfo("1", "alice", "video")]
    assert t.version == 2 and t.pending is None


def test_a_publisher_is_received_only_while_it_may_publish() -> None:
    t = table()
    t.answer(client_offer(publish=True), may_publish=True, available=[])
    assert directions(t) == [("0", "recvonly"), ("1", "recvonly")]
    assert t.lines[1].client_ssrcs == {22} and t.lines[1].client_rtx == {33: 22}
    assert not t.needs_offer([], may_publish=True)
    # demoted: the server offers to stop receiving; the client agrees
    sections = t.offer([], may_publish=False)
    assert sections is not None and [s.direction for s in sections] == ["inactive", "inactive"]
    t.accept(
        answer([("0", "inactive", "9"), ("1", "inactive", "9")], kinds={"0": "audio", "1": "video"})
    )
    assert directions(t) == [("0", "inactive"), ("1", "inactive")]
    # promoted again: the lines it still sends on are received again
    sections = t.offer([], may_publish=True)
    assert sections is not None and [s.direction for s in sections] == ["recvonly", "recvonly"]


def test_new_tracks_get_new_lines_gone_ones_go_idle_and_idle_lines_are_reused() -> None:
    t = table()
    t.answer(client_offer(publish=True), may_publish=True, available=[])
    kinds = {"0": "audio", "1": "video", "s1": "video", "s2": "audio"}
    wanted = [track("T1", "carol"), track("T2", "carol", "audio")]
    sections = t.offer(wanted, may_publish=True)
    assert sections is not None
    assert [(s.mid, s.kind, s.direction) for s in sections] == [
        ("0", "audio", "recvonly"),
        ("1", "video", "recvonly"),
        ("s1", "video", "sendonly"),
        ("s2", "audio", "sendonly"),
    ]
    assert sections[2].send is not None and sections[2].send.ssrc == 1000
    assert t.streams(t.pending) == [
        StreamInfo("s1", "carol", "video"),
        StreamInfo("s2", "carol", "audio"),
    ]
    assert t.lines[2:] == []  # nothing is applied before the answer
    t.accept(
        answer(
            [("0", "sendonly", "9"), ("1", "sendonly", "9"), ("s1", "recvonly", "9"),
             ("s2", "recvonly", "9")],
            kinds=kinds,
        )
    )  # fmt: skip
    assert t.streams() == [StreamInfo("s1", "carol", "video"), StreamInfo("s2", "carol", "audio")]
    assert t.offer(wanted, may_publish=True) is None
    # carol's video ends and erin's starts: the idle video line carries erin's, same SSRC
    sections = t.offer([track("T2", "carol", "audio"), track("T3", "erin")], may_publish=True)
    assert sections is not None and len(sections) == 4
    assert sections[2].send is not None and sections[2].send.ssrc == 1000
    assert sections[2].send.stream_id == stream_id("erin")


def test_a_line_that_cannot_carry_the_codec_is_not_reused() -> None:
    t = table()
    t.answer(client_offer(publish=False), may_publish=False, available=[track("T1", "alice")])
    # the client offered VP8 only: an H.264 track has no line it can decode
    assert not carries(t.lines[1].codecs, track("T9", "erin", codec=H264))
    assert t.offer([track("T1", "alice"), track("T9", "erin", codec=H264)], False) is None


def test_a_declined_line_is_not_offered_again() -> None:
    t = table()
    t.answer(client_offer(publish=False), may_publish=False, available=[])
    sections = t.offer([track("T1", "alice")], may_publish=False)
    assert sections is not None and [s.direction for s in sections] == ["inactive", "sendonly"]
    t.accept(
        answer([("0", "inactive", "9"), ("1", "inactive", "9")], kinds={"0": "audio", "1": "video"})
    )
    assert t.streams() == []
    assert not t.needs_offer([track("T1", "alice")], may_publish=False)


def test_rollback_and_stale_answers() -> None:
    t = table()
    t.answer(client_offer(publish=False), may_publish=False, available=[])
    with pytest.raises(ValueError, match="no server offer"):
        t.accept(
            answer(
                [("0", "inactive", "9"), ("1", "recvonly", "9")], kinds={"0": "audio", "1": "video"}
            )
        )
    assert t.offer([track("T1", "alice")], may_publish=False) is not None
    before = [line.copy() for line in t.lines]
    # the answer must match the offer's sections
    with pytest.raises(SdpError):
        t.accept(answer([("0", "inactive", "9")], kinds={"0": "audio"}))
    assert t.lines == before and t.pending is not None
    # glare: a client offer drops the pending server offer
    t.answer(client_offer(publish=False), may_publish=False, available=[])
    assert t.pending is None
    assert t.offer([track("T1", "alice")], may_publish=False) is not None
    assert t.rollback() and not t.rollback()


def test_client_offers_that_move_or_drop_sections_change_nothing() -> None:
    t = table()
    offer = client_offer(publish=True)
    t.answer(offer, may_publish=True, available=[])
    before = [line.copy() for line in t.lines]
    version = t.version
    dropped = replace(offer, media=offer.media[:1])
    swapped = replace(offer, media=[offer.media[1], offer.media[0]])
    reused = replace(offer, media=[*offer.media, replace(offer.media[1])])
    for bad in (dropped, swapped, reused):
        with pytest.raises(SdpError):
            t.answer(bad, may_publish=True, available=[])
        assert t.lines == before and t.version == version
    # a new section appended later is fine; a rejected one keeps its place
    extra = replace(offer.media[1], mid="2", port=0)
    t.answer(replace(offer, media=[*offer.media, extra]), may_publish=True, available=[])
    assert [(line.mid, line.rejected) for line in t.lines] == [
        ("0", False),
        ("1", False),
        ("2", True),
    ]
    sections = t.offer([track("T1", "alice")], may_publish=True)
    assert sections is not None
    assert [(s.mid, s.rejected) for s in sections] == [
        ("0", False), ("1", False), ("2", True), ("s1", False),
    ]  # fmt: skip


def test_a_kind_the_client_never_offered_gets_the_servers_codecs() -> None:
    t = table()
    audio_only = client_offer(publish=True)
    audio_only = replace(audio_only, media=audio_only.media[:1])
    t.answer(audio_only, may_publish=True, available=[])
    sections = t.offer([track("T1", "alice")], may_publish=True)
    assert sections is not None
    video = sections[1]
    names = [(c.payload_type, c.name, c.rtx_payload_type) for c in video.codecs]
    assert names == [(96, "VP8", 97), (98, "VP9", 99), (102, "H264", 103)]
    # the client's extension ids are reused, so BUNDLE's one-id-one-URI holds
    assert all(t.lines[0].extmaps.get(uri, i) == i for uri, i in video.extmaps.items())


def test_a_new_offer_while_one_is_outstanding_keeps_its_new_lines() -> None:
    t = table()
    t.answer(client_offer(publish=True), may_publish=True, available=[])
    first = t.offer([track("T1", "carol")], may_publish=True)
    assert first is not None and first[2].send is not None
    # the connection was resumed: the same new line, mid and SSRC, is offered again
    again = t.offer([track("T1", "carol")], may_publish=True)
    assert again is not None and again[2].send is not None
    assert (again[2].mid, again[2].send.ssrc) == (first[2].mid, first[2].send.ssrc)
