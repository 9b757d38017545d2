"""Hypothesis round trips (build -> bytes -> parse == original) and parser fuzzing."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from interlive.rtp.errors import RtcpError, RtpError
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    TransportCcFeedback,
    UnknownRtcp,
    parse_rtcp,
    serialize_rtcp,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)


# --- RTP -------------------------------------------------------------------------


@st.composite
def rtp_packets(draw: st.DrawFn) -> RtpPacket:
    kind = draw(st.sampled_from(["none", "one", "two", "opaque"]))
    profile: int | None = None
    extensions: dict[int, bytes] = {}
    raw = b""
    if kind == "one":
        profile = 0xBEDE
        extensions = draw(
            st.dictionaries(st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=6)
        )
    elif kind == "two":
        profile = 0x1000 | draw(st.integers(0, 15))
        extensions = draw(st.dictionaries(st.integers(1, 255), st.binary(max_size=40), max_size=6))
    elif kind == "opaque":
        profile = draw(u16.filter(lambda p: p != 0xBEDE and p & 0xFFF0 != 0x1000))
        raw = draw(st.binary(max_size=12).map(lambda b: b + bytes(-len(b) & 3)))
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        marker=draw(st.booleans()),
        sequence_number=draw(u16),
        timestamp=draw(u32),
        ssrc=draw(u32),
        csrcs=tuple(draw(st.lists(u32, max_size=15))),
        extension_profile=profile,
        extensions=extensions,
        extension_raw=raw,
        padding_size=draw(u8),
        payload=draw(st.binary(max_size=64)),
    )


@given(rtp_packets())
def test_rtp_round_trip(packet: RtpPacket) -> None:
    data = bytes(packet)
    parsed = RtpPacket.parse(data)
    assert parsed == packet
    assert bytes(parsed) == data


@given(st.binary(max_size=96))
def test_rtp_parse_fuzz(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    # Whatever parses re-serialises to the same bytes.
    assert bytes(packet) == data


@given(rtp_packets(), st.data())
def test_rtp_parse_fuzz_mutations(packet: RtpPacket, data: st.DataObject) -> None:
    # Flip bytes of valid packets to reach the deeper checks.
    raw = bytearray(bytes(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(RtpError):
        RtpPacket.parse(bytes(raw[:cut]))


# --- RTCP ------------------------------------------------------------------------

report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=u8,
    packets_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
sender_reports = st.builds(
    SenderReport,
    ssrc=u32,
    ntp_timestamp=u64,
    rtp_timestamp=u32,
    packet_count=u32,
    octet_count=u32,
    reports=st.lists(report_blocks, max_size=31),
)
receiver_reports = st.builds(ReceiverReport, ssrc=u32, reports=st.lists(report_blocks, max_size=31))
sdes_packets = st.builds(
    Sdes,
    chunks=st.lists(
        st.builds(
            SdesChunk,
            ssrc=u32,
            items=st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=255)), max_size=4),
        ),
        max_size=31,
    ),
)
byes = st.builds(
    Bye,
    sources=st.lists(u32, max_size=31),
    reason=st.none() | st.binary(max_size=255),
)


@st.composite
def nacks(draw: st.DrawFn) -> Nack:
    # Canonical lists: distinct, in serial order from the first, span < 32768.
    start = draw(u16)
    offsets = draw(st.lists(st.integers(0, 32767), min_size=1, max_size=60, unique=True))
    offsets = sorted({0, *offsets}) if draw(st.booleans()) else sorted(offsets)
    return Nack(draw(u32), draw(u32), [(start + o) & 0xFFFF for o in offsets])


plis = st.builds(Pli, sender_ssrc=u32, media_ssrc=u32)
firs = st.builds(
    Fir,
    sender_ssrc=u32,
    entries=st.lists(st.tuples(u32, u8), min_size=1, max_size=8),
    media_ssrc=u32,
)
rembs = st.builds(
    Remb,
    sender_ssrc=u32,
    bitrate=st.builds(lambda m, e: m << e, st.integers(0, (1 << 18) - 1), st.integers(0, 63)),
    ssrcs=st.lists(u32, max_size=8),
)


@st.composite
def twccs(draw: st.DrawFn) -> TransportCcFeedback:
    base = draw(u16)
    deltas = draw(
        st.lists(
            st.none()
            | st.integers(0, 255).map(lambda t: t * 250)
            | st.integers(-0x8000, 0x7FFF).map(lambda t: t * 250),
            min_size=1,
            max_size=300,
        )
    )
    # Runs of one symbol, to exercise run-length chunks too.
    if draw(st.booleans()):
        deltas += [None] * draw(st.integers(0, 9000))
    return TransportCcFeedback(
        draw(u32),
        draw(u32),
        base,
        draw(u8),
        draw(st.integers(-0x800000, 0x7FFFFF)),
        [((base + i) & 0xFFFF, d) for i, d in enumerate(deltas)],
    )


unknowns = (
    st.builds(
        UnknownRtcp,
        packet_type=st.sampled_from([195, 204, 207, 208, 223]),
        count_or_fmt=st.integers(0, 31),
        body=st.binary(max_size=40).map(lambda b: b + bytes(-len(b) & 3)),
    )
    | st.builds(
        UnknownRtcp,
        packet_type=st.just(205),
        count_or_fmt=st.integers(0, 31).filter(lambda f: f not in (1, 15)),
        body=st.binary(max_size=40).map(lambda b: b + bytes(-len(b) & 3)),
    )
    | st.builds(
        UnknownRtcp,
        packet_type=st.just(206),
        count_or_fmt=st.integers(0, 31).filter(lambda f: f not in (1, 4, 15)),
        body=st.binary(max_size=40).map(lambda b: b + bytes(-len(b) & 3)),
    )
)

rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    sender_reports,
    receiver_reports,
    sdes_packets,
    byes,
    nacks(),
    plis,
    firs,
    rembs,
    twccs(),
    unknowns,
)


@given(report_blocks)
def test_report_block_round_trip(block: ReportBlock) -> None:
    assert ReportBlock.parse(bytes(block)) == block


@given(rtcp_packets)
def test_rtcp_round_trip(packet: RtcpPacket) -> None:
    data = bytes(packet)
    assert len(data) % 4 == 0
    assert type(packet).parse(data) == packet
    assert parse_rtcp(data) == [packet]


@given(st.lists(rtcp_packets, min_size=1, max_size=5))
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    data = serialize_rtcp(packets)
    assert parse_rtcp(data) == packets
    assert serialize_rtcp(parse_rtcp(data)) == data


@given(st.binary(max_size=128))
def test_rtcp_parse_fuzz(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_rtcp(data)


@given(rtcp_packets, st.data())
def test_rtcp_parse_fuzz_mutations(packet: RtcpPacket, data: st.DataObject) -> None:
    raw = bytearray(bytes(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(RtcpError):
        parse_rtcp(bytes(raw[:cut]))


@given(
    st.sampled_from([200, 201, 202, 203, 205, 206]),
    st.integers(0, 31),
    st.binary(max_size=80),
    st.booleans(),
)
def test_rtcp_typed_body_fuzz(packet_type: int, count: int, body: bytes, padded: bool) -> None:
    # Well-framed packets of the decoded types with arbitrary bodies.
    pad = -len(body) & 3 or (4 if padded else 0)
    if pad:
        body += bytes(pad - 1) + bytes((pad,))
    header = bytes((0x80 | (0x20 if pad else 0) | count, packet_type)) + (len(body) // 4).to_bytes(
        2, "big"
    )
    with contextlib.suppress(RtcpError):
        parse_rtcp(header + body)
