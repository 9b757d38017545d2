"""Network scenarios for the impairment lab, read from TOML files.

A scenario names the legs it impairs, ``publisher`` (a publisher's path to
the SFU) and/or ``viewer`` (a viewer's), each with an up direction (client to
server) and a down direction (server to client), and optionally phases that
change the conditions at given times.  The format::

    name = "loss-step"                 # optional, defaults to the file's stem
    description = "5% loss, 20% from t=10 s"
    seed = 7                           # optional, default 0

    [publisher]                        # keys here apply to both directions
    loss = 0.05
    delay_ms = 20
    [publisher.up]                     # ... and these to one direction only
    rate_kbps = 2500

    [[phases]]
    at = 10.0                          # seconds from the start
    [phases.publisher]
    loss = 0.20

Impairment keys (all optional; nothing set means an unimpaired path):
``loss`` (probability), ``gilbert_elliott`` (an inline table, either
``{ loss = 0.1, mean_burst = 3 }`` or ``{ p = .., r = .., loss_good = ..,
loss_bad = .. }``), ``delay_ms``, ``jitter_ms`` (standard deviation),
``jitter_distribution`` (``"normal"`` | ``"uniform"``), ``reorder`` (may
jitter reorder, default false), ``reorder_probability``,
``reorder_delay_ms``, ``duplicate`` (probability), ``rate_kbps`` (0: no
cap) and ``queue_bytes``.

Layering: a leg's shared keys are applied first, then its direction's; each
phase is applied on top of the conditions before it, a phase's shared key
replacing that key in both directions.  Setting ``loss`` replaces an earlier
``gilbert_elliott`` and the other way round (one loss model at a time).  Any
mistake raises :class:`ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from interlive.lab.impair import GilbertElliott, ImpairmentConfig

__all__ = [
    "DIRECTIONS",
    "LEG_NAMES",
    "LegConfig",
    "Phase",
    "Scenario",
    "ScenarioError",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
]

LEG_NAMES: tuple[str, ...] = ("publisher", "viewer")
DIRECTIONS: tuple[str, ...] = ("up", "down")
_TOP_KEYS = ("name", "description", "seed", *LEG_NAMES, "phases")
_PHASE_KEYS = ("at", *LEG_NAMES)
# TOML key -> ImpairmentConfig field
_FIELDS = {
    "loss": "loss",
    "gilbert_elliott": "gilbert_elliott",
    "delay_ms": "delay",
    "jitter_ms": "jitter",
    "jitter_distribution": "jitter_distribution",
    "reorder": "reorder",
    "reorder_probability": "reorder_probability",
    "reorder_delay_ms": "reorder_delay",
    "duplicate": "duplicate",
    "rate_kbps": "rate",
    "queue_bytes": "queue_limit",
}
_LOSS_MODELS = ("loss", "gilbert_elliott")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class LegConfig:
    """Both directions of one leg: ``up`` client→server, ``down`` server→client."""

    up: ImpairmentConfig = field(default_factory=ImpairmentConfig)
    down: ImpairmentConfig = field(default_factory=ImpairmentConfig)

    def direction(self, name: str) -> ImpairmentConfig:
        if name == "up":
            return self.up
        if name == "down":
            return self.down
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {name!r}")


@dataclass(frozen=True, slots=True)
class Phase:
    """From ``at`` seconds on, ``legs`` are the conditions of every leg of the scenario."""

    at: float
    legs: Mapping[str, LegConfig]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    seed: int
    legs: Mapping[str, LegConfig]
    phases: tuple[Phase, ...] = ()

    def at(self, t: float) -> Mapping[str, LegConfig]:
        """The conditions of every leg at ``t`` seconds from the start."""
        legs = self.legs
        for phase in self.phases:
            if phase.at <= t:
                legs = phase.legs
        return legs


def builtin_scenarios() -> dict[str, Path]:
    """The scenarios shipped with interlive, by name (the file's stem)."""
    folder = resources.files("interlive.lab") / "scenarios"
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name.removesuffix(".toml")] = Path(str(entry))
    return dict(sorted(found.items()))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Read a scenario file, or a built-in scenario by name (``"5pct"``)."""
    path = Path(path_or_name)
    if not path.exists():
        builtin = builtin_scenarios().get(str(path_or_name))
        if builtin is None:
            names = ", ".join(builtin_scenarios())
            raise ScenarioError(f"{path}: no such file, nor a built-in scenario ({names})")
        path = builtin
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    return parse_scenario(text, source=str(path), default_name=path.stem)


def parse_scenario(
    text: str, *, source: str = "<scenario>", default_name: str = "scenario"
) -> Scenario:
    """Parse a scenario from TOML text; ``source`` prefixes every error."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: invalid TOML: {exc}") from exc
    return _Parser(source).scenario(document, default_name)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                place = f"{where}.{key}" if where else key
                raise self.error(place, f"unknown key (expected one of: {', '.join(allowed)})")

    def table(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where, f"must be a table, got {_kind(value)}")
        return value

    def scenario(self, document: Mapping[str, Any], default_name: str) -> Scenario:
        self.unknown_keys(document, _TOP_KEYS, "")
        name = document.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise self.error("name", f"must be a non-empty string, got {_kind(name)}")
        description = document.get("description", "")
        if not isinstance(description, str):
            raise self.error("description", f"must be a string, got {_kind(description)}")
        seed = document.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise self.error("seed", f"must be an integer, got {_kind(seed)}")
        state: dict[str, dict[str, dict[str, Any]]] = {}
        for leg in LEG_NAMES:
            if leg in document:
                state[leg] = {"up": {}, "down": {}}
                self.apply_leg(state[leg], document[leg], leg)
        if not state:
            raise self.error("", f"names no leg (expected {' and/or '.join(LEG_NAMES)})")
        legs = self.build(state, "")
        phases: list[Phase] = []
        raw_phases = document.get("phases", [])
        if not isinstance(raw_phases, list):
            raise self.error(
                "phases", f"must be an array of tables ([[phases]]), got {_kind(raw_phases)}"
            )
        previous = -math.inf
        for index, raw in enumerate(raw_phases):
            where = f"phases[{index}]"
            phase = self.table(raw, where)
            self.unknown_keys(phase, _PHASE_KEYS, where)
            if "at" not in phase:
                raise self.error(where, "missing key 'at' (seconds from the start)")
            at = self.number(phase["at"], f"{where}.at", minimum=0.0)
            if at <= previous:
                raise self.error(
                    f"{where}.at", f"must be later than the phase before ({previous} s)"
                )
            previous = at
            named = [leg for leg in LEG_NAMES if leg in phase]
            if not named:
                raise self.error(
                    where, f"changes no leg (add a [{where}.publisher] or .viewer table)"
                )
            for leg in named:
                self.apply_leg(
                    state.setdefault(leg, {"up": {}, "down": {}}), phase[leg], f"{where}.{leg}"
                )
            phases.append(Phase(at=at, legs=self.build(state, where)))
        return Scenario(
            name=name, description=description, seed=seed, legs=legs, phases=tuple(phases)
        )

    def apply_leg(self, leg: dict[str, dict[str, Any]], raw: object, where: str) -> None:
        table = self.table(raw, where)
        self.unknown_keys(table, (*_FIELDS, *DIRECTIONS), where)
        shared = {k: v for k, v in table.items() if k not in DIRECTIONS}
        shared_values = self.values(shared, where)
        for direction in DIRECTIONS:
            _update(leg[direction], shared_values)
        for direction in DIRECTIONS:
            if direction in table:
                place = f"{where}.{direction}"
                own = self.table(table[direction], place)
                self.unknown_keys(own, tuple(_FIELDS), place)
                _update(leg[direction], self.values(own, place))

    def build(
        self, state: Mapping[str, Mapping[str, Mapping[str, Any]]], where: str
    ) -> dict[str, LegConfig]:
        legs: dict[str, LegConfig] = {}
        for leg, directions in state.items():
            configs: dict[str, ImpairmentConfig] = {}
            for direction, values in directions.items():
                place = f"{where}.{leg}.{direction}" if where else f"{leg}.{direction}"
                try:
                    configs[direction] = ImpairmentConfig(**values)
                except ValueError as exc:
                    raise self.error(place, str(exc)) from exc
            legs[leg] = LegConfig(up=configs["up"], down=configs["down"])
        return legs

    def values(self, table: Mapping[str, Any], where: str) -> dict[str, Any]:
        """TOML keys of one table to ImpairmentConfig fields, each checked."""
        if all(model in table for model in _LOSS_MODELS):
            raise self.error(where, "set either loss or gilbert_elliott, not both")
        out: dict[str, Any] = {}
        for key, value in table.items():
            place = f"{where}.{key}"
            name = _FIELDS[key]
            if key in ("loss", "reorder_probability", "duplicate"):
                out[name] = self.number(value, place, minimum=0.0, maximum=1.0)
            elif key in ("delay_ms", "jitter_ms", "reorder_delay_ms"):
                out[name] = self.number(value, place, minimum=0.0) / 1000.0
            elif key == "rate_kbps":
                rate = self.number(value, place, minimum=0.0)
                out[name] = rate * 1000.0 if rate > 0.0 else None
            elif key == "queue_bytes":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise self.error(place, f"must be a positive integer, got {_kind(value)}")
                out[name] = value
            elif key == "reorder":
                if not isinstance(value, bool):
                    raise self.error(place, f"must be true or false, got {_kind(value)}")
                out[name] = value
            elif key == "jitter_distribution":
                if value not in ("normal", "uniform"):
                    raise self.error(place, f'must be "normal" or "uniform", got {_kind(value)}')
                out[name] = value
            else:
                out[name] = self.gilbert_elliott(value, place)
        return out

    def gilbert_elliott(self, raw: object, where: str) -> GilbertElliott:
        table = self.table(raw, where)
        if "mean_burst" in table or "loss" in table:
            self.unknown_keys(table, ("loss", "mean_burst"), where)
            for key in ("loss", "mean_burst"):
                if key not in table:
                    raise self.error(where, f"missing key {key!r} (give loss and mean_burst)")
            loss = self.number(table["loss"], f"{where}.loss", minimum=0.0, maximum=1.0)
            burst = self.number(table["mean_burst"], f"{where}.mean_burst", minimum=1.0)
            try:
                return GilbertElliott.from_mean(loss, burst)
            except ValueError as exc:
                raise self.error(where, str(exc)) from exc
        self.unknown_keys(table, ("p", "r", "loss_good", "loss_bad"), where)
        for key in ("p", "r"):
            if key not in table:
                raise self.error(
                    where, f"missing key {key!r} (give p and r, or loss and mean_burst)"
                )
        values = {
            key: self.number(table[key], f"{where}.{key}", minimum=0.0, maximum=1.0)
            for key in ("p", "r", "loss_good", "loss_bad")
            if key in table
        }
        try:
            return GilbertElliott(**values)
        except ValueError as exc:
            raise self.error(where, str(exc)) from exc

    def number(
        self, value: object, where: str, *, minimum: float, maximum: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, f"must be a number, got {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.error(where, f"must be finite, got {value!r}")
        if number < minimum or (maximum is not None and number > maximum):
            bound = (
                f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            )
            raise self.error(where, f"must be {bound}, got {value!r}")
        return number


def _update(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Layer ``values`` over ``target``: one loss model replaces the other."""
    if "loss" in values:
        target.pop("gilbert_elliott", None)
    if "gilbert_elliott" in values:
        target.pop("loss", None)
    target.update(values)


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)
