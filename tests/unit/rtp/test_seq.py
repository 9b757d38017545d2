"""Serial-number arithmetic and unwrapping (RFC 1982 §3.2, RFC 3550 §5.1, A.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.seq import SequenceUnwrapper, TimestampUnwrapper, seq_diff, seq_is_newer

CYCLE = 1 << 16


def test_first_packet_anchors_in_cycle_one() -> None:
    u = SequenceUnwrapper()
    assert u.highest is None
    assert u.unwrap(100) == CYCLE + 100
    assert u.highest == CYCLE + 100


def test_forward_wrap() -> None:
    u = SequenceUnwrapper()
    assert [u.unwrap(s) for s in (65534, 65535, 0, 1)] == [
        CYCLE + 65534,
        CYCLE + 65535,
        2 * CYCLE,
        2 * CYCLE + 1,
    ]


def test_reordered_across_wrap() -> None:
    u = SequenceUnwrapper()
    assert u.unwrap(65534) == CYCLE + 65534
    assert u.unwrap(0) == 2 * CYCLE  # 65535 is late
    assert u.unwrap(1) == 2 * CYCLE + 1
    assert u.unwrap(65535) == CYCLE + 65535  # the late one maps to the earlier cycle
    assert u.highest == 2 * CYCLE + 1  # and does not move the reference back
    assert u.unwrap(2) == 2 * CYCLE + 2


def test_late_packet_before_the_first_never_negative() -> None:
    u = SequenceUnwrapper()
    assert u.unwrap(1) == CYCLE + 1
    assert u.unwrap(65535) == 65535  # cycle 0, still >= 0
    assert u.unwrap(2) == CYCLE + 2


def test_half_space_jump_counts_as_backwards() -> None:
    u = SequenceUnwrapper()
    u.unwrap(0)
    assert u.unwrap(32768) == CYCLE - 32768
    assert u.unwrap(32767) == CYCLE + 32767


def test_many_wraps() -> None:
    u = SequenceUnwrapper()
    ext = [u.unwrap((i * 1000) & 0xFFFF) for i in range(500)]
    assert ext == [CYCLE + i * 1000 for i in range(500)]


@pytest.mark.parametrize("bad", [-1, 65536])
def test_sequence_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        SequenceUnwrapper().unwrap(bad)


@given(st.integers(1 << 20, 1 << 40), st.lists(st.integers(-3000, 3000), max_size=60))
def test_unwrap_recovers_extended_sequence(start: int, steps: list[int]) -> None:
    # A walk that never falls more than 30000 behind its maximum (less than half
    # the space) is recovered exactly, up to the constant anchoring offset.
    u = SequenceUnwrapper()
    true = highest = start
    offset = u.unwrap(true & 0xFFFF) - true
    for step in steps:
        true = max(true + step, highest - 30000)
        highest = max(highest, true)
        assert u.unwrap(true & 0xFFFF) - offset == true
    assert u.highest == highest + offset


def test_timestamp_wrap_and_reorder() -> None:
    u = TimestampUnwrapper()
    cycle = 1 << 32
    assert u.unwrap(0xFFFFFFF0) == cycle + 0xFFFFFFF0
    assert u.unwrap(0x10) == 2 * cycle + 0x10
    assert u.unwrap(0xFFFFFFFF) == cycle + 0xFFFFFFFF
    assert u.highest == 2 * cycle + 0x10
    assert u.unwrap(0x20) == 2 * cycle + 0x20
    with pytest.raises(ValueError, match="timestamp"):
        u.unwrap(1 << 32)


def test_timestamp_first_value() -> None:
    u = TimestampUnwrapper()
    assert u.highest is None
    assert u.unwrap(0) == 1 << 32


@pytest.mark.parametrize(
    ("a", "b", "diff", "newer"),
    [
        (0, 65535, 1, True),
        (65535, 0, -1, False),
        (100, 100, 0, False),
        (1, 65534, 3, True),
        (32767, 0, 32767, True),
        (32768, 0, -32768, True),  # half way: the larger is newer (tie-break)
        (0, 32768, -32768, False),
        (10, 20, -10, False),
    ],
)
def test_seq_diff_and_newer(a: int, b: int, diff: int, newer: bool) -> None:
    assert seq_diff(a, b) == diff
    assert seq_is_newer(a, b) is newer


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_seq_newer_is_antisymmetric(a: int, b: int) -> None:
    if a == b:
        assert not seq_is_newer(a, b)
    else:
        assert seq_is_newer(a, b) != seq_is_newer(b, a)
    assert (b + seq_diff(a, b)) & 0xFFFF == a
