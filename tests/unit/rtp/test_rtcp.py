"""RTCP reports and feedback (RFC 3550 §6, RFC 4585 §6, RFC 5104 §4.3.1, REMB)."""

from __future__ import annotations

import pytest

from interlive.rtp.errors import RtcpError
from interlive.rtp.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    UnknownRtcp,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)

# RFC 3550 §6.4.1: V=2 RC=1 (0x81), PT=200, length 12 words-1 (52 bytes); SSRC,
# NTP timestamp (Unix 1.5 s), RTP timestamp, packet count 10, octet count 1000.
SR_INFO_HEX = "81C8000C 11223344 83AA7E81 80000000 12345678 0000000A 000003E8"
# Report block: SSRC, fraction 0x40 + lost 5, highest 0x0001FFFF, jitter 0x20,
# LSR 0xB7052000, DLSR 0x00054000 (the §6.4.1 Figure 2 values).
BLOCK_HEX = "55667788 40000005 0001FFFF 00000020 B7052000 00054000"
SR_HEX = SR_INFO_HEX + " " + BLOCK_HEX
BLOCK = ReportBlock(0x55667788, 0x40, 5, 0x0001FFFF, 0x20, 0xB7052000, 0x00054000)
SR = SenderReport(0x11223344, 0x83AA7E81_80000000, 0x12345678, 10, 1000, [BLOCK])


def vector(text: str) -> bytes:
    return bytes.fromhex(text)


def test_is_rtcp_rfc5761() -> None:
    assert is_rtcp(vector("80C8"))  # SR
    assert is_rtcp(vector("80DF"))  # 223, top of the RTCP range
    assert not is_rtcp(vector("80E0"))  # RTP, M=1 PT=96
    assert not is_rtcp(vector("80BF"))  # RTP, M=1 PT=63
    assert not is_rtcp(vector("80"))


def test_sender_report() -> None:
    assert bytes(SR) == vector(SR_HEX)
    assert SenderReport.parse(vector(SR_HEX)) == SR


def test_report_block_negative_loss() -> None:
    # Cumulative loss is signed 24-bit (RFC 3550 §6.4.1): 0xFFFFFF is -1.
    data = vector("00000001 40FFFFFF 00000000 00000000 00000000 00000000")
    block = ReportBlock.parse(data)
    assert (block.fraction_lost, block.packets_lost) == (0x40, -1)
    assert bytes(block) == data
    assert ReportBlock.parse(b"\x00" * 4 + data, 4) == block


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (ReportBlock(1, 0, 0x800000, 0, 0, 0, 0), "signed 24 bits"),
        (ReportBlock(1, 0, -0x800001, 0, 0, 0, 0), "signed 24 bits"),
        (ReportBlock(1, 256, 0, 0, 0, 0, 0), "fraction_lost"),
        (ReportBlock(1 << 32, 0, 0, 0, 0, 0, 0), "out of range"),
    ],
)
def test_report_block_errors(block: ReportBlock, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        bytes(block)
    with pytest.raises(RtcpError, match="needs 24 bytes"):
        ReportBlock.parse(bytes(23))


def test_receiver_report() -> None:
    assert bytes(ReceiverReport(1)) == vector("80C90001 00000001")
    data = vector("81C90007 00000001 " + BLOCK_HEX)
    assert ReceiverReport.parse(data) == ReceiverReport(1, [BLOCK])
    assert bytes(ReceiverReport(1, [BLOCK])) == data


def test_report_profile_extension_is_ignored() -> None:
    data = vector("80C90002 00000001 DEADBEEF")
    assert ReceiverReport.parse(data) == ReceiverReport(1)


def test_sdes_cname() -> None:
    # RFC 3550 §6.5: chunk = SSRC, items (type, length, text), a null octet, pad to 32 bits.
    sdes = Sdes.from_cname(0x11223344, "ab")
    assert bytes(sdes) == vector("81CA0003 11223344 01026162 00000000")
    sdes3 = Sdes.from_cname(0x11223344, "abc")
    assert bytes(sdes3) == vector("81CA0003 11223344 01036162 63000000")
    assert Sdes.parse(bytes(sdes3)) == sdes3
    assert sdes3.chunks[0].cname == "abc"


def test_sdes_several_chunks_and_items() -> None:
    sdes = Sdes(
        [
            SdesChunk(1, [(1, b"x"), (2, b"name")]),
            SdesChunk(2, []),
        ]
    )
    # Chunk 1: 4 + (2+1) + (2+4) = 13 bytes + 3 nulls; chunk 2: SSRC + 4 nulls.
    data = vector("82CA0006 00000001 01017802 046E616D 65000000 00000002 00000000")
    assert bytes(sdes) == data
    assert Sdes.parse(data) == sdes
    assert sdes.chunks[1].cname is None


@pytest.mark.parametrize(
    ("hexdata", "message"),
    [
        ("81CA0001 00000001", "no terminating null item"),
        ("81CA0002 00000001 0105AABB", "item type 1 in chunk 0 truncated"),
        ("82CA0002 00000001 00000000", "chunk 1 of 2 truncated"),
    ],
)
def test_sdes_errors(hexdata: str, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        parse_rtcp(vector(hexdata))


def test_sdes_build_errors() -> None:
    with pytest.raises(RtcpError, match=r"item type must be 1\.\.255"):
        bytes(Sdes([SdesChunk(1, [(0, b"x")])]))
    with pytest.raises(RtcpError, match="at most 255 bytes"):
        bytes(Sdes([SdesChunk(1, [(1, bytes(256))])]))


def test_bye() -> None:
    assert bytes(Bye([0x11223344])) == vector("81CB0001 11223344")
    # RFC 3550 §6.6: length octet then text, padded to 32 bits.
    with_reason = vector("81CB0002 11223344 03627965")
    assert bytes(Bye([0x11223344], b"bye")) == with_reason
    assert Bye.parse(with_reason) == Bye([0x11223344], b"bye")
    padded = vector("81CB0003 11223344 04636961 6F000000")
    assert bytes(Bye([0x11223344], b"ciao")) == padded
    assert Bye.parse(padded) == Bye([0x11223344], b"ciao")
    assert Bye.parse(vector("80CB0001 00000000")) == Bye([], b"")


def test_bye_errors() -> None:
    with pytest.raises(RtcpError, match="2 sources needs 8 bytes"):
        parse_rtcp(vector("82CB0001 00000001"))
    with pytest.raises(RtcpError, match="reason of 9 bytes"):
        parse_rtcp(vector("81CB0002 00000001 09414243"))
    with pytest.raises(RtcpError, match="at most 255"):
        bytes(Bye([1], bytes(256)))


# --- NACK, RFC 4585 §6.2.1 ----------------------------------------------------------

# FMT=1 PT=205, length 5: sender 1, media 2, then PID/BLP pairs.
# [100, 101, 116, 117, 200]: PID 100 covers 101 (bit 0) and 116 (bit 15);
# 117 is 17 away so it starts a pair; 200 another.
NACK_HEX = "81CD0005 00000001 00000002 00648001 00750000 00C80000"


def test_nack_packing() -> None:
    nack = Nack(1, 2, [100, 101, 116, 117, 200])
    assert nack.fci() == [(100, 0x8001), (117, 0), (200, 0)]
    assert bytes(nack) == vector(NACK_HEX)
    assert Nack.parse(vector(NACK_HEX)) == nack


def test_nack_across_wrap() -> None:
    data = vector("81CD0003 00000001 00000002 FFFF0003")
    for order in ([65535, 0, 1], [1, 65535, 0], [0, 1, 65535, 0]):
        assert bytes(Nack(1, 2, order)) == data
    assert Nack.parse(data).lost == [65535, 0, 1]


def test_nack_parse_wraps_blp() -> None:
    # PID 65530 with BLP bit 15 names 65530 + 16 = 10 (mod 2**16).
    data = vector("81CD0003 00000001 00000002 FFFA8000")
    assert Nack.parse(data).lost == [65530, 10]


def test_nack_errors() -> None:
    with pytest.raises(RtcpError, match="at least one"):
        bytes(Nack(1, 2, []))
    with pytest.raises(RtcpError, match=r"0\.\.65535"):
        bytes(Nack(1, 2, [70000]))
    with pytest.raises(RtcpError, match="NACK body needs 12 bytes, got 8"):
        parse_rtcp(vector("81CD0002 00000001 00000002"))


# --- PLI, FIR, REMB -------------------------------------------------------------------


def test_pli() -> None:
    data = vector("81CE0002 00000001 00000002")
    assert bytes(Pli(1, 2)) == data
    assert Pli.parse(data) == Pli(1, 2)
    with pytest.raises(RtcpError, match="PLI body needs 8 bytes, got 4"):
        parse_rtcp(vector("81CE0001 00000001"))


def test_fir() -> None:
    # RFC 5104 §4.3.1: FMT=4, media source 0, FCI = SSRC, seq nr, 24 reserved bits.
    data = vector("84CE0004 00000001 00000000 11223344 07000000")
    fir = Fir(1, [(0x11223344, 7)])
    assert bytes(fir) == data
    assert Fir.parse(data) == fir
    two = Fir(1, [(5, 255), (6, 0)], media_ssrc=5)
    assert Fir.parse(bytes(two)) == two


def test_fir_errors() -> None:
    with pytest.raises(RtcpError, match="at least one entry"):
        bytes(Fir(1, []))
    with pytest.raises(RtcpError, match="FIR body needs 16 bytes"):
        parse_rtcp(vector("84CE0002 00000001 00000000"))
    with pytest.raises(RtcpError, match="whole 8-byte entries"):
        parse_rtcp(vector("84CE0005 00000001 00000000 11223344 07000000 00000000"))


REMB_HEX = "8FCE0005 00000001 00000000 52454D42 010BD090 11223344"


def test_remb() -> None:
    # 1_000_000 = 250_000 << 2: exponent 2, mantissa 0x3D090 -> 0x0B 0xD0 0x90.
    remb = Remb(1, 1_000_000, [0x11223344])
    assert bytes(remb) == vector(REMB_HEX)
    assert Remb.parse(vector(REMB_HEX)) == remb


def test_remb_rounds_down_and_overflow() -> None:
    assert Remb.parse(bytes(Remb(1, (1 << 18) + 1, []))).bitrate == 1 << 18
    assert Remb.parse(bytes(Remb(1, (1 << 18) - 1, []))).bitrate == (1 << 18) - 1
    # Largest encodable value: mantissa 2**18-1, exponent 63 -> exact in Python.
    top = vector("8FCE0004 00000001 00000000 52454D42 00FFFFFF")
    assert Remb.parse(top).bitrate == ((1 << 18) - 1) << 63
    assert bytes(Remb.parse(top)) == top
    with pytest.raises(RtcpError, match="exceeds"):
        bytes(Remb(1, 1 << 81, []))
    with pytest.raises(RtcpError, match="negative"):
        bytes(Remb(1, -1, []))


def test_remb_errors() -> None:
    with pytest.raises(RtcpError, match="lists 2 SSRCs"):
        parse_rtcp(vector("8FCE0004 00000001 00000000 52454D42 02000001"))
    with pytest.raises(RtcpError, match="REMB body needs 16 bytes, got 12"):
        parse_rtcp(vector("8FCE0003 00000001 00000000 52454D42"))


def test_afb_that_is_not_remb_stays_raw() -> None:
    data = vector("8FCE0003 00000001 00000000 41424344")
    assert parse_rtcp(data) == [UnknownRtcp(206, 15, data[4:])]
    assert serialize_rtcp(parse_rtcp(data)) == data


# --- unknown packets, compound, padding ------------------------------------------------


@pytest.mark.parametrize(
    "hexdata",
    [
        "80CC0002 00000001 6E616D65",  # APP (204), name "name", no data
        "80CF0002 00000001 00000000",  # XR (207)
        "83CD0002 00000001 00000002",  # RTPFB FMT=3 (TMMBR-ish), unknown here
        "85CE0002 00000001 00000002",  # PSFB FMT=5 (TSTR)
        "80C30000",  # IJ (195), empty
    ],
)
def test_unknown_packets_round_trip(hexdata: str) -> None:
    data = vector(hexdata)
    (packet,) = parse_rtcp(data)
    assert isinstance(packet, UnknownRtcp)
    assert (packet.packet_type, packet.count_or_fmt) == (data[1], data[0] & 0x1F)
    assert bytes(packet) == data


def test_compound() -> None:
    data = vector(SR_HEX) + bytes(Sdes.from_cname(0x11223344, "abc")) + vector(NACK_HEX)
    packets = parse_rtcp(data)
    assert [type(p) for p in packets] == [SenderReport, Sdes, Nack]
    assert serialize_rtcp(packets) == data


def test_padding_is_stripped() -> None:
    # PLI with P bit and 4 padding bytes (count 4 in the last octet, RFC 3550 §6.4.1).
    data = vector("A1CE0003 00000001 00000002 00000004")
    assert parse_rtcp(data) == [Pli(1, 2)]
    # Padding inside a compound is accepted on any packet.
    assert parse_rtcp(data + vector("80C90001 00000001")) == [Pli(1, 2), ReceiverReport(1)]


@pytest.mark.parametrize(
    ("hexdata", "message"),
    [
        ("", "empty RTCP packet"),
        ("80C9", "header at offset 0 truncated: 2 bytes"),
        ("40C90001 00000001", "version is 1 at offset 0"),
        ("80C90002 00000001", "claims 12 bytes, 8 remain"),
        ("80C90001 00000001 80C9", "header at offset 8 truncated"),
        ("A0C90001 00000000", "padding count 0 invalid"),
        ("A0C90001 00000005", "padding count 5 invalid for a 4-byte body"),
        ("A0C90000", "padding count 0 invalid for a 0-byte body"),
        ("80C80001 00000001", "SR body needs 24 bytes"),
        ("80C90000", "RR body needs 4 bytes"),
        ("81C90001 00000001", "RR with 1 report blocks needs 28 body bytes, got 4"),
        ("81C80006 00000001" + "00" * 20, "SR with 1 report blocks needs 48"),
    ],
)
def test_compound_errors(hexdata: str, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        parse_rtcp(vector(hexdata))


def test_parse_one_checks_type_and_count() -> None:
    with pytest.raises(RtcpError, match="expected Pli, found Nack"):
        Pli.parse(vector(NACK_HEX))
    with pytest.raises(RtcpError, match="expected one RTCP packet, found 2"):
        Nack.parse(vector(NACK_HEX) * 2)


def test_serialise_errors() -> None:
    with pytest.raises(RtcpError, match="multiple of 4"):
        bytes(UnknownRtcp(204, 0, b"abc"))
    with pytest.raises(RtcpError, match=r"0\.\.31"):
        bytes(UnknownRtcp(204, 32, b""))
    with pytest.raises(RtcpError, match="at most 31 report blocks"):
        bytes(ReceiverReport(1, [BLOCK] * 32))
    with pytest.raises(RtcpError, match="too long"):
        bytes(UnknownRtcp(204, 0, bytes(4 * 0x10000)))
    with pytest.raises(RtcpError, match="out of range"):
        bytes(Pli(1 << 32, 0))
    with pytest.raises(RtcpError, match="out of range"):
        bytes(Bye([1 << 32]))
    with pytest.raises(RtcpError, match="out of range"):
        bytes(Remb(1, 1, [-1]))
    with pytest.raises(RtcpError, match="at most 255 SSRCs"):
        bytes(Remb(1, 1, [0] * 256))
