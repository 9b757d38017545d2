"""What the loss benchmark measures: freezes, frames, packets, answer rewriting, wire classes."""

from __future__ import annotations

import random

import pytest

from interlive.bench.loss_measure import (
    CountingImpairment,
    FrameLoss,
    Freeze,
    PacketResidual,
    SeqLog,
    classify,
    detect_freezes,
    extend_seq,
    frame_loss,
    freeze_threshold,
    freezes_in,
    frozen_time,
    packet_residual,
    payload_classes,
    redirect_answer,
    snapshot_delta,
    stats_delta,
)
from interlive.lab.impair import Impairment, ImpairmentConfig
from interlive.sdp import SessionDescription

ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "a=group:BUNDLE 0 1",
        "m=audio 40000 UDP/TLS/RTP/SAVPF 111 63",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:passive",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
        "a=candidate:2 1 tcp 1518280447 127.0.0.1 40001 typ host tcptype passive",
        "a=end-of-candidates",
        "m=video 40000 UDP/TLS/RTP/SAVPF 96 97 98 99",
        "c=IN IP4 127.0.0.1",
        "a=mid:1",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 red/90000",
        "a=rtpmap:99 ulpfec/90000",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:passive",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
        "a=end-of-candidates",
        "",
    ]
)


# --- freezes -------------------------------------------------------------------------------


def test_freeze_threshold_is_three_intervals_or_150_ms_more() -> None:
    assert freeze_threshold(0.1) == pytest.approx(0.3)
    assert freeze_threshold(1 / 30) == pytest.approx(0.18333333)
    assert freeze_threshold(0.02) == pytest.approx(0.17)


def test_a_gap_past_the_threshold_of_the_mean_including_itself_is_a_freeze() -> None:
    # nine 100 ms intervals, then 400 ms: mean 1.3 / 10 = 130 ms, threshold
    # max(390, 280) = 390 ms, and 400 >= 390
    times = [i / 10 for i in range(10)] + [1.3]
    assert detect_freezes(times) == [Freeze(0.9, 1.3)]
    assert detect_freezes(times)[0].duration == pytest.approx(0.4)
    # 350 ms: mean 125 ms, threshold 375 ms: not a freeze
    assert detect_freezes([i / 10 for i in range(10)] + [1.25]) == []


def test_no_freeze_before_five_intervals() -> None:
    assert detect_freezes([0.0, 0.1, 0.2, 0.3, 2.0]) == []
    assert detect_freezes([0.0, 0.1, 0.2, 0.3, 0.4, 2.0]) == [Freeze(0.4, 2.0)]


def test_the_mean_covers_the_last_30_intervals_only() -> None:
    slow = [float(i) for i in range(31)]  # 30 intervals of 1 s
    fast = [30.0 + 0.05 * i for i in range(1, 30)]  # 29 intervals of 50 ms
    gap = fast[-1] + 0.25
    # last 30 intervals: 29 x 50 ms + 250 ms = 1.7 s, mean 56.7 ms, threshold 206.7 ms
    freezes = detect_freezes([*slow, *fast, gap])
    assert freezes == [Freeze(fast[-1], gap)]


def test_freezes_in_a_window_are_those_ending_in_it() -> None:
    freezes = [Freeze(0.0, 1.0), Freeze(2.0, 3.0), Freeze(4.0, 5.5)]
    assert freezes_in(freezes, 1.0, 5.0) == [Freeze(2.0, 3.0)]


def test_frozen_time_counts_the_overlap_and_a_stall_still_going_on() -> None:
    # 100 ms frames from 0 to 2 s, then nothing: the stall from 2 s to the
    # window's end at 3 s is a freeze (virtual frame at 3 s: mean of the last
    # 21 intervals (20 x 0.1 + 1.0) / 21 = 0.143 s, threshold 0.429 s)
    times = [i / 10 for i in range(21)]
    assert frozen_time(times, 1.0, 3.0) == (1, pytest.approx(1.0))
    # a freeze from 1 s to 2 s seen through a window opening at 1.5 s: half of it
    times = [i / 10 for i in range(11)] + [2.0 + i / 10 for i in range(11)]
    assert frozen_time(times, 1.5, 3.0) == (1, pytest.approx(0.5))
    assert frozen_time(times, 2.5, 3.0) == (0, 0.0)


# --- frames and packets --------------------------------------------------------------------


def test_frame_loss_from_read_back_indices() -> None:
    loss = frame_loss([5, 6, None, 8, 8, 10])
    assert loss == FrameLoss(expected=6, shown=4, unreadable=1)
    assert loss.missing == 2
    assert loss.missing_fraction == pytest.approx(2 / 6)
    assert frame_loss([None, None]) == FrameLoss(0, 0, 2)
    assert frame_loss([None]).missing_fraction is None


def test_packet_residual_counts_repairs_inside_the_range_once() -> None:
    # 10..16 expected; 12 and 14 resent; 99 out of range, 10 a duplicate: 15 missing
    residual = packet_residual([10, 11, 13, 16], [12, 14, 99, 10])
    assert residual == PacketResidual(expected=7, received=4, repaired=2)
    assert residual.missing == 1
    assert residual.missing_fraction == pytest.approx(1 / 7)
    assert residual.lost_fraction == pytest.approx(3 / 7)
    assert packet_residual([]) == PacketResidual(0, 0, 0)


def test_sequence_numbers_extend_across_the_wrap() -> None:
    assert extend_seq(1, 65535) == 65537
    assert extend_seq(65535, 65537) == 65535
    assert extend_seq(5, 3) == 5
    log = SeqLog()
    for t, seq in enumerate((65534, 65535, 1)):  # 0 (65536) lost
        log.add(seq, float(t))
    log.add_repair(0, 3.0)
    assert log.window(-1.0, 2.0) == PacketResidual(expected=4, received=3, repaired=0)
    assert log.window(-1.0, 2.0, repair_grace=1.0) == PacketResidual(4, 3, 1)


# --- the answer and the wire ---------------------------------------------------------------


def test_redirect_answer_points_candidates_ports_and_addresses_at_the_proxy() -> None:
    rewritten, original = redirect_answer(ANSWER, ("127.0.0.1", 51234))
    assert original == ("127.0.0.1", 40000)
    session = SessionDescription.parse(rewritten)
    for media in session.media:
        assert media.port == 51234
        assert media.connection == "IN IP4 127.0.0.1"
        assert media.candidates == ["1 1 udp 2130706431 127.0.0.1 51234 typ host"]
    assert "40000" not in rewritten and "tcptype" not in rewritten


def test_redirect_answer_without_a_udp_candidate_is_an_error() -> None:
    lines = [ln for ln in ANSWER.split("\r\n") if " udp " not in ln]
    with pytest.raises(ValueError, match="no UDP candidate"):
        redirect_answer("\r\n".join(lines), ("127.0.0.1", 1))


def test_payload_classes_and_datagram_classification() -> None:
    classes = payload_classes(ANSWER)
    assert classes == {111: "audio", 63: "audio_red", 96: "video", 97: "rtx", 98: "video",
                       99: "video"}  # fmt: skip

    def rtp(second: int) -> bytes:
        return bytes([0x80, second]) + bytes(10)

    assert classify(rtp(96), classes) == "video"
    assert classify(rtp(0x80 | 96), classes) == "video"  # marker bit set
    assert classify(rtp(97), classes) == "rtx"
    assert classify(rtp(63), classes) == "audio_red"
    assert classify(rtp(111), classes) == "audio"
    assert classify(rtp(200), classes) == "rtcp"  # sender report
    assert classify(rtp(205), classes) == "rtcp"  # transport feedback (NACK)
    assert classify(rtp(120), classes) == "other"  # not negotiated
    assert classify(bytes([0x00, 0x01]) + bytes(18), classes) == "other"  # STUN
    assert classify(bytes([22, 254]) + bytes(20), classes) == "other"  # DTLS
    assert classify(bytes([0x80, 96]), classes) == "other"  # too short


def test_counting_impairment_counts_per_class() -> None:
    classes = {96: "video", 111: "audio"}
    dropping = CountingImpairment(Impairment(ImpairmentConfig(loss=1.0), random.Random(1)), classes)
    passing = CountingImpairment(Impairment(ImpairmentConfig(), random.Random(1)), classes)
    video = bytes([0x80, 96]) + bytes(98)
    audio = bytes([0x80, 111]) + bytes(48)
    for impairment in (dropping, passing):
        before = impairment.snapshot()
        impairment.send(video, 0.0)
        impairment.send(video, 0.0)
        impairment.send(audio, 0.0)
        delta = snapshot_delta(before, impairment.snapshot())
        assert (delta["video"].sent, delta["video"].sent_bytes) == (2, 200)
        assert (delta["audio"].sent, delta["audio"].sent_bytes) == (1, 50)
    assert dropping.counts["video"].lost == 2 and dropping.counts["audio"].lost == 1
    assert dropping.counts["video"].loss_fraction == 1.0
    assert passing.counts["video"].lost == 0
    assert passing.receive_ready(0.0) == [video, video, audio]
    assert dropping.receive_ready(0.0) == [] and dropping.get_timer() is None


def test_stats_delta_subtracts_counter_by_counter() -> None:
    before = {"framesDecoded": 100.0, "packetsLost": 4.0}
    after = {"framesDecoded": 400.0, "packetsLost": 10.0, "freezeCount": 2.0}
    assert stats_delta(before, after) == {
        "framesDecoded": 300.0,
        "packetsLost": 6.0,
        "freezeCount": 2.0,
    }
