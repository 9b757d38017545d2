"""NTP timestamps and round-trip time (RFC 3550 §4, §6.4.1; RFC 4330 §3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.ntp import (
    NTP_UNIX_OFFSET,
    ntp_compact,
    ntp_from_unix,
    rtt_seconds,
    unix_from_ntp,
)


def test_unix_epoch() -> None:
    assert NTP_UNIX_OFFSET == 0x83AA7E80
    assert ntp_from_unix(0.0) == 0x83AA7E80_00000000
    assert unix_from_ntp(0x83AA7E80_00000000) == 0.0


def test_fraction() -> None:
    assert ntp_from_unix(1.5) == 0x83AA7E81_80000000
    assert ntp_from_unix(1.25) == 0x83AA7E81_40000000
    assert unix_from_ntp(0x83AA7E81_80000000) == 1.5


def test_era_one() -> None:
    # 2036-02-07T06:28:16Z is 2**32 s after 1900: NTP seconds wrap to 0.
    assert ntp_from_unix(2_085_978_496.0) == 0
    assert unix_from_ntp(0) == 2_085_978_496.0
    assert unix_from_ntp(0x00000001_80000000) == 2_085_978_497.5


def test_compact() -> None:
    assert ntp_compact(0x83AA7E81_80000000) == 0x7E818000
    assert ntp_compact(0xFFFFFFFF_FFFFFFFF) == 0xFFFFFFFF


def test_rtt_rfc3550_figure_2() -> None:
    # RFC 3550 §6.4.1 Figure 2: A = 0xb710:8000, LSR = 0xb705:2000,
    # DLSR = 0x0005:4000 (5.250 s) -> delay 0x0006:2000 = 6.125 s.
    assert rtt_seconds(0xB7108000, 0xB7052000, 0x00054000) == 6.125


def test_rtt_edge_cases() -> None:
    assert rtt_seconds(0xB7108000, 0, 0) is None  # no SR received yet
    assert rtt_seconds(0xB7052000, 0xB7052000, 1) is None  # negative
    assert rtt_seconds(0xB7052000, 0xB7052000, 0) == 0.0
    # The compact clock wrapped between LSR and now.
    assert rtt_seconds(0x00001000, 0xFFFFF000, 0) == 0.125


# 1968-01-20T03:14:08Z .. 2104-02-26T09:42:23Z: the span RFC 4330 §3 eras cover.
FIRST = (1 << 31) - NTP_UNIX_OFFSET
LAST = (1 << 32) + (1 << 31) - NTP_UNIX_OFFSET - 1


@given(st.floats(min_value=FIRST, max_value=LAST, allow_nan=False))
def test_round_trip(seconds: float) -> None:
    # Resolution 2**-32 s plus float error.
    assert abs(unix_from_ntp(ntp_from_unix(seconds)) - seconds) < 1e-6


@given(st.integers(0, (1 << 64) - 1))
def test_ntp_round_trip_within_resolution(ntp: int) -> None:
    seconds = unix_from_ntp(ntp)
    # Float seconds keep ~53 bits; compare on the 64-bit circle.
    distance = (ntp_from_unix(seconds) - ntp) & 0xFFFFFFFF_FFFFFFFF
    assert min(distance, (1 << 64) - distance) < 1 << 12
