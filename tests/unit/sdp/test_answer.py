"""build_answer: the ICE-lite answer, checked field by field after parsing it back."""

from __future__ import annotations

import pytest

from interlive.sdp import (
    Candidate,
    Codec,
    Extmap,
    Fingerprint,
    Group,
    MediaAnswer,
    Origin,
    Rid,
    SendStream,
    SessionDescription,
    Simulcast,
    SsrcGroup,
    answer_setup,
    build_answer,
    default_capabilities,
    negotiate_offer,
    validate_offer,
)
from interlive.sdp.negotiate import Want

from .helpers import (
    CHROME_RECVONLY,
    CHROME_SENDONLY,
    CHROME_SIMULCAST,
    FFMPEG_WHIP,
    FINGERPRINT_VALUE,
    audio_section,
    load,
    session,
    video_section,
)

FINGERPRINT = Fingerprint("sha-256", FINGERPRINT_VALUE)
HOST = Candidate("1", 1, "udp", 2130706431, "127.0.0.1", 9999, "host")
UFRAG, PWD = "srvA", "0123456789abcdefghijklmn"


def answer_text(
    offer: SessionDescription,
    want: Want = "recv",
    send: dict[str, list[SendStream]] | None = None,
    candidates: tuple[Candidate, ...] = (HOST,),
) -> str:
    negotiated = negotiate_offer(offer, default_capabilities(), want=want)
    answers = [
        MediaAnswer(n, (send or {}).get(m.mid or "", []))
        for m, n in zip(offer.media, negotiated, strict=True)
    ]
    answer = build_answer(
        offer,
        answers,
        ice_ufrag=UFRAG,
        ice_pwd=PWD,
        fingerprint=FINGERPRINT,
        candidates=list(candidates),
        session_id=4242,
    )
    return str(answer)


def test_answer_to_chrome_sendonly() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    text = answer_text(offer)
    assert text.startswith("v=0\r\no=- 4242 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n")
    answer = SessionDescription.parse(text)
    assert answer.origin == Origin("-", 4242, 2, "IN", "IP4", "127.0.0.1")
    assert answer.ice_lite
    assert answer.groups == [Group("BUNDLE", ("0", "1"))]
    assert answer.extmap_allow_mixed
    assert answer.msid_semantic == "WMS"
    audio, video = answer.media
    for media in (audio, video):
        assert (media.port, media.proto) == (9, "UDP/TLS/RTP/SAVPF")
        assert media.connection == "IN IP4 127.0.0.1"
        assert media.rtcp == "9 IN IP4 0.0.0.0"
        assert (media.ice_ufrag, media.ice_pwd) == (UFRAG, PWD)
        assert media.fingerprints == [FINGERPRINT]
        assert media.setup == "passive"
        assert media.direction == "recvonly"
        assert media.rtcp_mux and media.rtcp_rsize
        assert media.candidates == ["1 1 udp 2130706431 127.0.0.1 9999 typ host"]
        assert media.end_of_candidates
        assert media.msid is None and media.ssrcs == {} and media.rids == []
    assert audio.mid == "0" and video.mid == "1"
    assert audio.formats == ["111"]
    assert audio.codecs == [
        Codec(
            111,
            "opus",
            48000,
            2,
            {"minptime": "10", "useinbandfec": "1"},
            ["transport-cc"],
            kind="audio",
        )
    ]
    assert audio.extmaps == [
        Extmap(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        Extmap(2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        Extmap(3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
        Extmap(4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
    ]
    assert [int(f) for f in video.formats] == [
        96,
        97,
        102,
        103,
        108,
        109,
        116,
        117,
        98,
        99,
        100,
        101,
    ]
    assert [e.id for e in video.extmaps] == [14, 2, 13, 3, 5, 4, 10, 11]
    rtx = video.codec(97)
    assert rtx == Codec(97, "rtx", 90000, None, {"apt": "96"}, [], kind="video")
    vp8 = video.codec(96)
    assert vp8 is not None and vp8.fmtp == {} and len(vp8.rtcp_fb) == 5
    h264 = video.codec(108)
    assert h264 is not None and h264.fmtp == {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
    }
    validate_offer(answer)  # structurally it is as complete as an offer


def test_answer_uses_crlf_and_only_expected_lines() -> None:
    text = answer_text(SessionDescription.parse(load(CHROME_SENDONLY)))
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    audio = text[text.index("m=audio") : text.index("m=video")]
    assert audio.split("\r\n")[:-1] == [
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 9999 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:srvA",
        "a=ice-pwd:0123456789abcdefghijklmn",
        f"a=fingerprint:sha-256 {FINGERPRINT_VALUE}",
        "a=setup:passive",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
    ]


def test_answer_to_a_passive_offer_is_active() -> None:
    offer = SessionDescription.parse(load(FFMPEG_WHIP))
    answer = SessionDescription.parse(answer_text(offer))
    audio, video = answer.media
    assert audio.setup == video.setup == "active"
    assert not audio.rtcp_rsize and video.rtcp_rsize  # as FFmpeg offered
    assert video.formats == ["106", "105"]
    assert video.codec(105) == Codec(105, "rtx", 90000, None, {"apt": "106"}, [], kind="video")


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("actpass", "passive"), ("active", "passive"), ("passive", "active"), (None, "passive")],
)
def test_answer_setup(offered: str | None, answered: str) -> None:
    assert answer_setup(offered) == answered


def test_rejected_sections_keep_port_zero_first_format_and_mid_only() -> None:
    data = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:2\na=sctp-port:5000\n"
    av1 = (
        "m=video 9 UDP/TLS/RTP/SAVPF 45 46\na=mid:3\na=rtcp-mux\na=sendonly\n"
        "a=rtpmap:45 AV1/90000\na=rtpmap:46 rtx/90000\na=fmtp:46 apt=45\n"
    )
    offer = SessionDescription.parse(
        session(audio_section(), video_section(), data, av1, head="a=group:BUNDLE 0 1 2 3\n")
    )
    text = answer_text(offer)
    answer = SessionDescription.parse(text)
    assert answer.groups == [Group("BUNDLE", ("0", "1"))]
    assert [m.port for m in answer.media] == [9, 9, 0, 0]
    assert text.endswith(
        "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n"
        "m=video 0 UDP/TLS/RTP/SAVPF 45\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\n"
    )


def test_viewer_answer_announces_send_streams() -> None:
    offer = SessionDescription.parse(load(CHROME_RECVONLY))
    send = {
        "0": [SendStream(1111, None, "interlive", "stage", "mic")],
        "1": [SendStream(2222, 3333, "interlive", "stage", "cam")],
    }
    answer = SessionDescription.parse(answer_text(offer, want="send", send=send))
    assert answer.msid_semantic == "WMS stage"
    audio, video = answer.media
    assert audio.direction == video.direction == "sendonly"
    assert audio.msid == ("stage", "mic")
    assert audio.ssrcs == {1111: {"cname": "interlive", "msid": "stage mic"}}
    assert audio.ssrc_groups == []
    assert video.msid == ("stage", "cam")
    assert video.ssrc_groups == [SsrcGroup("FID", (2222, 3333))]
    assert video.ssrcs == {
        2222: {"cname": "interlive", "msid": "stage cam"},
        3333: {"cname": "interlive", "msid": "stage cam"},
    }


def test_simulcast_offer_is_mirrored_as_recv() -> None:
    offer = SessionDescription.parse(load(CHROME_SIMULCAST))
    video = SessionDescription.parse(answer_text(offer)).media[1]
    assert video.rids == [Rid("q", "recv"), Rid("h", "recv"), Rid("f", "recv")]
    assert video.simulcast == Simulcast(recv=(("q",), ("h",), ("f",)))
    assert "a=simulcast:recv q;h;f\r\n" in answer_text(offer)


def test_simulcast_is_not_mirrored_when_not_receiving() -> None:
    offer = SessionDescription.parse(load(CHROME_SIMULCAST))
    video = SessionDescription.parse(answer_text(offer, want="send")).media[1]
    assert video.direction == "inactive" and video.rids == [] and video.simulcast is None


def test_ipv6_and_no_candidates() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    v6 = Candidate("2", 1, "udp", 2130706175, "::1", 9999, "host")
    answer = SessionDescription.parse(answer_text(offer, candidates=(v6, HOST)))
    assert answer.media[0].connection == "IN IP6 ::1"
    assert answer.media[0].candidates == [str(v6), str(HOST)]
    answer = SessionDescription.parse(answer_text(offer, candidates=()))
    assert answer.media[0].connection == "IN IP4 0.0.0.0" and answer.media[0].candidates == []


def test_no_bundle_group_when_the_offer_has_none() -> None:
    offer = SessionDescription.parse(session(audio_section(), head=""))
    answer = SessionDescription.parse(answer_text(offer))
    assert answer.groups == [] and answer.media[0].mid == "0"


def test_extmap_allow_mixed_only_if_offered() -> None:
    offer = SessionDescription.parse(load(FFMPEG_WHIP))
    assert SessionDescription.parse(answer_text(offer)).extmap_allow_mixed
    offer.extmap_allow_mixed = False
    assert not SessionDescription.parse(answer_text(offer)).extmap_allow_mixed


def build(offer: SessionDescription, answers: list[MediaAnswer]) -> SessionDescription:
    return build_answer(
        offer,
        answers,
        ice_ufrag=UFRAG,
        ice_pwd=PWD,
        fingerprint=FINGERPRINT,
        candidates=[HOST],
        session_id=1,
    )


def test_answers_must_line_up_with_the_offer() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    audio, video = negotiate_offer(offer, default_capabilities(), want="recv")
    with pytest.raises(ValueError, match="1 media answers for 2 offered sections"):
        build(offer, [MediaAnswer(audio)])
    with pytest.raises(ValueError, match=r"media answer 0 is for mid '1', offer has '0'"):
        build(offer, [MediaAnswer(video), MediaAnswer(audio)])


def test_sending_needs_a_sending_direction() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    audio, video = negotiate_offer(offer, default_capabilities(), want="recv")
    stream = SendStream(1, None, "c", "s", "t")
    with pytest.raises(ValueError, match=r"send streams for mid '0', whose answer is recvonly"):
        build(offer, [MediaAnswer(audio, [stream]), MediaAnswer(video)])


def test_all_rejected() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    answer = build(offer, [MediaAnswer(None), MediaAnswer(None)])
    assert answer.groups == []
    assert [(m.port, m.formats, m.mid) for m in answer.media] == [
        (0, ["111"], "0"),
        (0, ["96"], "1"),
    ]
