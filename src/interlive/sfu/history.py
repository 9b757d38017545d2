"""Packet history of a down-track, by output sequence number, bounded by age.

The NACK/RTX responder (a later issue) reads from here; the forwarding path
only stores. A fixed ring indexed by the low bits of the sequence number makes
a store one list assignment, whatever the packet rate: an entry is valid if
its sequence number matches and it is younger than ``max_age``.
"""

from __future__ import annotations


class PacketHistory:
    def __init__(self, max_age: float = 1.0, slots: int = 2048) -> None:
        if slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self.max_age = max_age
        self._mask = slots - 1
        self._ring: list[tuple[int, float, bytes] | None] = [None] * slots

    def __len__(self) -> int:
        return sum(1 for entry in self._ring if entry is not None)

    def store(self, sequence_number: int, packet: bytes, now: float) -> None:
        seq = sequence_number & 0xFFFF
        self._ring[seq & self._mask] = (seq, now, packet)

    def get(self, sequence_number: int, now: float) -> bytes | None:
        seq = sequence_number & 0xFFFF
        entry = self._ring[seq & self._mask]
        if entry is None or entry[0] != seq or now - entry[1] > self.max_age:
            return None
        return entry[2]
