"""SRTP/SRTCP contexts (RFC 3711, RFC 7714 for AES-GCM) on libsrtp via pylibsrtp.

One inbound and one outbound session per DTLS association, each accepting any
SSRC: the SFU sends many SSRCs to one subscriber over one transport.
"""

from __future__ import annotations

import pylibsrtp

from interlive.transport.dtls import AEAD_AES_128_GCM, AES128_CM_SHA1_80, SrtpKeys

_LIBSRTP_PROFILES = {
    AEAD_AES_128_GCM.name: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    AES128_CM_SHA1_80.name: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
}

#: replay window, large enough for RTX and reordering at video rates
REPLAY_WINDOW = 1024


class SrtpError(ValueError):
    """A packet failed authentication or replay checks (libsrtp's verdict)."""


class SrtpContext:
    def __init__(self, keys: SrtpKeys) -> None:
        profile = _LIBSRTP_PROFILES[keys.profile.name]
        rx = pylibsrtp.Policy(
            key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
        )
        rx.window_size = REPLAY_WINDOW
        tx = pylibsrtp.Policy(
            key=keys.local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
        )
        tx.window_size = REPLAY_WINDOW
        # An SFU may legitimately send a packet index twice (RTX of a packet whose
        # original went out, in a later issue); libsrtp refuses that unless allowed.
        tx.allow_repeat_tx = True
        self.profile = keys.profile.name
        self._rx = pylibsrtp.Session(rx)
        self._tx = pylibsrtp.Session(tx)

    def protect_rtp(self, packet: bytes) -> bytes:
        return self._tx.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._tx.protect_rtcp(packet)

    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return self._rx.unprotect(packet)
        except pylibsrtp.Error as exc:
            raise SrtpError(f"SRTP: {exc}") from exc

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        try:
            return self._rx.unprotect_rtcp(packet)
        except pylibsrtp.Error as exc:
            raise SrtpError(f"SRTCP: {exc}") from exc
