from __future__ import annotations

import pytest

from interlive.sfu.history import PacketHistory


def test_store_get_by_16_bit_sequence_and_age() -> None:
    h = PacketHistory(max_age=1.0)
    h.store(65535, b"a", 0.0)
    h.store(65536, b"b", 0.5)  # wraps to 0
    assert h.get(65535, 0.6) == b"a"
    assert h.get(0, 0.6) == b"b"
    assert h.get(65535, 1.1) is None  # older than max_age
    assert h.get(1, 0.6) is None  # never stored


def test_bounded_by_slots_newer_overwrites_older() -> None:
    h = PacketHistory(max_age=100.0, slots=16)
    for i in range(40):
        h.store(i, bytes([i]), 0.0)
    assert len(h) == 16
    assert h.get(23, 0.0) is None and h.get(39, 0.0) == bytes([39])


def test_same_slot_other_cycle_is_not_returned() -> None:
    h = PacketHistory(max_age=100.0, slots=16)
    h.store(5, b"old", 0.0)
    h.store(21, b"new", 0.0)  # same slot
    assert h.get(5, 0.0) is None and h.get(21, 0.0) == b"new"


def test_slots_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError):
        PacketHistory(slots=1000)
