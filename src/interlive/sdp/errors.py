"""The one error the SDP package raises for bad input."""

from __future__ import annotations

__all__ = ["SdpError"]


class SdpError(ValueError):
    """A session description (or sdpfrag) that is malformed or that interlive cannot accept.

    The message says why, and where when a line is to blame: ``"line 7: bad
    rtpmap '96 VP8'"``, ``"media 1 (mid 1): missing ice-ufrag"``.  Signalling
    endpoints turn it into a 400 response with the message as the reason.
    """
