"""Errors raised by the RTP/RTCP wire layer.

Both are :class:`ValueError` subclasses, so an I/O adapter can count and drop
a malformed datagram with one ``except`` while tests can assert which parser
refused it.  The message names the field and the offending values.
"""

from __future__ import annotations

__all__ = ["RtcpError", "RtpError"]


class RtpError(ValueError):
    """A malformed RTP packet or header extension (RFC 3550 §5, RFC 8285)."""


class RtcpError(ValueError):
    """A malformed RTCP packet (RFC 3550 §6, RFC 4585, RFC 5104, TWCC draft)."""
