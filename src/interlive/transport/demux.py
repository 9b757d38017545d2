"""Classify datagrams on a shared UDP port by their first byte (RFC 7983 §7)."""

from __future__ import annotations

from enum import Enum


class DatagramKind(Enum):
    STUN = "stun"
    DTLS = "dtls"
    RTP = "rtp"  # RTP or RTCP: told apart with interlive.rtp.rtcp.is_rtcp
    UNKNOWN = "unknown"


def classify(data: bytes) -> DatagramKind:
    if not data:
        return DatagramKind.UNKNOWN
    first = data[0]
    if first < 4:
        return DatagramKind.STUN
    if 20 <= first < 64:
        return DatagramKind.DTLS
    if 128 <= first < 192:
        return DatagramKind.RTP
    return DatagramKind.UNKNOWN
