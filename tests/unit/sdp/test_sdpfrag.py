"""trickle-ice-sdpfrag bodies (RFC 8840), as WHIP/WHEP PATCH carries them (RFC 9725 §4.3)."""

from __future__ import annotations

import pytest

from interlive.sdp import (
    Candidate,
    FragMedia,
    Group,
    SdpError,
    SdpFrag,
    SessionDescription,
    build_sdpfrag,
    parse_sdpfrag,
)

from .helpers import CHROME_SENDONLY, load

# Shaped like RFC 9725's trickle example: credentials at session level, one m= block.
TRICKLE = (
    "a=ice-options:trickle ice2\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=mid:0\r\n"
    "a=ice-ufrag:EsAw\r\n"
    "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
    "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 "
    "ufrag EsAw network-id 1\r\n"
    "a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active "
    "generation 0 ufrag EsAw network-id 1\r\n"
    "a=end-of-candidates\r\n"
)


def test_parse_trickle_fragment() -> None:
    frag = parse_sdpfrag(TRICKLE)
    assert frag.ice_ufrag == "EsAw" and frag.ice_pwd == "P2uYro0UCOQ4zxjKXaWCBui1"
    assert frag.ice_options == ("trickle", "ice2")
    assert frag.groups == (Group("BUNDLE", ("0", "1")),)
    assert frag.end_of_candidates and not frag.ice_lite
    assert len(frag.media) == 1 and frag.media[0].mid == "0"
    assert [mid for mid, _ in frag.candidates] == ["0", "0"]
    assert Candidate.parse(frag.candidates[1][1]).tcptype == "active"


def test_session_level_credentials_and_several_blocks() -> None:
    text = (
        "a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\nc=IN IP4 0.0.0.0\na=mid:0\n"
        "a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 0\na=mid:1\na=ice-ufrag:abcd\n"
        "a=candidate:2 1 udp 1 10.0.0.2 5000 typ host\n"
    )
    frag = parse_sdpfrag(text)
    assert frag == SdpFrag(
        ice_ufrag="abcd",
        ice_pwd="0123456789abcdefghijkl",
        ice_options=(),
        media=(
            FragMedia("0", ("1 1 udp 1 10.0.0.1 5000 typ host",)),
            FragMedia("1", ("2 1 udp 1 10.0.0.2 5000 typ host",)),
        ),
        end_of_candidates=False,
    )


def test_candidates_without_an_m_block() -> None:
    frag = parse_sdpfrag("a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\na=end-of-candidates\n")
    assert frag.candidates == [(None, "1 1 udp 1 10.0.0.1 5000 typ host")]
    assert frag.end_of_candidates and frag.ice_ufrag is None


def test_ice_restart_fragment_without_candidates() -> None:
    frag = parse_sdpfrag("a=ice-ufrag:new1\na=ice-pwd:0123456789abcdefghijkl\n")
    assert frag.ice_ufrag == "new1" and frag.media == () and frag.candidates == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^empty sdpfrag$"),
        ("v=0\na=ice-ufrag:abcd\n", r"^line 1: v= is not allowed in a trickle-ice-sdpfrag"),
        ("c=IN IP4 0.0.0.0\n", r"^line 1: c= is not allowed"),
        ("garbage\n", r"^line 1: expected <type>=<value>"),
        ("a=ice-ufrag:abcd\na=ice-ufrag:efgh\n", r"^line 2: ice-ufrag 'efgh' differs from 'abcd'$"),
        ("a=ice-pwd:a\na=ice-pwd:b\n", r"^line 2: ice-pwd differs from an earlier one$"),
        ("a=ice-ufrag\n", r"^line 1: a=ice-ufrag needs a value$"),
        ("a=mid:0\n", r"^line 1: a=mid outside an m= block$"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:0\na=mid:1\n", r"^line 3: duplicate a=mid$"),
        ("m=audio 9\n", r"^line 1: bad m= line"),
        ("a=candidate:1 1 udp 1 10.0.0.1 5000 host\n", r"^line 1: bad candidate '1 1 udp"),
        ("a=candidate:1 1 udp 1 10.0.0.1 99999 typ host\n", r"^line 1: bad candidate"),
        ("a=candidate:1 1 udp x 10.0.0.1 1 typ host\n", r"^line 1: bad candidate"),
        ("a=candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr\n", r"^line 1: bad candidate"),
        ("a=candidate:1 1 udp 1 1.2.3.4 1 typ srflx rport x\n", r"^line 1: bad candidate rport"),
    ],
)
def test_malformed_fragments(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_sdpfrag(text)


def test_build_restart_answer() -> None:
    host = Candidate("1", 1, "udp", 2130706431, "198.51.100.1", 39132, "host")
    text = build_sdpfrag(
        ice_ufrag="289b31b754eaa438",
        ice_pwd="0b66f472495ef0ccac7bda1aab4",
        candidates=[host],
        mid="0",
        bundle_mids=["0", "1"],
        ice_options=["trickle", "ice2"],
    )
    assert text == (
        "a=ice-lite\r\n"
        "a=ice-options:trickle ice2\r\n"
        "a=group:BUNDLE 0 1\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
        "a=mid:0\r\n"
        "a=ice-ufrag:289b31b754eaa438\r\n"
        "a=ice-pwd:0b66f472495ef0ccac7bda1aab4\r\n"
        "a=candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    frag = parse_sdpfrag(text)
    assert frag.ice_lite and frag.ice_ufrag == "289b31b754eaa438"
    assert frag.candidates == [("0", str(host))] and frag.end_of_candidates


def test_build_minimal() -> None:
    text = build_sdpfrag(
        ice_ufrag="abcd",
        ice_pwd="p" * 22,
        candidates=[],
        mid="v",
        kind="video",
        fmt="96",
        ice_lite=False,
        end_of_candidates=False,
    )
    assert (
        text
        == "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=ice-ufrag:abcd\r\na=ice-pwd:"
        + "p" * 22
        + "\r\n"
    )


def test_chrome_candidates_trickle() -> None:
    audio = SessionDescription.parse(load(CHROME_SENDONLY)).media[0]
    lines = "".join(f"a=candidate:{c}\r\n" for c in audio.candidates)
    frag = parse_sdpfrag("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" + lines)
    assert [c for _, c in frag.candidates] == audio.candidates
