"""The crypto of a peer session's RTP, and its null version for plain RTP.

A WebRTC session protects RTP and RTCP with SRTP keyed by DTLS
(:class:`~interlive.transport.srtp.SrtpContext`).  A *plain* session (the
model is mediasoup's PlainTransport) carries unencrypted RTP and RTCP between
the media worker and a trusted local process, the control process's RTMP
ingest or a mixer, over loopback: :class:`PlainRtp` is the pass-through that
lets the same :class:`~interlive.worker.peer.PeerSession` code run on it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PlainRtp", "RtpCrypto"]


class RtpCrypto(Protocol):
    """What a peer session needs from its RTP protection; ``SrtpContext`` is one."""

    profile: str

    def protect_rtp(self, packet: bytes) -> bytes: ...
    def protect_rtcp(self, packet: bytes) -> bytes: ...
    def unprotect_rtp(self, packet: bytes) -> bytes: ...
    def unprotect_rtcp(self, packet: bytes) -> bytes: ...


class PlainRtp:
    """No protection: packets go out and come in as they are (RFC 3550 without RFC 3711)."""

    profile = "plain"

    def protect_rtp(self, packet: bytes) -> bytes:
        return packet

    def protect_rtcp(self, packet: bytes) -> bytes:
        return packet

    def unprotect_rtp(self, packet: bytes) -> bytes:
        return packet

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return packet
