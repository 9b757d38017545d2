"""RED (RFC 2198): wire layout, encoder, loss recovery and stripping."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.protection.red import (
    MAX_RED_DISTANCE,
    RedBlock,
    RedDecoder,
    RedEncoder,
    RedError,
    RedFrame,
    decode_red,
    encode_red,
    red_primary,
    strip_red,
    unpadded,
    wrap_red,
)
from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket

OPUS = 111


# --- RFC 2198 §3 wire layout -------------------------------------------------------


def test_block_header_layout_extremes() -> None:
    # 4-byte header: F=1 | block PT (7) | timestamp offset (14) | block length (10).
    # PT 127, offset 16383, length 1023 sets every bit: FF FF FF FF.
    # Final header: F=0 | PT 111 = 0x6F.
    block = RedBlock(127, 0x3FFF, bytes(1023))
    payload = encode_red(OPUS, b"\xab", [block])
    assert payload[:5] == bytes.fromhex("FFFFFFFF 6F")
    assert payload[5:] == bytes(1023) + b"\xab"
    # PT 0, offset 0, length 0: only F is set.
    assert encode_red(0, b"", [RedBlock(0, 0, b"")]) == bytes.fromhex("80000000 00")


def test_primary_only_is_one_byte_header() -> None:
    assert encode_red(OPUS, b"\x01\x02", []) == bytes.fromhex("6F 0102")
    assert decode_red(bytes.fromhex("6F 0102")) == [RedBlock(OPUS, 0, b"\x01\x02")]


def test_lpc_dvi4_example() -> None:
    # The RFC 2198 §3 example: a redundant LPC block (PT 7, 14 bytes) one
    # 20 ms packet old (offset 160 at 8 kHz) before a DVI4 primary (PT 5).
    # Header: 1 | 0000111 | 00000010100000 | 0000001110 = 87 02 80 0E, then 05.
    lpc = bytes(range(14))
    dvi4 = bytes(range(100, 184))
    payload = encode_red(5, dvi4, [RedBlock(7, 160, lpc)])
    assert payload == bytes.fromhex("8702800E 05") + lpc + dvi4
    assert decode_red(payload) == [RedBlock(7, 160, lpc), RedBlock(5, 0, dvi4)]


def test_two_redundant_blocks_order() -> None:
    # Oldest first on the wire, primary last (RFC 2198 §3).
    payload = encode_red(OPUS, b"P", [RedBlock(OPUS, 1920, b"AA"), RedBlock(OPUS, 960, b"B")])
    assert payload == bytes.fromhex("EF1E0002 EF0F0001 6F") + b"AABP"
    assert [b.timestamp_offset for b in decode_red(payload)] == [1920, 960, 0]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "ends before the primary"),
        (bytes.fromhex("80"), "needs 4 bytes"),
        (bytes.fromhex("EF00F0"), "needs 4 bytes"),
        (bytes.fromhex("EF00F001"), "ends before the primary"),
        (bytes.fromhex("EF00F002 6F 00"), "runs past"),
        (bytes.fromhex("EF00F001 EF00F001 6F 00"), "runs past"),
    ],
)
def test_decode_errors(payload: bytes, match: str) -> None:
    with pytest.raises(RedError, match=match):
        decode_red(payload)
    with pytest.raises(RedError):
        red_primary(payload)


@pytest.mark.parametrize(
    "block",
    [
        RedBlock(128, 0, b""),
        RedBlock(-1, 0, b""),
        RedBlock(1, 0x4000, b""),
        RedBlock(1, 1, bytes(1024)),
    ],
)
def test_encode_rejects_unencodable_blocks(block: RedBlock) -> None:
    with pytest.raises(RedError):
        encode_red(OPUS, b"", [block])


def test_encode_rejects_bad_primary_pt() -> None:
    with pytest.raises(RedError):
        encode_red(128, b"", [])


def test_red_primary() -> None:
    payload = encode_red(OPUS, b"primary", [RedBlock(OPUS, 960, b"old")])
    assert red_primary(payload) == (OPUS, b"primary")


# --- encoder -----------------------------------------------------------------------


def test_encoder_distance_one_and_two() -> None:
    enc = RedEncoder(1)
    assert decode_red(enc.encode(OPUS, b"a", 0)) == [RedBlock(OPUS, 0, b"a")]
    assert decode_red(enc.encode(OPUS, b"b", 960)) == [
        RedBlock(OPUS, 960, b"a"),
        RedBlock(OPUS, 0, b"b"),
    ]
    enc.distance = 2  # changed at run time: the history is already there
    assert decode_red(enc.encode(OPUS, b"c", 1920)) == [
        RedBlock(OPUS, 1920, b"a"),
        RedBlock(OPUS, 960, b"b"),
        RedBlock(OPUS, 0, b"c"),
    ]
    enc.distance = 0
    assert decode_red(enc.encode(OPUS, b"d", 2880)) == [RedBlock(OPUS, 0, b"d")]


def test_encoder_stops_at_offset_that_does_not_fit() -> None:
    # After a DTX gap (400 ms = 19200 ticks) the old frame cannot be referenced.
    enc = RedEncoder(2)
    enc.encode(OPUS, b"a", 0)
    enc.encode(OPUS, b"b", 19200)
    assert decode_red(enc.encode(OPUS, b"c", 20160)) == [
        RedBlock(OPUS, 960, b"b"),
        RedBlock(OPUS, 0, b"c"),
    ]


def test_encoder_skips_oversized_block_and_wraps_timestamps() -> None:
    enc = RedEncoder(2)
    enc.encode(OPUS, b"a", 0xFFFF_FC40)  # 2**32 - 960
    enc.encode(OPUS, bytes(1024), 0)
    blocks = decode_red(enc.encode(OPUS, b"c", 960))
    assert blocks == [RedBlock(OPUS, 1920, b"a"), RedBlock(OPUS, 0, b"c")]


def test_encoder_validation_and_reset() -> None:
    with pytest.raises(ValueError):
        RedEncoder(MAX_RED_DISTANCE + 1)
    enc = RedEncoder(1)
    with pytest.raises(ValueError):
        enc.distance = -1
    enc.encode(OPUS, b"a", 0)
    enc.reset()
    assert decode_red(enc.encode(OPUS, b"b", 960)) == [RedBlock(OPUS, 0, b"b")]


# --- decoder -----------------------------------------------------------------------


def _stream(
    distance: int, count: int, *, start_seq: int = 1000, start_ts: int = 0, step: int = 960
) -> list[tuple[int, int, bytes, bytes]]:
    """(seq, ts, frame, red payload) for ``count`` Opus frames."""
    enc = RedEncoder(distance)
    out = []
    for i in range(count):
        seq = (start_seq + i) & 0xFFFF
        ts = (start_ts + i * step) & 0xFFFF_FFFF
        frame = f"frame{i}".encode()
        out.append((seq, ts, frame, enc.encode(OPUS, frame, ts)))
    return out


def _run(stream: list[tuple[int, int, bytes, bytes]], lost: set[int]) -> list[RedFrame]:
    dec = RedDecoder()
    out: list[RedFrame] = []
    for i, (seq, ts, _, payload) in enumerate(stream):
        if i not in lost:
            out.extend(dec.push(seq, ts, payload))
    return out


def test_decoder_no_loss_yields_primaries() -> None:
    stream = _stream(2, 5)
    frames = _run(stream, set())
    assert [(f.sequence_number, f.timestamp, f.payload, f.recovered) for f in frames] == [
        (seq, ts, frame, False) for seq, ts, frame, _ in stream
    ]
    assert all(f.payload_type == OPUS for f in frames)


def test_distance_one_recovers_single_loss() -> None:
    stream = _stream(1, 6)
    frames = _run(stream, {2})
    assert [f.sequence_number for f in frames] == [1000, 1001, 1002, 1003, 1004, 1005]
    recovered = frames[2]
    assert recovered == RedFrame(1002, 1920, OPUS, b"frame2", True)


def test_distance_one_cannot_recover_two_in_a_row() -> None:
    frames = _run(_stream(1, 6), {2, 3})
    assert [f.sequence_number for f in frames] == [1000, 1001, 1003, 1004, 1005]
    assert frames[2].recovered and frames[2].payload == b"frame3"


def test_distance_two_recovers_two_in_a_row() -> None:
    frames = _run(_stream(2, 7), {2, 3})
    assert [(f.sequence_number, f.payload, f.recovered) for f in frames] == [
        (1000, b"frame0", False),
        (1001, b"frame1", False),
        (1002, b"frame2", True),
        (1003, b"frame3", True),
        (1004, b"frame4", False),
        (1005, b"frame5", False),
        (1006, b"frame6", False),
    ]


def test_distance_two_three_lost_recovers_latest_two() -> None:
    frames = _run(_stream(2, 7), {2, 3, 4})
    assert [f.sequence_number for f in frames] == [1000, 1001, 1003, 1004, 1005, 1006]
    assert [f.timestamp for f in frames[2:4]] == [3 * 960, 4 * 960]


def test_distance_two_isolated_losses() -> None:
    frames = _run(_stream(2, 10), {1, 4, 7})
    assert [f.sequence_number for f in frames] == list(range(1000, 1010))
    assert [f.payload for f in frames] == [f"frame{i}".encode() for i in range(10)]


def test_duplicates_and_late_originals_are_dropped() -> None:
    stream = _stream(1, 4)
    dec = RedDecoder()
    dec.push(*stream[0][:2], stream[0][3])
    dec.push(*stream[2][:2], stream[2][3])  # recovers 1
    assert dec.push(*stream[1][:2], stream[1][3]) == []  # the late original
    assert dec.push(*stream[2][:2], stream[2][3]) == []  # a duplicate


def test_sequence_and_timestamp_wrap() -> None:
    stream = _stream(2, 6, start_seq=65533, start_ts=0xFFFF_FFFF - 1500)
    frames = _run(stream, {2, 3})
    assert [f.sequence_number for f in frames] == [65533, 65534, 65535, 0, 1, 2]
    assert [f.timestamp for f in frames] == [ts for _, ts, _, _ in stream]


def test_placement_by_count_across_dtx_gap() -> None:
    # DTX: seq 11 comes 400 ms after 10; 12 is lost; 13 carries it (offset 960).
    enc = RedEncoder(2)
    packets = [(10, 0), (11, 19200), (12, 20160), (13, 21120)]
    payloads = [enc.encode(OPUS, bytes([s]), ts) for s, ts in packets]
    dec = RedDecoder()
    dec.push(10, 0, payloads[0])
    dec.push(11, 19200, payloads[1])
    frames = dec.push(13, 21120, payloads[3])
    assert frames[0] == RedFrame(12, 20160, OPUS, bytes([12]), True)


def test_placement_with_40ms_frames() -> None:
    # Frame duration learned from consecutive packets (1920 ticks), and the
    # number of redundant copies matches the gap, so both rules agree.
    frames = _run(_stream(2, 6, step=1920), {3, 4})
    assert [(f.sequence_number, f.timestamp) for f in frames] == [
        (1000 + i, i * 1920) for i in range(6)
    ]


def test_placement_by_duration_when_counts_differ() -> None:
    # Three lost, distance 2: the copies do not fill the gap, so they are
    # placed by the learned duration (960) from the newest packet.
    stream = _stream(2, 8)
    dec = RedDecoder()
    out = []
    for i in (0, 1, 5, 6):
        out.extend(dec.push(stream[i][0], stream[i][1], stream[i][3]))
    assert dec.frame_duration == 960
    assert [(f.sequence_number, f.recovered) for f in out] == [
        (1000, False),
        (1001, False),
        (1003, True),
        (1004, True),
        (1005, False),
        (1006, False),
    ]


def test_decoder_ignores_copies_before_the_first_packet() -> None:
    stream = _stream(2, 4)
    dec = RedDecoder()
    frames = dec.push(stream[3][0], stream[3][1], stream[3][3])
    assert [f.sequence_number for f in frames] == [1003]


def test_decoder_window_drops_very_late_packets() -> None:
    stream = _stream(0, 100)  # no redundancy: packet 1 is never recovered
    dec = RedDecoder(window=16)
    dec.push(*stream[0][:2], stream[0][3])
    for seq, ts, _, payload in stream[2:40]:
        dec.push(seq, ts, payload)
    assert dec.push(*stream[1][:2], stream[1][3]) == []


def test_decoder_error_leaves_state() -> None:
    dec = RedDecoder()
    with pytest.raises(RedError):
        dec.push(5, 0, b"\x80")
    assert [f.sequence_number for f in dec.push(5, 0, b"\x6f")] == [5]


def test_decoder_validation() -> None:
    with pytest.raises(ValueError):
        RedDecoder(frame_duration=0)
    with pytest.raises(ValueError):
        RedDecoder(window=0)


# --- stripping ---------------------------------------------------------------------


def test_strip_red_keeps_header_and_extension() -> None:
    payload = encode_red(OPUS, b"primary", [RedBlock(OPUS, 960, b"old")])
    red = RtpPacket(
        payload_type=63,
        marker=True,
        sequence_number=7,
        timestamp=960,
        ssrc=0x1234,
        csrcs=(9,),
        extensions={1: b"\x30"},
        payload=payload,
        padding_size=4,
    )
    stripped = RtpPacket.parse(strip_red(bytes(red)))
    assert stripped.payload_type == OPUS
    assert stripped.payload == b"primary"
    assert stripped.padding_size == 0
    assert (stripped.marker, stripped.sequence_number, stripped.timestamp, stripped.ssrc) == (
        True,
        7,
        960,
        0x1234,
    )
    assert stripped.csrcs == (9,)
    assert stripped.extensions == {1: b"\x30"}


def test_strip_red_errors() -> None:
    with pytest.raises(RtpError):
        strip_red(b"\x80")
    bad = bytes(RtpPacket(payload_type=63, payload=bytes.fromhex("EF00F005 6F")))
    with pytest.raises(RedError):
        strip_red(bad)


# --- properties --------------------------------------------------------------------

blocks = st.builds(
    RedBlock,
    st.integers(0, 127),
    st.integers(0, 0x3FFF),
    st.binary(max_size=64),
)


@given(st.integers(0, 127), st.binary(max_size=200), st.lists(blocks, max_size=6))
def test_roundtrip(pt: int, primary: bytes, redundant: list[RedBlock]) -> None:
    payload = encode_red(pt, primary, redundant)
    assert decode_red(payload) == [*redundant, RedBlock(pt, 0, primary)]
    assert red_primary(payload) == (pt, primary)


@given(
    st.integers(0, 2),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF_FFFF),
    st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_isolated_losses_recovered(
    distance: int, start_seq: int, start_ts: int, received: list[bool]
) -> None:
    """Any lost packet with at most ``distance`` lost right before it, and a
    received packet within ``distance`` after it, is recovered exactly."""
    stream = _stream(distance, len(received), start_seq=start_seq, start_ts=start_ts)
    frames = _run(stream, {i for i, ok in enumerate(received) if not ok})
    got = {f.sequence_number: f for f in frames}
    assert len(got) == len(frames)
    first = received.index(True) if True in received else len(received)
    for i, (seq, ts, frame, _) in enumerate(stream):
        if seq in got:
            assert got[seq].timestamp == ts and got[seq].payload == frame
            assert got[seq].recovered is not received[i]
        elif i > first:
            later = received[i + 1 : i + 1 + distance]
            assert True not in later


@given(st.binary(max_size=64))
def test_decode_fuzz(data: bytes) -> None:
    with contextlib.suppress(RedError):
        blocks = decode_red(data)
        assert encode_red(blocks[-1].payload_type, blocks[-1].payload, blocks[:-1]) == data


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF), st.binary(max_size=24)),
        max_size=20,
    )
)
def test_decoder_fuzz(packets: list[tuple[int, int, bytes]]) -> None:
    dec = RedDecoder()
    for seq, ts, payload in packets:
        with contextlib.suppress(RedError):
            dec.push(seq, ts, payload)


def test_wrap_red_is_strip_reds_inverse_and_drops_padding() -> None:
    plain = bytes(
        RtpPacket(
            payload_type=96,
            marker=True,
            sequence_number=7,
            timestamp=90000,
            ssrc=0x1234,
            extension_profile=0xBEDE,
            extensions={3: b"\x01\x02\x03"},
            payload=b"media",
        )
    )
    wrapped = wrap_red(plain, 116)
    red = RtpPacket.parse(wrapped)
    assert (red.payload_type, red.marker, red.sequence_number, red.timestamp, red.ssrc) == (
        116,
        True,
        7,
        90000,
        0x1234,
    )
    assert red.extensions == {3: b"\x01\x02\x03"}
    assert red.payload == b"\x60media"  # F=0, block PT 96 (RFC 2198 §3)
    assert strip_red(wrapped) == plain
    padded = plain[:0] + bytes((plain[0] | 0x20,)) + plain[1:] + b"\x00\x00\x03"
    assert unpadded(padded) == plain
    assert unpadded(plain) is plain
    assert strip_red(wrap_red(padded, 116)) == plain
