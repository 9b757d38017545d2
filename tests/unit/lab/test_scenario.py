"""Scenario files: the shipped examples, layering of legs and phases, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlive.lab.impair import GilbertElliott, ImpairmentConfig
from interlive.lab.scenario import (
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)


def test_builtin_scenarios_are_shipped_and_valid() -> None:
    names = set(builtin_scenarios())
    assert {"good", "5pct", "20pct-100ms-rtt", "bursty-10pct", "shrinking-bandwidth"} <= names
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.description


def test_20pct_100ms_rtt() -> None:
    scenario = load_scenario("20pct-100ms-rtt")
    for leg in ("publisher", "viewer"):
        for config in (scenario.legs[leg].up, scenario.legs[leg].down):
            assert config.loss == 0.2
            assert config.delay == pytest.approx(0.05)  # 100 ms round trip


def test_bursty_10pct_uses_the_mean_form() -> None:
    config = load_scenario("bursty-10pct").legs["publisher"].up
    assert config.gilbert_elliott == GilbertElliott.from_mean(0.10, 3.0)
    assert config.mean_loss == pytest.approx(0.10)


def test_shrinking_bandwidth_phases() -> None:
    scenario = load_scenario("shrinking-bandwidth")
    rates = [scenario.at(t)["viewer"].down.rate for t in (0, 9.9, 10, 25, 100)]
    assert rates == [2_500_000, 2_500_000, 1_200_000, 600_000, 300_000]
    # Only the downlink is capped; the uplink keeps the leg's shared delay.
    assert scenario.at(25)["viewer"].up == ImpairmentConfig(delay=0.02)


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[viewer]\nloss = 0.01\n")
    scenario = load_scenario(path)
    assert scenario.name == "mine" and scenario.seed == 0
    assert scenario.legs["viewer"].down.loss == 0.01
    assert "publisher" not in scenario.legs


def test_missing_file_lists_builtins() -> None:
    with pytest.raises(ScenarioError, match=r"no-such\.toml: no such file.*5pct"):
        load_scenario("no-such.toml")


def test_direction_keys_override_shared_ones() -> None:
    scenario = parse_scenario(
        """
        [publisher]
        loss = 0.05
        delay_ms = 20
        [publisher.up]
        rate_kbps = 800
        loss = 0.1
        """
    )
    leg = scenario.legs["publisher"]
    assert leg.up == ImpairmentConfig(loss=0.1, delay=0.02, rate=800_000)
    assert leg.down == ImpairmentConfig(loss=0.05, delay=0.02)


def test_phases_layer_on_what_came_before() -> None:
    scenario = parse_scenario(
        """
        seed = 5
        [publisher]
        delay_ms = 30
        gilbert_elliott = { loss = 0.1, mean_burst = 2 }
        [publisher.down]
        gilbert_elliott = { p = 0.01, r = 0.5 }

        [[phases]]
        at = 10
        [phases.publisher]
        loss = 0.2

        [[phases]]
        at = 20
        [phases.publisher.up]
        rate_kbps = 500
        """
    )
    assert scenario.seed == 5
    before = scenario.at(0)["publisher"]
    assert before.up.gilbert_elliott == GilbertElliott.from_mean(0.1, 2)
    assert before.down.gilbert_elliott == GilbertElliott(p=0.01, r=0.5)
    first = scenario.at(10)["publisher"]
    # A shared key replaces the per-direction value too; loss replaces the chain.
    assert first.up == first.down == ImpairmentConfig(loss=0.2, delay=0.03)
    second = scenario.at(20)["publisher"]
    assert second.up == ImpairmentConfig(loss=0.2, delay=0.03, rate=500_000)
    assert second.down == first.down


def test_rate_zero_means_no_cap() -> None:
    scenario = parse_scenario(
        "[viewer]\nrate_kbps = 100\n[[phases]]\nat = 1\n[phases.viewer]\nrate_kbps = 0\n"
    )
    assert scenario.at(0)["viewer"].down.rate == 100_000
    assert scenario.at(1)["viewer"].down.rate is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[publisher\nloss = 1", r"x\.toml: invalid TOML: .*line 1"),
        ("speed = 1\n[viewer]", r"x\.toml: speed: unknown key \(expected one of: name,"),
        ("name = 3\n[viewer]", r"x\.toml: name: must be a non-empty string, got 3"),
        ("seed = 1.5\n[viewer]", r"x\.toml: seed: must be an integer"),
        ("description = 'only words'", r"x\.toml: : names no leg"),
        ("[viewer]\nlos = 0.1", r"x\.toml: viewer\.los: unknown key \(expected one of: loss,"),
        ("[viewer]\nloss = 1.5", r"viewer\.loss: must be between 0 and 1, got 1\.5"),
        ("[viewer]\nloss = '5%'", r"viewer\.loss: must be a number, got '5%'"),
        ("[viewer]\ndelay_ms = -5", r"viewer\.delay_ms: must be >= 0, got -5"),
        ("[viewer]\nreorder = 1", r"viewer\.reorder: must be true or false, got 1"),
        ("[viewer]\njitter_distribution = 'pareto'", r"viewer\.jitter_distribution: must be"),
        ("[viewer]\nqueue_bytes = 0", r"viewer\.queue_bytes: must be a positive integer"),
        ("[viewer.up]\nspeed = 1", r"viewer\.up\.speed: unknown key"),
        ("viewer = 3", r"viewer: must be a table, got 3"),
        (
            "[viewer]\nloss = 0.1\ngilbert_elliott = { p = 0.1, r = 0.5 }",
            r"viewer: set either loss or gilbert_elliott, not both",
        ),
        (
            "[viewer]\ngilbert_elliott = { loss = 0.1 }",
            r"viewer\.gilbert_elliott: missing key 'mean_burst'",
        ),
        (
            "[viewer]\ngilbert_elliott = { p = 0.1 }",
            r"viewer\.gilbert_elliott: missing key 'r'",
        ),
        (
            "[viewer]\ngilbert_elliott = { loss = 0.1, mean_burst = 2, p = 1 }",
            r"viewer\.gilbert_elliott\.p: unknown key",
        ),
        (
            "[viewer]\ngilbert_elliott = { loss = 0.9, mean_burst = 1 }",
            r"viewer\.gilbert_elliott: mean_burst 1\.0 is too short",
        ),
        (
            "[viewer]\ngilbert_elliott = { p = 0.1, r = 0 }",
            r"viewer\.gilbert_elliott: .*bursts would never end",
        ),
        ("[viewer]\n[[phases]]\n[phases.viewer]\nloss = 0.1", r"phases\[0\]: missing key 'at'"),
        ("[viewer]\n[[phases]]\nat = 1", r"phases\[0\]: changes no leg"),
        ("[viewer]\n[[phases]]\nat = -1\n[phases.viewer]", r"phases\[0\]\.at: must be >= 0"),
        (
            "[viewer]\n[[phases]]\nat = 5\n[phases.viewer]\n[[phases]]\nat = 5\n[phases.viewer]",
            r"phases\[1\]\.at: must be later than the phase before \(5\.0 s\)",
        ),
        (
            "[viewer]\n[[phases]]\nat = 1\n[phases.viewer]\nloss = 2",
            r"phases\[0\]\.viewer\.loss: must be between 0 and 1",
        ),
        ("[viewer]\nphases = 1", r"viewer\.phases: unknown key"),
        ("phases = 1\n[viewer]", r"phases: must be an array of tables"),
    ],
)
def test_errors_name_the_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text, source="x.toml")
