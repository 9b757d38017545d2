"""The ``interlive`` command: serve, token, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from interlive.auth import DEFAULT_TTL, Role, mint_token, resolve_secret
from interlive.config import ServerConfig, default_data_dir
from interlive.worker.settings import DEFAULT_MAX_PLAYOUT_DELAY, LOSS_PROTECTION_CHOICES


def _serve(args: argparse.Namespace) -> int:
    config = ServerConfig(
        host=args.host,
        http_port=args.http_port,
        udp_port=args.udp_port,
        udp_bind=args.udp_bind,
        announced_ip=args.announced_ip,
        workers=args.workers or ServerConfig().workers,
        data_dir=Path(args.data_dir),
        secret=args.secret,
        max_publish_bitrate=args.max_publish_bitrate,
        loss_protection=args.loss_protection,
        max_playout_delay=args.max_playout_delay / 1000,
        log_level=args.log_level,
        dev=args.dev,
        webhooks=tuple(args.webhook or ()),
        rtmp_port=args.rtmp_port,
    )
    try:
        config.media_settings()  # the media options' own checks, before anything starts
    except ValueError as exc:
        print(f"interlive serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    from interlive.server.run import serve

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    try:
        asyncio.run(serve(config))
    except (RuntimeError, TimeoutError, OSError) as exc:
        logging.getLogger("interlive").error("cannot serve: %s", exc)
        return 1
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        secret, _ = resolve_secret(args.secret, Path(args.data_dir), create=False)
    except FileNotFoundError as exc:
        print(f"interlive token: {exc}", file=sys.stderr)
        return 2
    print(mint_token(secret, room=args.room, identity=args.identity, role=args.role, ttl=args.ttl))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from interlive.lab import run_lab

    return run_lab(args)


def _bench_media(args: argparse.Namespace) -> int:
    from interlive.bench.media_cost import main as media_main

    return media_main(args)


def _bench(args: argparse.Namespace) -> int:
    from interlive.bench import run_bench

    return run_bench(args)


def _bench_mix(args: argparse.Namespace) -> int:
    if args.av_drift:
        from interlive.bench.avdrift import main as avdrift_main

        return avdrift_main(args)
    return _bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlive", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_dir = str(default_data_dir())

    serve = sub.add_parser("serve", help="run the server on embedded defaults")
    serve.add_argument(
        "--host", default="127.0.0.1", help="HTTP bind address (default %(default)s)"
    )
    serve.add_argument(
        "--http-port", type=int, default=8080, help="HTTP port (default %(default)s)"
    )
    serve.add_argument(
        "--udp-port",
        type=int,
        default=40000,
        help="media UDP port of worker 0; worker i uses port+i; 0 picks free ports "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--rtmp-port",
        type=int,
        default=1935,
        help="RTMP ingest port on --host (rtmp://HOST:PORT/live/ROOM/IDENTITY?token=...); "
        "0 turns RTMP off (default %(default)s)",
    )
    serve.add_argument(
        "--udp-bind",
        default="127.0.0.1",
        help="media bind address; bind the address peers reach, since ICE checks "
        "the reply's source (default %(default)s)",
    )
    serve.add_argument(
        "--announced-ip",
        default=None,
        help="IP put in ICE candidates, for NAT (default: the --udp-bind address; "
        "127.0.0.1 when bound to 0.0.0.0)",
    )
    serve.add_argument(
        "--workers", type=int, default=0, help="media worker processes (default: one per core)"
    )
    serve.add_argument("--data-dir", default=data_dir, help="state directory (default %(default)s)")
    serve.add_argument(
        "--secret",
        default=None,
        help="token secret (default: $INTERLIVE_SECRET, else DATA_DIR/secret, created); "
        "write --secret=VALUE when VALUE starts with '-'",
    )
    serve.add_argument(
        "--max-publish-bitrate",
        type=int,
        default=2_500_000,
        help="video bitrate cap asked of publishers, bit/s (default %(default)s)",
    )
    serve.add_argument(
        "--loss-protection",
        default="policy",
        choices=LOSS_PROTECTION_CHOICES,
        help="how lost packets are repaired for viewers: policy chooses per viewer from its "
        "loss and RTT; none, nack, fec or red force one tool (default %(default)s)",
    )
    serve.add_argument(
        "--max-playout-delay",
        type=int,
        default=round(DEFAULT_MAX_PLAYOUT_DELAY * 1000),
        metavar="MS",
        help="the longest render delay the policy may ask of a lossy browser viewer so that "
        "retransmissions land in time, ms; 0 never asks (default %(default)s)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--dev", action="store_true", help="development mode")
    serve.add_argument(
        "--webhook",
        action="append",
        metavar="URL",
        help="POST the rooms' events, signed with the secret, to URL (repeatable)",
    )
    serve.set_defaults(func=_serve)

    token = sub.add_parser("token", help="print an access token (HS256 JWT)")
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True)
    token.add_argument("--role", default="host", choices=[r.value for r in Role])
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="lifetime in seconds")
    token.add_argument("--secret", default=None)
    token.add_argument("--data-dir", default=data_dir)
    token.set_defaults(func=_token)

    from interlive.lab import add_lab_arguments

    lab = sub.add_parser(
        "lab", help="UDP impairment proxy: loss, bursts, delay, jitter, reordering, rate caps"
    )
    add_lab_arguments(lab)
    lab.set_defaults(func=_lab)

    bench = sub.add_parser("bench", help="run a benchmark and report numbers")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    fanout = bench_sub.add_parser("fanout", help="SFU fan-out: one publisher, N SRTP subscribers")
    fanout.add_argument("--subscribers", type=int, default=100)
    fanout.add_argument("--duration", type=float, default=10.0)
    fanout.add_argument("--workers", type=int, default=1, help="subscriber load processes")
    fanout.add_argument("--output", default=None, help="append the result to this markdown file")
    forward = bench_sub.add_parser(
        "forward", help="in-process cost of forwarding one packet to one subscriber"
    )
    forward.add_argument("--subscribers", type=int, default=500)
    forward.add_argument("--packets", type=int, default=200)
    forward.add_argument("--rounds", type=int, default=5)
    forward.add_argument("--output", default=None, help="append the result to this markdown file")
    loss = bench_sub.add_parser(
        "loss",
        help="loss protection: none/NACK/FEC/RED/policy against loss and RTT, "
        "Chromium and SDK viewers behind the impairment proxy",
    )
    loss.add_argument(
        "--loss",
        action="append",
        default=None,
        help="viewer downlink loss in %%, comma-separated; 'b' marks bursty loss of mean "
        "burst 3 ('10b'), 'bN' of mean burst N (default 0,5,10,20,30,10b)",
    )
    loss.add_argument(
        "--rtt", action="append", default=None, help="RTTs in ms, comma-separated (default 50,200)"
    )
    loss.add_argument(
        "--protection",
        action="append",
        default=None,
        help="server modes, comma-separated: none, nack, fec, red, policy (default all)",
    )
    loss.add_argument(
        "--duration", type=float, default=None, help="seconds measured per cell (default 15)"
    )
    loss.add_argument(
        "--settle", type=float, default=10.0, help="seconds of loss before each window (default 10)"
    )
    loss.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 20%% loss at 100 ms RTT, none and policy, 8 s per cell",
    )
    loss.add_argument(
        "--no-goal-cells",
        action="store_true",
        help="do not add the goal cells (20%% and 30%% loss at 100 ms RTT)",
    )
    loss.add_argument(
        "--viewers", choices=["both", "chromium", "sdk"], default="both", help="(default both)"
    )
    loss.add_argument("--seed", type=int, default=1, help="seed of the loss draws (default 1)")
    loss.add_argument("--output", default=None, help="append the report to this markdown file")
    loss.add_argument(
        "--plot", default="docs/loss.png", help="PNG to write (default %(default)s; '' for none)"
    )
    loss.add_argument("--json", default=None, help="also save the raw results to this file")
    loss.add_argument(
        "--from-json", default=None, help="render the report and plot from saved results only"
    )
    latency = bench_sub.add_parser(
        "latency",
        help="glass-to-glass latency: WebRTC, RTMP push/play, HTTP-FLV, HLS, nginx-rtmp baseline",
    )
    latency.add_argument("--duration", type=float, default=20.0, help="seconds per path")
    latency.add_argument("--paths", default=None, help="comma-separated paths (default all)")
    latency.add_argument("--output", default=None, help="append the report to this markdown file")
    latency.add_argument("--plot", default="docs/latency.png", help="PNG to write ('' for none)")
    latency.add_argument("--json", default=None, help="also save the raw results to this file")
    latency.add_argument(
        "--loss",
        type=float,
        default=0.0,
        metavar="PERCENT",
        help="random loss each way on a lab link in front of the server (TUN, every protocol)",
    )
    latency.add_argument(
        "--rtt", type=float, default=0.0, metavar="MS", help="round-trip delay of that link"
    )
    latency.add_argument("--from-json", default=None, help="render saved results only")
    media = bench_sub.add_parser(
        "media", help="CPU of AAC<->Opus and of the FLV feed; Opus FEC against PLC under loss"
    )
    media.add_argument("--seconds", type=float, default=10.0, help="seconds of media per case")
    media.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    media.add_argument("--output", default=None, help="append the report to this markdown file")
    media.set_defaults(func=_bench_media)
    mix = bench_sub.add_parser("mix", help="bypass-live mixer: CPU per job and realtime factor")
    mix.add_argument("--inputs", default="2,4,9", help="input counts, comma-separated")
    mix.add_argument("--input-size", default="640x360", help="input VP8 size WxH (default 640x360)")
    mix.add_argument("--duration", type=float, default=10.0, help="seconds of output per count")
    mix.add_argument("--output", default=None, help="append the result to this markdown file")
    mix.add_argument(
        "--e2e", action="store_true", help="end-to-end delay: a server, a publisher, HTTP-FLV"
    )
    mix.add_argument(
        "--av-drift",
        action="store_true",
        help="A/V offset of the mix's output over time (--duration: seconds of the run)",
    )
    mix.set_defaults(func=_bench_mix)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
