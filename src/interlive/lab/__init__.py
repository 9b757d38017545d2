"""The network impairment lab: bad networks on demand, in-process or on real sockets.

* :mod:`interlive.lab.impair`: a sans-IO impairment (loss, Gilbert-Elliott
  bursts, delay, jitter, reordering, duplication, a rate cap with a queue),
  for simulated-time tests and for the proxy.
* :mod:`interlive.lab.scenario`: scenarios in TOML (legs, directions, timed
  phases); examples ship in ``interlive/lab/scenarios/``.
* :mod:`interlive.lab.proxy`: a UDP proxy applying a scenario to real traffic;
  ``interlive lab`` runs it (:func:`run_lab`).
* :mod:`interlive.lab.netns`: kernel-side impairment for tests: network
  namespaces joined by veth, nftables random drop, tbf rate caps.
* :mod:`interlive.lab.tunlink`: an impaired IP link to a network namespace
  (TUN devices and a pump process), so TCP and UDP cross the same loss and
  delay.

This module imports nothing heavy, so the CLI can add the arguments cheaply.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

__all__ = ["add_lab_arguments", "run_lab"]


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments :func:`run_lab` reads to ``interlive lab``'s parser."""
    parser.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address the client sends to (the proxy's side facing the client)",
    )
    parser.add_argument(
        "--target", required=True, metavar="HOST:PORT", help="address the proxy relays to"
    )
    parser.add_argument(
        "--scenario",
        required=True,
        metavar="FILE|NAME",
        help="scenario TOML file, or a built-in scenario: "
        "good, 5pct, 20pct-100ms-rtt, bursty-10pct, shrinking-bandwidth, loss-step",
    )
    parser.add_argument(
        "--leg",
        choices=("publisher", "viewer", "both"),
        default="both",
        help="which leg of the scenario to apply; both: publisher then viewer in series "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the scenario's)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: run until interrupted)",
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="print counters this often (default: only when stopping)",
    )


def run_lab(args: argparse.Namespace) -> int:
    """``interlive lab``: run the impairment proxy; returns the exit status.

    Reads ``args.listen``, ``args.target``, ``args.scenario`` and, if present,
    ``args.leg`` (default both), ``args.seed``, ``args.duration`` and
    ``args.stats_interval`` (see :func:`add_lab_arguments`).
    """
    from interlive.lab.proxy import build_impairments, parse_address, run_scenario
    from interlive.lab.scenario import ScenarioError, load_scenario

    leg = getattr(args, "leg", None) or "both"
    seed = getattr(args, "seed", None)
    duration = getattr(args, "duration", None)
    stats_interval = getattr(args, "stats_interval", None) or 0.0
    try:
        listen = parse_address(args.listen)
        target = parse_address(args.target)
        scenario = load_scenario(args.scenario)
        build_impairments(scenario, leg, seed)  # validates the leg before binding
    except (ValueError, ScenarioError) as exc:
        print(f"interlive lab: {exc}", file=sys.stderr)
        return 2
    if duration is not None and duration <= 0:
        print("interlive lab: --duration must be > 0", file=sys.stderr)
        return 2
    if stats_interval < 0:
        print("interlive lab: --stats-interval must be >= 0", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            run_scenario(
                scenario,
                listen=listen,
                target=target,
                leg=leg,
                seed=seed,
                duration=duration,
                stats_interval=stats_interval,
            )
        )
    except OSError as exc:
        print(f"interlive lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
