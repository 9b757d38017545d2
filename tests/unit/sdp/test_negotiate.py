"""Negotiation: the offer's codec order and payload types, rtx, extmaps, directions."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from interlive.codecs.h264 import h264_fmtp_match
from interlive.sdp import (
    Capabilities,
    Codec,
    CodecCapability,
    Direction,
    NegotiatedCodec,
    SessionDescription,
    Want,
    answer_direction,
    default_capabilities,
    default_fmtp_match,
    negotiate_media,
    negotiate_offer,
)

from .helpers import (
    AIORTC_SENDONLY,
    CHROME_RECVONLY,
    CHROME_SENDONLY,
    CHROME_SIMULCAST,
    FFMPEG_WHIP,
    audio_section,
    load,
    session,
)

VIDEO_FB = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def parse(name: str) -> SessionDescription:
    return SessionDescription.parse(load(name))


def test_default_capabilities() -> None:
    caps = default_capabilities()
    (opus,) = caps.audio_codecs
    assert (opus.mime, opus.clock_rate, opus.channels) == ("audio/opus", 48000, 2)
    assert opus.fmtp == {"minptime": "10", "useinbandfec": "1"}
    assert opus.rtcp_fb == ["transport-cc", "nack"] and not opus.rtx
    video = [
        (c.mime, c.fmtp.get("profile-id") or c.fmtp.get("profile-level-id"))
        for c in caps.video_codecs
    ]
    assert video == [
        ("video/VP8", None),
        ("video/VP9", "0"),
        ("video/VP9", "2"),
        ("video/H264", "42e01f"),
        ("video/H264", "42001f"),
        ("video/H264", "4d001f"),
        ("video/H264", "640c1f"),
        ("video/H264", "64001f"),
        ("video/H264", "f4001f"),
    ]
    for cap in caps.video_codecs:
        assert cap.rtx and tuple(cap.rtcp_fb) == VIDEO_FB and cap.clock_rate == 90000
        if cap.mime == "video/H264":
            assert cap.fmtp["packetization-mode"] == "1"
            assert cap.fmtp["level-asymmetry-allowed"] == "1"
    assert len(caps.header_extensions["audio"]) == 4
    assert len(caps.header_extensions["video"]) == 9
    assert "urn:3gpp:video-orientation" in caps.header_extensions["video"]


def test_chrome_sendonly_audio() -> None:
    audio = negotiate_media(parse(CHROME_SENDONLY).media[0], default_capabilities(), want="recv")
    assert audio is not None
    assert audio.codecs == (
        NegotiatedCodec(
            111, "audio/opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"}, ("transport-cc",)
        ),
    )
    assert audio.direction == "recvonly" and audio.offer_direction == "sendonly"
    assert audio.extmaps == {
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
        ABS_SEND_TIME: 2,
        TWCC: 3,
        "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
    }
    assert audio.ssrcs == {
        1170177295: {
            "cname": "G+/Yc280h5/OxbJb",
            "msid": "ca1d8cf6-4ba0-408d-977e-ed4adc0ec100 50443007-9127-47ae-ba78-cd318592994e",
        }
    }
    assert audio.msid is not None and audio.rtcp_rsize and audio.mid == "0"


def test_chrome_sendonly_video_keeps_offer_order_payload_types_and_rtx() -> None:
    offer = parse(CHROME_SENDONLY)
    video = negotiate_media(offer.media[1], default_capabilities(), want="recv")
    assert video is not None
    assert [(c.payload_type, c.name, c.rtx_payload_type) for c in video.codecs] == [
        (96, "VP8", 97),
        (102, "H264", 103),  # 42001f, packetization-mode 1
        (108, "H264", 109),  # 42e01f
        (116, "H264", 116 + 1),  # 4d001f
        (98, "VP9", 99),
        (100, "VP9", 101),
    ]  # packetization-mode 0 (104, 114, 39), AV1 (45), red (118) and ulpfec (120) dropped
    assert video.payload_types == [96, 97, 102, 103, 108, 109, 116, 117, 98, 99, 100, 101]
    fmtps = {c.payload_type: c.fmtp for c in video.codecs}
    assert fmtps[96] == {}
    assert fmtps[108] == {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
    }
    assert fmtps[102]["profile-level-id"] == "42001f"
    assert fmtps[116]["profile-level-id"] == "4d001f"
    assert fmtps[98] == {"profile-id": "0"} and fmtps[100] == {"profile-id": "2"}
    assert all(c.rtcp_fb == VIDEO_FB for c in video.codecs)
    assert video.extmaps == {
        "urn:ietf:params:rtp-hdrext:toffset": 14,
        ABS_SEND_TIME: 2,
        "urn:3gpp:video-orientation": 13,
        TWCC: 3,
        "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay": 5,
        "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id": 10,
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id": 11,
    }  # video-content-type, video-timing and color-space are not ours
    assert video.ssrc_groups == tuple(offer.media[1].ssrc_groups)
    assert video.codec(108) is not None and video.codec(109) is None


def test_chrome_recvonly_for_a_viewer() -> None:
    offer = parse(CHROME_RECVONLY)
    audio, video = negotiate_offer(offer, default_capabilities(), want="send")
    assert audio is not None and video is not None
    assert audio.direction == video.direction == "sendonly"
    assert [(c.payload_type, c.name) for c in video.codecs] == [
        (96, "VP8"),
        (98, "VP9"),
        (100, "VP9"),
        (102, "H264"),
        (108, "H264"),
        (116, "H264"),
        (41, "H264"),
    ]  # VP9 profiles 1 and 3, AV1 and flexfec are not ours
    assert video.ssrcs == {} and video.msid is None


def test_simulcast_rids_pass_through() -> None:
    offer = parse(CHROME_SIMULCAST)
    video = negotiate_media(offer.media[1], default_capabilities(), want="recv")
    assert video is not None
    assert video.rids == tuple(offer.media[1].rids)
    assert video.simulcast == offer.media[1].simulcast
    assert "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video.extmaps


def test_audio_nack_is_answered_only_when_offered() -> None:
    # Chromium does not offer it; the web pages add it (web/audio-nack.js)
    recvonly = load(CHROME_RECVONLY)
    assert "a=rtcp-fb:111 nack\r\n" not in recvonly
    plain = negotiate_media(parse(CHROME_RECVONLY).media[0], default_capabilities(), want="send")
    munged = SessionDescription.parse(
        recvonly.replace("a=rtcp-fb:111 transport-cc\r\n",
                         "a=rtcp-fb:111 transport-cc\r\na=rtcp-fb:111 nack\r\n")
    )  # fmt: skip
    asked = negotiate_media(munged.media[0], default_capabilities(), want="send")
    assert plain is not None and asked is not None
    assert plain.codecs[0].rtcp_fb == ("transport-cc",)
    assert asked.codecs[0].rtcp_fb == ("transport-cc", "nack")


def test_aiortc_offer() -> None:
    audio, video = negotiate_offer(parse(AIORTC_SENDONLY), default_capabilities(), want="recv")
    assert audio is not None and video is not None
    assert [c.payload_type for c in audio.codecs] == [96]
    assert audio.codecs[0].rtcp_fb == ()
    assert [(c.payload_type, c.rtx_payload_type) for c in video.codecs] == [
        (97, 98),
        (99, 100),
        (101, 102),
    ]
    assert video.codecs[0].rtcp_fb == ("nack", "nack pli", "goog-remb")
    assert video.extmaps == {"urn:ietf:params:rtp-hdrext:sdes:mid": 1, ABS_SEND_TIME: 3}


def test_ffmpeg_offer_h264_baseline_level_3() -> None:
    audio, video = negotiate_offer(parse(FFMPEG_WHIP), default_capabilities(), want="recv")
    assert audio is not None and video is not None
    (h264,) = video.codecs
    assert (h264.payload_type, h264.rtx_payload_type) == (106, 105)
    assert h264.fmtp["profile-level-id"] == "42001e"  # the offer's, matched to Baseline 42001f
    assert h264.rtcp_fb == ("nack",)
    assert video.extmaps == {}


@pytest.mark.parametrize(
    ("offered", "want", "expected"),
    [
        ("sendonly", "recv", "recvonly"),
        ("sendonly", "both", "recvonly"),
        ("sendonly", "send", "inactive"),
        ("recvonly", "send", "sendonly"),
        ("recvonly", "both", "sendonly"),
        ("recvonly", "recv", "inactive"),
        ("sendrecv", "recv", "recvonly"),
        ("sendrecv", "send", "sendonly"),
        ("sendrecv", "both", "sendrecv"),
        ("inactive", "both", "inactive"),
    ],
)
def test_answer_direction(offered: Direction, want: Want, expected: Direction) -> None:
    assert answer_direction(offered, want) == expected


def test_missing_direction_is_sendrecv() -> None:
    text = session(audio_section().replace("a=sendonly\n", ""), head="")
    media = SessionDescription.parse(text).media[0]
    result = negotiate_media(media, default_capabilities(), want="recv")
    assert result is not None and result.direction == "recvonly"
    assert result.offer_direction == "sendrecv"


@pytest.mark.parametrize(
    "section",
    [
        audio_section().replace("m=audio 9", "m=audio 0"),  # rejected by the offerer
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:0\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 8\na=mid:0\n",  # PCMU/PCMA only
        "m=video 9 UDP/TLS/RTP/SAVPF 45 46\na=mid:0\na=rtpmap:45 AV1/90000\n"
        "a=rtpmap:46 rtx/90000\na=fmtp:46 apt=45\n",  # AV1 is not offered yet
        "m=video 9 UDP/TLS/RTP/SAVPF 118 120\na=mid:0\na=rtpmap:118 red/90000\n"
        "a=rtpmap:120 ulpfec/90000\n",
        "m=audio 9 RTP/AVP 111\na=mid:0\na=rtpmap:111 opus/48000/2\n",
        "m=text 9 UDP/TLS/RTP/SAVPF 98\na=mid:0\na=rtpmap:98 t140/1000\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=mid:0\na=rtpmap:111 opus/48000/1\n",  # mono rtpmap
    ],
)
def test_rejected_sections(section: str) -> None:
    media = SessionDescription.parse(session(section, head="")).media[0]
    assert negotiate_media(media, default_capabilities()) is None


def test_allowed_filter_keeps_only_the_publishers_h264() -> None:
    publisher = {"packetization-mode": "1", "profile-level-id": "42e01f"}

    def allowed(codec: Codec) -> bool:
        return codec.mime.lower() == "video/h264" and h264_fmtp_match(codec.fmtp, publisher)

    video = negotiate_media(
        parse(CHROME_RECVONLY).media[1], default_capabilities(), want="send", allowed=allowed
    )
    assert video is not None
    assert [
        (c.payload_type, c.fmtp["profile-level-id"], c.rtx_payload_type) for c in video.codecs
    ] == [(108, "42e01f", 109)]


def test_allowed_filter_that_matches_nothing_rejects() -> None:
    media = parse(CHROME_RECVONLY).media[1]
    assert negotiate_media(media, default_capabilities(), allowed=lambda codec: False) is None


def test_fmtp_match_strategy_is_called_with_mime_and_both_fmtps() -> None:
    calls: list[tuple[str, dict[str, str], dict[str, str]]] = []

    def only_vp8(mime: str, offered: Mapping[str, str], local: Mapping[str, str]) -> bool:
        calls.append((mime, dict(offered), dict(local)))
        return mime == "video/VP8"

    video = negotiate_media(
        parse(AIORTC_SENDONLY).media[1], default_capabilities(), fmtp_match=only_vp8
    )
    assert video is not None and [c.name for c in video.codecs] == ["VP8"]
    assert calls[0] == ("video/VP8", {}, {})
    assert (
        "video/H264",
        {
            "level-asymmetry-allowed": "1",
            "packetization-mode": "1",
            "profile-level-id": "42001f",
        },
        default_capabilities().video_codecs[3].fmtp,
    ) in calls


def test_default_fmtp_match() -> None:
    assert default_fmtp_match("video/VP9", {}, {"profile-id": "0"})
    assert not default_fmtp_match("video/VP9", {"profile-id": "2"}, {})
    assert default_fmtp_match("video/vp9", {"profile-id": "2"}, {"profile-id": "2"})
    h264 = {"packetization-mode": "1", "profile-level-id": "42e01f"}
    assert default_fmtp_match(
        "video/H264", {"packetization-mode": "1", "profile-level-id": "42e034"}, h264
    )
    assert not default_fmtp_match("video/H264", {"profile-level-id": "42e01f"}, h264)
    assert not default_fmtp_match(
        "video/H264", {"packetization-mode": "1", "profile-level-id": "640c1f"}, h264
    )
    assert default_fmtp_match("video/VP8", {"x": "1"}, {})


def test_rtcp_fb_is_the_intersection_in_offer_order() -> None:
    section = (
        "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\na=rtpmap:96 VP8/90000\n"
        "a=rtcp-fb:96 nack  pli\na=rtcp-fb:96 goog-lntf\na=rtcp-fb:96 ccm fir\n"
        "a=rtcp-fb:96 nack rpsi\na=rtcp-fb:96 transport-cc\n"
    )
    media = SessionDescription.parse(session(section, head="")).media[0]
    result = negotiate_media(media, default_capabilities())
    assert result is not None
    assert result.codecs[0].rtcp_fb == ("nack pli", "ccm fir", "transport-cc")
    assert result.codecs[0].rtx_payload_type is None  # none offered


def with_fec(caps: Capabilities) -> Capabilities:
    """The later issue's capabilities change: RED for audio and video, ULPFEC."""
    caps.audio_codecs.append(CodecCapability("audio/red", 48000, 2, echo_fmtp=("*",)))
    caps.video_codecs.append(CodecCapability("video/red", 90000, rtx=True))
    caps.video_codecs.append(CodecCapability("video/ulpfec", 90000))
    return caps


def test_red_and_ulpfec_need_only_a_capabilities_change() -> None:
    audio, video = negotiate_offer(parse(CHROME_SENDONLY), with_fec(default_capabilities()))
    assert audio is not None and video is not None
    assert [(c.payload_type, c.name, c.fmtp) for c in audio.codecs] == [
        (111, "opus", {"minptime": "10", "useinbandfec": "1"}),
        (63, "red", {"111/111": ""}),
    ]
    tail = [(c.payload_type, c.name, c.rtx_payload_type) for c in video.codecs[-2:]]
    assert tail == [(118, "red", 119), (120, "ulpfec", None)]


def test_red_is_dropped_when_its_primary_is_not_accepted() -> None:
    media = parse(CHROME_SENDONLY).media[0]
    caps = with_fec(default_capabilities())
    only_red = negotiate_media(media, caps, allowed=lambda codec: codec.name != "opus")
    assert only_red is None
