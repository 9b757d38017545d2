from __future__ import annotations

from interlive.sfu.forwarder import Drop, Forwarder, Translation

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
