"""Serial-number arithmetic and unwrapping for RTP sequence numbers and timestamps.

RTP sequence numbers are 16-bit and timestamps 32-bit counters that wrap
(RFC 3550 §5.1); they are compared with serial-number arithmetic (RFC 1982
§3.2, as used by RFC 3550 Appendix A.1).  The SFU unwraps them once at
ingress into 64-bit extended values and compares only those afterwards.

Theory of operation
-------------------
An unwrapper remembers the highest extended value seen.  A new value is
placed at the signed shortest distance from it (``-2**(n-1)`` .. ``2**(n-1) - 1``),
so 65535 -> 0 moves forward into the next cycle while a late 65535 that
arrives after 0 maps back into the earlier cycle.  Only a forward step moves
the reference, so one stray old packet cannot drag it backwards.  A distance
of exactly half the space counts as backwards.

The first value anchors the unwrapper in cycle 1 (extended = ``2**n + value``)
rather than cycle 0: reordered packets from before a wrap that happens right
at the start would otherwise go negative.  Extended values are therefore
never negative; only differences between them carry meaning.
"""

from __future__ import annotations

from .types import ExtSeq, ExtTimestamp

__all__ = ["SequenceUnwrapper", "TimestampUnwrapper", "seq_diff", "seq_is_newer"]


def seq_diff(a: int, b: int) -> int:
    """Signed 16-bit distance ``a - b`` in -32768..32767 (RFC 1982 §3.2)."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_is_newer(a: int, b: int) -> bool:
    """True when 16-bit sequence number ``a`` comes after ``b``.

    At exactly half the space apart (undefined in RFC 1982) the larger
    number is deemed newer, so for ``a != b`` exactly one of
    ``seq_is_newer(a, b)`` and ``seq_is_newer(b, a)`` holds.
    """
    diff = (a - b) & 0xFFFF
    if diff == 0x8000:
        return a > b
    return 0 < diff < 0x8000


class SequenceUnwrapper:
    """Turns 16-bit RTP sequence numbers into :data:`ExtSeq` (see module doc)."""

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> ExtSeq | None:
        """The highest extended sequence number seen, or None before the first."""
        return None if self._highest is None else ExtSeq(self._highest)

    def unwrap(self, seq: int) -> ExtSeq:
        """Extend ``seq`` (0..65535) relative to the highest value seen."""
        if seq >> 16:
            raise ValueError(f"sequence number must be 0..65535, got {seq}")
        highest = self._highest
        if highest is None:
            self._highest = ext = 0x10000 + seq
            return ExtSeq(ext)
        delta = ((seq - highest + 0x8000) & 0xFFFF) - 0x8000
        ext = highest + delta
        if delta > 0:
            self._highest = ext
        return ExtSeq(ext)


class TimestampUnwrapper:
    """Turns 32-bit RTP timestamps into :data:`ExtTimestamp` (see module doc)."""

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> ExtTimestamp | None:
        """The highest extended timestamp seen, or None before the first."""
        return None if self._highest is None else ExtTimestamp(self._highest)

    def unwrap(self, timestamp: int) -> ExtTimestamp:
        """Extend ``timestamp`` (0..2**32-1) relative to the highest value seen."""
        if timestamp >> 32:
            raise ValueError(f"timestamp must be 0..2**32-1, got {timestamp}")
        highest = self._highest
        if highest is None:
            self._highest = ext = 0x1_0000_0000 + timestamp
            return ExtTimestamp(ext)
        delta = ((timestamp - highest + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
        ext = highest + delta
        if delta > 0:
            self._highest = ext
        return ExtTimestamp(ext)
