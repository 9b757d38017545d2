"""build_offer: the server's subsequent offer, compared line by line with the expected text."""

from __future__ import annotations

import pytest

from interlive.rtp.types import PayloadType, Ssrc
from interlive.sdp import (
    Candidate,
    Fingerprint,
    NegotiatedCodec,
    OfferSection,
    SendStream,
    SessionDescription,
    build_offer,
)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
OPUS = NegotiatedCodec(
    PayloadType(111), "audio/opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"}, ()
)
VP8 = NegotiatedCodec(
    PayloadType(96), "video/VP8", 90000, None, {}, ("nack", "nack pli"), PayloadType(97)
)
HOST = Candidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host")
STREAM = SendStream(Ssrc(1111), Ssrc(2222), "cn", "pbob", "video-s1")

TRANSPORT = [
    "c=IN IP4 127.0.0.1",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
    "a=end-of-candidates",
    "a=ice-ufrag:srvA",
    "a=ice-pwd:0123456789abcdefghijklmn",
    "a=fingerprint:sha-256 AA:BB",
    "a=setup:actpass",
]
VP8_LINES = [
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
]


def offer(sections: list[OfferSection], **kwargs: object) -> str:
    return str(
        build_offer(
            sections,
            ice_ufrag="srvA",
            ice_pwd="0123456789abcdefghijklmn",
            fingerprint=Fingerprint("sha-256", "AA:BB"),
            candidates=[HOST],
            session_id=42,
            session_version=3,
            **kwargs,  # type: ignore[arg-type]
        )
    )


def test_receiving_idle_and_sending_sections_exactly() -> None:
    text = offer(
        [
            OfferSection("0", "audio", "recvonly", [OPUS], {MID_URI: 4}),
            OfferSection("1", "video", "inactive", [VP8], {MID_URI: 4}),
            OfferSection("s1", "video", "sendonly", [VP8], {MID_URI: 4}, send=STREAM),
        ]
    )
    expected = [
        "v=0",
        "o=- 42 3 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "a=group:BUNDLE 0 1 s1",
        "a=msid-semantic: WMS pbob",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        *TRANSPORT,
        "a=mid:0",
        f"a=extmap:4 {MID_URI}",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        *TRANSPORT,
        "a=mid:1",
        f"a=extmap:4 {MID_URI}",
        "a=inactive",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        *VP8_LINES,
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        *TRANSPORT,
        "a=mid:s1",
        f"a=extmap:4 {MID_URI}",
        "a=sendonly",
        "a=msid:pbob video-s1",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        *VP8_LINES,
        "a=ssrc-group:FID 1111 2222",
        "a=ssrc:1111 cname:cn",
        "a=ssrc:1111 msid:pbob video-s1",
        "a=ssrc:2222 cname:cn",
        "a=ssrc:2222 msid:pbob video-s1",
    ]
    assert text == "\r\n".join(expected) + "\r\n"
    assert str(SessionDescription.parse(text)) == text


def test_a_rejected_section_keeps_port_zero_and_stays_out_of_bundle() -> None:
    text = offer(
        [
            OfferSection("0", "video", "sendonly", [VP8], send=STREAM),
            OfferSection("1", "audio", "sendrecv", [OPUS], rejected=True),
            OfferSection(
                "2",
                "application",
                "inactive",
                [],
                rejected=True,
                proto="UDP/DTLS/SCTP",
                formats=["webrtc-datachannel"],
            ),
        ],
        extmap_allow_mixed=True,
    )
    parsed = SessionDescription.parse(text)
    assert parsed.extmap_allow_mixed
    assert parsed.groups[0].mids == ("0",)
    rejected = parsed.media[1]
    assert (rejected.port, rejected.direction, rejected.candidates) == (0, "inactive", [])
    assert rejected.ice_ufrag == "srvA" and rejected.rtcp_mux  # strict parsers want both
    assert [c.name for c in rejected.codecs] == ["opus"]
    data = parsed.media[2]
    assert (data.port, data.proto, data.formats) == (0, "UDP/DTLS/SCTP", ["webrtc-datachannel"])
    assert "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n" in text


def test_bad_section_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated mid"):
        offer([OfferSection("0", "audio", "recvonly", [OPUS])] * 2)
    with pytest.raises(ValueError, match="at least one section"):
        offer([OfferSection("0", "audio", "recvonly", [OPUS], rejected=True)])
    with pytest.raises(ValueError, match="no codec"):
        offer([OfferSection("0", "audio", "recvonly", [])])
    with pytest.raises(ValueError, match="is sent in section"):
        offer([OfferSection("0", "video", "recvonly", [VP8], send=STREAM)])
