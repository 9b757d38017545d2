"""UpTrack -> DownTrack forwarding, in memory: what a subscriber gets on the wire."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from interlive.protection.red import RedBlock, decode_red, encode_red, strip_red
from interlive.rtp import extensions as ext
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import Bye, Pli, ReportBlock, RtcpPacket, SenderReport
from interlive.sfu.metrics import WorkerCounters
from interlive.sfu.room import Room, Subscription
from interlive.sfu.tracks import Codec, DownTrack, UpTrack

VP8_PUB = Codec(96, "video/VP8", 90000)
VP8_SUB = Codec(100, "video/VP8", 90000)
H264_SUB = Codec(
    102, "video/H264", 90000, fmtp={"packetization-mode": "1", "profile-level-id": "42e01f"}
)


class Sink:
    def __init__(self) -> None:
        self.rtp: list[RtpPacket] = []
        self.rtcp: list[RtcpPacket] = []

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(RtpPacket.parse(packet))

    def send_rtcp(self, packets: Sequence[RtcpPacket]) -> None:
        self.rtcp.extend(packets)


def vp8(
    seq: int, ts: int, *, key: bool, start: bool = True, exts: dict[int, bytes] | None = None
) -> RtpPacket:
    descriptor = bytes([0x10 if start else 0x00])  # S bit, partition 0
    header = bytes([0x00 if key else 0x01, 0, 0])  # P bit 0 = keyframe
    raw = bytes(
        RtpPacket(
            payload_type=96,
            sequence_number=seq,
            timestamp=ts,
            ssrc=1111,
            extension_profile=0xBEDE if exts else None,
            extensions=exts,
            payload=descriptor + header + b"frame",
        )
    )
    return RtpPacket.parse(raw)


def make(
    counters: WorkerCounters, pub_sink: Sink, sub_sink: Sink, sub_codecs: list[Codec] | None = None
) -> tuple[UpTrack, DownTrack]:
    up = UpTrack(
        identity="alice",
        kind="video",
        ssrc=1111,
        codecs=[VP8_PUB],
        extensions={ext.ABS_SEND_TIME: 3, ext.MID: 4, ext.TOFFSET: 5},
        upstream=pub_sink,
        rtcp_ssrc=9,
        counters=counters,
    )
    down = DownTrack(
        identity="bob",
        kind="video",
        mid="1",
        ssrc=2222,
        codecs=sub_codecs or [VP8_SUB],
        extensions={ext.ABS_SEND_TIME: 7, ext.MID: 1},
        transport=sub_sink,
        counters=counters,
    )
    return up, down


def test_subscriber_gets_its_own_ssrc_pt_and_extension_ids_from_a_keyframe_on() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, down = make(counters, pub, sub)
    down.attach(up, 0.0)
    assert [type(p) for p in pub.rtcp] == [Pli]  # joining asks for a keyframe
    exts = {3: b"\x01\x02\x03", 4: b"0", 5: b"\x00\x00\x01"}
    up.on_rtp(vp8(500, 9000, key=False, exts=exts), 0.01)
    assert sub.rtp == [] and counters.drops["waiting_keyframe"] == 1
    up.on_rtp(vp8(501, 12000, key=True, exts=exts), 0.02)
    up.on_rtp(vp8(502, 12000, key=False, start=False, exts=exts), 0.03)
    assert [(p.ssrc, p.payload_type) for p in sub.rtp] == [(2222, 100), (2222, 100)]
    first, second = sub.rtp
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert first.timestamp == 12000 and second.timestamp == 12000
    # abs-send-time moves to the subscriber's id 7; the publisher's MID and the
    # unnegotiated toffset never leak to the subscriber
    assert first.extensions == {7: b"\x01\x02\x03"}
    assert first.payload == vp8(501, 0, key=True).payload
    assert len(pub.rtcp) == 1  # the waiting drop's request was coalesced


def test_codec_mismatch_is_not_attachable() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, down = make(counters, pub, sub, sub_codecs=[H264_SUB])
    assert not down.accepts(up)


def test_subscriber_pli_reaches_publisher_through_the_throttle() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, down = make(counters, pub, sub)
    down.attach(up, 0.0)
    for i in range(10):
        down.on_keyframe_request(0.1 + i * 0.01)
    assert sum(isinstance(p, Pli) for p in pub.rtcp) == 1
    up.poll(1.0)
    assert sum(isinstance(p, Pli) for p in pub.rtcp) == 2


def test_source_switch_keeps_the_subscriber_stream_contiguous() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    room = Room("r")
    up1, down = make(counters, pub, sub)
    up2 = UpTrack(
        identity="carol",
        kind="video",
        ssrc=3333,
        codecs=[VP8_PUB],
        extensions={},
        upstream=pub,
        rtcp_ssrc=9,
        counters=counters,
    )
    room.publish(up1, 0.0)
    subscription = Subscription("bob", [down])
    room.subscribe(subscription, 0.0)
    assert down.source is up1
    up1.on_rtp(vp8(10, 1000, key=True), 0.1)
    up1.on_rtp(vp8(11, 4000, key=False), 0.133)
    room.publish(up2, 0.2)
    assert down.source is up1  # the only slot is taken
    room.unpublish(up1, 0.3)
    assert down.source is up2  # the slot switches without renegotiation
    assert not any(isinstance(p, Bye) for p in sub.rtcp)
    up2.on_rtp(vp8(60000, 777, key=False), 0.4)  # not a keyframe: waits
    up2.on_rtp(vp8(60001, 3000, key=True), 0.5)
    seqs = [p.sequence_number for p in sub.rtp]
    assert seqs == [seqs[0], (seqs[0] + 1) & 0xFFFF, (seqs[0] + 2) & 0xFFFF]
    # timestamp advanced by the 0.367 s between the last packet of up1 and the first of up2
    assert sub.rtp[2].timestamp == (4000 + round(0.367 * 90000)) & 0xFFFFFFFF


def test_subscriber_is_told_when_its_source_leaves_with_no_replacement() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    room = Room("r")
    up, down = make(counters, pub, sub)
    room.publish(up, 0.0)
    room.subscribe(Subscription("bob", [down]), 0.0)
    room.unpublish(up, 1.0)
    assert down.source is None and up.downtracks == []
    byes = [p for p in sub.rtcp if isinstance(p, Bye)]
    assert len(byes) == 1 and byes[0].sources == [2222]


def test_own_tracks_are_never_sent_back() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    room = Room("r")
    up, down = make(counters, pub, sub)
    room.subscribe(Subscription("alice", [down]), 0.0)
    room.publish(up, 0.0)
    assert down.source is None


def test_sender_report_maps_to_the_publishers_ntp_clock() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, down = make(counters, pub, sub)
    down.attach(up, 0.0)
    up.on_rtp(vp8(1, 90000, key=True), 1.0)
    ntp = 1000 << 32
    up.on_sender_report(
        SenderReport(
            ssrc=1111,
            ntp_timestamp=ntp,
            rtp_timestamp=90000,
            packet_count=1,
            octet_count=10,
            reports=[],
        ),
        1.0,
    )
    sr = down.sender_report(1.5, ntp_now=0)
    assert sr is not None and sr.ssrc == 2222 and sr.packet_count == 1
    assert sr.ntp_timestamp == ntp + (1 << 31)  # 0.5 s later
    assert sr.rtp_timestamp == 90000 + 45000
    # the subscriber's RR echoes our SR: RTT = now - sent - DLSR
    lsr = (sr.ntp_timestamp >> 16) & 0xFFFFFFFF
    down.on_report_block(
        ReportBlock(
            ssrc=2222,
            fraction_lost=64,
            packets_lost=3,
            highest_sequence=5,
            jitter=10,
            lsr=lsr,
            dlsr=65536 // 10,
        ),
        1.75,
    )
    assert down.rtt is not None and abs(down.rtt - 0.15) < 1e-3
    assert down.fraction_lost == 0.25


OPUS_PUB = Codec(111, "audio/opus", 48000, 2)
RED_PUB = Codec(63, "audio/red", 48000, 2)


def red_audio(seq: int, primary: bytes, redundant: bytes) -> RtpPacket:
    body = encode_red(111, primary, [RedBlock(111, 960, redundant)])
    raw = bytes(RtpPacket(payload_type=63, sequence_number=seq, timestamp=seq * 960, ssrc=7,
                          payload=body))  # fmt: skip
    return RtpPacket.parse(raw)


def audio_pair(sub_codecs: list[Codec]) -> tuple[UpTrack, Sink, WorkerCounters]:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up = UpTrack(identity="alice", kind="audio", ssrc=7, codecs=[OPUS_PUB, RED_PUB],
                 extensions={}, upstream=pub, rtcp_ssrc=9, counters=counters)  # fmt: skip
    down = DownTrack(identity="bob", kind="audio", mid="0", ssrc=8, codecs=sub_codecs,
                     extensions={}, transport=sub, counters=counters)  # fmt: skip
    down.attach(up, 0.0)
    return up, sub, counters


@pytest.mark.parametrize("negotiated", [True, False])
def test_audio_nack_is_answered_with_a_plain_resend_only_when_negotiated(
    negotiated: bool,
) -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up = UpTrack(identity="alice", kind="audio", ssrc=7, codecs=[OPUS_PUB], extensions={},
                 upstream=pub, rtcp_ssrc=9, counters=counters)  # fmt: skip
    down = DownTrack(identity="bob", kind="audio", mid="0", ssrc=8, codecs=[OPUS_PUB],
                     extensions={}, transport=sub, counters=counters, nack=negotiated)  # fmt: skip
    down.attach(up, 0.0)
    for seq in (5, 6, 7):
        plain = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=7,
                          payload=bytes([seq]) * 40)  # fmt: skip
        up.on_rtp(RtpPacket.parse(bytes(plain)), seq * 0.02)
    lost = sub.rtp[1]
    down.on_nack([lost.sequence_number], 0.2)
    if negotiated:  # browsers negotiate no RTX for Opus: the packet again, as it was sent
        assert len(sub.rtp) == 4 and sub.rtp[3].data == lost.data
        assert down.describe()["retransmissions_sent"] == 1
    else:  # asked for without having negotiated it: not answered
        assert len(sub.rtp) == 3 and down.describe()["retransmissions_sent"] == 0
    assert down.describe()["nacks_received"] == 1


def test_red_passes_through_to_a_viewer_that_negotiated_it() -> None:
    up, sub, _ = audio_pair([Codec(111, "audio/opus", 48000, 2), Codec(63, "audio/red", 48000, 2)])
    packet = red_audio(5, b"now", b"before")
    up.on_rtp(packet, 0.0)
    assert sub.rtp[0].payload_type == 63 and sub.rtp[0].payload == packet.payload


def test_red_is_stripped_to_the_primary_for_a_viewer_without_it() -> None:
    up, sub, _ = audio_pair([Codec(111, "audio/opus", 48000, 2)])
    up.on_rtp(red_audio(5, b"now", b"before"), 0.0)
    assert sub.rtp[0].payload_type == 111 and sub.rtp[0].payload == b"now"
    # plain Opus from the same publisher still goes out as it is
    plain = RtpPacket.parse(bytes(RtpPacket(payload_type=111, sequence_number=6,
                                            timestamp=5760, ssrc=7, payload=b"plain")))  # fmt: skip
    up.on_rtp(plain, 0.02)
    assert sub.rtp[1].payload_type == 111 and sub.rtp[1].payload == b"plain"


def test_red_block_payload_types_follow_the_viewers_numbering() -> None:
    up, sub, _ = audio_pair([Codec(109, "audio/opus", 48000, 2), Codec(120, "audio/red", 48000, 2)])
    up.on_rtp(red_audio(5, b"now", b"before"), 0.0)
    out = sub.rtp[0]
    assert out.payload_type == 120
    blocks = decode_red(out.payload)
    assert [(b.payload_type, b.payload) for b in blocks] == [(109, b"before"), (109, b"now")]
    assert blocks[0].timestamp_offset == 960


def test_malformed_red_is_dropped_and_counted() -> None:
    up, sub, counters = audio_pair([Codec(111, "audio/opus", 48000, 2)])
    broken = RtpPacket.parse(bytes(RtpPacket(payload_type=63, sequence_number=5, timestamp=0,
                                             ssrc=7, payload=b"\xef\x00")))  # fmt: skip
    up.on_rtp(broken, 0.0)
    assert sub.rtp == [] and counters.drops["bad_red"] == 1


def test_red_is_added_for_a_lossy_viewer_and_dropped_when_loss_ends() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up = UpTrack(identity="alice", kind="audio", ssrc=7, codecs=[OPUS_PUB], extensions={},
                 upstream=pub, rtcp_ssrc=9, counters=counters)  # fmt: skip
    down = DownTrack(identity="bob", kind="audio", mid="0", ssrc=8,
                     codecs=[Codec(111, "audio/opus", 48000, 2), Codec(63, "audio/red", 48000, 2)],
                     extensions={}, transport=sub, counters=counters)  # fmt: skip
    down.attach(up, 0.0)

    def opus(seq: int) -> RtpPacket:
        return RtpPacket.parse(bytes(RtpPacket(payload_type=111, sequence_number=seq,
                                               timestamp=seq * 960, ssrc=7,
                                               payload=bytes([seq]) * 4)))  # fmt: skip

    state = {"now": 1.0, "highest": 1000, "lost": 0}

    def report(fraction: float) -> None:
        # one report per second covering 50 packets, ``fraction`` of them lost
        state["now"] += 1.0
        state["highest"] += 50
        state["lost"] += round(50 * fraction)
        down.on_report_block(ReportBlock(ssrc=8, fraction_lost=int(fraction * 256),
                                         packets_lost=int(state["lost"]),
                                         highest_sequence=int(state["highest"]), jitter=0,
                                         lsr=0, dlsr=0), state["now"])  # fmt: skip

    up.on_rtp(opus(1), 0.0)
    assert sub.rtp[-1].payload_type == 111  # no loss reported: plain Opus
    report(0.0)  # opens the measurement window
    assert down.red_encoder is None
    report(0.04)  # smoothed to 2 %: one earlier frame rides along (0.04 % left)
    assert down.red_encoder is not None and down.red_encoder.distance == 1
    up.on_rtp(opus(2), 0.02)
    up.on_rtp(opus(3), 0.04)
    out = sub.rtp[-1]
    assert out.payload_type == 63
    blocks = decode_red(out.payload)
    assert [(b.payload_type, b.payload) for b in blocks] == [
        (111, bytes([2]) * 4),
        (111, bytes([3]) * 4),
    ]
    assert blocks[0].timestamp_offset == 960
    for _ in range(10):
        report(0.0)
    assert down.red_encoder is None
    up.on_rtp(opus(4), 0.06)
    assert sub.rtp[-1].payload_type == 111 and sub.rtp[-1].payload == bytes([4]) * 4
    assert counters.red_sent == 2


VIDEO_RED_SUB = Codec(116, "video/red", 90000, rtx_payload_type=117)
ULPFEC_SUB = Codec(118, "video/ulpfec", 90000)


def vp8_frame(
    first_seq: int, ts: int, packets: int, *, key: bool, send_time_id: int | None = None
) -> list[RtpPacket]:
    """One VP8 frame in ``packets`` packets, the last with the marker bit.

    With ``send_time_id``, each packet carries a different abs-send-time (and
    the first a toffset too, so the header layouts differ as browsers' do).
    """
    out = []
    for i in range(packets):
        descriptor = bytes([0x10 if i == 0 else 0x00])
        body = bytes([0x00 if key else 0x01, 0, 0]) if i == 0 else b""
        exts: dict[int, bytes] | None = None
        if send_time_id is not None:
            exts = {send_time_id: ext.abs_send_time_from_seconds(ts / 90000 + i * 0.001)}
            if i == 0:
                exts[5] = b"\x00\x01\x02"  # toffset in make()'s publisher map
        raw = bytes(
            RtpPacket(
                payload_type=96,
                marker=i == packets - 1,
                sequence_number=(first_seq + i) & 0xFFFF,
                timestamp=ts,
                ssrc=1111,
                extension_profile=0xBEDE if exts else None,
                extensions=exts,
                payload=descriptor + body + bytes([first_seq + i]) * (40 + 7 * i),
            )
        )
        out.append(RtpPacket.parse(raw))
    return out


def lossy_report(down: DownTrack, loss: float, now: float) -> None:
    """The viewer's report at ``now`` (one per second): 100 packets a second, ``loss`` lost."""
    expected = round(now * 100)
    down.on_report_block(
        ReportBlock(ssrc=down.ssrc, fraction_lost=int(loss * 256),
                    packets_lost=round(expected * loss), highest_sequence=expected,
                    jitter=0, lsr=0, dlsr=0),
        now,
    )  # fmt: skip


def test_fec_for_a_lossy_far_viewer_rebuilds_a_lost_packet_byte_for_byte() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, _ = make(counters, pub, sub)
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222,
                     codecs=[Codec(100, "video/VP8", 90000, rtx_payload_type=101),
                             VIDEO_RED_SUB, ULPFEC_SUB],
                     extensions={ext.ABS_SEND_TIME: 7, ext.TOFFSET: 9},
                     transport=sub, counters=counters, rtx_ssrc=3333,
                     max_playout_delay=0.0)  # fmt: skip
    down.attach(up, 0.0)
    frame1 = vp8_frame(10, 3000, 4, key=True)
    for p in frame1:
        up.on_rtp(p, 0.0)
    assert all(p.payload_type == 100 for p in sub.rtp) and down.fec_encoder is None
    # 20 % loss at 200 ms RTT: no NACK can land in time, the policy turns FEC on
    down.rtt = 0.2
    for i in range(5):
        down.octets_sent += 75_000  # as a 600 kbit/s stream would: FEC is off below 170
        lossy_report(down, 0.2, 1.0 + i)
    assert down.fec_encoder is not None and down.protection.fec_rate > 0
    sub.rtp.clear()
    frame2 = vp8_frame(14, 6000, 5, key=False, send_time_id=3)
    for p in frame2:
        up.on_rtp(p, 1.0)
    # every media packet in RED; the FEC packets right after the frame, numbers contiguous
    assert all(p.payload_type == 116 for p in sub.rtp)
    blocks = [decode_red(p.payload)[-1].payload_type for p in sub.rtp]
    assert blocks[:5] == [100] * 5 and set(blocks[5:]) == {118} and len(blocks) > 5
    seqs = [p.sequence_number for p in sub.rtp]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert counters.fec_sent == down.fec_sent == len(blocks) - 5
    # the viewer loses the frame's second packet and rebuilds it from the FEC
    from interlive.protection.red import red_primary, strip_red
    from interlive.protection.ulpfec import FecDecoder

    # (as Chrome does: send-time extensions zeroed before recovery, they are written late)
    decoder = FecDecoder(down.ssrc)
    mutable = frozenset({7, 9})
    for lost in sub.rtp[:5]:
        decoder = FecDecoder(down.ssrc)
        rebuilt: list[bytes] = []
        for p in sub.rtp:
            if p is lost:
                continue
            block_pt, block = red_primary(p.payload)
            if block_pt == 118:
                rebuilt += decoder.add_fec(block, p.sequence_number, p.timestamp)
            else:
                rebuilt += decoder.add_media(ext.zero_extensions(strip_red(p.data), mutable))
        assert rebuilt == [ext.zero_extensions(strip_red(lost.data), mutable)]
    lost = sub.rtp[1]
    # the next frame's numbering continues after the FEC packets
    sent_before = len(sub.rtp)
    up.on_rtp(vp8_frame(19, 9000, 1, key=False)[0], 1.1)
    assert sub.rtp[sent_before].sequence_number == seqs[-1] + 1
    # a retransmission request for the RED packet is answered in RTX for RED (apt=116)
    sent_before = len(sub.rtp)
    down.on_nack([lost.sequence_number], 1.2)
    rtx = sub.rtp[sent_before]
    assert (rtx.ssrc, rtx.payload_type) == (3333, 117)
    assert rtx.payload[:2] == lost.sequence_number.to_bytes(2, "big")
    assert rtx.payload[2:] == lost.payload


def test_a_lossy_viewer_is_asked_for_a_longer_playout_delay_on_every_packet() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, _ = make(counters, pub, sub)
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222, codecs=[VP8_SUB],
                     extensions={ext.ABS_SEND_TIME: 7, ext.PLAYOUT_DELAY: 6},
                     transport=sub, counters=counters)  # fmt: skip
    down.attach(up, 0.0)
    send_time = {3: b"\x01\x02\x03"}
    up.on_rtp(vp8(10, 3000, key=True, exts=send_time), 0.0)
    up.on_rtp(vp8(11, 6000, key=False), 0.03)
    # no loss: the viewer's buffer is its own, nothing added
    assert [p.extensions for p in sub.rtp] == [{7: b"\x01\x02\x03"}, {}]
    down.rtt = 0.1
    for i in range(5):
        down.octets_sent += 75_000
        lossy_report(down, 0.2, 1.0 + i)
    assert down.protection.playout_delay == 0.5 and down.fec_encoder is None
    sub.rtp.clear()
    up.on_rtp(vp8(12, 9000, key=False, exts=send_time), 5.0)
    up.on_rtp(vp8(13, 12000, key=False), 5.03)
    # min 500 ms = 0x032, max 10 s = 0x3E8, with or without other extensions
    limits = b"\x03\x23\xe8"
    assert [p.extensions for p in sub.rtp] == [{7: b"\x01\x02\x03", 6: limits}, {6: limits}]
    # a retransmission carries it too: it is the stored packet
    down.on_nack([sub.rtp[1].sequence_number], 5.1)
    assert sub.rtp[-1].extensions == {6: limits}
    for i in range(30):
        lossy_report(down, 0.0, 6.0 + i)
    assert down.protection.playout_delay == 0.0
    sub.rtp.clear()
    up.on_rtp(vp8(14, 15000, key=False), 40.0)
    # loss gone: the floor goes back to 0, and the viewer is told so on every packet
    assert sub.rtp[0].extensions == {6: b"\x00\x03\xe8"}


def test_a_viewer_without_the_extension_is_not_counted_on_to_wait() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up, _ = make(counters, pub, sub)
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222,
                     codecs=[VP8_SUB, VIDEO_RED_SUB, ULPFEC_SUB],
                     extensions={ext.ABS_SEND_TIME: 7}, transport=sub,
                     counters=counters)  # fmt: skip
    down.attach(up, 0.0)
    down.rtt = 0.1
    for i in range(5):
        down.octets_sent += 75_000
        lossy_report(down, 0.2, 1.0 + i)
    # the link that gets NACK and 500 ms more delay above gets FEC here instead
    assert down.protection.playout_delay == 0.0 and down.fec_encoder is not None
    up.on_rtp(vp8(10, 3000, key=True), 5.0)
    assert RtpPacket.parse(strip_red(sub.rtp[0].data)).extensions == {}


def test_publisher_fec_repairs_its_loss_and_its_numbers_leave_no_gap() -> None:
    from interlive.protection.red import wrap_red
    from interlive.protection.ulpfec import FecEncoder

    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up = UpTrack(
        identity="alice",
        kind="video",
        ssrc=1111,
        codecs=[VP8_PUB, Codec(120, "video/red", 90000), Codec(121, "video/ulpfec", 90000)],
        extensions={ext.ABS_SEND_TIME: 3, ext.TOFFSET: 5},
        upstream=pub,
        rtcp_ssrc=9,
        counters=counters,
    )
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222, codecs=[VP8_SUB],
                     extensions={ext.ABS_SEND_TIME: 3}, transport=sub,
                     counters=counters)  # fmt: skip
    down.attach(up, 0.0)
    # what a browser sends: media in RED, then the frame's FEC in RED, one sequence space
    encoder = FecEncoder()
    wire: list[bytes] = []
    seq = 100
    for ts, key in ((3000, True), (6000, False)):
        frame = vp8_frame(seq, ts, 4, key=key, send_time_id=3)
        fecs: list[bytes] = []
        for p in frame:
            wire.append(wrap_red(p.data, 120))
            # a browser computes FEC before its pacer writes the send times
            fecs += encoder.push(ext.zero_extensions(p.data, frozenset({3, 5})), 0.5)
        seq += len(frame)
        for payload in fecs:
            fec = RtpPacket(payload_type=120, sequence_number=seq, timestamp=ts, ssrc=1111,
                            payload=encode_red(121, payload, []))  # fmt: skip
            wire.append(bytes(fec))
            seq += 1
    lost_index = wire.index(next(w for w in wire if RtpPacket.parse(w).sequence_number == 102))
    for i, data in enumerate(wire):
        if i != lost_index:
            up.on_rtp(RtpPacket.parse(data), 0.01 * i)
    assert counters.fec_received == 4 and counters.fec_recovered == 1
    # the viewer gets the 8 media packets, plain VP8, numbered without the FEC's gaps
    assert [p.payload_type for p in sub.rtp] == [100] * 8
    by_seq = sorted(sub.rtp, key=lambda p: p.sequence_number)
    first = by_seq[0].sequence_number
    assert [p.sequence_number for p in by_seq] == list(range(first, first + 8))
    assert [p.payload for p in by_seq] == [
        p.payload for p in vp8_frame(100, 3000, 4, key=True) + vp8_frame(106, 6000, 4, key=False)
    ]
    # the rebuilt packet is whole: its send time reads zero (as the publisher protected
    # it), not the XOR of the other packets' send times
    assert by_seq[2].extensions == {3: bytes(3)}
    assert by_seq[3].extensions[3] != bytes(3)


def test_malformed_publisher_fec_is_counted_and_changes_nothing() -> None:
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    codecs = [VP8_PUB, Codec(120, "video/red", 90000), Codec(121, "video/ulpfec", 90000)]
    up = UpTrack(identity="alice", kind="video", ssrc=1111, codecs=codecs, extensions={},
                 upstream=pub, rtcp_ssrc=9, counters=counters)  # fmt: skip
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222, codecs=[VP8_SUB],
                     extensions={}, transport=sub, counters=counters)  # fmt: skip
    down.attach(up, 0.0)
    for p in vp8_frame(1, 3000, 2, key=True):
        up.on_rtp(p, 0.0)
    bad_fec = bytes(RtpPacket(payload_type=120, sequence_number=3, timestamp=3000, ssrc=1111,
                              payload=encode_red(121, b"\x00\x01", [])))  # fmt: skip
    bad_red = bytes(RtpPacket(payload_type=120, sequence_number=4, timestamp=3000, ssrc=1111,
                              payload=b"\xf9"))  # fmt: skip
    up.on_rtp(RtpPacket.parse(bad_fec), 0.01)
    up.on_rtp(RtpPacket.parse(bad_red), 0.02)
    assert counters.drops["bad_fec"] == 1 and counters.drops["bad_red"] == 1
    up.on_rtp(vp8_frame(5, 6000, 1, key=False)[0], 0.03)
    # the FEC packet's number is closed; the unreadable RED packet's stays a gap
    assert [p.sequence_number - sub.rtp[0].sequence_number for p in sub.rtp] == [0, 1, 3]


def test_an_h264_viewer_gets_nack_but_never_fec_whatever_its_loss() -> None:
    # Its receiver cannot skip a lost FEC packet (no picture ID): FEC would add holes.
    h264 = {"packetization-mode": "1", "profile-level-id": "42e01f"}
    counters, pub, sub = WorkerCounters(), Sink(), Sink()
    up = UpTrack(identity="alice", kind="video", ssrc=1111,
                 codecs=[Codec(102, "video/H264", 90000, fmtp=h264)], extensions={},
                 upstream=pub, rtcp_ssrc=9, counters=counters)  # fmt: skip
    down = DownTrack(identity="bob", kind="video", mid="1", ssrc=2222,
                     codecs=[Codec(102, "video/H264", 90000, fmtp=h264, rtx_payload_type=103),
                             VIDEO_RED_SUB, ULPFEC_SUB],
                     extensions={}, transport=sub, counters=counters, rtx_ssrc=3333)  # fmt: skip
    down.attach(up, 0.0)

    def nal(seq: int, ts: int, key: bool) -> RtpPacket:
        # an IDR or non-IDR slice with first_mb_in_slice 0 (the bit after the NAL header set)
        payload = bytes([0x65 if key else 0x41, 0x88]) + bytes([seq & 0xFF]) * 50
        packet = RtpPacket(payload_type=102, marker=True, sequence_number=seq, timestamp=ts,
                           ssrc=1111, payload=payload)  # fmt: skip
        return RtpPacket.parse(bytes(packet))

    up.on_rtp(nal(10, 3000, True), 0.0)
    down.rtt = 0.2  # the link on which a VP8 viewer gets FEC (the test above)
    for i in range(5):
        down.octets_sent += 75_000
        lossy_report(down, 0.2, 1.0 + i)
    assert down.fec_encoder is None and down.protection.tool == "nack"
    assert "cannot skip lost FEC packets" in str(down.describe()["protection"])
    sub.rtp.clear()
    for i in range(3):
        up.on_rtp(nal(11 + i, 6000 + 3000 * i, False), 5.0 + i / 30)
    assert [(p.payload_type, p.sequence_number) for p in sub.rtp] == [(102, 1), (102, 2), (102, 3)]
    assert down.fec_sent == 0
