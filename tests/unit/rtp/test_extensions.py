"""RFC 8285 extension blocks and the value codecs in interlive.rtp.extensions."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.errors import RtpError
from interlive.rtp.extensions import (
    abs_send_time_from_seconds,
    build_abs_send_time,
    build_audio_level,
    build_extension_block,
    build_mid,
    build_playout_delay,
    build_rid,
    build_transport_cc,
    is_rfc8285_profile,
    parse_abs_send_time,
    parse_audio_level,
    parse_extension_block,
    parse_mid,
    parse_playout_delay,
    parse_rid,
    parse_transport_cc,
)

# RFC 8285 §4.2 example layout (length=3): ID L=0 + 1 byte, ID L=1 + 2 bytes,
# two padding bytes, ID L=3 + 4 bytes.  Ids and data filled in by us.
RFC8285_ONE_BYTE = bytes.fromhex("10AA21BB CC000033 01020304")
# RFC 8285 §4.3 example layout (0x1000, length=3): ID L=0, ID L=1 + 1 byte,
# one padding byte, ID L=4 + 4 bytes.
RFC8285_TWO_BYTE = bytes.fromhex("01000201 AA000304 01020304")


def test_rfc8285_one_byte_example() -> None:
    assert parse_extension_block(0xBEDE, RFC8285_ONE_BYTE) == {
        1: b"\xaa",
        2: b"\xbb\xcc",
        3: b"\x01\x02\x03\x04",
    }


def test_rfc8285_two_byte_example() -> None:
    assert parse_extension_block(0x1000, RFC8285_TWO_BYTE) == {
        1: b"",
        2: b"\xaa",
        3: b"\x01\x02\x03\x04",
    }


def test_two_byte_appbits_profile_is_accepted() -> None:
    assert parse_extension_block(0x100F, RFC8285_TWO_BYTE)[3] == b"\x01\x02\x03\x04"


def test_build_one_byte_packs_then_pads_at_end() -> None:
    # 1+1 + 1+2 + 1+4 = 10 bytes, padded to 12.
    profile, body = build_extension_block({1: b"\xaa", 2: b"\xbb\xcc", 3: b"\x01\x02\x03\x04"})
    assert profile == 0xBEDE
    assert body == bytes.fromhex("10AA21BB CC330102 03040000")


def test_build_chooses_two_byte_for_empty_value() -> None:
    profile, body = build_extension_block({1: b"", 2: b"\xaa", 3: b"\x01\x02\x03\x04"})
    assert profile == 0x1000
    assert body == bytes.fromhex("01000201 AA030401 02030400")


@pytest.mark.parametrize(
    ("extensions", "body"),
    [
        ({15: b"x"}, "0F017800"),  # id 15 is reserved in the one-byte form
        ({1: bytes(17)}, "0111" + "00" * 17 + "00"),  # 17 bytes exceed one-byte L
        ({200: b"\x01\x02"}, "C8020102"),
    ],
)
def test_build_two_byte_when_one_byte_cannot_express(
    extensions: dict[int, bytes], body: str
) -> None:
    assert build_extension_block(extensions) == (0x1000, bytes.fromhex(body))


def test_build_sixteen_byte_value_stays_one_byte() -> None:
    profile, body = build_extension_block({14: bytes(range(16))})
    assert profile == 0xBEDE
    assert body == b"\xef" + bytes(range(16)) + b"\x00\x00\x00"


def test_build_forced_profiles() -> None:
    assert build_extension_block({1: b"\x05"}, profile=0x1003) == (0x1003, b"\x01\x01\x05\x00")
    assert build_extension_block({1: b"\x05"}, profile=0xBEDE) == (0xBEDE, b"\x10\x05\x00\x00")
    with pytest.raises(RtpError, match="one-byte extension form"):
        build_extension_block({1: b""}, profile=0xBEDE)
    with pytest.raises(RtpError, match="not an RFC 8285"):
        build_extension_block({1: b"\x05"}, profile=0xABCD)


def test_build_empty() -> None:
    assert build_extension_block({}) == (0xBEDE, b"")


@pytest.mark.parametrize(
    "extensions", [{0: b"\x01"}, {256: b"\x01"}, {-1: b"\x01"}, {1: bytes(256)}]
)
def test_build_rejects_unencodable(extensions: dict[int, bytes]) -> None:
    with pytest.raises(RtpError, match="two-byte extension needs"):
        build_extension_block(extensions)


def test_one_byte_id_15_stops_parsing() -> None:
    # RFC 8285 §4.2: elements after ID 15 are ignored, its length too.
    assert parse_extension_block(0xBEDE, bytes.fromhex("10AAF020 BB000000")) == {1: b"\xaa"}


def test_padding_anywhere_is_skipped() -> None:
    assert parse_extension_block(0xBEDE, bytes.fromhex("000010AA 00002001")) == {
        1: b"\xaa",
        2: b"\x01",
    }
    assert parse_extension_block(0x1000, bytes.fromhex("00000000 01010700")) == {1: b"\x07"}


def test_duplicate_id_last_wins() -> None:
    assert parse_extension_block(0xBEDE, bytes.fromhex("10011002")) == {1: b"\x02"}


@pytest.mark.parametrize(
    ("profile", "block", "message"),
    [
        (0xBEDE, "13AABB", r"one-byte extension id 1 at offset 0 needs 4 bytes, block has 2"),
        (0xBEDE, "0000001F", r"id 1 at offset 3 needs 16 bytes, block has 0"),
        (0x1000, "05", r"two-byte extension id 5 at offset 0 has no length byte"),
        (0x1000, "0504AA00", r"id 5 at offset 0 needs 4 bytes, block has 2"),
        (0xABCD, "00000000", r"not an RFC 8285 extension profile"),
    ],
)
def test_malformed_blocks(profile: int, block: str, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        parse_extension_block(profile, bytes.fromhex(block))


def test_is_rfc8285_profile() -> None:
    assert is_rfc8285_profile(0xBEDE)
    assert is_rfc8285_profile(0x1000)
    assert is_rfc8285_profile(0x100F)
    assert not is_rfc8285_profile(0x1010)
    assert not is_rfc8285_profile(0xBEDF)
    assert not is_rfc8285_profile(0)


one_byte_blocks = st.dictionaries(
    st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=14
)
two_byte_blocks = st.dictionaries(
    st.integers(1, 255), st.binary(min_size=0, max_size=255), max_size=8
)


@given(one_byte_blocks | two_byte_blocks)
def test_block_round_trip(extensions: dict[int, bytes]) -> None:
    profile, body = build_extension_block(extensions)
    assert len(body) % 4 == 0
    assert parse_extension_block(profile, body) == extensions


@given(two_byte_blocks, st.integers(0, 15))
def test_two_byte_round_trip_with_appbits(extensions: dict[int, bytes], appbits: int) -> None:
    profile, body = build_extension_block(extensions, profile=0x1000 | appbits)
    assert profile == 0x1000 | appbits
    assert parse_extension_block(profile, body) == extensions


@given(st.sampled_from([0xBEDE, 0x1000, 0x1007]), st.binary(max_size=64))
def test_block_parser_fuzz(profile: int, data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_extension_block(profile, data)


# --- value codecs -------------------------------------------------------------


def test_audio_level() -> None:
    # RFC 6464 §3: V=1, level 42 -dBov -> 0x80 | 0x2A.
    assert parse_audio_level(b"\xaa") == (True, 42)
    assert parse_audio_level(b"\x7f") == (False, 127)
    assert build_audio_level(True, 42) == b"\xaa"
    assert build_audio_level(False, 0) == b"\x00"
    with pytest.raises(RtpError, match=r"0\.\.127"):
        build_audio_level(False, 128)
    with pytest.raises(RtpError, match="empty"):
        parse_audio_level(b"")


@given(st.booleans(), st.integers(0, 127))
def test_audio_level_round_trip(voice: bool, level: int) -> None:
    assert parse_audio_level(build_audio_level(voice, level)) == (voice, level)


def test_abs_send_time() -> None:
    # 6.18 fixed point: 1.5 s = 1.5 * 2**18 = 0x060000.
    assert abs_send_time_from_seconds(1.5) == b"\x06\x00\x00"
    # 64.25 s wraps to 0.25 s = 0x010000.
    assert abs_send_time_from_seconds(64.25) == b"\x01\x00\x00"
    # 2**-18 s is one unit; 0.75 of a unit rounds to 1.
    assert abs_send_time_from_seconds(0.75 / 2**18) == b"\x00\x00\x01"
    assert parse_abs_send_time(b"\x12\x34\x56") == 0x123456
    assert build_abs_send_time(0x1123456) == b"\x12\x34\x56"
    with pytest.raises(RtpError, match="3 bytes"):
        parse_abs_send_time(b"\x00\x00")


def test_playout_delay() -> None:
    # MIN(12) | MAX(12) in 10 ms units: 100 ms = 0x00A, 400 ms = 0x028.
    assert build_playout_delay(0.1, 0.4) == b"\x00\xa0\x28"
    # 40.95 s is the largest value: 0xFFF in both halves.
    assert build_playout_delay(40.95, 40.95) == b"\xff\xff\xff"
    # 0.333 s rounds to 33 units (0x021); 10 s is 1000 (0x3E8).
    assert build_playout_delay(0.333, 10.0) == b"\x02\x13\xe8"
    assert parse_playout_delay(b"\x00\xa0\x28") == (0.1, 0.4)
    assert parse_playout_delay(b"\x02\x13\xe8") == (0.33, 10.0)
    with pytest.raises(RtpError, match="3 bytes"):
        parse_playout_delay(b"\x00\xa0")
    with pytest.raises(RtpError, match="min <= max"):
        build_playout_delay(0.5, 0.4)
    with pytest.raises(RtpError, match="min <= max"):
        build_playout_delay(0.0, 41.0)
    with pytest.raises(RtpError, match="min <= max"):
        build_playout_delay(-0.01, 1.0)


def test_transport_cc() -> None:
    assert build_transport_cc(0x1234) == b"\x12\x34"
    assert build_transport_cc(0x10005) == b"\x00\x05"
    assert parse_transport_cc(b"\xff\xff") == 65535
    with pytest.raises(RtpError, match="2 bytes"):
        parse_transport_cc(b"\x00\x01\x02")


def test_mid_and_rid() -> None:
    assert parse_mid(b"0") == "0"
    assert build_mid("audio") == b"audio"
    assert parse_rid(b"hi") == "hi"
    assert build_rid("q") == b"q"
    with pytest.raises(RtpError, match="not ASCII"):
        parse_mid(b"\xff")
    with pytest.raises(RtpError, match="must be ASCII"):
        build_rid("\u00e9")
    with pytest.raises(RtpError, match=r"1\.\.255 bytes"):
        build_mid("")
    with pytest.raises(RtpError, match="empty"):
        parse_rid(b"")


def test_zero_extensions_clears_only_the_named_elements_in_both_forms() -> None:
    from interlive.rtp.extensions import zero_extensions
    from interlive.rtp.packet import RtpPacket

    for profile in (0xBEDE, 0x1000):
        exts = {3: b"\x11\x22\x33", 4: b"mid", 5: b"\x01\x02\x03"}
        packet = bytes(RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3,
                                 extension_profile=profile, extensions=exts,
                                 payload=b"payload"))  # fmt: skip
        zeroed = RtpPacket.parse(zero_extensions(packet, frozenset({3, 5})))
        assert zeroed.extensions == {3: bytes(3), 4: b"mid", 5: bytes(3)}
        assert zeroed.payload == b"payload" and len(bytes(zeroed)) == len(packet)
        assert zero_extensions(packet, frozenset({9})) is packet
        assert zero_extensions(packet, frozenset()) is packet
    plain = bytes(RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x"))
    assert zero_extensions(plain, frozenset({3})) is plain
    truncated = bytes([0x90]) + bytes(13)
    with pytest.raises(RtpError):
        zero_extensions(truncated, frozenset({3}))
