"""ULPFEC (RFC 5109): FEC packet layout, recovery, the encoder's masks, fuzzing."""

from __future__ import annotations

import contextlib
import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.protection.ulpfec import (
    FecDecoder,
    FecEncoder,
    FecError,
    FecPacket,
    MaskKind,
    build_fec_packet,
    group_masks,
    mask_from_offsets,
)
from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket

SSRC = 0x11223344


def rtp(
    seq: int,
    ts: int = 3000,
    payload: bytes = b"",
    *,
    pt: int = 96,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extensions: dict[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    return bytes(
        RtpPacket(
            payload_type=pt,
            marker=marker,
            sequence_number=seq & 0xFFFF,
            timestamp=ts,
            ssrc=SSRC,
            csrcs=csrcs,
            extensions=extensions,
            padding_size=padding,
            payload=payload,
        )
    )


def seq_of(packet: bytes) -> int:
    return int.from_bytes(packet[2:4], "big")


def fec_for(packets: list[bytes], *, long_mask: bool | None = None) -> bytes:
    """A FEC payload protecting ``packets`` (SN base = the first one's seq)."""
    base = seq_of(packets[0])
    offsets = [(seq_of(p) - base) & 0xFFFF for p in packets]
    if long_mask is None:
        long_mask = max(offsets) >= 16
    return build_fec_packet(
        packets, mask_from_offsets(offsets, long_mask=long_mask), base, long_mask=long_mask
    )


# --- RFC 5109 §7.3, §7.4: exact bytes ----------------------------------------------

# A: V=2 P=0 X=0 CC=0, M=0 PT=96, seq 0x0010, ts 0x00000BB8, 4 payload bytes.
PKT_A = bytes.fromhex("80600010 00000BB8 11223344 01020304")
# B: M=1 PT=96 (0xE0), seq 0x0011, ts 0x00000C80, 2 payload bytes.
PKT_B = bytes.fromhex("80E00011 00000C80 11223344 F00F")

# E=0 L=0 P^P=0 X^X=0 CC^CC=0        -> 0x00
# M^M=1, PT^PT=0                     -> 0x80
# SN base = 0x0010 (lowest protected)
# TS recovery 0x0BB8 ^ 0x0C80        -> 0x00000738
# length recovery 4 ^ 2              -> 0x0006
# protection length = max(4, 2)      -> 0x0004
# mask: SN base + 0 and + 1          -> 0xC000
# payload 01020304 ^ F00F0000        -> F10D0304
FEC_AB = bytes.fromhex("0080 0010 00000738 0006 0004 C000 F10D0304")


def test_two_packet_fec_bytes() -> None:
    assert build_fec_packet([PKT_A, PKT_B], 0xC000, 0x10, long_mask=False) == FEC_AB
    assert build_fec_packet([PKT_B, PKT_A], 0xC000, 0x10, long_mask=False) == FEC_AB


def test_two_packet_fec_parse() -> None:
    fec = FecPacket.parse(FEC_AB)
    assert fec == FecPacket(
        padding_recovery=False,
        extension_recovery=False,
        csrc_count_recovery=0,
        marker_recovery=True,
        payload_type_recovery=0,
        sn_base=0x10,
        timestamp_recovery=0x738,
        length_recovery=6,
        mask=0xC000,
        long_mask=False,
        payload=bytes.fromhex("F10D0304"),
    )
    assert fec.protection_length == 4
    assert fec.offsets == [0, 1]
    assert bytes(fec) == FEC_AB


@pytest.mark.parametrize(("lost", "kept"), [(PKT_A, PKT_B), (PKT_B, PKT_A)])
def test_two_packet_recovery(lost: bytes, kept: bytes) -> None:
    dec = FecDecoder(SSRC)
    assert dec.add_media(kept) == []
    assert dec.add_fec(FEC_AB, 0x12, 0xC80) == [lost]
    assert dec.recovered == 1


def test_long_mask_bytes() -> None:
    # A (seq 0x10) and C (seq 0x24, offset 20): needs the 48-bit mask, L=1.
    pkt_c = bytes.fromhex("80600024 00000BB8 11223344 AB")
    expected = bytes.fromhex("4000 0010 00000000 0005 0004 8000 08000000 AA020304")
    mask = mask_from_offsets([0, 20], long_mask=True)
    assert mask == 0x8000_0800_0000
    assert build_fec_packet([PKT_A, pkt_c], mask, 0x10, long_mask=True) == expected
    fec = FecPacket.parse(expected)
    assert (fec.long_mask, fec.offsets, bytes(fec)) == (True, [0, 20], expected)


def test_all_header_fields_recovered() -> None:
    # P, X, CC, M and PT differ between the two packets and are rebuilt exactly.
    plain = rtp(100, 9000, b"\x01" * 30, pt=96)
    rich = rtp(
        101,
        12000,
        b"\x02" * 7,
        pt=97,
        marker=True,
        csrcs=(1, 2, 3),
        extensions={3: b"\x01\x02"},
        padding=6,
    )
    fec = FecPacket.parse(fec_for([plain, rich]))
    assert fec.padding_recovery and fec.extension_recovery
    assert fec.csrc_count_recovery == 3
    assert fec.marker_recovery and fec.payload_type_recovery == 96 ^ 97
    assert fec.timestamp_recovery == 9000 ^ 12000
    assert fec.length_recovery == 30 ^ (len(rich) - 12)
    assert fec.protection_length == max(30, len(rich) - 12)
    for lost, kept in ((plain, rich), (rich, plain)):
        dec = FecDecoder(SSRC)
        dec.add_media(kept)
        assert dec.add_fec(fec_for([plain, rich]), 102, 12000) == [lost]


def test_fec_parse_ignores_e_bit_and_higher_levels() -> None:
    data = bytes([0x80]) + FEC_AB[1:] + b"level-1 data"
    fec = FecPacket.parse(data)
    assert fec.extension_flag
    assert fec.payload == bytes.fromhex("F10D0304")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "shorter than its 14-byte headers"),
        (FEC_AB[:13], "shorter than its 14-byte headers"),
        (bytes([0x40]) + FEC_AB[1:15], "too short for a 48-bit mask"),
        (FEC_AB[:-1], "protection length 4 exceeds the 3 bytes"),
        (FEC_AB[:12] + b"\x00\x00" + FEC_AB[14:], "mask is zero"),
    ],
)
def test_malformed_fec(data: bytes, match: str) -> None:
    with pytest.raises(FecError, match=match):
        FecPacket.parse(data)
    with pytest.raises(FecError):
        FecDecoder(SSRC).add_fec(data, 1, 0)


def test_fec_packet_serialise_errors() -> None:
    fec = FecPacket.parse(FEC_AB)
    with pytest.raises(FecError):
        bytes(
            FecPacket(**{**{f: getattr(fec, f) for f in fec.__dataclass_fields__}, "mask": 1 << 16})
        )
    with pytest.raises(FecError):
        bytes(
            FecPacket(
                **{**{f: getattr(fec, f) for f in fec.__dataclass_fields__}, "sn_base": 1 << 16}
            )
        )


def test_build_fec_packet_validation() -> None:
    with pytest.raises(ValueError, match="not protected"):
        build_fec_packet([PKT_A, PKT_B], 0xA000, 0x10, long_mask=False)
    with pytest.raises(ValueError, match="appears twice"):
        build_fec_packet([PKT_A, PKT_A], 0xC000, 0x10, long_mask=False)
    with pytest.raises(ValueError, match="2 packets"):
        build_fec_packet([PKT_A, PKT_B], 0x8000, 0x10, long_mask=False)
    with pytest.raises(ValueError, match="fit 16 bits"):
        build_fec_packet([PKT_A], 1 << 16, 0x10, long_mask=False)
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        build_fec_packet([PKT_A], 0x8000, 70000, long_mask=False)
    with pytest.raises(RtpError):
        build_fec_packet([b"\x80\x60"], 0x8000, 0x10, long_mask=False)
    with pytest.raises(ValueError):
        mask_from_offsets([16], long_mask=False)


# --- recovery ----------------------------------------------------------------------


def _packet_set(n: int, rng: random.Random, start: int = 5000) -> list[bytes]:
    out = []
    for i in range(n):
        out.append(
            rtp(
                start + i,
                90000 + 3000 * (i // 4),
                rng.randbytes(rng.choice([0, 1, 17, 300, 1100])),
                marker=i % 4 == 3,
                padding=rng.choice([0, 0, 0, 1, 9]),
                csrcs=(7,) * rng.choice([0, 0, 2]),
                extensions={1: b"\x55"} if rng.random() < 0.5 else None,
            )
        )
    return out


@pytest.mark.parametrize(
    ("n", "long_mask"),
    [(n, False) for n in range(2, 17)] + [(n, True) for n in range(2, 49)],
)
def test_each_single_loss_recovered(n: int, long_mask: bool) -> None:
    packets = _packet_set(n, random.Random(n))
    fec = fec_for(packets, long_mask=long_mask)
    assert FecPacket.parse(fec).long_mask is long_mask
    carrier = 5000 + n
    for lost in range(n):
        dec = FecDecoder(SSRC)
        for i, packet in enumerate(packets):
            if i != lost:
                assert dec.add_media(packet) == []
        assert dec.add_fec(fec, carrier, 0) == [packets[lost]]
        assert dec.pending_fec == 0


def test_recovery_across_sequence_wrap() -> None:
    packets = [rtp(65533 + i, 1, bytes([i]) * (i + 1)) for i in range(5)]
    fec = fec_for(packets)
    assert FecPacket.parse(fec).sn_base == 65533
    dec = FecDecoder(SSRC)
    for packet in packets[:3] + packets[4:]:
        dec.add_media(packet)
    assert dec.add_fec(fec, 2, 1) == [packets[3]]
    assert seq_of(packets[3]) == 0


def test_fec_before_media_then_media_completes_the_set() -> None:
    packets = [rtp(10 + i, 0, bytes([i]) * 5) for i in range(4)]
    dec = FecDecoder(SSRC)
    dec.add_media(packets[0])
    assert dec.add_fec(fec_for(packets), 14, 0) == []  # 1, 2 and 3 missing
    assert dec.pending_fec == 1
    assert dec.add_media(packets[1]) == []
    assert dec.add_media(packets[3]) == [packets[2]]
    assert dec.pending_fec == 0
    assert dec.add_media(packets[2]) == []  # the late original is a duplicate


def test_recursive_recovery() -> None:
    # FEC x protects {0, 1}, y protects {1, 2}, z protects {2, 3, 4}.
    # Lose 1, 2 and 4: x recovers 1, which lets y recover 2, which lets z recover 4.
    packets = [rtp(200 + i, 0, bytes([i + 1]) * (i * 3)) for i in range(5)]
    fx = fec_for(packets[0:2])
    fy = fec_for(packets[1:3])
    fz = fec_for(packets[2:5])
    dec = FecDecoder(SSRC)
    dec.add_media(packets[0])
    dec.add_media(packets[3])
    assert dec.add_fec(fz, 205, 0) == []
    assert dec.add_fec(fy, 206, 0) == []
    assert dec.pending_fec == 2
    assert dec.add_fec(fx, 207, 0) == [packets[1], packets[2], packets[4]]
    assert dec.pending_fec == 0
    assert dec.recovered == 3


def test_duplicate_fec_and_complete_sets_are_not_kept() -> None:
    packets = [rtp(300 + i, 0, b"x") for i in range(3)]
    fec = fec_for(packets)
    dec = FecDecoder(SSRC)
    for packet in packets:
        dec.add_media(packet)
    assert dec.add_fec(fec, 303, 0) == []
    assert dec.add_fec(fec, 303, 0) == []
    assert dec.pending_fec == 0


def test_inconsistent_fec_is_refused() -> None:
    packets = [rtp(400 + i, 0, b"abc") for i in range(2)]
    fec = FecPacket.parse(fec_for(packets))
    dec = FecDecoder(SSRC)
    dec.add_media(packets[0])
    # Length recovery larger than the protection length: nothing to rebuild.
    bad = bytes(
        FecPacket(
            **{**{f: getattr(fec, f) for f in fec.__dataclass_fields__}, "length_recovery": 99}
        )
    )
    assert dec.add_fec(bad, 402, 0) == []
    # A CSRC count the recovered bytes cannot hold: RtpPacket.parse refuses it.
    bad = bytes(
        FecPacket(
            **{**{f: getattr(fec, f) for f in fec.__dataclass_fields__}, "csrc_count_recovery": 15}
        )
    )
    assert dec.add_fec(bad, 403, 0) == []
    # A packet held that is longer than the protection length.
    short = FecPacket(
        **{**{f: getattr(fec, f) for f in fec.__dataclass_fields__}, "payload": b"\x00"}
    )
    assert dec.add_fec(bytes(short), 404, 0) == []
    assert (dec.unrecoverable, dec.recovered) == (3, 0)


def test_fec_not_covering_the_past_is_discarded() -> None:
    packets = [rtp(500 + i, 0, b"x") for i in range(2)]
    dec = FecDecoder(SSRC)
    dec.add_media(packets[0])
    assert dec.add_fec(fec_for(packets), 501, 0) == []  # protects its own carrier seq
    assert dec.discarded == 1
    assert dec.pending_fec == 0


def test_media_of_another_ssrc_or_malformed() -> None:
    dec = FecDecoder(1)
    with pytest.raises(RtpError, match="SSRC"):
        dec.add_media(PKT_A)
    with pytest.raises(RtpError):
        dec.add_media(b"\x40" * 12)
    with pytest.raises(ValueError):
        FecDecoder(SSRC, max_media=10)


def test_memory_bounded_by_count() -> None:
    dec = FecDecoder(SSRC)
    seq = 1000
    for _ in range(200):
        packets = [rtp(seq + i, 0, b"p") for i in range(3)]
        dec.add_media(packets[0])  # two of three lost: the FEC waits
        dec.add_fec(fec_for(packets), seq + 3, 0)
        seq += 4
    assert dec.pending_fec == 64
    assert dec.discarded == 200 - 64


def test_memory_bounded_by_age() -> None:
    dec = FecDecoder(SSRC, clock_rate=90_000, max_age_ms=1000)
    packets = [rtp(10 + i, 0, b"p") for i in range(3)]
    dec.add_media(packets[0])
    dec.add_fec(fec_for(packets), 13, 0)
    dec.add_media(rtp(14, 90_000))  # exactly 1 s later: kept
    assert dec.pending_fec == 1
    dec.add_media(rtp(15, 90_001))
    assert dec.pending_fec == 0
    assert dec.add_media(packets[1]) == []  # packet 2 cannot be recovered any more


def test_media_memory_bounded() -> None:
    dec = FecDecoder(SSRC, max_media=64)
    for seq in range(1000):
        dec.add_media(rtp(seq, seq * 10, b"z"))
    assert dec.held_media == 64


# --- encoder -----------------------------------------------------------------------


def _frame(start: int, count: int, ts: int, rng: random.Random) -> list[bytes]:
    return [
        rtp(start + i, ts, rng.randbytes(rng.randrange(1, 200)), marker=i == count - 1)
        for i in range(count)
    ]


def test_encoder_emits_on_marker() -> None:
    rng = random.Random(1)
    enc = FecEncoder()
    frame = _frame(0, 8, 0, rng)
    for packet in frame[:-1]:
        assert enc.push(packet, 0.25) == []
    assert enc.pending == 7
    fecs = enc.push(frame[-1], 0.25)
    assert len(fecs) == 2  # ceil(8 * 0.25)
    assert enc.pending == 0
    assert [FecPacket.parse(f).offsets for f in fecs] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert [FecPacket.parse(f).sn_base for f in fecs] == [0, 4]


@pytest.mark.parametrize(
    ("count", "protection", "expected"),
    [(10, 0.0, 0), (10, 0.1, 1), (10, 0.3, 3), (10, 0.5, 5), (1, 0.05, 1), (3, 0.5, 2)],
)
def test_encoder_fec_count(count: int, protection: float, expected: int) -> None:
    enc = FecEncoder()
    fecs: list[bytes] = []
    for packet in _frame(0, count, 0, random.Random(count)):
        fecs += enc.push(packet, protection)
    assert len(fecs) == expected


def test_encoder_n_fec_caps_and_keyframes_get_more() -> None:
    rng = random.Random(2)
    enc = FecEncoder(n_fec=3)
    delta = [f for p in _frame(0, 20, 0, rng) for f in enc.push(p, 0.1)]
    key = [f for p in _frame(20, 20, 3000, rng) for f in enc.push(p, 0.5)]
    assert (len(delta), len(key)) == (2, 3)


def test_encoder_new_timestamp_completes_frame_without_marker() -> None:
    rng = random.Random(3)
    enc = FecEncoder()
    for i in range(4):
        assert enc.push(rtp(i, 0, b"a"), 0.5) == []
    fecs = enc.push(rtp(4, 3000, b"b"), 0.5)
    assert len(fecs) == 2
    assert enc.pending == 1
    assert len(enc.flush(0.5)) == 1
    assert enc.flush(0.5) == []
    del rng


def test_encoder_splits_large_frames() -> None:
    rng = random.Random(4)
    enc = FecEncoder(mask_kind="bursty")
    frame = _frame(65500, 100, 0, rng)
    fecs = [f for p in frame for f in enc.push(p, 0.25)]
    parsed = [FecPacket.parse(f) for f in fecs]
    assert len(fecs) == 9 + 9 + 9  # groups of 34, 33, 33
    assert all(max(p.offsets) < 48 for p in parsed)
    covered = sorted((p.sn_base + o) & 0xFFFF for p in parsed for o in p.offsets)
    assert covered == sorted(seq_of(p) for p in frame)
    # Lose the first packet of each group: all come back.
    dec = FecDecoder(SSRC)
    for i, packet in enumerate(frame):
        if i not in (0, 34, 67):
            dec.add_media(packet)
    got = [r for i, f in enumerate(fecs) for r in dec.add_fec(f, 64 + i, 0)]
    assert sorted(got) == sorted([frame[0], frame[34], frame[67]])


def test_encoder_mask_sizes_and_sn_base() -> None:
    rng = random.Random(5)
    enc = FecEncoder(mask_kind="random")
    fecs = [f for p in _frame(0, 40, 0, rng) for f in enc.push(p, 0.5)]
    parsed = [FecPacket.parse(f) for f in fecs]
    for fec in parsed:
        assert fec.offsets[0] == 0  # SN base is the lowest protected (RFC 5109 §7.3)
        assert fec.long_mask is (max(fec.offsets) >= 16)
    assert any(p.long_mask for p in parsed) and any(not p.long_mask for p in parsed)


def test_encoder_validation() -> None:
    with pytest.raises(ValueError):
        FecEncoder(k_packets=49)
    with pytest.raises(ValueError):
        FecEncoder(n_fec=0)
    with pytest.raises(ValueError):
        FecEncoder(mask_kind="other")  # type: ignore[arg-type]
    enc = FecEncoder()
    with pytest.raises(ValueError):
        enc.push(rtp(0), 0.6)
    with pytest.raises(RtpError):
        enc.push(b"\x80", 0.1)
    enc.mask_kind = "bursty"
    assert enc.mask_kind == "bursty"


# --- mask design -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random", "bursty"])
def test_group_masks_are_valid(kind: MaskKind) -> None:
    for m in range(1, 49):
        for f in range(1, math.ceil(m / 2) + 1):
            masks = group_masks(m, f, kind)
            assert len(masks) == f and len(set(masks)) == f
            assert sorted(set(itertools.chain(*masks))) == list(range(m))
            assert all(list(mask) == sorted(mask) for mask in masks)


def test_random_masks_blocks_then_grid() -> None:
    assert group_masks(9, 3, "random") == ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    # f = 8 >= 4, m = 16: c = 4 columns, r = 4 rows of 4 (a proper grid).
    masks = group_masks(16, 8, "random")
    rows, cols = masks[:4], masks[4:]
    assert rows == ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))
    assert cols == ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15))


def test_bursty_masks_interleave() -> None:
    assert group_masks(7, 3, "bursty") == ((0, 3, 6), (1, 4), (2, 5))


def _encode_frame(count: int, protection: float, kind: MaskKind) -> tuple[list[bytes], list[bytes]]:
    enc = FecEncoder(mask_kind=kind)
    frame = _frame(100, count, 0, random.Random(count))
    fecs = [f for p in frame for f in enc.push(p, protection)]
    return frame, fecs


def _decode(frame: list[bytes], fecs: list[bytes], lost: set[int]) -> set[bytes]:
    dec = FecDecoder(SSRC)
    got: set[bytes] = set()
    for i, packet in enumerate(frame):
        if i not in lost:
            got.update(dec.add_media(packet))
    for i, fec in enumerate(fecs):
        got.update(dec.add_fec(fec, 100 + len(frame) + i, 0))
    return got


def test_bursty_masks_recover_any_burst_up_to_f() -> None:
    frame, fecs = _encode_frame(24, 0.25, "bursty")  # f = 6
    for start in range(24 - 6 + 1):
        lost = set(range(start, start + 6))
        assert _decode(frame, fecs, lost) == {frame[i] for i in lost}


def test_random_grid_recovers_any_three_losses() -> None:
    frame, fecs = _encode_frame(16, 0.5, "random")  # 4 x 4 grid
    for lost in itertools.combinations(range(16), 3):
        assert _decode(frame, fecs, set(lost)) == {frame[i] for i in lost}


# --- properties --------------------------------------------------------------------


@st.composite
def protected_sets(
    draw: st.DrawFn,
) -> tuple[list[bytes], list[list[int]], list[int], int, int]:
    n = draw(st.integers(1, 48))
    start = draw(st.integers(0, 0xFFFF))
    base_ts = draw(st.integers(0, 0xFFFF_FFFF))
    packets = [
        rtp(
            start + i,
            (base_ts + draw(st.integers(0, 9000))) & 0xFFFF_FFFF,
            draw(st.binary(max_size=80)),
            pt=draw(st.integers(0, 127)),
            marker=draw(st.booleans()),
            csrcs=tuple(draw(st.lists(st.integers(0, 0xFFFF_FFFF), max_size=3))),
            extensions=draw(
                st.none() | st.dictionaries(st.integers(1, 14), st.binary(min_size=1, max_size=4))
            ),
            padding=draw(st.sampled_from([0, 0, 1, 4, 255])),
        )
        for i in range(n)
    ]
    f = draw(st.integers(1, n))
    owner = [draw(st.integers(0, f - 1)) for _ in range(n)]
    sets = [[i for i in range(n) if owner[i] == j] for j in range(f)]
    sets = [s for s in sets if s]
    lost = [draw(st.sampled_from(s)) for s in sets]
    seed = draw(st.integers(0, 2**32))
    return packets, sets, lost, seed, (base_ts + 9000) & 0xFFFF_FFFF


@given(protected_sets())
def test_property_one_loss_per_set_recovered_exactly(
    case: tuple[list[bytes], list[list[int]], list[int], int, int],
) -> None:
    """Random packets in random disjoint sets, one loss per set, any arrival order."""
    packets, sets, lost, seed, carrier_ts = case
    start = seq_of(packets[0])
    fecs = [fec_for([packets[i] for i in s]) for s in sets]
    items: list[tuple[str, int]] = [("m", i) for i in range(len(packets)) if i not in lost]
    items += [("f", j) for j in range(len(fecs))]
    random.Random(seed).shuffle(items)  # any arrival order
    dec = FecDecoder(SSRC)
    got: list[bytes] = []
    for kind, index in items:
        if kind == "m":
            got += dec.add_media(packets[index])
        else:
            got += dec.add_fec(fecs[index], start + len(packets) + index, carrier_ts)
    assert sorted(got) == sorted(packets[i] for i in lost)
    assert dec.pending_fec == 0


@given(st.binary(max_size=80))
def test_fuzz_parse(data: bytes) -> None:
    with contextlib.suppress(FecError):
        fec = FecPacket.parse(data)
        assert bytes(fec) == data[: 14 + 4 * fec.long_mask + fec.protection_length]


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.binary(max_size=60),
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF_FFFF),
        ),
        max_size=30,
    ),
)
def test_fuzz_decoder(items: list[tuple[bool, bytes, int, int]]) -> None:
    dec = FecDecoder(SSRC)
    for is_fec, data, seq, ts in items:
        if is_fec:
            with contextlib.suppress(FecError):
                dec.add_fec(data, seq, ts)
        else:
            with contextlib.suppress(RtpError):
                dec.add_media(data)


@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=12),
    st.lists(st.binary(max_size=40), min_size=1, max_size=12),
)
def test_fuzz_decoder_with_plausible_fec(seqs: list[int], bodies: list[bytes]) -> None:
    """Well-formed FEC headers over random data: recovery may fail, but only quietly."""
    dec = FecDecoder(SSRC)
    for i, seq in enumerate(seqs):
        dec.add_media(rtp(1000 + seq, seq, bodies[i % len(bodies)]))
    for i, body in enumerate(bodies):
        mask = (0xFFFF_FFFF_FFFF >> (i % 47)) & ~(1 << (i % 5))
        head = bytes([0x40 | (i & 0x3F), i * 37 & 0xFF]) + (1000).to_bytes(2, "big")
        fec = head + bytes(6) + len(body).to_bytes(2, "big") + mask.to_bytes(6, "big") + body
        for packet in dec.add_fec(fec, 1100 + i, 0):
            RtpPacket.parse(packet)
