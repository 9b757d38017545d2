"""H.264 RTP packetization-mode 1 (RFC 6184 §5.6-5.8) and Annex B / AVCC framing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.codecs.h264 import H264Packet, H264PacketKind
from interlive.media.errors import H264RtpError, NalFramingError
from interlive.media.h264_rtp import (
    AccessUnit,
    H264Depacketizer,
    H264Packetizer,
    annexb_to_nals,
    avcc_to_nals,
    nals_to_annexb,
    nals_to_avcc,
)
from interlive.rtp.packet import RtpPacket

from .conftest import real_access_units

SPS = bytes.fromhex("6764000cacd94141fa10000003001000000301e0f1429960")
PPS = bytes.fromhex("68ebe3cb22c0")
IDR = bytes.fromhex("65888400335f")  # first_mb_in_slice 0
SLICE = bytes.fromhex("419a3849")

# -- framing --


def test_annexb_split_and_join() -> None:
    stream = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x00\x01" + IDR
    assert annexb_to_nals(stream) == [SPS, PPS, IDR]
    assert nals_to_annexb([SPS, PPS]) == b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS
    assert annexb_to_nals(b"") == []
    with pytest.raises(NalFramingError):
        annexb_to_nals(b"\x67\x42")


def test_avcc_split_and_join() -> None:
    data = bytes.fromhex("00000004419a3849") + bytes.fromhex("00000006") + IDR
    assert avcc_to_nals(data) == [SLICE, IDR]
    assert nals_to_avcc([SLICE, IDR]) == data
    assert nals_to_avcc([SLICE], 2) == bytes.fromhex("0004419a3849")
    assert avcc_to_nals(bytes.fromhex("0004419a3849"), 2) == [SLICE]
    for bad in (b"\x00\x00\x00", b"\x00\x00\x00\x05\x41", b"\x00\x00\x00\x00"):
        with pytest.raises(NalFramingError):
            avcc_to_nals(bad)
    with pytest.raises(NalFramingError):
        nals_to_avcc([b"\x41" * 300], 1)


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8))
def test_avcc_round_trip(nals: list[bytes]) -> None:
    assert avcc_to_nals(nals_to_avcc(nals)) == nals


# -- packetizer exact vectors --


def test_stap_a_aggregates_small_nals() -> None:
    out = H264Packetizer().packetize([SPS, PPS, IDR])
    stap = (
        b"\x78"  # F 0, NRI 3 (max of the units), type 24
        + len(SPS).to_bytes(2, "big")
        + SPS
        + len(PPS).to_bytes(2, "big")
        + PPS
        + len(IDR).to_bytes(2, "big")
        + IDR
    )
    assert out == [(stap, True)]


def test_single_nal_when_aggregate_does_not_fit() -> None:
    big = b"\x41" + bytes(range(1, 100))
    out = H264Packetizer(mtu=100).packetize([big, SLICE])
    assert out == [(big, False), (SLICE, True)]


def test_fu_a_exact() -> None:
    nal = b"\x65" + bytes(range(10))  # NRI 3, IDR, 10 body bytes
    out = H264Packetizer(mtu=6).packetize([nal])
    assert out == [
        (b"\x7c\x85" + bytes((0, 1, 2, 3)), False),  # FU indicator NRI 3 type 28; S, type 5
        (b"\x7c\x05" + bytes((4, 5, 6, 7)), False),
        (b"\x7c\x45" + bytes((8, 9)), True),  # E
    ]


def test_fu_a_exact_fit_has_end_on_last() -> None:
    nal = b"\x41" + bytes(8)
    out = H264Packetizer(mtu=6).packetize([nal])
    assert [p[0][1] for p in out] == [0x81, 0x41]
    assert [len(p[0]) for p in out] == [6, 6]


def test_parameter_sets_inserted_before_idr() -> None:
    packetizer = H264Packetizer()
    packetizer.set_parameter_sets(SPS, PPS)
    assert packetizer.packetize([SLICE]) == [(SLICE, True)]
    ((payload, marker),) = packetizer.packetize([b"\x09\xf0", IDR])  # the AUD is dropped
    assert marker
    packet = H264Packet.parse(payload)
    assert packet.kind is H264PacketKind.STAP_A
    assert packet.nal_types == (7, 8, 5)


def test_parameter_sets_open_the_access_unit_before_its_sei() -> None:
    packetizer = H264Packetizer()
    packetizer.set_parameter_sets(SPS, PPS)
    ((payload, _),) = packetizer.packetize([b"\x06\x05\x01\x00\x80", IDR])
    assert H264Packet.parse(payload).nal_types == (7, 8, 6, 5)


def test_in_band_parameter_sets_are_remembered() -> None:
    packetizer = H264Packetizer()
    packetizer.packetize([SPS, PPS, IDR])
    ((payload, _),) = packetizer.packetize([IDR])
    assert H264Packet.parse(payload).nal_types == (7, 8, 5)


@pytest.mark.parametrize("nals", [[b""], [b"\x78\x00"], [b"\x00\x01"]])
def test_packetizer_refuses_bad_nals(nals: list[bytes]) -> None:
    with pytest.raises(H264RtpError):
        H264Packetizer().packetize(nals)


# -- real libx264 round trips --


def _packets(aus: list[list[bytes]], mtu: int = 1200, seq0: int = 65000) -> list[RtpPacket]:
    packetizer = H264Packetizer(mtu=mtu)
    packets: list[RtpPacket] = []
    for i, au in enumerate(aus):
        for payload, marker in packetizer.packetize(au):
            packets.append(
                RtpPacket(
                    payload_type=96,
                    marker=marker,
                    sequence_number=(seq0 + len(packets)) & 0xFFFF,
                    timestamp=(1000 + 6000 * i) & 0xFFFFFFFF,
                    ssrc=1,
                    payload=payload,
                )
            )
    return packets


def _is_idr(au: list[bytes]) -> bool:
    return any(nal[0] & 0x1F == 5 for nal in au)


def test_real_access_units_round_trip(x264_aus: list[list[bytes]]) -> None:
    idr = x264_aus[0]
    assert [n[0] & 0x1F for n in idr if n[0] & 0x1F == 5] == [5]  # one slice
    assert max(len(n) for n in idr) > 1200
    packets = _packets(x264_aus)  # sequence numbers wrap at 65535
    kinds = [H264Packet.parse(p.payload).kind for p in packets]
    assert H264PacketKind.FU_A in kinds and H264PacketKind.STAP_A in kinds
    assert all(len(p.payload) <= 1200 for p in packets)
    first = H264Packet.parse(packets[0].payload)
    assert first.kind is H264PacketKind.STAP_A and first.nal_types[:2] == (7, 8)
    assert sum(p.marker for p in packets) == len(x264_aus)

    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for packet in packets:
        out += depacketizer.push_packet(RtpPacket.parse(bytes(packet)))
    assert [list(au.nals) for au in out] == x264_aus
    assert [au.is_keyframe for au in out] == [_is_idr(au) for au in x264_aus]
    assert [au.timestamp for au in out] == [1000 + 6000 * i for i in range(len(x264_aus))]
    stats = depacketizer.stats
    assert (stats.lost_packets, stats.frames_incomplete, stats.frames_emitted) == (
        0,
        0,
        len(x264_aus),
    )


def test_missing_marker_closed_by_next_timestamp(x264_aus: list[list[bytes]]) -> None:
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for packet in _packets(x264_aus[:3]):
        out += depacketizer.push(packet.sequence_number, packet.timestamp, False, packet.payload)
    assert [list(au.nals) for au in out] == x264_aus[:2]  # the last one is never closed


def test_duplicates_are_ignored(x264_aus: list[list[bytes]]) -> None:
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for packet in _packets(x264_aus[:5]):
        out += depacketizer.push_packet(packet)
        out += depacketizer.push_packet(packet)
    assert [list(au.nals) for au in out] == x264_aus[:5]
    assert depacketizer.stats.late_packets == depacketizer.stats.packets // 2


def test_nothing_before_first_keyframe(x264_aus: list[list[bytes]]) -> None:
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for packet in _packets(x264_aus[1:12]):
        out += depacketizer.push_packet(packet)
    assert out and out[0].is_keyframe
    assert list(out[0].nals) == x264_aus[10]
    # The first packet may follow lost ones: AU 1 counts as incomplete, 2..9 wait.
    assert depacketizer.stats.frames_incomplete == 1
    assert depacketizer.stats.frames_waiting_keyframe == 8


def _expected(aus: list[list[bytes]], complete: list[bool]) -> list[int]:
    """The model: indices of the complete AUs not cut off from their IDR by a loss."""
    out: list[int] = []
    need_key = True
    for i, (au, ok) in enumerate(zip(aus, complete, strict=True)):
        if not ok:
            need_key = True
        elif _is_idr(au) or not need_key:
            out.append(i)
            need_key = False
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_losses(data: st.DataObject) -> None:
    x264_aus = real_access_units()
    packets = _packets(x264_aus)
    rate = data.draw(st.sampled_from([0.005, 0.02, 0.1, 0.3]))
    rng = data.draw(st.randoms(use_true_random=False))
    lost = [rng.random() < rate for _ in packets]
    complete: list[bool] = []
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    au_ok = True
    for packet, drop in zip(packets, lost, strict=True):
        au_ok = au_ok and not drop
        if packet.marker:
            complete.append(au_ok)
            au_ok = True
        if not drop:
            out += depacketizer.push_packet(packet)
    got = [(au.timestamp - 1000) // 6000 for au in out]
    assert got == _expected(x264_aus, complete), [i for i, d in enumerate(lost) if d]
    originals = {1000 + 6000 * i: au for i, au in enumerate(x264_aus)}
    assert all(list(au.nals) == originals[au.timestamp] for au in out)
    assert depacketizer.stats.lost_packets <= sum(lost)


def test_loss_waits_for_next_idr(x264_aus: list[list[bytes]]) -> None:
    packets = _packets(x264_aus[:25])
    # Drop the last packet of AU 3: AUs 3..9 are lost, AU 10 (IDR) resumes.
    markers = [i for i, p in enumerate(packets) if p.marker]
    victim = markers[3]
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for i, packet in enumerate(packets):
        if i != victim:
            out += depacketizer.push_packet(packet)
    stamps = [(au.timestamp - 1000) // 6000 for au in out]
    assert stamps == [0, 1, 2, *range(10, 25)]
    stats = depacketizer.stats
    # AU 3 lost its end; AU 4 follows the gap without an SPS at its head (it could
    # have lost its own head too), so both are incomplete; 5..9 wait for the IDR.
    assert (stats.lost_packets, stats.frames_incomplete, stats.frames_waiting_keyframe) == (1, 2, 5)


def test_malformed_packet_breaks_frame(x264_aus: list[list[bytes]]) -> None:
    depacketizer = H264Depacketizer()
    packets = _packets(x264_aus[:2])
    out: list[AccessUnit] = []
    for packet in packets[:-1]:
        out += depacketizer.push_packet(packet)
    out += depacketizer.push(packets[-1].sequence_number, packets[-1].timestamp, True, b"\x7a")
    assert len(out) == 1
    assert depacketizer.stats.malformed_packets == 1
    assert depacketizer.waiting_for_keyframe


def test_oversized_frame_dropped(x264_aus: list[list[bytes]]) -> None:
    depacketizer = H264Depacketizer(max_frame_bytes=2000)
    out: list[AccessUnit] = []
    for packet in _packets(x264_aus[:1]):
        out += depacketizer.push_packet(packet)
    assert out == []
    assert depacketizer.stats.frames_oversized == 1


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(st.binary(min_size=1, max_size=300).map(lambda b: bytes((0x41,)) + b), max_size=6),
        min_size=1,
        max_size=6,
    ),
    st.integers(20, 400),
)
def test_packetize_round_trip_any_mtu(aus: list[list[bytes]], mtu: int) -> None:
    # Every AU opens with an IDR so each is emitted; bodies start with a set bit
    # (first_mb_in_slice 0) so the depacketizer sees a start of frame.
    aus = [[SPS, PPS, b"\x65\x80" + b"\x00" * 3, *au] for au in aus]
    packets = _packets(aus, mtu=mtu, seq0=0)
    assert all(len(p.payload) <= mtu for p in packets)
    depacketizer = H264Depacketizer()
    out: list[AccessUnit] = []
    for packet in packets:
        out += depacketizer.push_packet(packet)
    assert [list(au.nals) for au in out] == aus
