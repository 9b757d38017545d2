from __future__ import annotations

from interlive.sfu.forwarder import MAX_SHIFTS, Drop, Forwarder, Translation

A, B = object(), object()


def test_video_waits_for_keyframe_then_keeps_spacing() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=1000)
    f.switch_source(A)
    assert f.translate(A, 50, 3000, 0.0) is Drop.WAITING_KEYFRAME
    t = f.translate(A, 51, 6000, 0.033, keyframe_start=True)
    assert t == Translation(1000, 6000, True)
    assert f.translate(A, 52, 6000, 0.034) == Translation(1001, 6000, False)
    # a gap in the source stays a gap for the subscriber (NACK can repair it)
    assert f.translate(A, 55, 9000, 0.07) == Translation(1004, 9000, False)
    # a late packet from before the gap still goes out with its own number
    assert f.translate(A, 53, 6000, 0.071) == Translation(1002, 6000, False)


def test_packets_from_other_sources_are_not_forwarded() -> None:
    f = Forwarder(48000, is_video=False)
    f.switch_source(A)
    assert f.translate(B, 1, 960, 0.0) is Drop.PAUSED


def test_source_switch_is_contiguous_in_sequence_and_time() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=0)
    f.switch_source(A)
    f.translate(A, 65534, 1_000_000, 10.0, keyframe_start=True)
    last = f.translate(A, 65535, 1_003_000, 10.5)
    assert isinstance(last, Translation) and last.sequence_number == 1
    f.switch_source(B)
    # B's numbering is unrelated; it starts on a keyframe 0.5 s later
    assert f.translate(B, 7, 42, 10.9) is Drop.WAITING_KEYFRAME
    first = f.translate(B, 8, 4_000_000_000, 11.0, keyframe_start=True)
    assert first == Translation(2, (1_003_000 + 45000) & 0xFFFFFFFF, True)
    nxt = f.translate(B, 9, 4_000_003_000, 11.033)
    assert nxt == Translation(3, (1_003_000 + 45000 + 3000) & 0xFFFFFFFF, False)
    # a packet of B older than the switch point would collide with A's numbers
    assert f.translate(B, 6, 3_999_990_000, 11.04) is Drop.TOO_OLD


def test_timestamp_wraps_modulo_2_32() -> None:
    f = Forwarder(90000, is_video=False)
    f.switch_source(A)
    f.translate(A, 1, 0xFFFFFF00, 0.0)
    t = f.translate(A, 2, 0x00000100, 0.02)
    assert isinstance(t, Translation) and t.timestamp == 0x100


def test_pause_and_resume_reanchors() -> None:
    f = Forwarder(48000, is_video=False, initial_sequence=10)
    f.switch_source(A)
    assert f.translate(A, 100, 48000, 1.0) == Translation(10, 48000, True)
    f.pause()
    assert f.translate(A, 101, 48960, 1.02) is Drop.PAUSED
    f.resume()
    # 2 s later: timestamps advance by the pause, sequence continues at 11
    t = f.translate(A, 200, 999, 3.0)
    assert t == Translation(11, 48000 + 96000, True)


def test_anchored_to_and_offset() -> None:
    f = Forwarder(90000, is_video=True)
    f.switch_source(A)
    assert not f.anchored_to(A)
    f.translate(A, 5, 1234, 0.0, keyframe_start=True)
    assert f.anchored_to(A) and f.timestamp_offset == 0


def _seq(t: Translation | Drop) -> int:
    assert isinstance(t, Translation), t
    return t.sequence_number


def test_inserted_packets_take_the_next_number_and_push_later_input_up() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=100)
    f.switch_source(A)
    assert f.insert() is None  # nothing forwarded yet: no place for a packet of our own
    assert _seq(f.translate(A, 10, 0, 0.0, keyframe_start=True)) == 100
    assert _seq(f.translate(A, 11, 0, 0.0)) == 101
    assert f.insert() == 102  # e.g. the FEC packet after the frame's last packet
    assert f.insert() == 103
    assert _seq(f.translate(A, 12, 3000, 0.033)) == 104
    assert f.last_sequence == 104


def test_a_late_packet_keeps_the_number_it_had_before_an_insertion() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=0)
    f.switch_source(A)
    f.translate(A, 10, 0, 0.0, keyframe_start=True)  # 0
    f.translate(A, 12, 0, 0.0)  # 2: 11 is missing
    assert f.insert() == 3
    assert _seq(f.translate(A, 13, 3000, 0.033)) == 4
    # 11 arrives late (or as a retransmission): it is 1, not 2 (that would collide)
    assert _seq(f.translate(A, 11, 0, 0.04)) == 1


def test_skipped_input_numbers_leave_no_gap() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=500)
    f.switch_source(A)
    f.translate(A, 20, 0, 0.0, keyframe_start=True)  # 500
    f.skip(A, 21)  # the publisher's FEC packet: consumed, not forwarded
    assert _seq(f.translate(A, 22, 3000, 0.033)) == 501
    f.skip(A, 24)  # consumed before 23 arrived
    assert _seq(f.translate(A, 25, 6000, 0.066)) == 503
    assert _seq(f.translate(A, 23, 3000, 0.07)) == 502  # late, below the skipped number
    f.skip(B, 26)  # another source's numbers mean nothing here
    f.skip(A, 22)  # already forwarded past it: cannot be closed
    assert _seq(f.translate(A, 26, 9000, 0.1)) == 504


def test_shifts_reset_on_a_source_switch_and_forgotten_ones_drop_late_packets() -> None:
    f = Forwarder(90000, is_video=True, initial_sequence=0)
    f.switch_source(A)
    f.translate(A, 1000, 0, 0.0, keyframe_start=True)
    for n in range(1, MAX_SHIFTS + 2):
        f.translate(A, 1000 + 2 * n, 0, 0.0)  # leave odd numbers missing
        f.insert()
    # 1001's shift is long forgotten: it cannot be placed without risking a collision
    assert f.translate(A, 1001, 0, 0.0) is Drop.TOO_OLD
    last = f.last_sequence
    f.switch_source(B)
    assert _seq(f.translate(B, 7, 0, 1.0, keyframe_start=True)) == last + 1
    assert _seq(f.translate(B, 8, 0, 1.0)) == last + 2
