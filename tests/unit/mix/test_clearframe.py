from __future__ import annotations

import pytest

from interlive.mix.clearframe import (
    Chain,
    ClearFrameGate,
    Display,
    FrameFacts,
    GateConfig,
    Verdict,
)

KEY = FrameFacts(keyframe=True)
DELTA = FrameFacts(keyframe=False)
GAP = FrameFacts(keyframe=False, gap_before=True)
GAP_INDEPENDENT = FrameFacts(keyframe=False, gap_before=True, depends_on_previous=False)
ERROR = FrameFacts(keyframe=False, decode_error=True)
BAD_KEY = FrameFacts(keyframe=True, decode_error=True)
KEY_AFTER_GAP = FrameFacts(keyframe=True, gap_before=True)

SHOW = Verdict(show=True, request_keyframe=False)
HOLD = Verdict(show=False, request_keyframe=False)
HOLD_AND_ASK = Verdict(show=False, request_keyframe=True)


def live_gate(now: float = 0.0) -> ClearFrameGate:
    gate = ClearFrameGate()
    assert gate.on_frame(KEY, now) == SHOW
    return gate


# -- chain: NONE ----------------------------------------------------------------------


def test_starts_waiting_with_a_placeholder() -> None:
    gate = ClearFrameGate()
    assert gate.chain is Chain.NONE
    assert gate.display(0.0) is Display.PLACEHOLDER


def test_none_delta_is_held_and_asks_for_a_keyframe() -> None:
    gate = ClearFrameGate()
    assert gate.on_frame(DELTA, 0.0) == HOLD_AND_ASK
    assert gate.chain is Chain.NONE
    assert gate.on_frame(DELTA, 0.5) == HOLD  # throttled
    assert gate.on_frame(DELTA, 1.0) == HOLD_AND_ASK
    assert gate.keyframe_requests == 2 and gate.frames_held == 3
    assert gate.display(1.0) is Display.PLACEHOLDER


def test_none_keyframe_goes_live() -> None:
    gate = ClearFrameGate()
    assert gate.on_frame(KEY, 2.0) == SHOW
    assert gate.chain is Chain.INTACT and gate.last_clean == 2.0
    assert gate.display(2.0) is Display.LIVE


def test_none_bad_keyframe_stays_none() -> None:
    gate = ClearFrameGate()
    assert gate.on_frame(BAD_KEY, 0.0) == HOLD_AND_ASK
    assert gate.chain is Chain.NONE
    assert gate.display(0.0) is Display.PLACEHOLDER


def test_poll_asks_for_the_first_keyframe_without_frames() -> None:
    gate = ClearFrameGate()
    assert gate.next_poll() == float("-inf")
    assert gate.poll(0.0)
    assert gate.next_poll() == 1.0
    assert not gate.poll(0.9)
    assert gate.poll(1.0)
    assert gate.keyframe_requests == 2


# -- chain: INTACT --------------------------------------------------------------------


def test_intact_delta_is_shown() -> None:
    gate = live_gate()
    assert gate.on_frame(DELTA, 0.033) == SHOW
    assert gate.last_clean == 0.033
    assert not gate.poll(5.0)  # nothing to ask for
    assert gate.next_poll() is None


def test_intact_gap_breaks_the_chain() -> None:
    gate = live_gate()
    assert gate.on_frame(GAP, 0.1) == HOLD_AND_ASK
    assert gate.chain is Chain.BROKEN
    assert gate.last_clean == 0.0
    assert gate.display(0.1) is Display.FROZEN


def test_intact_gap_before_an_independent_frame_keeps_it_live() -> None:
    gate = live_gate()
    assert gate.on_frame(GAP_INDEPENDENT, 0.1) == SHOW
    assert gate.chain is Chain.INTACT


def test_intact_decode_error_breaks_the_chain() -> None:
    gate = live_gate()
    assert gate.on_frame(ERROR, 0.1) == HOLD_AND_ASK
    assert gate.chain is Chain.BROKEN


def test_intact_bad_keyframe_breaks_the_chain() -> None:
    gate = live_gate()
    assert gate.on_frame(BAD_KEY, 0.1) == HOLD_AND_ASK
    assert gate.chain is Chain.BROKEN


def test_independent_frame_with_a_decode_error_still_breaks() -> None:
    gate = live_gate()
    facts = FrameFacts(
        keyframe=False, gap_before=True, depends_on_previous=False, decode_error=True
    )
    assert gate.on_frame(facts, 0.1) == HOLD_AND_ASK
    assert gate.chain is Chain.BROKEN


# -- chain: BROKEN --------------------------------------------------------------------


def broken_gate() -> ClearFrameGate:
    gate = live_gate()
    assert gate.on_frame(GAP, 0.1) == HOLD_AND_ASK
    return gate


def test_broken_deltas_are_held_even_clean_looking_ones() -> None:
    gate = broken_gate()
    # These decode without error but reference what was lost: never shown.
    for k in range(1, 10):
        verdict = gate.on_frame(DELTA, 0.1 + k / 30)
        assert not verdict.show
    assert gate.chain is Chain.BROKEN
    assert gate.last_clean == 0.0


def test_broken_independent_frame_is_still_held() -> None:
    gate = broken_gate()
    assert not gate.on_frame(GAP_INDEPENDENT, 0.2).show


def test_broken_keyframe_requests_are_throttled_to_one_per_second() -> None:
    gate = broken_gate()  # asked at 0.1
    asks = [t for k in range(1, 91) if gate.on_frame(DELTA, t := 0.1 + k / 30).request_keyframe]
    assert asks == pytest.approx([1.1, 2.1, 3.1], abs=1e-9)
    assert gate.keyframe_requests == 4


def test_broken_poll_re_asks_when_frames_stop() -> None:
    gate = broken_gate()
    assert gate.next_poll() == pytest.approx(1.1)
    assert not gate.poll(1.0)
    assert gate.poll(1.1)
    assert gate.on_frame(DELTA, 1.5) == HOLD  # the poll's request counts for the throttle


def test_broken_keyframe_recovers() -> None:
    gate = broken_gate()
    assert gate.on_frame(KEY_AFTER_GAP, 0.5) == SHOW
    assert gate.chain is Chain.INTACT
    assert gate.display(0.5) is Display.LIVE
    assert gate.on_frame(DELTA, 0.53) == SHOW


def test_broken_bad_keyframe_stays_broken() -> None:
    gate = broken_gate()
    assert not gate.on_frame(BAD_KEY, 0.5).show
    assert gate.chain is Chain.BROKEN


# -- display over time ----------------------------------------------------------------


def test_broken_freezes_then_shows_the_placeholder_after_the_timeout() -> None:
    gate = broken_gate()  # last clean at 0.0
    assert gate.display(0.1) is Display.FROZEN
    assert gate.display(2.999) is Display.FROZEN
    assert gate.display(3.0) is Display.PLACEHOLDER
    assert gate.on_frame(KEY, 4.0) == SHOW  # a keyframe brings it back
    assert gate.display(4.0) is Display.LIVE


def test_stalled_input_freezes_then_placeholder_then_resumes_without_keyframe() -> None:
    gate = live_gate()
    assert gate.display(0.499) is Display.LIVE
    assert gate.display(0.5) is Display.FROZEN  # stall_after
    assert gate.display(3.0) is Display.PLACEHOLDER  # freeze_timeout
    assert gate.chain is Chain.INTACT
    assert gate.on_frame(DELTA, 5.0) == SHOW  # same chain, no loss: live again
    assert gate.display(5.0) is Display.LIVE


def test_custom_timeouts() -> None:
    gate = ClearFrameGate(GateConfig(keyframe_interval=0.25, stall_after=0.1, freeze_timeout=1.0))
    gate.on_frame(KEY, 0.0)
    assert gate.display(0.1) is Display.FROZEN
    assert gate.display(1.0) is Display.PLACEHOLDER
    assert gate.on_frame(GAP, 1.0).request_keyframe
    assert gate.on_frame(DELTA, 1.25).request_keyframe


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        GateConfig(stall_after=5.0, freeze_timeout=1.0)
    with pytest.raises(ValueError):
        GateConfig(keyframe_interval=0)
