"""Parsing real offers into the model, and the model's helpers."""

from __future__ import annotations

import pytest

from interlive.sdp import (
    Attribute,
    Candidate,
    Codec,
    Extmap,
    Fingerprint,
    Group,
    Origin,
    Rid,
    SessionDescription,
    Simulcast,
    SsrcGroup,
    effective_ice,
    is_rtx,
    rtx_apt,
    validate_offer,
)

from .helpers import (
    AIORTC_SENDONLY,
    ALL_FIXTURES,
    CHROME_RECVONLY,
    CHROME_SENDONLY,
    CHROME_SIMULCAST,
    FFMPEG_WHIP,
    audio_section,
    load,
    session,
    video_section,
)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_and_validates(name: str) -> None:
    offer = SessionDescription.parse(load(name))
    assert [m.kind for m in offer.media] == ["audio", "video"]
    assert [m.mid for m in offer.media] == ["0", "1"]
    assert offer.bundle_group() == Group("BUNDLE", ("0", "1"))
    validate_offer(offer)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_lf_and_crlf_parse_the_same(name: str) -> None:
    text = load(name)
    assert SessionDescription.parse(text.replace("\r\n", "\n")) == SessionDescription.parse(text)


def test_chrome_sendonly_session_level() -> None:
    offer = SessionDescription.parse(load(CHROME_SENDONLY))
    assert offer.origin == Origin("-", 7707608779870037626, 2, "IN", "IP4", "127.0.0.1")
    assert offer.session_name == "-"
    assert offer.timing == "0 0"
    assert offer.extmap_allow_mixed
    assert offer.msid_semantic == "WMS ca1d8cf6-4ba0-408d-977e-ed4adc0ec100"
    assert not offer.ice_lite
    assert offer.ice_ufrag is None and offer.fingerprints == []
    assert offer.attributes == [] and offer.other_lines == []


def test_chrome_sendonly_audio_section() -> None:
    audio = SessionDescription.parse(load(CHROME_SENDONLY)).media[0]
    assert (audio.port, audio.proto) == (55114, "UDP/TLS/RTP/SAVPF")
    assert audio.formats == ["111", "63", "9", "0", "8", "13", "110", "126"]
    assert audio.connection == "IN IP4 127.0.0.1"
    assert audio.rtcp == "9 IN IP4 0.0.0.0"
    assert len(audio.candidates) == 8
    assert audio.candidates[0] == (
        "2410258062 1 udp 2122194687 127.0.0.1 55114 typ host generation 0 "
        "network-id 3 network-cost 50"
    )
    assert not audio.end_of_candidates
    assert (audio.ice_ufrag, audio.ice_pwd) == ("BlHs", "f0gb3A0WNX4a2xePhxBCIbnq")
    assert audio.ice_options == ["trickle"]
    assert audio.fingerprints == [
        Fingerprint(
            "sha-256",
            "F6:8D:FA:81:C4:5E:6A:23:B5:4F:0F:B9:02:D7:C4:56:"
            "56:B2:EF:E7:21:6C:AB:0E:8B:A8:6B:93:BE:63:2B:63",
        )
    ]
    assert audio.setup == "actpass"
    assert audio.mid == "0"
    assert audio.direction == "sendonly"
    assert audio.extmaps == [
        Extmap(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        Extmap(2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        Extmap(3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
        Extmap(4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
    ]
    assert audio.msid == (
        "ca1d8cf6-4ba0-408d-977e-ed4adc0ec100",
        "50443007-9127-47ae-ba78-cd318592994e",
    )
    assert audio.rtcp_mux and audio.rtcp_rsize
    assert audio.attributes == [Attribute("rtcp-xr", "rcvr-rtt=all")]
    opus, red = audio.codecs[0], audio.codecs[1]
    assert opus == Codec(
        111,
        "opus",
        48000,
        2,
        {"minptime": "10", "useinbandfec": "1"},
        ["transport-cc"],
        kind="audio",
    )
    assert opus.mime == "audio/opus"
    assert red.name == "red" and red.fmtp == {"111/111": ""}
    assert [c.payload_type for c in audio.codecs] == [111, 63, 9, 0, 8, 13, 110, 126]
    assert audio.codec(126) == Codec(126, "telephone-event", 8000, kind="audio")
    assert audio.ssrcs == {
        1170177295: {
            "cname": "G+/Yc280h5/OxbJb",
            "msid": "ca1d8cf6-4ba0-408d-977e-ed4adc0ec100 50443007-9127-47ae-ba78-cd318592994e",
        }
    }


def test_chrome_sendonly_video_section() -> None:
    video = SessionDescription.parse(load(CHROME_SENDONLY)).media[1]
    assert len(video.codecs) == 23
    assert [e.id for e in video.extmaps] == [14, 2, 13, 3, 5, 6, 7, 8, 4, 10, 11]
    vp8 = video.codecs[0]
    assert vp8.mime == "video/VP8" and vp8.channels is None
    assert vp8.rtcp_fb == ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]
    assert {c.payload_type: rtx_apt(c) for c in video.codecs if is_rtx(c)} == {
        97: 96,
        103: 102,
        107: 104,
        109: 108,
        115: 114,
        117: 116,
        40: 39,
        46: 45,
        99: 98,
        101: 100,
        119: 118,
    }
    h264 = video.codec(102)
    assert h264 is not None and h264.fmtp == {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42001f",
    }
    assert video.ssrc_groups == [SsrcGroup("FID", (722839276, 3742661562))]
    assert list(video.ssrcs) == [722839276, 3742661562]


def test_chrome_simulcast_rids() -> None:
    video = SessionDescription.parse(load(CHROME_SIMULCAST)).media[1]
    assert video.rids == [Rid("q", "send"), Rid("h", "send"), Rid("f", "send")]
    assert video.simulcast == Simulcast(send=(("q",), ("h",), ("f",)))
    assert video.simulcast.rids("send") == ["q", "h", "f"]
    assert video.ssrcs == {} and video.ssrc_groups == []
    dd = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
    assert Extmap(12, dd) in video.extmaps


def test_chrome_recvonly() -> None:
    offer = SessionDescription.parse(load(CHROME_RECVONLY))
    assert offer.msid_semantic == "WMS"
    for media in offer.media:
        assert media.direction == "recvonly"
        assert media.msid is None and media.ssrcs == {}
    names = [c.name for c in offer.media[1].codecs]
    assert "flexfec-03" in names and names.count("AV1") == 2


def test_aiortc_offer() -> None:
    offer = SessionDescription.parse(load(AIORTC_SENDONLY))
    assert offer.msid_semantic == "WMS *"
    audio = offer.media[0]
    assert [f.algorithm for f in audio.fingerprints] == ["sha-256", "sha-384", "sha-512"]
    assert audio.end_of_candidates and len(audio.candidates) == 2
    assert [(c.payload_type, c.name) for c in audio.codecs] == [
        (96, "opus"),
        (9, "G722"),
        (0, "PCMU"),
        (8, "PCMA"),
    ]
    assert not audio.rtcp_rsize


def test_ffmpeg_offer() -> None:
    offer = SessionDescription.parse(load(FFMPEG_WHIP))
    assert offer.origin.username == "FFmpeg"
    assert offer.session_name == "FFmpegPublishSession"
    audio, video = offer.media
    assert (audio.port, audio.candidates, audio.setup) == (9, [], "passive")
    assert audio.msid == ("FFmpeg", "audio")
    assert [(c.payload_type, c.name) for c in video.codecs] == [(106, "H264"), (105, "rtx")]
    assert video.codecs[0].rtcp_fb == ["nack"]
    assert video.ssrc_groups == [SsrcGroup("FID", (2298901000, 2298901001))]
    assert list(video.ssrcs) == [2298901000]


def test_fmtp_names_are_lower_cased_values_kept() -> None:
    text = session(
        video_section(extra="a=fmtp:96 Max-FR=30; MAX-FS=3600 ;x-Google-Start=Ab\n"),
        head="",
    )
    video = SessionDescription.parse(text).media[0]
    assert video.codecs[0].fmtp == {"max-fr": "30", "max-fs": "3600", "x-google-start": "Ab"}


def test_static_payload_types_without_rtpmap() -> None:
    text = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=audio 9 UDP/TLS/RTP/SAVPF 0 8 101\n"
    media = SessionDescription.parse(text).media[0]
    assert [(c.payload_type, c.name, c.clock_rate) for c in media.codecs] == [
        (0, "PCMU", 8000),
        (8, "PCMA", 8000),
    ]
    assert media.direction is None and media.effective_direction == "sendrecv"


def test_session_level_direction_applies_to_sections_without_one() -> None:
    text = session(
        audio_section().replace("a=sendonly\n", ""), video_section(), head="a=recvonly\n"
    )
    offer = SessionDescription.parse(text)
    assert [m.direction for m in offer.media] == ["recvonly", "sendonly"]


def test_extmap_direction_and_attributes() -> None:
    text = session(audio_section(extra="a=extmap:7/recvonly urn:x:y some attrs\n"), head="")
    assert SessionDescription.parse(text).media[0].extmaps == [
        Extmap(7, "urn:x:y", "recvonly", "some attrs")
    ]


def test_rid_params_and_simulcast_alternatives() -> None:
    extra = (
        "a=rid:1 send pt=96;max-width=1280;Max-Height=720\n"
        "a=rid:2 send\n"
        "a=rid:3 recv\n"
        "a=simulcast:send 1,~2 recv 3\n"
    )
    video = SessionDescription.parse(session(video_section(extra=extra), head="")).media[0]
    assert video.rids[0] == Rid("1", "send", {"pt": "96", "max-width": "1280", "max-height": "720"})
    assert video.simulcast == Simulcast(send=(("1", "~2"),), recv=(("3",),))
    assert video.simulcast.rids("send") == ["1", "2"]


def test_wildcard_rtcp_fb_and_unknown_attributes_are_kept_in_order() -> None:
    extra = "a=rtcp-fb:* nack\na=x-custom\na=x-other:value\n"
    video = SessionDescription.parse(session(video_section(extra=extra), head="")).media[0]
    assert video.attributes == [
        Attribute("rtcp-fb", "* nack"),
        Attribute("x-custom"),
        Attribute("x-other", "value"),
    ]


def test_rejected_and_bundle_only_sections() -> None:
    text = session(
        audio_section(),
        video_section().replace("m=video 9", "m=video 0") + "a=bundle-only\n",
        "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=mid:2\n",
    )
    audio, video, app = SessionDescription.parse(text).media
    assert not audio.rejected
    assert video.bundle_only and not video.rejected
    assert app.rejected and not app.is_rtp and app.formats == ["webrtc-datachannel"]


def test_effective_ice_prefers_media_then_session_then_bundle_tag() -> None:
    second = (
        "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=rtcp-mux\na=rtpmap:96 VP8/90000\n"
        "a=ice-ufrag:vvvv\n"
    )
    text = session(audio_section(), second, head="a=group:BUNDLE 0 1\na=ice-pwd:sessionpwd\n")
    offer = SessionDescription.parse(text)
    audio, video = offer.media
    ice = effective_ice(offer, video)
    assert ice.ice_ufrag == "vvvv"  # its own
    assert ice.ice_pwd == "sessionpwd"  # the session's
    assert ice.setup == "actpass" and ice.fingerprints == tuple(audio.fingerprints)  # the tag's
    assert effective_ice(offer, audio).ice_pwd == "0123456789abcdefghijkl"


def test_codec_helpers() -> None:
    rtx = Codec(97, "RTX", 90000, fmtp={"apt": "96"}, kind="video")
    assert is_rtx(rtx) and rtx_apt(rtx) == 96 and rtx.mime == "video/RTX"
    assert rtx_apt(Codec(97, "rtx", 90000, fmtp={"apt": "x"}, kind="video")) is None
    assert rtx_apt(Codec(97, "rtx", 90000, fmtp={"apt": "300"}, kind="video")) is None
    assert rtx_apt(Codec(96, "VP8", 90000, fmtp={"apt": "1"}, kind="video")) is None


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_captured_candidate_parses_and_reprints(name: str) -> None:
    offer = SessionDescription.parse(load(name))
    for media in offer.media:
        for raw in media.candidates:
            assert str(Candidate.parse(raw)) == raw


def test_candidate_fields() -> None:
    cand = Candidate.parse(
        "842163049 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 61000 "
        "generation 0 ufrag EsAw"
    )
    assert (cand.type, cand.ip, cand.port, cand.priority) == (
        "srflx",
        "203.0.113.7",
        61000,
        1677729535,
    )
    assert (cand.related_address, cand.related_port) == ("10.0.0.2", 61000)
    assert cand.extensions == (("generation", "0"), ("ufrag", "EsAw"))
    tcp = Candidate.parse("1 1 tcp 1518214911 127.0.0.1 9 typ host tcptype active")
    assert tcp.tcptype == "active"
    assert str(Candidate("1", 1, "udp", 2130706431, "127.0.0.1", 9999, "host")) == (
        "1 1 udp 2130706431 127.0.0.1 9999 typ host"
    )
