"""Serialising the model: CRLF text that parses back to the same model."""

from __future__ import annotations

import pytest

from interlive.sdp import Attribute, SessionDescription

from .helpers import ALL_FIXTURES, CHROME_FIXTURES, audio_section, load, session, video_section


@pytest.mark.parametrize("name", CHROME_FIXTURES)
def test_chrome_offers_round_trip_byte_for_byte(name: str) -> None:
    text = load(name)
    assert str(SessionDescription.parse(text)) == text


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_round_trips_to_an_equal_model(name: str) -> None:
    parsed = SessionDescription.parse(load(name))
    text = str(parsed)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert SessionDescription.parse(text) == parsed
    assert str(SessionDescription.parse(text)) == text  # canonical form is stable


def test_other_lines_are_written_in_rfc_order() -> None:
    text = (
        "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=x\nb=AS:100\ni=info\nt=0 0\nr=7d 1h 0 25h\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\nb=TIAS:64000\ni=media info\nc=IN IP4 0.0.0.0\n"
    )
    parsed = SessionDescription.parse(text)
    assert parsed.other_lines == [("i", "info"), ("b", "AS:100"), ("r", "7d 1h 0 25h")]
    assert str(parsed) == (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\ni=info\r\nb=AS:100\r\nt=0 0\r\n"
        "r=7d 1h 0 25h\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\ni=media info\r\n"
        "c=IN IP4 0.0.0.0\r\nb=TIAS:64000\r\na=rtpmap:0 PCMU/8000/1\r\n"
    )
    assert SessionDescription.parse(str(parsed)) == parsed


def test_bare_and_valued_attributes_and_params() -> None:
    text = session(
        audio_section(extra="a=x-flag\na=x-empty:\n"),
        video_section(extra="a=fmtp:96 a;b=\n"),
    )
    parsed = SessionDescription.parse(text)
    assert parsed.media[0].attributes == [Attribute("x-flag"), Attribute("x-empty", "")]
    assert parsed.media[1].codecs[0].fmtp == {"a": "", "b": ""}
    out = str(parsed)
    assert "a=x-flag\r\na=x-empty:\r\n" in out
    assert "a=fmtp:96 a;b\r\n" in out
    assert SessionDescription.parse(out) == parsed


def test_application_section_has_no_direction_written() -> None:
    text = session(
        audio_section(),
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=mid:1\n"
        "a=sctp-port:5000\na=max-message-size:262144\n",
    )
    out = str(SessionDescription.parse(text))
    tail = out[out.index("m=application") :]
    assert tail == (
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
        "a=sctp-port:5000\r\na=max-message-size:262144\r\n"
    )
