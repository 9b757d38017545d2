"""Malformed descriptions: each raises SdpError saying what and where."""

from __future__ import annotations

import pytest

from interlive.sdp import SdpError, SessionDescription

from .helpers import audio_section, session, video_section

HEAD = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\n"  # lines 1-4


def audio_with(extra: str) -> str:
    """HEAD, then a bare Opus section (lines 5-6), then ``extra`` from line 7."""
    return HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n" + extra


CASES = [
    ("", r"^empty session description$"),
    ("\n\n", r"^empty session description$"),
    ("o=- 1 2 IN IP4 0.0.0.0\nv=0\n", r"^line 1: a session description starts with v=0$"),
    ("v=1\n", r"^line 1: a session description starts with v=0$"),
    ("v=0\nhello\n", r"^line 2: expected <type>=<value>, got 'hello'$"),
    ("v=0\nO=- 1 2 IN IP4 0.0.0.0\n", r"^line 2: expected <type>=<value>"),
    ("v=0\nx=1\n", r"^line 2: unknown line type 'x'$"),
    ("v=0\nv=0\n", r"^line 2: a second v= line$"),
    ("v=0\no=- 1 2 IN IP4\n", r"^line 2: bad o= line '- 1 2 IN IP4'$"),
    ("v=0\no=- one 2 IN IP4 0.0.0.0\n", r"^line 2: bad o= line"),
    ("v=0\no=- 1 2 IN IP4 0.0.0.0\ns=-\n", r"^missing t= line$"),
    ("v=0\ns=-\nt=0 0\n", r"^missing o= line$"),
    ("v=0\no=- 1 2 IN IP4 0.0.0.0\nt=0 0\n", r"^missing s= line$"),
    ("v=0\no=- 1 2 IN IP4 0.0.0.0\ns=-\ns=-\nt=0 0\n", r"^line 4: duplicate s= line$"),
    (HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF\n", r"^line 5: bad m= line .*need <media> <port>"),
    (HEAD + "m=audio x UDP/TLS/RTP/SAVPF 111\n", r"^line 5: bad port 'x' in m= line$"),
    (HEAD + "m=audio 70000 UDP/TLS/RTP/SAVPF 111\n", r"^line 5: bad port '70000'"),
    (HEAD + "m=video 9 UDP/TLS/RTP/SAVPF 96 vp8\n", r"^line 5: bad payload type 'vp8'"),
    (HEAD + "m=video 9 UDP/TLS/RTP/SAVPF 128\n", r"^line 5: bad payload type '128'"),
    (HEAD + "m=video 9 UDP/TLS/RTP/SAVPF 96 96\n", r"^line 5: payload type 96 listed twice"),
    (HEAD + "m=audio 9 RTP/SAVPF 0\no=- 1 1 IN IP4 0.0.0.0\n", r"^line 6: o= is not allowed"),
    (audio_with("a=rtpmap:111 opus\n"), r"^line 7: bad rtpmap '111 opus'"),
    (audio_with("a=rtpmap:96 VP8/90000\n"), r"^line 7: a=rtpmap for payload type 96, not in"),
    (audio_with("a=rtpmap:111 opus/48000/2\n"), r"^line 7: second rtpmap for payload type 111$"),
    (audio_with("a=rtpmap:x opus/48000\n"), r"^line 7: bad payload type in a=rtpmap:x"),
    (audio_with("a=rtpmap:111 opus/fast/2\n"), r"^line 7: bad rtpmap"),
    (audio_with("a=fmtp:111 =1\n"), r"^line 7: bad fmtp parameter '=1'$"),
    (audio_with("a=fmtp:111 a=1\na=fmtp:111 b=1\n"), r"^line 8: second fmtp for payload type"),
    (
        HEAD + "m=video 9 UDP/TLS/RTP/SAVPF 96\na=fmtp:96 apt=100\n",
        r"^line 6: payload type 96 has attributes but no rtpmap$",
    ),
    (audio_with("a=rtcp-fb:111\n"), r"^line 7: rtcp-fb without a feedback type$"),
    (audio_with("a=fingerprint:sha-256 zz:11\n"), r"^line 7: bad fingerprint 'sha-256 zz:11'$"),
    (audio_with("a=fingerprint:sha-256\n"), r"^line 7: bad fingerprint"),
    (audio_with("a=extmap:0 urn:x\n"), r"^line 7: bad extmap id '0' \(1-255\[/direction\]\)$"),
    (audio_with("a=extmap:256 urn:x\n"), r"^line 7: bad extmap id '256'"),
    (audio_with("a=extmap:3/sideways urn:x\n"), r"^line 7: bad extmap id '3/sideways'"),
    (audio_with("a=extmap:3\n"), r"^line 7: bad extmap '3'$"),
    (
        audio_with("a=mid:0\na=extmap:3 urn:x\na=extmap:3 urn:y\n"),
        r"^line 9: extmap id 3 used twice in media 0 \(mid 0\)$",
    ),
    (audio_with("a=ssrc:abc cname:x\n"), r"^line 7: bad ssrc 'abc cname:x'"),
    (audio_with("a=ssrc:1\n"), r"^line 7: bad ssrc '1'"),
    (audio_with("a=ssrc:4294967296 cname:x\n"), r"^line 7: bad ssrc"),
    (audio_with("a=ssrc-group:FID 1 x\n"), r"^line 7: bad ssrc-group 'FID 1 x'$"),
    (audio_with("a=rid:q sideways\n"), r"^line 7: bad rid 'q sideways'"),
    (audio_with("a=rid:q.1 send\n"), r"^line 7: bad rid 'q.1 send'"),
    (audio_with("a=simulcast:send\n"), r"^line 7: bad simulcast 'send'$"),
    (audio_with("a=simulcast:up q\n"), r"^line 7: bad simulcast direction 'up'$"),
    (audio_with("a=simulcast:send q send h\n"), r"^line 7: bad simulcast direction 'send'$"),
    (audio_with("a=simulcast:send q;;h\n"), r"^line 7: bad rid '' in simulcast$"),
    (audio_with("a=simulcast:send q\na=simulcast:send q\n"), r"^line 8: duplicate a=simulcast$"),
    (audio_with("a=mid:0\na=mid:1\n"), r"^line 8: duplicate a=mid$"),
    (audio_with("a=mid\n"), r"^line 7: a=mid needs a value$"),
    (audio_with("a=sendonly\na=recvonly\n"), r"^line 8: second direction attribute$"),
    (audio_with("a=ice-ufrag:a\na=ice-ufrag:b\n"), r"^line 8: duplicate a=ice-ufrag$"),
    (audio_with("a=candidate\n"), r"^line 7: a=candidate needs a value$"),
    (audio_with("a=:x\n"), r"^line 7: attribute without a name: 'a=:x'$"),
    (audio_with("c=IN IP4 0.0.0.0\nc=IN IP4 0.0.0.0\n"), r"^line 8: duplicate c= line"),
    ("v=0\na=group:\n", r"^line 2: a=group needs a value$"),
    ("v=0\na=fingerprint:md5 nothex\n", r"^line 2: bad fingerprint"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_malformed_description_raises_sdp_error(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        SessionDescription.parse(text)


def test_sdp_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty session description"):
        SessionDescription.parse("")


def test_long_garbage_line_is_shortened_in_the_message() -> None:
    with pytest.raises(SdpError, match=r"^line 2: expected <type>=<value>, got '(y){57}\.\.\.'$"):
        SessionDescription.parse("v=0\n" + "y" * 500 + "\n")


def test_blank_lines_and_trailing_spaces_are_tolerated() -> None:
    text = session(audio_section(), video_section()).replace("\n", "  \n\n")
    assert SessionDescription.parse(text) == SessionDescription.parse(
        session(audio_section(), video_section())
    )
