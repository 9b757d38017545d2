"""Transport-wide CC feedback, draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.errors import RtcpError
from interlive.rtp.rtcp import TransportCcFeedback, parse_rtcp

# Header: V=2 FMT=15 (0x8F), PT=205 (0xCD).  Body: sender 1, media 2,
# base sequence, status count, reference time (24 bits) + feedback count.

# §3.1.3 run-length chunk: 3 packets "received, small delta" -> 0|01|0000000000011 = 0x2003.
# Deltas 1, 2, 0 ticks of 250 us.  16 + 2 + 3 = 21 bytes, zero-padded to 24.
RUN_HEX = "8FCD0006 00000001 00000002 000A0003 00001005 20030102 00000000"
RUN = TransportCcFeedback(1, 2, 10, 5, 16, [(10, 250), (11, 500), (12, 0)])

# §3.1.4 status vector, 1-bit symbols: 14 packets from 65530 across the wrap,
# received pattern 1011 0000 0000 01 -> 1|0|10110000000001 = 0xAC01.
# Deltas 4, 1, 255, 0 ticks.  16 + 2 + 4 = 22 bytes, padded to 24.
ONE_BIT_HEX = "8FCD0006 00000001 00000002 FFFA000E 00000000 AC010401 FF000000"
ONE_BIT = TransportCcFeedback(
    1,
    2,
    65530,
    0,
    0,
    [(65530, 1000), (65531, None), (65532, 250), (65533, 63750)]
    + [((65534 + i) & 0xFFFF, None) for i in range(9)]
    + [(7, 0)],
)

# §3.1.4 status vector, 2-bit symbols: small, large, not received, large, small
# -> 1|1|01 10 00 10 01 00 00 = 0xD890.  Deltas: 2 ticks; -1000 ticks (0xFC18,
# -250 ms); 300 ticks (0x012C); 0 ticks.  Reference time -1 (0xFFFFFF), fb count 255.
TWO_BIT_HEX = "8FCD0006 00000001 00000002 00640005 FFFFFFFF D89002FC 18012C00"
TWO_BIT = TransportCcFeedback(
    1, 2, 100, 255, -1, [(100, 500), (101, -250_000), (102, None), (103, 75_000), (104, 0)]
)


@pytest.mark.parametrize(
    ("feedback", "hexdata"),
    [(RUN, RUN_HEX), (ONE_BIT, ONE_BIT_HEX), (TWO_BIT, TWO_BIT_HEX)],
    ids=["run-length", "1-bit vector", "2-bit vector"],
)
def test_vectors(feedback: TransportCcFeedback, hexdata: str) -> None:
    data = bytes.fromhex(hexdata)
    assert bytes(feedback) == data
    assert TransportCcFeedback.parse(data) == feedback


def test_arrival_times() -> None:
    # Reference 16 * 64 ms = 1.024 s, then cumulative deltas.
    assert RUN.arrival_times_us() == [(10, 1_024_250), (11, 1_024_750), (12, 1_024_750)]
    assert TWO_BIT.arrival_times_us() == [
        (100, -63_500),
        (101, -313_500),
        (102, None),
        (103, -238_500),
        (104, -238_500),
    ]


def test_long_loss_run_then_received() -> None:
    # 20 lost -> run chunk 0x0014; 2 received -> run chunk 0x2002; deltas 00 00.
    fb = TransportCcFeedback(1, 2, 0, 0, 0, [(i, None) for i in range(20)] + [(20, 0), (21, 0)])
    assert bytes(fb) == bytes.fromhex(
        "8FCD0006 00000001 00000002 00000016 00000000 00142002 00000000"
    )
    assert TransportCcFeedback.parse(bytes(fb)) == fb


def test_mixed_chunks_pick_the_widest() -> None:
    # 13 received + 1 lost fit one 1-bit vector (14) rather than a run of 13,
    # then 100 lost become one run chunk (0x0063 = 99 left after the vector's 1).
    packets: list[tuple[int, int | None]] = [(i, 250) for i in range(13)]
    packets += [(i, None) for i in range(13, 113)]
    fb = TransportCcFeedback(1, 2, 0, 0, 0, packets)
    data = bytes(fb)
    assert data[20:24].hex().upper() == "BFFE0063"
    assert TransportCcFeedback.parse(data) == fb


def test_large_negative_delta_limits() -> None:
    fb = TransportCcFeedback(1, 2, 0, 0, 0, [(0, -8_192_000), (1, 8_191_750)])
    assert TransportCcFeedback.parse(bytes(fb)) == fb
    with pytest.raises(RtcpError, match="does not fit 16 bits"):
        bytes(TransportCcFeedback(1, 2, 0, 0, 0, [(0, -8_192_250)]))
    with pytest.raises(RtcpError, match="does not fit 16 bits"):
        bytes(TransportCcFeedback(1, 2, 0, 0, 0, [(0, 8_192_000)]))


def test_run_longer_than_status_count_is_clipped() -> None:
    # Run chunk says 5 "not received" but the status count is 2.
    data = bytes.fromhex("8FCD0005 00000001 00000002 00000002 00000000 00050000")
    assert TransportCcFeedback.parse(data).packets == [(0, None), (1, None)]


def test_vector_symbols_past_status_count_are_ignored() -> None:
    # A 2-bit vector with a reserved symbol (11) after the single counted packet.
    data = bytes.fromhex("8FCD0005 00000001 00000002 00000001 00000000 D3000100")
    assert TransportCcFeedback.parse(data).packets == [(0, 250)]


def test_empty_feedback_is_refused() -> None:
    # libwebrtc drops feedback without packets; neither side produces or accepts it.
    with pytest.raises(RtcpError, match=r"needs 1\.\.65535 packet statuses, got 0"):
        bytes(TransportCcFeedback(1, 2, 7, 0, 0, []))
    with pytest.raises(RtcpError, match="status count 0"):
        parse_rtcp(bytes.fromhex("8FCD0004 00000001 00000002 00070000 00000000"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("00000001 00000002 0000", "TWCC body needs 16 bytes, got 10"),
        ("00000001 00000002 00000003 00000000 20020000", "after 2 of 3"),
        ("00000001 00000002 00000001 00000000 60010000", "symbol 3 \\(reserved\\)"),
        ("00000001 00000002 00000001 00000000 2001", "delta of packet 0 missing"),
        ("00000001 00000002 00000001 00000000 400100", "delta of packet 0 missing"),
    ],
)
def test_parse_errors(body: str, message: str) -> None:
    # RTCP padding (P bit, RFC 3550 §6.4.1) lets the body end off a word boundary.
    data = bytes.fromhex(body)
    pad = -len(data) & 3
    if pad:
        data += bytes(pad - 1) + bytes((pad,))
    header = bytes((0xAF if pad else 0x8F, 205)) + (len(data) // 4).to_bytes(2, "big")
    with pytest.raises(RtcpError, match=message):
        parse_rtcp(header + data)


@pytest.mark.parametrize(
    ("feedback", "message"),
    [
        (TransportCcFeedback(1, 2, 0, 0, 0, [(1, 0)]), "has sequence 1, expected 0"),
        (TransportCcFeedback(1, 2, 0, 0, 0, [(0, 100)]), "not a multiple of 250"),
        (TransportCcFeedback(1, 2, 0, 0, 1 << 23, [(0, 0)]), "signed 24 bits"),
        (TransportCcFeedback(1, 2, 0, 256, 0, [(0, 0)]), "feedback_count"),
        (TransportCcFeedback(1, 2, 0, 0, 0, [(0, None)] * 65536), "got 65536"),
        (TransportCcFeedback(1, 2, 65536, 0, 0, [(0, 0)]), "out of range"),
    ],
)
def test_serialise_errors(feedback: TransportCcFeedback, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        bytes(feedback)


def test_from_arrival_times() -> None:
    fb = TransportCcFeedback.from_arrival_times(
        sender_ssrc=1,
        media_ssrc=2,
        base_sequence=65535,
        feedback_count=3,
        # 1.000 s floors to reference 15 (960 ms); 1_000_130 rounds to 1_000_250.
        arrivals_us=[None, 1_000_000, 1_000_130, 999_000, None],
    )
    assert fb.reference_time == 15
    assert fb.packets == [(65535, None), (0, 40_000), (1, 250), (2, -1_250), (3, None)]
    assert [t for _, t in fb.arrival_times_us()] == [None, 1_000_000, 1_000_250, 999_000, None]


def test_from_arrival_times_wraps_reference() -> None:
    # 2**24 * 64 ms later the reference field wraps; deltas stay exact.
    start = (1 << 24) * 64_000 + 64_000
    fb = TransportCcFeedback.from_arrival_times(
        sender_ssrc=1, media_ssrc=2, base_sequence=0, feedback_count=0, arrivals_us=[start]
    )
    assert (fb.reference_time, fb.packets) == (1, [(0, 0)])
    empty = TransportCcFeedback.from_arrival_times(
        sender_ssrc=1, media_ssrc=2, base_sequence=0, feedback_count=0, arrivals_us=[None]
    )
    assert (empty.reference_time, empty.packets) == (0, [(0, None)])


@given(
    st.integers(0, 0xFFFF),
    st.lists(st.none() | st.integers(0, 10_000_000), min_size=1, max_size=200),
)
def test_from_arrival_times_error_bounded(base: int, arrivals: list[int | None]) -> None:
    # Rounded on the absolute clock: every reconstructed time within 125 us.
    try:
        fb = TransportCcFeedback.from_arrival_times(
            sender_ssrc=1, media_ssrc=2, base_sequence=base, feedback_count=0, arrivals_us=arrivals
        )
        data = bytes(fb)
    except RtcpError:
        return  # a jump beyond the 16-bit delta range: caller must split
    parsed = TransportCcFeedback.parse(data)
    # The reference is the first received arrival floored to 64 ms.
    first = next((a for a in arrivals if a is not None), 0)
    shift = fb.reference_time * 64_000 - first // 64_000 * 64_000
    for (_, got), want in zip(parsed.arrival_times_us(), arrivals, strict=True):
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert abs(got - shift - want) <= 125
