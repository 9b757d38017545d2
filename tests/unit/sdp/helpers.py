"""Captured offers (tests/fixtures/sdp) and small hand-made descriptions for the SDP tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdp"

CHROME_SENDONLY = "chrome156_sendonly.sdp"
CHROME_SIMULCAST = "chrome156_simulcast_sendonly.sdp"
CHROME_RECVONLY = "chrome156_recvonly.sdp"
AIORTC_SENDONLY = "aiortc116_sendonly.sdp"
FFMPEG_WHIP = "ffmpeg81_whip_h264_opus.sdp"

CHROME_FIXTURES = (CHROME_SENDONLY, CHROME_SIMULCAST, CHROME_RECVONLY)
ALL_FIXTURES = (*CHROME_FIXTURES, AIORTC_SENDONLY, FFMPEG_WHIP)

FINGERPRINT_VALUE = ":".join(f"{i:02X}" for i in range(32))


def load(name: str) -> str:
    """A fixture's text exactly as captured (CRLF line endings kept)."""
    with open(FIXTURES / name, encoding="utf-8", newline="") as handle:
        return handle.read()


def audio_section(mid: str = "0", extra: str = "") -> str:
    """A minimal valid bundled Opus section with its transport attributes."""
    return (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\n"
        "c=IN IP4 0.0.0.0\n"
        "a=ice-ufrag:abcd\n"
        "a=ice-pwd:0123456789abcdefghijkl\n"
        f"a=fingerprint:sha-256 {FINGERPRINT_VALUE}\n"
        "a=setup:actpass\n"
        f"a=mid:{mid}\n"
        "a=sendonly\n"
        "a=rtcp-mux\n"
        "a=rtpmap:111 opus/48000/2\n"
        "a=fmtp:111 minptime=10;useinbandfec=1\n" + extra
    )


def video_section(mid: str = "1", extra: str = "") -> str:
    """A minimal valid bundled VP8 + rtx section with its transport attributes."""
    return (
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\n"
        "c=IN IP4 0.0.0.0\n"
        "a=ice-ufrag:abcd\n"
        "a=ice-pwd:0123456789abcdefghijkl\n"
        f"a=fingerprint:sha-256 {FINGERPRINT_VALUE}\n"
        "a=setup:actpass\n"
        f"a=mid:{mid}\n"
        "a=sendonly\n"
        "a=rtcp-mux\n"
        "a=rtpmap:96 VP8/90000\n"
        "a=rtcp-fb:96 nack\n"
        "a=rtpmap:97 rtx/90000\n"
        "a=fmtp:97 apt=96\n" + extra
    )


def session(*sections: str, head: str = "a=group:BUNDLE 0 1\n") -> str:
    """A description with LF line endings: the session lines, ``head``, then ``sections``."""
    return "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\n" + head + "".join(sections)
