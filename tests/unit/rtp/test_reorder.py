"""ReorderBuffer: in-order release, a bounded wait for holes, wraps, late and duplicate packets."""

from __future__ import annotations

import random

import pytest

from interlive.rtp.reorder import REPAIR_WAIT, ReorderBuffer


def test_in_order_packets_go_out_at_once_and_nothing_waits() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer()
    assert [x for s in range(100, 110) for x in buf.push(s, s, 1.0)] == list(range(100, 110))
    assert buf.get_timer() is None and buf.held == 0
    assert buf.stats.released == 10 and buf.stats.reordered == 0


def test_a_hole_holds_what_follows_until_the_repair_fills_it() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(max_wait=0.3)
    assert buf.push(1, "a", 0.0) == ["a"]
    assert buf.push(3, "c", 0.01) == []
    assert buf.push(4, "d", 0.02) == []
    assert buf.get_timer() == pytest.approx(0.31)  # the earliest held packet's arrival + wait
    assert buf.poll(0.2) == []
    assert buf.push(2, "b", 0.11) == ["b", "c", "d"]  # the repair, a round trip later
    assert buf.get_timer() is None
    assert (buf.stats.reordered, buf.stats.given_up) == (1, 0)


def test_a_hole_is_given_up_after_the_wait_and_its_late_repair_dropped() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer(max_wait=0.3)
    buf.push(10, 10, 0.0)
    buf.push(13, 13, 0.05)
    buf.push(14, 14, 0.06)
    buf.push(16, 16, 0.2)
    assert buf.poll(0.34) == []
    assert buf.poll(0.35) == [13, 14]  # 11 and 12 given up; 15 is a new hole ...
    assert buf.get_timer() == pytest.approx(0.5)  # ... waited for from 16's arrival
    assert buf.push(12, 12, 0.4) == []  # too late: the consumer moved past it
    assert buf.poll(0.5) == [16]
    assert (buf.stats.given_up, buf.stats.late_or_duplicate) == (3, 1)


def test_duplicates_are_dropped_held_or_released() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer()
    buf.push(1, 1, 0.0)
    assert buf.push(1, 1, 0.0) == []
    buf.push(3, 3, 0.0)
    assert buf.push(3, 3, 0.0) == []
    assert buf.stats.late_or_duplicate == 2 and buf.held == 1


def test_sequence_numbers_wrap() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer()
    assert buf.push(65534, 65534, 0.0) == [65534]
    assert buf.push(0, 0, 0.0) == []
    assert buf.push(65535, 65535, 0.0) == [65535, 0]


def test_past_capacity_the_hole_is_given_up_at_once() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer(capacity=3)
    buf.push(0, 0, 0.0)
    assert [buf.push(s, s, 0.0) for s in (2, 3, 4)] == [[], [], []]
    assert buf.push(5, 5, 0.0) == [2, 3, 4, 5]
    assert buf.stats.given_up == 1


def test_any_arrival_order_comes_out_sorted_without_loss() -> None:
    rng = random.Random(7)
    seqs = [(60_000 + i) & 0xFFFF for i in range(2000)]
    # the first arrival defines where the stream starts, so it is the first packet
    arrivals = seqs[:1] + sorted(seqs[1:], key=lambda s: seqs.index(s) + rng.uniform(0, 20))
    buf: ReorderBuffer[int] = ReorderBuffer(max_wait=10.0)
    out = [x for s in arrivals for x in buf.push(s, s, 0.0)]
    assert out == seqs and buf.stats.given_up == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        ReorderBuffer(max_wait=-1)
    with pytest.raises(ValueError, match="capacity"):
        ReorderBuffer(capacity=0)
    assert ReorderBuffer().max_wait == REPAIR_WAIT
