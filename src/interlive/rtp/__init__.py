"""Sans-IO RTP/RTCP core: wire objects, header extensions, sequence arithmetic.

* :mod:`.packet` - RTP packets (RFC 3550 §5) and the forwarding rewrite.
* :mod:`.extensions` - RFC 8285 header extensions and value codecs.
* :mod:`.rtcp` - RTCP compound packets, reports and feedback (RFC 3550 §6,
  RFC 4585, RFC 5104, REMB, transport-wide CC).
* :mod:`.seq` - serial-number arithmetic and unwrapping (RFC 1982, RFC 3550 A.1).
* :mod:`.ntp` - NTP timestamps and RTT (RFC 3550 §4, §6.4.1).
* :mod:`.types` - ``Ssrc``, ``PayloadType``, ``ExtSeq``, ``ExtTimestamp``.
"""

from .errors import RtcpError, RtpError
from .packet import RtpPacket, rewrite_rtp
from .rtcp import RtcpPacket, is_rtcp, parse_rtcp, serialize_rtcp
from .seq import SequenceUnwrapper, TimestampUnwrapper, seq_diff, seq_is_newer
from .types import ExtSeq, ExtTimestamp, PayloadType, Ssrc

__all__ = [
    "ExtSeq",
    "ExtTimestamp",
    "PayloadType",
    "RtcpError",
    "RtcpPacket",
    "RtpError",
    "RtpPacket",
    "SequenceUnwrapper",
    "Ssrc",
    "TimestampUnwrapper",
    "is_rtcp",
    "parse_rtcp",
    "rewrite_rtp",
    "seq_diff",
    "seq_is_newer",
    "serialize_rtcp",
]
