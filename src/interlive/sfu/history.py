"""Packet history of a down-track, by output sequence number, bounded by age.

The NACK/RTX responder (a later issue) reads from here; the forwarding path
only stores. A dict keyed by 16-bit sequence number plus an insertion-ordered
expiry is O(1) per packet.
"""

from __future__ import annotations

from collections import deque


class PacketHistory:
    def __init__(self, max_age: float = 1.0, max_packets: int = 2048) -> None:
        self.max_age = max_age
        self.max_packets = max_packets
        self._packets: dict[int, tuple[float, bytes]] = {}
        self._order: deque[tuple[int, float]] = deque()

    def __len__(self) -> int:
        return len(self._packets)

    def store(self, sequence_number: int, packet: bytes, now: float) -> None:
        seq = sequence_number & 0xFFFF
        self._packets[seq] = (now, packet)
        self._order.append((seq, now))
        self._expire(now)

    def get(self, sequence_number: int, now: float) -> bytes | None:
        entry = self._packets.get(sequence_number & 0xFFFF)
        if entry is None or now - entry[0] > self.max_age:
            return None
        return entry[1]

    def _expire(self, now: float) -> None:
        order = self._order
        packets = self._packets
        while order and (now - order[0][1] > self.max_age or len(order) > self.max_packets):
            seq, stored = order.popleft()
            entry = packets.get(seq)
            if entry is not None and entry[0] == stored:
                del packets[seq]
