"""Distinct integer types for RTP identifiers and extended counters.

RFC 3550 §5.1 defines the SSRC (32 bits), payload type (7 bits), sequence
number (16 bits) and timestamp (32 bits).  The SFU unwraps the wrapping
counters once at ingress (see :mod:`interlive.rtp.seq`) and compares only the
extended values afterwards, so those get their own types: mixing a 16-bit
wire sequence number with an extended one is then a type error, not a bug
found in production.
"""

from __future__ import annotations

from typing import NewType

__all__ = ["ExtSeq", "ExtTimestamp", "PayloadType", "Ssrc"]

#: Synchronisation source identifier, RFC 3550 §5.1 (0 .. 2**32-1).
Ssrc = NewType("Ssrc", int)
#: RTP payload type, RFC 3550 §5.1 (0 .. 127).
PayloadType = NewType("PayloadType", int)
#: Sequence number unwrapped to 64 bits; never negative (see SequenceUnwrapper).
ExtSeq = NewType("ExtSeq", int)
#: RTP timestamp unwrapped to 64 bits; never negative (see TimestampUnwrapper).
ExtTimestamp = NewType("ExtTimestamp", int)
