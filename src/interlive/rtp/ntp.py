"""NTP timestamps as used by RTCP (RFC 3550 §4 and §6.4.1).

A 64-bit NTP timestamp is seconds since 1900-01-01 in the upper 32 bits and a
binary fraction in the lower 32 (RFC 5905 §6).  RTCP sender reports carry it
whole; receiver report blocks carry the "compact" middle 32 bits (16.16 fixed
point) as LSR and the delay since that report as DLSR, from which the sender
computes the round-trip time (RFC 3550 §6.4.1, Figure 2).

Era handling follows RFC 4330 §3: the seconds field wraps in February 2036,
so :func:`unix_from_ntp` reads seconds with the top bit clear as era 1
(2036..2104) and :func:`ntp_from_unix` keeps only 64 bits.  The mapping is
therefore one-to-one for 1968..2104.
"""

from __future__ import annotations

import math

__all__ = ["NTP_UNIX_OFFSET", "ntp_compact", "ntp_from_unix", "rtt_seconds", "unix_from_ntp"]

#: Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
NTP_UNIX_OFFSET = 2_208_988_800

_FRACTION = 1 << 32


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp for a Unix time in seconds (fraction rounded)."""
    whole = math.floor(seconds)
    fraction = round((seconds - whole) * _FRACTION)
    return (((whole + NTP_UNIX_OFFSET) << 32) + fraction) & 0xFFFF_FFFF_FFFF_FFFF


def unix_from_ntp(ntp: int) -> float:
    """Unix time in seconds for a 64-bit NTP timestamp (RFC 4330 §3 eras)."""
    seconds = (ntp >> 32) & 0xFFFF_FFFF
    if not seconds & 0x8000_0000:
        seconds += 1 << 32  # era 1: after 2036-02-07
    return seconds - NTP_UNIX_OFFSET + (ntp & 0xFFFF_FFFF) / _FRACTION


def ntp_compact(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (RFC 3550 §6.4.1, LSR)."""
    return (ntp >> 16) & 0xFFFF_FFFF


def rtt_seconds(now_compact: int, lsr: int, dlsr: int) -> float | None:
    """Round-trip time from a report block, RFC 3550 §6.4.1: ``A - LSR - DLSR``.

    All three are compact NTP (1/65536 s).  Returns None when ``lsr`` is 0
    (no sender report received yet) or the result is negative (clock
    inconsistency); arithmetic is modulo 2**32 so the compact clock may wrap.
    """
    if lsr == 0:
        return None
    rtt = (now_compact - lsr - dlsr) & 0xFFFF_FFFF
    if rtt & 0x8000_0000:
        return None
    return rtt / 65536.0
