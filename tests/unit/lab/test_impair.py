"""The sans-IO impairment: each stage alone, in simulated time, then together."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from interlive.lab.impair import Chain, GilbertElliott, Impairment, ImpairmentConfig


def make(seed: int = 1, **config: object) -> Impairment:
    return Impairment(ImpairmentConfig(**config), random.Random(seed))  # type: ignore[arg-type]


def run(
    impairment: Impairment, count: int, *, interval: float = 0.001, size: int = 100
) -> list[tuple[float, int]]:
    """Send ``count`` numbered datagrams, one per ``interval``; (delivery time, number) out."""
    out: list[tuple[float, int]] = []
    for i in range(count):
        now = i * interval
        impairment.send(i.to_bytes(4, "big") + bytes(size - 4), now)
        out.extend(
            (t, int.from_bytes(d[:4], "big")) for t, d in impairment.receive_ready_timed(now)
        )
    out.extend(
        (t, int.from_bytes(d[:4], "big")) for t, d in impairment.receive_ready_timed(math.inf)
    )
    return out


# --- pass-through and timing ------------------------------------------------------------


def test_unimpaired_delivers_at_once_in_order() -> None:
    imp = make()
    imp.send(b"a", 1.0)
    imp.send(b"b", 1.0)
    assert imp.get_timer() == 1.0
    assert imp.receive_ready(1.0) == [b"a", b"b"]
    assert imp.get_timer() is None
    assert imp.stats().delivered == 2 and imp.stats().delayed == 0


def test_fixed_delay_holds_until_due() -> None:
    imp = make(delay=0.05)
    imp.send(b"x", 10.0)
    assert imp.get_timer() == pytest.approx(10.05)
    assert imp.receive_ready(10.049) == []
    assert imp.receive_ready(10.05) == [b"x"]
    stats = imp.stats()
    assert stats.delayed == 1 and stats.mean_delay == pytest.approx(0.05)


def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    config = {"loss": 0.1, "jitter": 0.01, "delay": 0.02, "duplicate": 0.05, "reorder": True}
    first = run(make(7, **config), 2000)
    assert first == run(make(7, **config), 2000)
    assert first != run(make(8, **config), 2000)


# --- loss -------------------------------------------------------------------------------


def test_random_loss_rate_and_counter() -> None:
    imp = make(loss=0.2)
    delivered = run(imp, 20_000)
    stats = imp.stats()
    # 20 000 Bernoulli(0.2) draws: standard deviation 0.28 percentage points.
    assert stats.lost / stats.sent == pytest.approx(0.2, abs=0.015)
    assert len(delivered) == stats.delivered == stats.sent - stats.lost


def _loss_runs(lost: list[bool]) -> list[int]:
    runs, current = [], 0
    for flag in lost:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_gilbert_elliott_from_mean_gives_loss_and_burst_length() -> None:
    chain = GilbertElliott.from_mean(0.10, 3.0)
    assert chain.mean_loss == pytest.approx(0.10)
    imp = Impairment(ImpairmentConfig(gilbert_elliott=chain), random.Random(3))
    received = {n for _, n in run(imp, 100_000)}
    lost = [i not in received for i in range(100_000)]
    assert sum(lost) / len(lost) == pytest.approx(0.10, abs=0.01)
    assert statistics.mean(_loss_runs(lost)) == pytest.approx(3.0, rel=0.08)


def test_gilbert_elliott_with_partial_loss_in_each_state() -> None:
    chain = GilbertElliott(p=0.05, r=0.2, loss_good=0.01, loss_bad=0.5)
    assert chain.mean_loss == pytest.approx(0.8 * 0.01 + 0.2 * 0.5)
    imp = Impairment(ImpairmentConfig(gilbert_elliott=chain), random.Random(4))
    run(imp, 50_000)
    assert imp.stats().lost / 50_000 == pytest.approx(chain.mean_loss, abs=0.01)


@pytest.mark.parametrize(
    ("loss", "burst", "message"),
    [
        (1.0, 3.0, "loss must be < 1"),
        (0.1, 0.5, "mean_burst must be >= 1"),
        (0.9, 1.0, "too short for loss"),
    ],
)
def test_gilbert_elliott_from_mean_rejects(loss: float, burst: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GilbertElliott.from_mean(loss, burst)


def test_gilbert_elliott_rejects_endless_bursts() -> None:
    with pytest.raises(ValueError, match="bursts would never end"):
        GilbertElliott(p=0.1, r=0.0)


# --- jitter and reordering --------------------------------------------------------------


def test_jitter_without_reorder_keeps_order() -> None:
    # 10 ms of jitter on datagrams 1 ms apart would reorder most of them.
    imp = make(delay=0.05, jitter=0.01)
    delivered = run(imp, 5000)
    numbers = [n for _, n in delivered]
    assert numbers == sorted(numbers)
    times = [t for t, _ in delivered]
    assert times == sorted(times)
    assert imp.stats().out_of_order == 0


def test_jitter_with_reorder_has_the_configured_spread() -> None:
    imp = make(delay=0.05, jitter=0.01, reorder=True)
    delivered = run(imp, 20_000)
    delays = [t - n * 0.001 for t, n in delivered]
    assert statistics.mean(delays) == pytest.approx(0.05, abs=0.0005)
    assert statistics.stdev(delays) == pytest.approx(0.01, rel=0.05)
    assert imp.stats().out_of_order > 1000


def test_uniform_jitter_is_bounded_with_the_same_deviation() -> None:
    imp = make(delay=0.05, jitter=0.01, jitter_distribution="uniform", reorder=True)
    delays = [t - n * 0.001 for t, n in run(imp, 20_000)]
    spread = math.sqrt(3) * 0.01
    assert 0.05 - spread <= min(delays) and max(delays) <= 0.05 + spread
    assert statistics.stdev(delays) == pytest.approx(0.01, rel=0.05)


def test_jitter_never_delivers_before_sending() -> None:
    imp = make(delay=0.001, jitter=0.05, reorder=True)
    assert all(t >= n * 0.001 for t, n in run(imp, 2000))


def test_explicit_reordering_holds_datagrams_back() -> None:
    imp = make(reorder_probability=0.05, reorder_delay=0.01)
    delivered = run(imp, 20_000)
    stats = imp.stats()
    assert stats.reordered / 20_000 == pytest.approx(0.05, abs=0.006)
    # Each held datagram is overtaken by the ~10 sent during its 10 ms.
    assert stats.out_of_order == stats.reordered
    assert sorted(n for _, n in delivered) == list(range(20_000))
    held = [t - n * 0.001 for t, n in delivered if t - n * 0.001 > 1e-9]
    assert held and all(d == pytest.approx(0.01) for d in held)


# --- duplication ------------------------------------------------------------------------


def test_duplication() -> None:
    imp = make(duplicate=0.1)
    delivered = run(imp, 20_000)
    stats = imp.stats()
    assert stats.duplicated / 20_000 == pytest.approx(0.1, abs=0.008)
    assert len(delivered) == 20_000 + stats.duplicated


# --- rate cap ---------------------------------------------------------------------------


def test_rate_cap_serialises_datagrams() -> None:
    # 1000 bytes at 1 Mbit/s take 8 ms each.
    imp = make(rate=1_000_000, queue_limit=100_000)
    for _ in range(10):
        imp.send(bytes(1000), 0.0)
    times = []
    while (timer := imp.get_timer()) is not None:
        times.append(timer)
        assert len(imp.receive_ready(timer)) == 1
    assert times == pytest.approx([0.008 * (i + 1) for i in range(10)])


def test_rate_cap_tail_drops_when_the_queue_is_full() -> None:
    imp = make(rate=1_000_000, queue_limit=5000)
    for _ in range(10):
        imp.send(bytes(1000), 0.0)
    assert imp.stats().queue_dropped == 5  # 5 x 1000 B fill the 5000 B queue
    assert imp.backlog == 5000
    # Two datagram times later two have left: room for two more, not three.
    for _ in range(3):
        imp.send(bytes(1000), 0.016)
    assert imp.stats().queue_dropped == 6


def test_rate_cap_throughput_under_overload() -> None:
    # Offer 2 Mbit/s to a 500 kbit/s link for 10 s: what comes out is the link rate.
    imp = make(rate=500_000, queue_limit=20_000)
    delivered = run(imp, 2500, interval=0.004, size=1000)
    end = max(t for t, _ in delivered)
    assert len(delivered) * 8000 / end == pytest.approx(500_000, rel=0.01)
    assert imp.stats().queue_dropped == pytest.approx(2500 * 0.75, rel=0.02)


def test_rate_then_delay() -> None:
    imp = make(rate=1_000_000, delay=0.1)
    imp.send(bytes(1000), 0.0)
    imp.send(bytes(1000), 0.0)
    delivered = imp.receive_ready_timed(1.0)
    assert [t for t, _ in delivered] == pytest.approx([0.108, 0.116])


# --- reconfiguration and chaining ---------------------------------------------------------


def test_set_config_leaves_datagrams_in_flight_alone() -> None:
    imp = make(delay=0.2, reorder=True)
    imp.send(b"old", 0.0)
    imp.set_config(ImpairmentConfig(delay=0.01, reorder=True))
    imp.send(b"new", 0.1)
    delivered = imp.receive_ready_timed(1.0)
    assert [d for _, d in delivered] == [b"new", b"old"]
    assert [t for t, _ in delivered] == pytest.approx([0.11, 0.2])


def test_a_shorter_delay_does_not_overtake_without_reorder() -> None:
    # A FIFO path whose delay drops: later datagrams queue behind earlier ones.
    imp = make(delay=0.2)
    imp.send(b"old", 0.0)
    imp.set_config(ImpairmentConfig(delay=0.01))
    imp.send(b"new", 0.1)
    imp.send(b"later", 0.3)
    delivered = imp.receive_ready_timed(1.0)
    assert [d for _, d in delivered] == [b"old", b"new", b"later"]
    assert [t for t, _ in delivered] == pytest.approx([0.2, 0.2, 0.31])


def test_chain_adds_delays_and_compounds_loss() -> None:
    first = Impairment(ImpairmentConfig(loss=0.1, delay=0.02), random.Random(1))
    second = Impairment(ImpairmentConfig(loss=0.1, delay=0.03), random.Random(2))
    chain = Chain(first, second)
    received = []
    for i in range(20_000):
        now = i * 0.001
        chain.send(bytes(10), now)
        if i % 7 == 0:
            received.extend(chain.receive_ready(now))
    received.extend(chain.receive_ready(math.inf))
    assert chain.get_timer() is None
    assert len(received) / 20_000 == pytest.approx(0.81, abs=0.01)
    # Polled only every 7 ms, yet each hop's delay is exact.
    assert first.stats().mean_delay == pytest.approx(0.02)
    assert second.stats().mean_delay == pytest.approx(0.03)


# --- configuration checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"loss": 1.5}, "loss must be a probability"),
        ({"loss": -0.1}, "loss must be a probability"),
        ({"loss": "5%"}, "loss must be a number"),
        ({"delay": -1.0}, "delay must be >= 0"),
        ({"jitter": math.nan}, "jitter must be finite"),
        ({"jitter_distribution": "pareto"}, "jitter_distribution must be one of"),
        ({"reorder": 1}, "reorder must be a bool"),
        ({"duplicate": 2}, "duplicate must be a probability"),
        ({"rate": 0}, "rate must be > 0"),
        ({"queue_limit": 0}, "queue_limit must be a positive"),
        ({"queue_limit": 1.5}, "queue_limit must be a positive"),
        (
            {"loss": 0.1, "gilbert_elliott": GilbertElliott(p=0.1, r=0.5)},
            "either loss or gilbert_elliott",
        ),
    ],
)
def test_config_validation(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImpairmentConfig(**config)  # type: ignore[arg-type]
