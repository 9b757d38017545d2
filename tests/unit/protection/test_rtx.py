"""RTX wrap/unwrap (RFC 4588 §4) with hand-built byte vectors, resend suppression, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.protection.rtx import RTT_FLOOR_WINDOW, RtxError, RtxReceiver, RtxSender
from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket
from interlive.sfu.history import PacketHistory

# Original media packet, RFC 3550 §5.1 layout:
#   V=2 P=0 X=1 CC=0 | M=1 PT=96 | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x11223344
#   RFC 8285 one-byte extension block: 0xBEDE, 1 word: id=1 L=0 value 0xAB, 2 pad bytes
#   payload 01 02 03
ORIGINAL = bytes.fromhex("90 e0 1234 deadbeef 11223344bede 0001 10ab 0000010203")
# The same packet with 3 bytes of RTP padding (P bit, count byte 3).
ORIGINAL_PADDED = bytes.fromhex("b0 e0 1234 deadbeef 11223344bede 0001 10ab 0000010203 000003")
# Its RTX form, RFC 4588 §4: same M, timestamp and extension block; PT 97,
# RTX seq 0x0100, RTX SSRC 0x55667788; payload = OSN 0x1234 + original payload.
RTX = bytes.fromhex("90 e1 0100 deadbeef 55667788bede 0001 10ab 00001234 010203")


def sender(
    packets: dict[int, bytes],
    *,
    rtx_pt: int | dict[int, int] | None = 97,
    rtx_ssrc: int | None = 0x55667788,
    first_sequence: int = 0x0100,
) -> RtxSender:
    history = PacketHistory(max_age=1.0)
    for seq, data in packets.items():
        history.store(seq, data, 0.0)
    return RtxSender(
        history=history,
        rtx_ssrc=rtx_ssrc,
        rtx_payload_type=rtx_pt,
        first_sequence=first_sequence,
    )


# --- RtxSender -------------------------------------------------------------------


def test_wrap_exact_bytes() -> None:
    s = sender({0x1234: ORIGINAL})
    assert s.uses_rtx
    assert s.on_nack([0x1234], 0.1, rtt=0.05) == [RTX]
    assert (s.requested, s.sent, s.not_in_history, s.suppressed) == (1, 1, 0, 0)


def test_wrap_drops_the_originals_padding() -> None:
    s = sender({0x1234: ORIGINAL_PADDED})
    assert s.on_nack([0x1234], 0.1, rtt=0.05) == [RTX]


def test_wrap_keeps_csrcs_and_marker_clear() -> None:
    original = bytes.fromhex("81 60 0007 00000010 00000001 cafebabe 99")
    s = sender({7: original}, rtx_pt=101, rtx_ssrc=2, first_sequence=65535)
    assert s.on_nack([7], 0.0, None) == [
        bytes.fromhex("81 65 ffff 00000010 00000002 cafebabe 0007 99")
    ]


def test_rtx_sequence_numbers_are_contiguous_and_wrap() -> None:
    packets = {
        seq: bytes.fromhex("80 60") + seq.to_bytes(2, "big") + bytes(8) + b"x" for seq in (1, 2, 3)
    }
    s = sender(packets, first_sequence=65534)
    out = s.on_nack([1, 2], 0.0, None) + s.on_nack([3], 0.0, None)
    parsed = [RtpPacket.parse(p) for p in out]
    assert [p.sequence_number for p in parsed] == [65534, 65535, 0]
    assert [p.payload[:2] for p in parsed] == [b"\x00\x01", b"\x00\x02", b"\x00\x03"]


def test_rtx_payload_type_per_media_payload_type() -> None:
    vp8 = bytes.fromhex("80 60 0001 00000000 00000001 aa")  # PT 96
    h264 = bytes.fromhex("80 66 0002 00000000 00000001 bb")  # PT 102
    opus = bytes.fromhex("80 6f 0003 00000000 00000001 cc")  # PT 111, no RTX mapping
    s = sender({1: vp8, 2: h264, 3: opus}, rtx_pt={96: 97, 102: 103})
    out = s.on_nack([1, 2, 3], 0.0, None)
    assert [RtpPacket.parse(p).payload_type for p in out[:2]] == [97, 103]
    assert out[2] == opus  # resent unchanged, as without RTX
    assert s.sent == 3


def test_once_per_rtt_suppression() -> None:
    s = sender({0x1234: ORIGINAL})
    assert len(s.on_nack([0x1234], 0.50, rtt=0.05)) == 1
    assert s.on_nack([0x1234], 0.54, rtt=0.05) == []
    assert s.on_nack([0x1234, 0x1234], 0.549, rtt=0.05) == []
    assert (s.requested, s.sent, s.suppressed) == (4, 1, 3)
    assert len(s.on_nack([0x1234], 0.55, rtt=0.05)) == 1  # an RTT later: the retry is genuine
    assert s.sent == 2


def test_suppression_interval_unknown_rtt_is_100ms_and_at_least_10ms() -> None:
    s = sender({0x1234: ORIGINAL})
    assert len(s.on_nack([0x1234], 0.0, None)) == 1
    assert s.on_nack([0x1234], 0.099, None) == []
    assert len(s.on_nack([0x1234], 0.1, None)) == 1
    assert len(s.on_nack([0x1234], 0.5, rtt=0.001)) == 1
    assert s.on_nack([0x1234], 0.509, rtt=0.001) == []  # floor of 10 ms
    assert len(s.on_nack([0x1234], 0.51, rtt=0.001)) == 1


def test_suppression_uses_the_smallest_recent_rtt_sample() -> None:
    # The viewer repeats every 100 ms (Chromium receive-only); one sample said 125 ms.
    s = sender({0x1234: ORIGINAL, 0x1235: ORIGINAL})
    assert s.resend_interval(0.101, 0.0) == 0.101
    assert s.resend_interval(0.125, 0.5) == 0.101  # an inflated sample does not widen it
    assert len(s.on_nack([0x1234], 0.5, rtt=0.125)) == 1
    assert len(s.on_nack([0x1234], 0.602, rtt=0.125)) == 1  # our resend was lost: genuine
    assert s.on_nack([0x1234], 0.65, rtt=0.125) == []  # sooner than the path allows: duplicate
    # the floor stands for RTT_FLOOR_WINDOW, then the path is re-learned (it may have grown)
    assert s.resend_interval(0.125, 1.0 + RTT_FLOOR_WINDOW + 0.01) == 0.125
    assert s.resend_interval(0.110, 12.0) == 0.110
    assert s.resend_interval(0.2, 12.5) == 0.110


def test_duplicate_in_one_nack_is_sent_once() -> None:
    s = sender({0x1234: ORIGINAL})
    assert s.on_nack([0x1234, 0x1234], 0.0, None) == [RTX]
    assert s.suppressed == 1


def test_history_miss_is_counted() -> None:
    s = sender({0x1234: ORIGINAL})
    assert s.on_nack([0x1233, 0x1234, 0x1235], 0.5, None) == [RTX]
    assert (s.requested, s.sent, s.not_in_history) == (3, 1, 2)
    assert s.on_nack([0x1234], 1.5, None) == []  # aged out of the history
    assert s.not_in_history == 3


def test_no_rtx_mode_returns_original_bytes() -> None:
    s = sender({0x1234: ORIGINAL_PADDED, 0x1235: ORIGINAL}, rtx_pt=None, rtx_ssrc=None)
    assert not s.uses_rtx
    assert s.on_nack([0x1234, 0x1235], 0.0, None) == [ORIGINAL_PADDED, ORIGINAL]
    assert s.on_nack([0x1234], 0.01, None) == []  # suppression applies too
    assert s.suppressed == 1


def test_16_bit_wire_numbers_only() -> None:
    s = sender({0x1234: ORIGINAL})
    assert s.on_nack([0x1_1234], 0.0, None) == [RTX]


def test_construction_errors() -> None:
    history = PacketHistory()
    with pytest.raises(ValueError, match="rtx_ssrc"):
        RtxSender(history=history, rtx_payload_type=97)
    with pytest.raises(ValueError, match="payload type must be"):
        RtxSender(history=history, rtx_ssrc=1, rtx_payload_type=128)
    with pytest.raises(ValueError, match="payload type must be"):
        RtxSender(history=history, rtx_ssrc=1, rtx_payload_type={96: -1})
    with pytest.raises(ValueError, match="rtx_ssrc"):
        RtxSender(history=history, rtx_ssrc=1 << 32, rtx_payload_type=97)


# --- RtxReceiver -----------------------------------------------------------------


def test_unwrap_exact_bytes() -> None:
    r = RtxReceiver()
    assert r.unwrap(RtpPacket.parse(RTX), 0x11223344, {97: 96}) == ORIGINAL
    assert r.unwrapped == 1


def test_unwrap_drops_rtx_padding() -> None:
    padded = bytes([RTX[0] | 0x20]) + RTX[1:] + bytes.fromhex("000000 04")
    assert RtxReceiver().unwrap(RtpPacket.parse(padded), 0x11223344, {97: 96}) == ORIGINAL


def test_unwrap_a_built_packet() -> None:
    rtx = RtpPacket(
        payload_type=97,
        marker=True,
        sequence_number=0x0100,
        timestamp=0xDEADBEEF,
        ssrc=0x55667788,
        extensions={1: b"\xab"},
        payload=bytes.fromhex("1234 010203"),
    )
    assert RtxReceiver().unwrap(rtx, 0x11223344, {97: 96}) == ORIGINAL


def test_unwrap_payload_of_one_byte_is_an_error() -> None:
    packet = RtpPacket.parse(bytes.fromhex("80 61 0001 00000000 00000002 12"))
    with pytest.raises(RtxError, match="1 byte"):
        RtxReceiver().unwrap(packet, 1, {97: 96})


def test_unwrap_unknown_payload_type_is_an_error() -> None:
    with pytest.raises(RtxError, match="payload type 97"):
        RtxReceiver().unwrap(RtpPacket.parse(RTX), 1, {99: 96})
    assert issubclass(RtxError, RtpError) and issubclass(RtxError, ValueError)


@pytest.mark.parametrize(
    "data",
    [
        "a0 61 0001 00000000 00000002 00000000 00000008",  # padding only, no OSN
        "80 61 0001 00000000 00000002",  # header only
        "a0 61 0001 00000000 00000002 1234 000003",  # OSN and padding
        "80 61 0001 00000000 00000002 1234",  # OSN only
    ],
)
def test_padding_only_probes_are_reported_as_none(data: str) -> None:
    r = RtxReceiver()
    assert r.unwrap(RtpPacket.parse(bytes.fromhex(data)), 1, {97: 96}) is None
    assert (r.padding, r.unwrapped) == (1, 0)


# --- properties ------------------------------------------------------------------


@st.composite
def media_packets(draw: st.DrawFn) -> RtpPacket:
    extensions = draw(
        st.dictionaries(st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=4)
    )
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        marker=draw(st.booleans()),
        sequence_number=draw(st.integers(0, 0xFFFF)),
        timestamp=draw(st.integers(0, 0xFFFFFFFF)),
        ssrc=draw(st.integers(0, 0xFFFFFFFF)),
        csrcs=tuple(draw(st.lists(st.integers(0, 0xFFFFFFFF), max_size=3))),
        extensions=extensions,
        padding_size=draw(st.sampled_from([0, 1, 4, 255])),
        payload=draw(st.binary(min_size=1, max_size=64)),
    )


@given(
    packet=media_packets(),
    rtx_pt=st.integers(0, 127),
    rtx_ssrc=st.integers(0, 0xFFFFFFFF),
    first=st.integers(0, 0xFFFF),
)
def test_wrap_then_unwrap_restores_the_original(
    packet: RtpPacket, rtx_pt: int, rtx_ssrc: int, first: int
) -> None:
    original = bytes(packet)
    s = sender(
        {packet.sequence_number: original}, rtx_pt=rtx_pt, rtx_ssrc=rtx_ssrc, first_sequence=first
    )
    [wire] = s.on_nack([packet.sequence_number], 0.0, None)
    rtx = RtpPacket.parse(wire)
    assert (rtx.ssrc, rtx.payload_type, rtx.sequence_number) == (rtx_ssrc, rtx_pt, first)
    assert (rtx.timestamp, rtx.marker, rtx.csrcs) == (packet.timestamp, packet.marker, packet.csrcs)
    assert rtx.extensions == packet.extensions and rtx.padding_size == 0
    restored = RtxReceiver().unwrap(rtx, packet.ssrc, {rtx_pt: packet.payload_type})
    assert restored is not None
    packet.padding_size = 0  # the original's padding is not retransmitted
    assert restored == bytes(packet)


@given(
    data=st.binary(min_size=12, max_size=80).map(lambda b: bytes([0x80 | (b[0] & 0x3F)]) + b[1:]),
    apt=st.dictionaries(st.integers(0, 127), st.integers(-2, 130), max_size=4),
    media_ssrc=st.integers(-1, 1 << 32),
)
def test_fuzz_unwrap_raises_only_rtx_errors(
    data: bytes, apt: dict[int, int], media_ssrc: int
) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    apt = {packet.payload_type: 96, **apt} if len(apt) % 2 else apt
    try:
        out = RtxReceiver().unwrap(packet, media_ssrc, apt)
    except RtxError:
        return
    if out is not None:
        restored = RtpPacket.parse(out)
        osn = packet.payload[:2]
        assert restored.sequence_number == int.from_bytes(osn, "big")
        assert restored.ssrc == media_ssrc and restored.payload == packet.payload[2:]
