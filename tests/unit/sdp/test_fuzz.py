"""Fuzzing the parsers: any text either parses or raises SdpError, and parsed text round-trips.

Three generators: arbitrary text; lines assembled from SDP-looking pieces after a
valid header (to reach the attribute parsers); and captured offers with one line
replaced, deleted or duplicated (to reach the section assembly and validation).
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlive.sdp import (
    Candidate,
    Fingerprint,
    MediaAnswer,
    SdpError,
    SessionDescription,
    build_answer,
    default_capabilities,
    negotiate_offer,
    parse_sdpfrag,
    validate_offer,
)

from .helpers import ALL_FIXTURES, FINGERPRINT_VALUE, load

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
PREFIXES = [
    "m=audio 9 UDP/TLS/RTP/SAVPF ",
    "m=video ",
    "m=application 9 UDP/DTLS/SCTP ",
    "c=",
    "b=",
    "i=",
    "t=",
    "a=rtpmap:",
    "a=rtpmap:96 ",
    "a=fmtp:96 ",
    "a=fmtp:",
    "a=rtcp-fb:96 ",
    "a=rtcp-fb:",
    "a=extmap:",
    "a=ssrc:",
    "a=ssrc:1 ",
    "a=ssrc-group:FID ",
    "a=msid:",
    "a=rid:",
    "a=simulcast:",
    "a=simulcast:send ",
    "a=group:BUNDLE ",
    "a=mid:",
    "a=candidate:",
    "a=ice-ufrag:",
    "a=ice-pwd:",
    "a=ice-options:",
    "a=fingerprint:sha-256 ",
    "a=setup:",
    "a=sendonly",
    "a=recvonly",
    "a=rtcp-mux",
    "a=bundle-only",
    "a=extmap-allow-mixed",
    "a=msid-semantic:",
    "a=",
    "o=",
]
PIECES = st.text(alphabet=st.sampled_from("0123456789 /;:=,~*-abcAZ.\t\u00e9\u0661"), max_size=20)
SDP_LINES = st.lists(st.tuples(st.sampled_from(PREFIXES), PIECES), max_size=25)


def check_parse(text: str) -> None:
    """Parse; a success must round-trip, and validation/negotiation/answer must not crash."""
    try:
        parsed = SessionDescription.parse(text)
    except SdpError:
        return
    again = SessionDescription.parse(str(parsed))
    assert again == parsed
    assert str(again) == str(parsed)
    try:
        validate_offer(parsed)
    except SdpError:
        return
    negotiated = negotiate_offer(parsed, default_capabilities())
    build_answer(
        parsed,
        [MediaAnswer(n) for n in negotiated],
        ice_ufrag="abcd",
        ice_pwd="0123456789abcdefghijkl",
        fingerprint=Fingerprint("sha-256", FINGERPRINT_VALUE),
        candidates=[Candidate("1", 1, "udp", 1, "127.0.0.1", 9, "host")],
        session_id=1,
    )


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    check_parse(text)
    check_parse("v=0\n" + text)


@FUZZ
@given(SDP_LINES, st.sampled_from(["\r\n", "\n"]))
def test_sdp_shaped_lines(lines: list[tuple[str, str]], newline: str) -> None:
    body = newline.join(prefix + piece for prefix, piece in lines)
    check_parse(HEADER + "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" + body)
    check_parse(HEADER + body)


@FUZZ
@given(
    st.sampled_from(ALL_FIXTURES),
    st.integers(min_value=0, max_value=400),
    st.sampled_from(["replace", "delete", "duplicate"]),
    st.tuples(st.sampled_from(PREFIXES), PIECES),
)
def test_mutated_fixtures(name: str, index: int, how: str, line: tuple[str, str]) -> None:
    lines = load(name).split("\r\n")
    index %= len(lines)
    if how == "replace":
        lines[index] = line[0] + line[1]
    elif how == "delete":
        del lines[index]
    else:
        lines.insert(index, lines[index])
    check_parse("\r\n".join(lines))


@FUZZ
@given(st.one_of(st.text(max_size=300), SDP_LINES.map(lambda ls: "\n".join(p + s for p, s in ls))))
def test_sdpfrag_raises_only_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        parse_sdpfrag(text)
