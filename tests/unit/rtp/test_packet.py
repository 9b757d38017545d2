"""RtpPacket parse/serialise (RFC 3550 §5.1, §5.3.1; RFC 8285 §4)."""

from __future__ import annotations

import pytest

from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket

# V=2 P=0 X=0 CC=0 | M=1 PT=96 | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x11223344 | payload.
SIMPLE = bytes.fromhex("80E01234 DEADBEEF 11223344 010203")

# V=2 P=1 X=1 CC=2 (0xB2) | M=0 PT=111 (0x6F) | seq 65535 | ts 0 | SSRC 1
# CSRC 2, 3 | 0xBEDE length 1: id 1 L=0 value 0xAA, 2 padding bytes
# payload CAFE | padding 00 00 03 (count 3, RFC 3550 §5.1).
FULL = bytes.fromhex("B26FFFFF 00000000 00000001 00000002 00000003 BEDE0001 10AA0000 CAFE0000 03")


def test_parse_simple() -> None:
    p = RtpPacket.parse(SIMPLE)
    assert p.payload_type == 96
    assert p.marker is True
    assert p.sequence_number == 0x1234
    assert p.timestamp == 0xDEADBEEF
    assert p.ssrc == 0x11223344
    assert p.csrcs == ()
    assert p.extension_profile is None
    assert p.extensions == {}
    assert p.padding_size == 0
    assert (p.payload_offset, p.payload_end) == (12, 15)
    assert p.payload == b"\x01\x02\x03"
    assert p.data is SIMPLE
    assert bytes(p) == SIMPLE


def test_parse_full() -> None:
    p = RtpPacket.parse(FULL)
    assert p.payload_type == 111
    assert p.marker is False
    assert p.sequence_number == 65535
    assert p.timestamp == 0
    assert p.ssrc == 1
    assert p.csrcs == (2, 3)
    assert p.extension_profile == 0xBEDE
    assert p.extensions == {1: b"\xaa"}
    assert p.extension_raw == bytes.fromhex("10AA0000")
    assert p.padding_size == 3
    assert (p.payload_offset, p.payload_end) == (28, 30)
    assert p.payload == b"\xca\xfe"
    assert bytes(p) == FULL


def test_build_with_keywords_matches_vectors() -> None:
    assert (
        bytes(
            RtpPacket(
                payload_type=96,
                marker=True,
                sequence_number=0x1234,
                timestamp=0xDEADBEEF,
                ssrc=0x11223344,
                payload=b"\x01\x02\x03",
            )
        )
        == SIMPLE
    )
    built = RtpPacket(
        payload_type=111,
        sequence_number=65535,
        ssrc=1,
        csrcs=(2, 3),
        extension_profile=0xBEDE,
        extensions={1: b"\xaa"},
        padding_size=3,
        payload=b"\xca\xfe",
    )
    assert bytes(built) == FULL
    assert built == RtpPacket.parse(FULL)


def test_extensions_without_profile_choose_form() -> None:
    p = RtpPacket(payload_type=96, extensions={3: b"\x01\x02"}, payload=b"x")
    assert bytes(p) == bytes.fromhex("90600000 00000000 00000000 BEDE0001 31010200 78")
    p = RtpPacket(payload_type=96, extensions={3: b""}, payload=b"x")
    assert bytes(p) == bytes.fromhex("90600000 00000000 00000000 10000001 03000000 78")


def test_unusual_extension_layout_survives_unchanged() -> None:
    # Leading padding byte, then id 1: not how we would lay it out ourselves.
    data = bytes.fromhex("90000001 00000002 00000003 BEDE0001 0010AA00 FF")
    p = RtpPacket.parse(data)
    assert p.extensions == {1: b"\xaa"}
    assert bytes(p) == data
    # Once the elements change, the block is rebuilt canonically.
    p.extensions[2] = b"\x01"
    assert bytes(p) == bytes.fromhex("90000001 00000002 00000003 BEDE0001 10AA2001 FF")


def test_one_byte_profile_upgrades_when_value_no_longer_fits() -> None:
    p = RtpPacket.parse(bytes.fromhex("90000001 00000002 00000003 BEDE0001 10AA0000"))
    p.extensions[1] = b""
    assert bytes(p) == bytes.fromhex("90000001 00000002 00000003 10000001 01000000")


def test_two_byte_appbits_preserved_on_rebuild() -> None:
    data = bytes.fromhex("90000001 00000002 00000003 10050001 01010700")
    p = RtpPacket.parse(data)
    assert p.extension_profile == 0x1005
    assert p.extensions == {1: b"\x07"}
    assert bytes(p) == data
    p.extensions[1] = b"\x08"
    assert bytes(p) == bytes.fromhex("90000001 00000002 00000003 10050001 01010800")


def test_unknown_profile_is_kept_raw() -> None:
    data = bytes.fromhex("90000001 00000002 00000003 ABCD0001 01020304 AB")
    p = RtpPacket.parse(data)
    assert p.extension_profile == 0xABCD
    assert p.extensions == {}
    assert p.extension_raw == b"\x01\x02\x03\x04"
    assert p.payload == b"\xab"
    assert bytes(p) == data


def test_x_bit_with_empty_block() -> None:
    data = bytes.fromhex("90000001 00000002 00000003 BEDE0000 AB")
    p = RtpPacket.parse(data)
    assert (p.extension_profile, p.extensions) == (0xBEDE, {})
    assert bytes(p) == data


def test_empty_payload_is_accepted() -> None:
    header_only = bytes.fromhex("80000001 00000002 00000003")
    p = RtpPacket.parse(header_only)
    assert p.payload == b""
    assert bytes(p) == header_only
    # Padding-only packet (a bandwidth probe): 4 bytes of padding.
    probe = bytes.fromhex("A0000001 00000002 00000003 00000004")
    p = RtpPacket.parse(probe)
    assert (p.payload, p.padding_size) == (b"", 4)
    assert bytes(p) == probe


def test_nonzero_padding_bytes_survive() -> None:
    data = bytes.fromhex("A0000001 00000002 00000003 AABBCC03")
    assert bytes(RtpPacket.parse(data)) == data


def test_changing_padding_regenerates_it() -> None:
    p = RtpPacket.parse(bytes.fromhex("A0000001 00000002 00000003 AABBCC03"))
    p.padding_size = 2
    assert bytes(p) == bytes.fromhex("a0000001 00000002 00000003 aa0002")
    p.padding_size = 0
    assert bytes(p) == bytes.fromhex("80000001 00000002 00000003 aa")


def test_field_changes_reserialise() -> None:
    p = RtpPacket.parse(FULL)
    p.marker = True
    p.payload_type = 0
    p.sequence_number = 7
    p.csrcs = ()
    p.payload = b"\x01"
    assert bytes(p) == bytes.fromhex("b0800007 00000000 00000001 bede0001 10aa0000 01000003")


def test_payload_is_a_view_of_data() -> None:
    p = RtpPacket.parse(FULL)
    assert p.data[p.payload_offset : p.payload_end] == b"\xca\xfe"


@pytest.mark.parametrize(
    ("hexdata", "message"),
    [
        ("", r"too short: 0 bytes"),
        ("80000001 00000002 0000", r"too short: 10 bytes"),
        ("40000001 00000002 00000003", r"version is 1, expected 2"),
        ("C0000001 00000002 00000003", r"version is 3, expected 2"),
        ("83000001 00000002 00000003 00000004 00000005", r"CSRC count 3 needs 24 bytes"),
        ("90000001 00000002 00000003 BEDE", r"extension header at offset 12 needs 4"),
        ("90000001 00000002 00000003 BEDE0002 10AA0000", r"2 words ends at 24"),
        ("90000001 00000002 00000003 BEDE0001 1FAA0000", r"needs 16 bytes"),
        ("A0000001 00000002 00000003 AA00", r"padding count is 0"),
        ("A0000001 00000002 00000003 AA05", r"padding count 5 exceeds the 2 bytes"),
        ("B0000001 00000002 00000003 BEDE0000 09", r"padding count 9 exceeds the 1"),
    ],
)
def test_parse_errors(hexdata: str, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        RtpPacket.parse(bytes.fromhex(hexdata))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload_type": 128}, r"payload type must be 0..127"),
        ({"ssrc": 1 << 32}, r"out of range"),
        ({"sequence_number": 65536}, r"out of range"),
        ({"csrcs": tuple(range(16))}, r"at most 15 CSRCs"),
        ({"padding_size": 256}, r"padding size must be 0..255"),
        ({"extension_profile": 0xABCD, "extension_raw": b"\x01"}, r"not a multiple of 4"),
    ],
)
def test_serialise_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RtpError, match=message):
        bytes(RtpPacket(**kwargs))  # type: ignore[arg-type]


def test_equality() -> None:
    a = RtpPacket.parse(FULL)
    b = RtpPacket.parse(FULL)
    assert a == b
    b.timestamp = 1
    assert a != b
    assert a != "not a packet"
    # Same elements, different layout: equal.
    c = RtpPacket.parse(bytes.fromhex("90000001 00000002 00000003 BEDE0001 0010AA00"))
    d = RtpPacket.parse(bytes.fromhex("90000001 00000002 00000003 BEDE0001 10AA0000"))
    assert c == d
    with pytest.raises(TypeError):
        hash(a)


def test_constructor_parses_raw_rfc8285_block() -> None:
    p = RtpPacket(extension_profile=0xBEDE, extension_raw=bytes.fromhex("10AA0000"))
    assert p.extensions == {1: b"\xaa"}


def test_repr_mentions_fields() -> None:
    text = repr(RtpPacket.parse(SIMPLE))
    assert "sequence_number=4660" in text
    assert "ssrc=0x11223344" in text
