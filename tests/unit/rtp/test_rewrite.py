"""rewrite_rtp: the forwarding header rewrite (RFC 3550 §5.1, RFC 8285 §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket, rewrite_rtp

# V=2 P=1 X=1 CC=1 (0xB1) | M=1 PT=96 (0xE0) | seq 1 | ts 0x10 | SSRC 0xAAAAAAAA
# CSRC 0xBBBBBBBB | 0xBEDE length 2: id 1 = 7F, id 2 = 0102, id 5 = 09, 1 pad byte
# payload DEAD | padding 00 02.
HEAD = "B1E00001 00000010 AAAAAAAA"
CSRC = "BBBBBBBB"
TAIL = "DEAD0002"
PACKET = bytes.fromhex(HEAD + CSRC + "BEDE0002 107F2101 02500900" + TAIL)
# The rewritten fixed header: M kept, PT 100 -> 0xE4, seq 5, ts 0x20, SSRC 0x01020304.
NEW_HEAD = "B1E40005 00000020 01020304"


def rewrite_bytes(
    data: bytes = PACKET,
    *,
    ssrc: int = 0x01020304,
    sequence_number: int = 5,
    timestamp: int = 0x20,
    payload_type: int = 100,
    extension_ids: dict[int, int] | None = None,
    set_extensions: dict[int, bytes] | None = None,
) -> bytes:
    return rewrite_rtp(
        data,
        ssrc=ssrc,
        sequence_number=sequence_number,
        timestamp=timestamp,
        payload_type=payload_type,
        extension_ids=extension_ids,
        set_extensions=set_extensions,
    )


def rewrite(
    data: bytes = PACKET,
    *,
    sequence_number: int = 5,
    timestamp: int = 0x20,
    extension_ids: dict[int, int] | None = None,
    set_extensions: dict[int, bytes] | None = None,
) -> bytes:
    return rewrite_bytes(
        data,
        sequence_number=sequence_number,
        timestamp=timestamp,
        extension_ids=extension_ids,
        set_extensions=set_extensions,
    )


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_fast_path_rewrites_fixed_header_only() -> None:
    assert rewrite() == h(NEW_HEAD + CSRC + "BEDE0002 107F2101 02500900" + TAIL)


def test_fast_path_preserves_clear_marker() -> None:
    data = bytes.fromhex("80600001 00000010 AAAAAAAA 01")
    assert rewrite(data) == h("80640005 00000020 01020304 01")


def test_fast_path_takes_extended_numbers_modulo() -> None:
    out = rewrite(sequence_number=0x3_0005, timestamp=0x1_0000_0020)
    assert out.startswith(h(NEW_HEAD))


def test_remap_and_drop_unmapped() -> None:
    # 1 -> 3, 2 -> 7, 5 dropped: 30 7F | 71 01 02 | 3 pad bytes.
    out = rewrite(extension_ids={1: 3, 2: 7})
    assert out == h(NEW_HEAD + CSRC + "BEDE0002 307F7101 02000000" + TAIL)


def test_remap_then_set_extensions() -> None:
    # Adds id 10 = 002A (id 0xA, L=1: 0xA1) after the mapped ones, exactly 8 bytes.
    out = rewrite(extension_ids={1: 3, 2: 7}, set_extensions={10: b"\x00\x2a"})
    assert out == h(NEW_HEAD + CSRC + "BEDE0002 307F7101 02A1002A" + TAIL)


def test_set_extensions_overwrites_mapped_value() -> None:
    out = rewrite(extension_ids={1: 3}, set_extensions={3: b"\x05"})
    assert out == h(NEW_HEAD + CSRC + "BEDE0001 30050000" + TAIL)


def test_keep_ids_and_overwrite() -> None:
    out = rewrite(set_extensions={2: b"\xff"})
    assert out == h(NEW_HEAD + CSRC + "BEDE0002 107F20FF 50090000" + TAIL)


def test_nothing_left_clears_x_bit() -> None:
    out = rewrite(extension_ids={})
    assert out == h("A1E40005 00000020 01020304" + CSRC + TAIL)


def test_two_byte_form_when_needed() -> None:
    out = rewrite(extension_ids={5: 5}, set_extensions={20: b""})
    assert out == h(NEW_HEAD + CSRC + "10000002 05010914 00000000" + TAIL)


def test_add_extension_to_packet_without_block() -> None:
    data = bytes.fromhex("80E00001 00000010 AAAAAAAA DEAD")
    out = rewrite(data, extension_ids={}, set_extensions={1: b"\x01"})
    assert out == h("90E40005 00000020 01020304 BEDE0001 10010000 DEAD")


def test_unknown_profile_block_is_dropped_on_rebuild() -> None:
    data = bytes.fromhex("90E00001 00000010 AAAAAAAA ABCD0001 01020304 DEAD")
    assert rewrite(data) == h("90E40005 00000020 01020304 ABCD0001 01020304 DEAD")
    assert rewrite(data, extension_ids={1: 1}) == h("80E40005 00000020 01020304 DEAD")


def test_slow_path_with_empty_x_block() -> None:
    data = bytes.fromhex("90E00001 00000010 AAAAAAAA BEDE0000 DEAD")
    assert rewrite(data, extension_ids={1: 1}) == h("80E40005 00000020 01020304 DEAD")


@pytest.mark.parametrize("extension_ids", [None, {}])
def test_errors(extension_ids: dict[int, int] | None) -> None:
    ids = extension_ids
    with pytest.raises(RtpError, match="not an RTP packet"):
        rewrite_bytes(b"\x80\x00", extension_ids=ids)
    with pytest.raises(RtpError, match="not an RTP packet"):
        rewrite_bytes(b"", extension_ids=ids)
    with pytest.raises(RtpError, match="not an RTP packet"):
        rewrite_bytes(b"\x40" + PACKET[1:], extension_ids=ids)
    with pytest.raises(RtpError, match=r"payload type must be 0\.\.127, got 128"):
        rewrite_bytes(PACKET, payload_type=128, extension_ids=ids)
    with pytest.raises(RtpError, match=r"payload type must be 0\.\.127, got -1"):
        rewrite_bytes(PACKET, payload_type=-1, extension_ids=ids)
    with pytest.raises(RtpError, match="SSRC must be"):
        rewrite_bytes(PACKET, ssrc=1 << 32, extension_ids=ids)


def test_slow_path_structural_errors() -> None:
    with pytest.raises(RtpError, match="CSRC count 1 needs 16"):
        rewrite_bytes(bytes.fromhex("81000001 00000002 00000003 00"), extension_ids={})
    with pytest.raises(RtpError, match="extension header at offset 12"):
        rewrite_bytes(bytes.fromhex("90000001 00000002 00000003 00"), extension_ids={})
    with pytest.raises(RtpError, match="2 words ends at 24, packet has 20 bytes"):
        rewrite_bytes(
            bytes.fromhex("90000001 00000002 00000003 BEDE0002 10AA0000"),
            extension_ids={},
        )


# --- properties against the RtpPacket model --------------------------------------

ids = st.integers(1, 14)
values = st.binary(min_size=1, max_size=4)


@st.composite
def rtp_packets(draw: st.DrawFn) -> RtpPacket:
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        marker=draw(st.booleans()),
        sequence_number=draw(st.integers(0, 0xFFFF)),
        timestamp=draw(st.integers(0, 0xFFFFFFFF)),
        ssrc=draw(st.integers(0, 0xFFFFFFFF)),
        csrcs=tuple(draw(st.lists(st.integers(0, 0xFFFFFFFF), max_size=3))),
        extension_profile=draw(st.sampled_from([None, 0xBEDE])),
        extensions=draw(st.dictionaries(ids, values, max_size=5)),
        padding_size=draw(st.integers(0, 8)),
        payload=draw(st.binary(max_size=32)),
    )


@given(
    rtp_packets(),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 127),
    st.none() | st.dictionaries(ids, ids, max_size=6),
    st.none() | st.dictionaries(ids, values, max_size=3),
)
def test_rewrite_matches_model(
    packet: RtpPacket,
    ssrc: int,
    seq: int,
    ts: int,
    pt: int,
    extension_ids: dict[int, int] | None,
    set_extensions: dict[int, bytes] | None,
) -> None:
    data = bytes(packet)
    out = RtpPacket.parse(
        rewrite_rtp(
            data,
            ssrc=ssrc,
            sequence_number=seq,
            timestamp=ts,
            payload_type=pt,
            extension_ids=extension_ids,
            set_extensions=set_extensions,
        )
    )
    original = RtpPacket.parse(data)
    expected = dict(original.extensions)
    if extension_ids is not None:
        expected = {extension_ids[i]: v for i, v in expected.items() if i in extension_ids}
    expected.update(set_extensions or {})
    assert (out.ssrc, out.sequence_number, out.timestamp, out.payload_type) == (ssrc, seq, ts, pt)
    assert out.marker == packet.marker
    assert out.csrcs == packet.csrcs
    assert out.extensions == expected
    assert out.payload == packet.payload
    assert out.padding_size == packet.padding_size
    assert out.data[out.payload_end :] == data[original.payload_end :]
    if extension_ids is None and set_extensions is None:
        assert out.extension_raw == original.extension_raw
        assert out.extension_profile == original.extension_profile
    else:
        assert (out.extension_profile is not None) == bool(expected)
