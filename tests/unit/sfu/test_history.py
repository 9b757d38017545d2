from __future__ import annotations

from interlive.sfu.history import PacketHistory


def test_store_get_by_16_bit_sequence_and_expiry() -> None:
    h = PacketHistory(max_age=1.0)
    h.store(65535, b"a", 0.0)
    h.store(65536, b"b", 0.5)  # wraps to 0
    assert h.get(65535, 0.6) == b"a"
    assert h.get(0, 0.6) == b"b"
    assert h.get(65535, 1.1) is None  # older than max_age
    h.store(1, b"c", 1.2)  # expiry runs on store
    assert len(h) == 2


def test_bounded_by_count() -> None:
    h = PacketHistory(max_age=100.0, max_packets=10)
    for i in range(25):
        h.store(i, bytes([i]), 0.0)
    assert len(h) == 10
    assert h.get(14, 0.0) is None and h.get(24, 0.0) == bytes([24])


def test_overwritten_sequence_is_not_expired_by_its_old_entry() -> None:
    h = PacketHistory(max_age=1.0)
    h.store(7, b"old", 0.0)
    h.store(7, b"new", 0.9)
    h.store(8, b"x", 1.5)  # expires the old (7, 0.0) entry but not the new one
    assert h.get(7, 1.5) == b"new"
