"""``interlive bench forward``: the per-packet cost of the SFU's forwarding path, in process.

One UpTrack fans real VP8-shaped packets out to N DownTracks whose transport
only SRTP-protects (AES-GCM keys from a real DTLS handshake): no sockets, so
the numbers isolate the Python and libsrtp work per packet per subscriber.
Cases run side by side in one process, since ratios beat absolute times on a
noisy machine:

- ``fast``: the subscriber's header-extension ids equal the publisher's;
- ``remap``: the packet carries an extension that must be dropped (a
  publisher's MID, sent until its first RTCP report), so the header is rebuilt;
- ``red``: audio for a viewer whose loss turned RED on (RFC 2198 wrapping);
- ``delay``: video for a lossy viewer the policy asked to wait: every packet
  carries the playout-delay extension, so its header is rebuilt too;
- ``rewrite only``: the header rewrite alone, for scale.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from interlive.rtp import extensions as ext
from interlive.rtp.packet import RtpPacket, rewrite_rtp
from interlive.rtp.rtcp import ReportBlock, RtcpPacket
from interlive.sfu.metrics import WorkerCounters
from interlive.sfu.tracks import Codec, DownTrack, UpTrack
from interlive.transport.dtls import Certificate, DtlsEndpoint
from interlive.transport.srtp import SrtpContext


def _srtp() -> SrtpContext:
    a, b = Certificate.generate(), Certificate.generate()
    server = DtlsEndpoint(
        a.make_context(), is_server=True, remote_fingerprints=[("sha-256", b.fingerprint())]
    )
    client = DtlsEndpoint(
        b.make_context(), is_server=False, remote_fingerprints=[("sha-256", a.fingerprint())]
    )
    client.start(0.0)
    for _ in range(10):
        for d in client.datagrams_to_send():
            server.receive(d, 0.0)
        for d in server.datagrams_to_send():
            client.receive(d, 0.0)
    assert server.srtp_keys is not None, server.failure
    return SrtpContext(server.srtp_keys)


class _ProtectingSink:
    def __init__(self, srtp: SrtpContext) -> None:
        self.protect = srtp.protect_rtp
        self.sent = 0

    def send_rtp(self, packet: bytes) -> None:
        self.protect(packet)
        self.sent += 1

    def send_rtcp(self, packets: Sequence[RtcpPacket]) -> None:
        pass


def _fanout_case(
    srtp: SrtpContext,
    subscribers: int,
    packets: int,
    *,
    kind: str,
    extensions: dict[int, bytes],
    lossy: bool = False,
) -> float:
    """Microseconds per packet per subscriber; ``lossy`` viewers report 25 % loss first
    (RED on for audio; for video a playout delay, the viewers having the extension)."""
    counters = WorkerCounters()
    sink = _ProtectingSink(srtp)
    if kind == "video":
        codecs, sub_codecs = [Codec(96, "video/VP8", 90000)], [Codec(96, "video/VP8", 90000)]
        body = bytes([0x10, 0x01, 0, 0]) + b"x" * 1100
        key = bytes([0x10, 0x00, 0, 0]) + b"x" * 1100
        step = 3000
    else:
        codecs = [Codec(111, "audio/opus", 48000, 2)]
        sub_codecs = [Codec(111, "audio/opus", 48000, 2), Codec(63, "audio/red", 48000, 2)]
        body = key = b"a" * 100
        step = 960
    up = UpTrack(
        identity="pub",
        kind=kind,
        ssrc=1,
        codecs=codecs,
        extensions={ext.ABS_SEND_TIME: 2, ext.MID: 4},
        upstream=sink,
        rtcp_ssrc=5,
        counters=counters,
    )
    downs = []
    for i in range(subscribers):
        down = DownTrack(
            identity=f"s{i}",
            kind=kind,
            mid="1",
            ssrc=100 + i,
            codecs=sub_codecs,
            extensions={ext.ABS_SEND_TIME: 2, ext.PLAYOUT_DELAY: 6},
            transport=sink,
            counters=counters,
        )
        down.attach(up, 0.0)
        downs.append(down)
        if lossy:  # two reports a second apart turn the protection on
            for now, highest, lost in ((0.0, 1000, 0), (1.0, 1050, 13)):  # 25 % lost
                down.on_report_block(
                    ReportBlock(
                        ssrc=100 + i,
                        fraction_lost=64,
                        packets_lost=lost,
                        highest_sequence=highest,
                        jitter=0,
                        lsr=0,
                        dlsr=0,
                    ),
                    now,
                )

    def packet(seq: int, payload: bytes) -> RtpPacket:
        raw = RtpPacket(
            payload_type=codecs[0].payload_type,
            sequence_number=seq,
            timestamp=seq * step,
            ssrc=1,
            extension_profile=0xBEDE,
            extensions=extensions,
            payload=payload,
        )
        return RtpPacket.parse(bytes(raw))

    up.on_rtp(packet(0, key), 0.0)  # video starts on a keyframe
    batch = [packet(seq, body) for seq in range(1, packets + 1)]
    start = time.perf_counter()
    for i, p in enumerate(batch):
        up.on_rtp(p, 0.01 * (i + 1))
    elapsed = time.perf_counter() - start
    # a cost is only meaningful if every packet reached every subscriber, in the form named
    if sink.sent != (packets + 1) * subscribers:
        raise RuntimeError(f"{sink.sent} packets forwarded, expected {(packets + 1) * subscribers}")
    if lossy and kind == "audio" and counters.red_sent != (packets + 1) * subscribers:
        raise RuntimeError(f"{counters.red_sent} RED packets, expected every audio packet")
    if (
        lossy
        and kind == "video"
        and not all(d.protection.playout_delay > 0 and d.fec_encoder is None for d in downs)
    ):
        raise RuntimeError("the lossy video viewers were not asked to wait (or got FEC)")
    return elapsed / (packets * subscribers) * 1e6


def _rewrite_only(packets: int) -> float:
    data = bytes(
        RtpPacket(
            payload_type=96,
            sequence_number=1,
            ssrc=1,
            extension_profile=0xBEDE,
            extensions={2: b"abc"},
            payload=b"x" * 1100,
        )
    )
    start = time.perf_counter()
    for i in range(packets):
        rewrite_rtp(data, ssrc=9, sequence_number=i, timestamp=i, payload_type=100)
    return (time.perf_counter() - start) / packets * 1e6


def run(subscribers: int, packets: int, rounds: int) -> dict[str, list[float]]:
    srtp = _srtp()
    cases: dict[str, Callable[[], float]] = {
        "fast": lambda: _fanout_case(
            srtp, subscribers, packets, kind="video", extensions={2: b"\x01\x02\x03"}
        ),
        "remap": lambda: _fanout_case(
            srtp, subscribers, packets, kind="video", extensions={2: b"\x01\x02\x03", 4: b"1"}
        ),
        "red": lambda: _fanout_case(
            srtp, subscribers, packets, kind="audio", extensions={2: b"\x01\x02\x03"}, lossy=True
        ),
        "delay": lambda: _fanout_case(
            srtp, subscribers, packets, kind="video", extensions={2: b"\x01\x02\x03"}, lossy=True
        ),
        "rewrite only": lambda: _rewrite_only(packets * subscribers),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved rounds: drift hits every case alike
        for name, case in cases.items():
            results[name].append(case())
    return results


def main(args: argparse.Namespace) -> int:
    results = run(args.subscribers, args.packets, args.rounds)
    command = (
        f"interlive bench forward --subscribers {args.subscribers} --packets {args.packets} "
        f"--rounds {args.rounds}" + (f" --output {args.output}" if args.output else "")
    )
    lines = [
        f"#### Forwarding cost in process ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command}`; Python {platform.python_version()}.",
        "",
        "| case | us per packet per subscriber (median of rounds) | all rounds |",
        "|---|---|---|",
    ]
    for name, values in results.items():
        median = sorted(values)[len(values) // 2]
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {median:.2f} | {rounds} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with Path(args.output).open("a") as f:
            f.write("\n" + text)
    return 0
