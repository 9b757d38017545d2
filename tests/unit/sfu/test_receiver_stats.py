from __future__ import annotations

from interlive.sfu.receiver_stats import ReceiverStats


def test_loss_fraction_and_cumulative() -> None:
    s = ReceiverStats(90000)
    for seq in [10, 11, 13, 14]:  # 12 lost
        s.on_packet(seq, seq * 3000, seq / 30, 100)
    r = s.report(1.0)
    assert r.highest_sequence == 14
    assert r.packets_lost == 1
    assert r.fraction_lost == (1 << 8) // 5
    # next interval: nothing lost
    for seq in [15, 16]:
        s.on_packet(seq, seq * 3000, seq / 30, 100)
    r2 = s.report(2.0)
    assert r2.fraction_lost == 0 and r2.packets_lost == 1


def test_duplicates_make_negative_loss_clamped() -> None:
    s = ReceiverStats(48000)
    for seq in [1, 1, 2, 2]:
        s.on_packet(seq, 960 * seq, seq * 0.02, 50)
    r = s.report(1.0)
    assert r.packets_lost == -2 and r.fraction_lost == 0


def test_jitter_of_perfectly_paced_stream_is_zero() -> None:
    s = ReceiverStats(90000)
    for i in range(100):
        s.on_packet(i, i * 3000, i / 30, 1000)
    assert s.report(4.0).jitter == 0


def test_jitter_grows_with_arrival_variation() -> None:
    s = ReceiverStats(90000)
    for i in range(100):
        s.on_packet(i, i * 3000, i / 30 + (0.01 if i % 2 else 0.0), 1000)
    # alternating 10 ms: D = 900 ticks each step; J converges towards 900
    assert 800 < s.report(4.0).jitter <= 900


def test_lsr_dlsr_from_sender_report() -> None:
    s = ReceiverStats(90000)
    s.on_packet(1, 0, 0.0, 10)
    ntp = (0x12345678 << 32) | 0x9ABCDEF0
    s.on_sender_report(ntp, 0, 10.0)
    r = s.report(10.5)
    assert r.lsr == 0x56789ABC
    assert r.dlsr == 32768
