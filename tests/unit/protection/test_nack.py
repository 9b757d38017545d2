"""NackGenerator scenarios in simulated time, and properties over random loss patterns."""

from __future__ import annotations

import heapq
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.protection.nack import (
    AUDIO_DEADLINE,
    DEFAULT_RTT,
    REPAIRED_MEMORY,
    NackGenerator,
    NackRequest,
)
from interlive.rtp.rtcp import Nack, parse_rtcp
from interlive.rtp.seq import SequenceUnwrapper


def feed(gen: NackGenerator, unwrapper: SequenceUnwrapper, seqs: list[int], t0: float) -> float:
    """Feed 16-bit ``seqs`` 10 ms apart from ``t0``; return the last arrival time."""
    t = t0
    for i, seq in enumerate(seqs):
        t = t0 + 0.01 * i
        gen.on_packet(unwrapper.unwrap(seq), t)
    return t


def run_timers(gen: NackGenerator, until: float) -> list[tuple[float, NackRequest]]:
    """Poll at every timer up to ``until``, like the worker would; return what was asked."""
    out: list[tuple[float, NackRequest]] = []
    for _ in range(1000):
        timer = gen.get_timer()
        if timer is None or timer > until:
            return out
        request = gen.poll(timer)
        if request:
            out.append((timer, request))
    raise AssertionError("poll at get_timer() made no progress")


# --- scenarios -------------------------------------------------------------------


def test_single_loss_recovered_by_retransmission() -> None:
    gen = NackGenerator(rtt=0.05)
    gen.on_packet(100, 0.00)
    gen.on_packet(101, 0.01)
    gen.on_packet(103, 0.03)
    assert gen.missing == [102] and len(gen) == 1
    assert 102 in gen and 101 not in gen
    assert gen.poll(0.03) == NackRequest([], False)  # within the reorder grace
    assert gen.get_timer() == pytest.approx(0.035)
    assert gen.poll(0.035) == NackRequest([102], False)
    gen.on_packet(102, 0.08, retransmitted=True)
    assert len(gen) == 0 and gen.get_timer() is None
    assert (gen.nacks_sent, gen.retries, gen.recovered, gen.given_up) == (1, 0, 1, 0)


def test_a_repaired_packet_is_remembered_so_a_second_copy_is_known() -> None:
    gen = NackGenerator(rtt=0.05)
    for seq, now in ((100, 0.0), (102, 0.02), (103, 0.03)):
        gen.on_packet(seq, now)  # 101 lost
    assert gen.poll(0.03) == NackRequest([101], False)
    gen.on_packet(104, 0.04)
    gen.on_packet(101, 0.09)  # the resend, plain: it looks like any packet
    assert gen.repaired(101)
    # packets never asked for are not "repaired", whatever their order
    assert not gen.repaired(100) and not gen.repaired(104)
    gen.on_packet(106, 0.10)
    gen.on_packet(105, 0.101)  # reordered within the grace: never NACKed
    assert not gen.repaired(105) and gen.reordered == 1


def test_the_repaired_memory_is_bounded() -> None:
    gen = NackGenerator(rtt=0.01, reorder_grace=0.0, max_missing=5000, max_gap=5000)
    gen.on_packet(0, 0.0)
    seq = 0
    for i in range(REPAIRED_MEMORY + 10):  # one loss in two, each repaired
        gen.on_packet(seq + 2, 0.01 * i)
        gen.poll(0.01 * i)
        gen.on_packet(seq + 1, 0.01 * i + 0.005)
        seq += 2
    assert gen.recovered == REPAIRED_MEMORY + 10
    assert not gen.repaired(1) and gen.repaired(seq - 1)  # the oldest forgotten


def test_burst_of_five_is_one_request() -> None:
    gen = NackGenerator()
    gen.on_packet(10, 0.0)
    gen.on_packet(16, 0.06)
    [(when, request)] = run_timers(gen, 0.07)
    assert when == pytest.approx(0.065) and request == NackRequest([11, 12, 13, 14, 15])
    assert gen.nacks_sent == 5
    for seq in (11, 12, 13, 14, 15):
        gen.on_packet(seq, 0.2, retransmitted=True)
    assert gen.recovered == 5 and gen.get_timer() is None


def test_missing_packets_expected_times_are_interpolated() -> None:
    # 10 ms spacing, 4 lost: the first was due at 0.01, the last at 0.04.
    gen = NackGenerator(deadline=0.1, rtt=0.0, processing=0.0, reorder_grace=0.0)
    gen.on_packet(0, 0.0)
    gen.on_packet(5, 0.05)
    gen.poll(0.05)
    gen.poll(0.1105)  # past 0.01 + 0.1 only for seq 1
    assert gen.missing == [2, 3, 4] and gen.given_up == 1


def test_retries_are_spaced_by_rtt() -> None:
    gen = NackGenerator(rtt=0.05, processing=0.0, reorder_grace=0.0)
    gen.on_packet(1, 0.00)
    gen.on_packet(3, 0.02)
    assert gen.poll(0.02).lost == [2]
    assert gen.get_timer() == pytest.approx(0.07)
    assert gen.poll(0.069).lost == []
    assert gen.poll(0.0700001).lost == [2]
    gen.set_rtt(0.1)
    assert gen.get_timer() == pytest.approx(0.17)
    assert gen.poll(0.15).lost == []
    assert gen.poll(0.1700001).lost == [2]
    assert (gen.nacks_sent, gen.retries) == (3, 2)
    gen.on_packet(2, 0.2, retransmitted=True)
    assert gen.recovered == 1


def test_retry_interval_includes_processing_and_has_a_floor() -> None:
    gen = NackGenerator(rtt=0.0, processing=0.0, min_interval=0.01, reorder_grace=0.0)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.02)
    times = [t for t, _ in run_timers(gen, 0.1)]
    assert times == pytest.approx([0.02 + 0.01 * k for k in range(len(times))])
    gen = NackGenerator(rtt=0.04, processing=0.01, reorder_grace=0.0)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.02)
    assert [t for t, _ in run_timers(gen, 0.2)] == pytest.approx([0.02, 0.07, 0.12, 0.17])


def test_at_most_max_retries_requests() -> None:
    gen = NackGenerator(rtt=0.01, processing=0.0, max_retries=3)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.02)
    asked = run_timers(gen, 5.0)
    assert len(asked) == 3 and (gen.nacks_sent, gen.retries) == (3, 2)
    assert gen.given_up == 1 and gen.get_timer() is None
    # given up once the third request's answer was overdue, long before the deadline
    assert asked[-1][0] + 0.01 < 0.1


def test_give_up_at_deadline() -> None:
    deadline, rtt = 0.5, 0.1
    gen = NackGenerator(deadline=deadline, rtt=rtt, processing=0.0, reorder_grace=0.0)
    gen.on_packet(1, 0.00)
    gen.on_packet(3, 0.02)  # 2 was expected at 0.01, detected at 0.02
    asked = run_timers(gen, 0.41)
    times = [t for t, _ in asked]
    assert times == pytest.approx([0.02, 0.12, 0.22, 0.32])
    # DESIGN.md: attempts that fit = floor((playout deadline - detection) / (RTT + processing))
    assert len(times) == math.floor((0.01 + deadline - 0.02) / rtt)
    assert len(gen) == 1 and gen.given_up == 0
    assert gen.get_timer() == pytest.approx(0.42)  # the last answer is overdue then
    gen.poll(0.4200001)
    assert len(gen) == 0 and gen.given_up == 1 and gen.get_timer() is None
    gen.on_packet(2, 0.6, retransmitted=True)  # too late: nothing to do
    assert gen.recovered == 0 and len(gen) == 0


def test_a_packet_given_up_asks_for_a_keyframe_when_told_to() -> None:
    # A hole no retransmission fills breaks the picture: ask the publisher at once.
    for keyframe in (False, True):
        gen = NackGenerator(
            deadline=0.5, rtt=0.1, processing=0.0, reorder_grace=0.0, keyframe_on_give_up=keyframe
        )
        gen.on_packet(1, 0.00)
        gen.on_packet(3, 0.02)
        gen.on_packet(4, 0.03)
        asked = run_timers(gen, 0.41)
        assert [r.keyframe for _, r in asked] == [False] * 4  # retries never ask
        request = gen.poll(0.4200001)
        assert request.lost == [] and request.keyframe is keyframe
        assert gen.given_up == 1 and gen.keyframes_requested == int(keyframe)
        assert not gen.poll(0.5)  # once per give-up, not on every later poll
    # recovered in time: no keyframe
    gen = NackGenerator(rtt=0.1, reorder_grace=0.0, keyframe_on_give_up=True)
    gen.on_packet(1, 0.00)
    gen.on_packet(3, 0.02)
    gen.poll(0.02)
    gen.on_packet(2, 0.13, retransmitted=True)
    assert not run_timers(gen, 5.0) and gen.keyframes_requested == 0
    assert gen.describe()["recovered"] == 1 and gen.describe()["repair_delay_max_ms"] == 120.0


def test_give_up_when_polled_after_the_deadline() -> None:
    gen = NackGenerator(deadline=0.2)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.02)
    assert gen.poll(1.0) == NackRequest()
    assert gen.given_up == 1 and gen.nacks_sent == 0


def test_rtt_longer_than_deadline_never_nacks() -> None:
    gen = NackGenerator.for_kind("audio", rtt=0.3)
    assert gen.deadline == AUDIO_DEADLINE
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.04)
    assert run_timers(gen, 1.0) == []
    assert gen.given_up == 1 and gen.nacks_sent == 0 and gen.get_timer() is None


def test_reorder_within_grace_is_not_nacked() -> None:
    gen = NackGenerator()
    gen.on_packet(1, 0.00)
    gen.on_packet(2, 0.01)
    gen.on_packet(4, 0.02)
    assert gen.poll(0.02).lost == []
    assert gen.get_timer() == pytest.approx(0.025)
    gen.on_packet(3, 0.022)
    assert gen.get_timer() is None and gen.poll(0.03) == NackRequest()
    assert (gen.reordered, gen.nacks_sent, gen.recovered) == (1, 0, 0)


def test_sequence_wrap() -> None:
    gen, unwrapper = NackGenerator(), SequenceUnwrapper()
    t = feed(gen, unwrapper, [65533, 65534, 0, 1], 0.0)  # 65535 lost
    assert gen.poll(t + 0.01).lost == [65535]
    t = feed(gen, unwrapper, [4, 5], t + 0.01)  # 2 and 3 lost
    assert gen.poll(t + 0.01).lost == [2, 3]
    gen.on_packet(unwrapper.unwrap(65535), t + 0.05, retransmitted=True)
    assert gen.recovered == 1 and len(gen) == 2


def test_gap_straddling_the_wrap() -> None:
    gen, unwrapper = NackGenerator(), SequenceUnwrapper()
    feed(gen, unwrapper, [65533, 2], 0.0)
    request = gen.poll(0.1)
    assert request.lost == [65534, 65535, 0, 1]
    nack = Nack(sender_ssrc=1, media_ssrc=2, lost=request.lost)
    assert nack.fci() == [(65534, 0b111)]
    [parsed] = parse_rtcp(bytes(nack))
    assert isinstance(parsed, Nack) and parsed.lost == [65534, 65535, 0, 1]


def test_huge_gap_asks_for_a_keyframe() -> None:
    gen = NackGenerator(max_gap=1000)
    gen.on_packet(100, 0.0)
    gen.on_packet(102, 0.01)
    gen.on_packet(102 + 1001 + 1, 0.5)
    assert len(gen) == 0
    assert gen.get_timer() == 0.5
    assert gen.poll(0.5) == NackRequest([], keyframe=True)
    assert gen.keyframes_requested == 1 and gen.given_up == 0
    assert gen.get_timer() is None and gen.poll(0.6) == NackRequest()
    gen.on_packet(1104, 0.51)
    gen.on_packet(1106, 0.52)  # normal service afterwards
    assert gen.missing == [1105]
    gen.on_packet(101, 0.53)  # the cleared entry is not resurrected
    assert gen.missing == [1105] and gen.reordered == 0


def test_too_many_missing_asks_for_a_keyframe() -> None:
    gen = NackGenerator(max_missing=5)
    for i, seq in enumerate(range(0, 11, 2)):  # 1, 3, 5, 7, 9 lost
        gen.on_packet(seq, 0.01 * i)
    assert len(gen) == 5 and gen.poll(0.1).lost == [1, 3, 5, 7, 9]
    gen.on_packet(12, 0.11)  # a sixth
    assert len(gen) == 0 and gen.poll(0.11).keyframe
    assert gen.keyframes_requested == 1


def test_retransmission_never_opens_a_gap() -> None:
    gen = NackGenerator()
    gen.on_packet(1, 0.0)
    gen.on_packet(50, 0.01, retransmitted=True)
    gen.on_packet(2, 0.02)
    assert len(gen) == 0
    gen.on_packet(2, 0.03)  # duplicate
    gen.on_packet(1, 0.04)  # old
    assert len(gen) == 0 and gen.get_timer() is None


def test_no_packets_no_requests() -> None:
    gen = NackGenerator()
    assert gen.get_timer() is None and not gen.poll(1.0)
    gen.on_packet(7, 0.0)
    assert gen.get_timer() is None and not gen.poll(1.0)


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        NackGenerator(deadline=0)
    with pytest.raises(ValueError):
        NackGenerator(max_retries=0)
    with pytest.raises(ValueError):
        NackGenerator(reorder_grace=-1)
    with pytest.raises(ValueError):
        NackGenerator().set_rtt(-0.1)


# --- properties ------------------------------------------------------------------

SPACING = 0.01  # 100 packets per second
ONE_WAY = 0.02
TICK = 0.02  # the worker's tick


@st.composite
def loss_patterns(draw: st.DrawFn) -> list[bool]:
    """Runs of received and lost packets (at most 40 lost in a row), ending with a received one."""
    pattern: list[bool] = []
    for received, lost in draw(
        st.lists(st.tuples(st.integers(1, 20), st.integers(0, 40)), min_size=1, max_size=15)
    ):
        pattern += [True] * received + [False] * lost
    pattern.append(True)
    return pattern


def simulate(
    pattern: list[bool],
    *,
    start: int,
    rtt: float,
    swaps: set[int],
    polling: str,
    answer: bool,
) -> tuple[NackGenerator, dict[int, list[float]], set[int]]:
    """Send ``pattern`` (True = delivered) in simulated time; return who was NACKed when.

    ``swaps``: packet i arrives 1 ms after i + 1 (both delivered).  ``answer``:
    each NACKed packet is retransmitted and arrives ``rtt`` later.
    """
    gen = NackGenerator(rtt=rtt)
    unwrapper = SequenceUnwrapper()
    events: list[tuple[float, int, int, bool]] = []  # (time, tiebreak, seq, retransmitted)
    swapped: set[int] = set()
    for i, ok in enumerate(pattern):
        if not ok:
            continue
        t = i * SPACING + ONE_WAY
        if (
            i in swaps
            and i - 1 not in swapped
            and i + 1 < len(pattern)
            and pattern[i + 1]
            and i + 1 not in swaps
        ):
            t += SPACING + 0.001
            swapped.add(i)
        events.append((t, i, (start + i) & 0xFFFF, False))
    heapq.heapify(events)
    nacked: dict[int, list[float]] = {}
    delivered = {(start + i) & 0xFFFF for i, ok in enumerate(pattern) if ok}
    order = len(pattern)

    def poll(now: float) -> None:
        nonlocal order
        request = gen.poll(now)
        assert not request.keyframe
        for seq in request.lost:
            nacked.setdefault(seq, []).append(now)
            if answer:
                order += 1
                heapq.heappush(events, (now + rtt, order, seq, True))

    next_tick = 0.0
    end = len(pattern) * SPACING + 2.0
    now = 0.0
    while events or now < end:
        # the clock jumps to the next timer (or tick) before the next arrival
        for _ in range(10_000):
            t_next = events[0][0] if events else end
            if polling == "timer":
                timer = gen.get_timer()
                if timer is None or timer >= t_next:
                    break
                now = max(now, timer)
                poll(now)
            else:
                if next_tick >= t_next:
                    break
                now = next_tick
                poll(now)
                next_tick += TICK
        else:
            raise AssertionError("timers made no progress")
        if not events:
            break
        now, _, seq, retransmitted = heapq.heappop(events)
        gen.on_packet(unwrapper.unwrap(seq), now, retransmitted=retransmitted)
        poll(now)
    return gen, nacked, delivered


@settings(max_examples=150, deadline=None)
@given(
    pattern=loss_patterns(),
    start=st.integers(0, 0xFFFF),
    rtt=st.floats(0.0, 0.05),
    swaps=st.sets(st.integers(0, 1000), max_size=30),
    polling=st.sampled_from(["timer", "tick"]),
)
def test_every_loss_is_nacked_in_time_and_nothing_received_is(
    pattern: list[bool], start: int, rtt: float, swaps: set[int], polling: str
) -> None:
    gen, nacked, delivered = simulate(
        pattern, start=start, rtt=rtt, swaps=swaps, polling=polling, answer=False
    )
    assert not set(nacked) & delivered
    for i, ok in enumerate(pattern):
        if ok:
            continue
        seq = (start + i) & 0xFFFF
        assert seq in nacked, f"packet {i} was never NACKed"
        # the first request's answer is back before the playout deadline
        deadline = i * SPACING + ONE_WAY + gen.deadline
        assert nacked[seq][0] + rtt + gen.processing <= deadline + 1e-9
    assert gen.given_up == pattern.count(False) and len(gen) == 0
    assert gen.keyframes_requested == 0


@settings(max_examples=100, deadline=None)
@given(
    pattern=loss_patterns(),
    start=st.integers(0, 0xFFFF),
    rtt=st.floats(0.0, 0.05),
    polling=st.sampled_from(["timer", "tick"]),
)
def test_answered_nacks_recover_everything_with_one_request_each(
    pattern: list[bool], start: int, rtt: float, polling: str
) -> None:
    gen, nacked, _ = simulate(
        pattern, start=start, rtt=rtt, swaps=set(), polling=polling, answer=True
    )
    lost = pattern.count(False)
    assert len(nacked) == lost and all(len(times) == 1 for times in nacked.values())
    assert (gen.recovered, gen.nacks_sent, gen.retries, gen.given_up) == (lost, lost, 0, 0)
    assert len(gen) == 0 and gen.get_timer() is None


def test_rtt_is_learnt_from_once_requested_repairs() -> None:
    gen = NackGenerator()
    assert gen.rtt == DEFAULT_RTT
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.010)  # 2 missing
    assert gen.poll(0.020).lost == [2]
    gen.on_packet(2, 0.050, retransmitted=True)  # answered 30 ms after the NACK
    assert gen.rtt == pytest.approx(0.030) and gen.rtt_samples == 1
    gen.on_packet(5, 0.060)  # 4 missing
    assert gen.poll(0.070).lost == [4]
    gen.on_packet(4, 0.080, retransmitted=True)  # a 10 ms sample, smoothed by 1/8
    assert gen.rtt == pytest.approx(0.030 + (0.010 - 0.030) / 8)


def test_a_repair_after_retries_is_not_an_rtt_sample() -> None:
    gen = NackGenerator(rtt=0.010)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.001)
    assert gen.poll(0.010).lost == [2]
    assert gen.poll(0.030).lost == [2]  # retried: which request did the answer meet?
    gen.on_packet(2, 0.035, retransmitted=True)
    assert gen.rtt == 0.010 and gen.rtt_samples == 0
