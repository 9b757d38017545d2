"""Benchmarks run by ``interlive bench``: synthetic WebRTC load against a real server.

``fanout`` (:mod:`interlive.bench.fanout`): one publisher, N SRTP subscribers;
forwarded packets per second and per worker CPU-second, SFU-added latency,
added loss and the machine's loopback ``sendto`` ceiling.
``forward`` (:mod:`interlive.bench.forward`): the in-process cost of forwarding
one packet to one subscriber (rewrite, history, SRTP), case by case.
``loss`` (:mod:`interlive.bench.loss`): each loss-protection mode of the server
against loss and RTT on the viewer leg, with Chromium and SDK viewers behind
the impairment proxy; a table, the issue's goals and a PNG plot.
``latency`` (:mod:`interlive.bench.latency`): glass-to-glass latency of each
way in and out (WebRTC, RTMP push and play, HTTP-FLV) and of an nginx-rtmp
co-streaming baseline, read from the test pattern's frame code.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["run_bench"]


def run_bench(args: argparse.Namespace) -> int:
    """Dispatch ``interlive bench <name>``; returns the process exit status."""
    if args.bench == "fanout":
        from interlive.bench.fanout import main

        return main(args)
    if args.bench == "forward":
        from interlive.bench.forward import main as forward_main

        return forward_main(args)
    if args.bench == "loss":
        from interlive.bench.loss import main as loss_main

        return loss_main(args)
    if args.bench == "latency":
        from interlive.bench.latency import main as latency_main

        return latency_main(args)
    if args.bench == "mix":
        from interlive.bench.mix import main as mix_main

        return mix_main(args)
    print(f"interlive bench: unknown benchmark {args.bench!r}", file=sys.stderr)
    return 2
