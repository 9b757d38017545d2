"""validate_offer: what interlive needs of an offer, with one clear reason when missing."""

from __future__ import annotations

import pytest

from interlive.sdp import SdpError, SessionDescription, validate_offer

from .helpers import audio_section, session, video_section


def check(text: str) -> None:
    validate_offer(SessionDescription.parse(text))


def test_minimal_bundled_offer_is_valid() -> None:
    check(session(audio_section(), video_section()))


def test_single_section_needs_no_bundle_or_mid() -> None:
    check(session(audio_section().replace("a=mid:0\n", ""), head=""))


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("a=ice-ufrag:abcd\n", r"^media 0 \(mid 0\): missing ice-ufrag$"),
        ("a=ice-pwd:0123456789abcdefghijkl\n", r"^media 0 \(mid 0\): missing ice-pwd$"),
        ("a=fingerprint:", r"^media 0 \(mid 0\): fingerprint missing"),
        ("a=setup:actpass\n", r"^media 0 \(mid 0\): missing a=setup$"),
        ("a=rtcp-mux\n", r"^media 0 \(mid 0\): a=rtcp-mux required: .*RFC 5761"),
    ],
)
def test_missing_transport_attribute(remove: str, message: str) -> None:
    section = audio_section()
    if remove == "a=fingerprint:":
        section = "\n".join(line for line in section.split("\n") if "fingerprint" not in line)
    else:
        section = section.replace(remove, "")
    with pytest.raises(SdpError, match=message):
        check(session(section, head=""))


def test_session_level_transport_attributes_count() -> None:
    section = audio_section()
    moved = [
        line
        for line in section.split("\n")
        if line.startswith(("a=ice-", "a=fingerprint", "a=setup"))
    ]
    for line in moved:
        section = section.replace(line + "\n", "")
    check(session(section, head="\n".join(moved) + "\n"))


def test_bundled_section_may_rely_on_the_tagged_section() -> None:
    second = (
        "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=sendonly\na=rtcp-mux\na=rtpmap:96 VP8/90000\n"
    )
    check(session(audio_section(), second))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("a=setup:actpass", "a=setup:holdconn", r"a=setup:holdconn in an offer \(need actpass"),
        ("a=ice-ufrag:abcd", "a=ice-ufrag:ab", r"ice-ufrag 'ab' must be 4-256 characters"),
        ("a=ice-ufrag:abcd", "a=ice-ufrag:ab-d", r"ice-ufrag 'ab-d' must be"),
        ("a=ice-pwd:0123456789abcdefghijkl", "a=ice-pwd:short", r"ice-pwd 'short' must be 22"),
        (
            "UDP/TLS/RTP/SAVPF",
            "RTP/AVP",
            r"^media 0 \(mid 0\): unsupported proto 'RTP/AVP'; "
            r"UDP/TLS/RTP/SAVPF required for audio$",
        ),
    ],
)
def test_bad_transport_values(old: str, new: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        check(session(audio_section().replace(old, new), head=""))


def test_no_media_sections() -> None:
    with pytest.raises(SdpError, match=r"^no media sections$"):
        check(session(head=""))


def test_only_rejected_or_data_sections() -> None:
    text = session(
        audio_section().replace("m=audio 9", "m=audio 0"),
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:1\n",
    )
    with pytest.raises(SdpError, match=r"^no audio or video media section to accept$"):
        check(text)


def test_rejected_and_data_sections_are_not_checked() -> None:
    text = session(
        audio_section(),
        "m=video 0 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=rtpmap:96 VP8/90000\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:2\n",
        head="a=group:BUNDLE 0\n",
    )
    check(text)


def test_several_sections_need_bundle() -> None:
    with pytest.raises(SdpError, match=r"^no BUNDLE group: .*RFC 8843"):
        check(session(audio_section(), video_section(), head=""))


def test_every_section_must_be_bundled() -> None:
    with pytest.raises(SdpError, match=r"^media 1 \(mid 1\) is not in the BUNDLE group$"):
        check(session(audio_section(), video_section(), head="a=group:BUNDLE 0\n"))


def test_bundle_needs_mids() -> None:
    text = session(audio_section(), video_section().replace("a=mid:1\n", ""))
    with pytest.raises(SdpError, match=r"^the BUNDLE group names mid '1', which no media"):
        check(text)
    text = session(
        audio_section(), video_section().replace("a=mid:1\n", ""), head="a=group:BUNDLE 0\n"
    )
    with pytest.raises(SdpError, match=r"^media 1 has no a=mid, needed for BUNDLE$"):
        check(text)


def test_mids_must_be_unique() -> None:
    with pytest.raises(SdpError, match=r"^duplicate mid '0' \(media 0 and 1\)$"):
        check(session(audio_section(), video_section(mid="0"), head="a=group:BUNDLE 0\n"))
