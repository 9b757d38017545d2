"""An impaired IP link between this host and a network namespace, pumped in user space.

The UDP proxy (:mod:`interlive.lab.proxy`) impairs one UDP flow and the
kernel helpers (:mod:`interlive.lab.netns`) drop and throttle but cannot
delay (no netem on this kernel, DESIGN.md).  Comparing WebRTC with RTMP,
HTTP-FLV and HLS on the same bad network needs more: TCP must lose the same
packets and wait the same round trips as RTP, because TCP's cost under loss
(head-of-line blocking, retransmission after a round trip, a congestion
window that halves) is the whole difference.  So this module puts every IP
packet between the host and a namespace through user space:

* a namespace ``il-<tag>`` whose only link is a TUN device (point-to-point,
  ``<subnet>.2``), and a TUN device on the host (``<subnet>.1``);
* a pump *process* (its own GIL: the benchmark's threads cannot delay it)
  that reads a packet from one device, passes it through a sans-IO
  :class:`~interlive.lab.impair.Impairment` of that direction, and writes it
  to the other device when its delivery time comes.

Loss then hits TCP segments as it hits RTP packets, and delay stretches TCP's
ACK clock as it stretches RTCP's.  A server started in the namespace
(:meth:`ImpairedNamespace.command`) is reached from the host at
:attr:`ImpairedNamespace.address`; every packet of every protocol crosses the
link.  Both TUN devices carry plain IP (``IFF_NO_PI``) without offloads, so
packets are at most the MTU (1500) and each is lost or delayed on its own.

Needs root (CAP_NET_ADMIN), ``/dev/net/tun`` and iproute2.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import multiprocessing.connection
import os
import random
import secrets
import select
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from interlive.lab.impair import Impairment, ImpairmentConfig, ImpairmentStats
from interlive.lab.netns import CommandError, require_tools, run_command

__all__ = ["ImpairedNamespace", "LinkStats", "impaired_namespace"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_MTU = 1500
#: the pump waits at most this long in poll(): how soon it sees a stop request
_IDLE = 0.2


@dataclass(frozen=True, slots=True)
class LinkStats:
    """What the link did, per direction (a snapshot taken when the link closed)."""

    to_namespace: ImpairmentStats
    from_namespace: ImpairmentStats


@dataclass(slots=True)
class ImpairedNamespace:
    """The namespace end of the link: its name and address, and the host's address."""

    name: str
    address: str
    host_address: str
    #: filled in when the link closes
    stats: LinkStats | None = None

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec``, which execs it in place)."""
        return ["ip", "netns", "exec", self.name, *argv]


def _open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _pump(
    host_device: str,
    ns_device: str,
    to_ns: ImpairmentConfig,
    from_ns: ImpairmentConfig,
    seed: int,
    conn: Connection,
) -> None:
    """The pump process: open both devices, report ready, move packets until told to stop."""
    try:
        host_fd, ns_fd = _open_tun(host_device), _open_tun(ns_device)
    except OSError as exc:
        conn.send(("error", f"opening TUN devices: {exc}"))
        return
    rng = random.Random(seed)
    # (read from, impairment, write to): host -> namespace, namespace -> host
    directions = (
        (host_fd, Impairment(to_ns, random.Random(rng.random())), ns_fd),
        (ns_fd, Impairment(from_ns, random.Random(rng.random())), host_fd),
    )
    poller = select.poll()
    for fd in (host_fd, ns_fd, conn.fileno()):
        poller.register(fd, select.POLLIN)
    conn.send(("ready", None))
    while True:
        now = time.monotonic()
        timers = [t for _, imp, _ in directions if (t := imp.get_timer()) is not None]
        wait = min([_IDLE, *(max(0.0, t - now) for t in timers)])
        ready = {fd for fd, _ in poller.poll(wait * 1000.0)}
        if conn.fileno() in ready:
            break
        now = time.monotonic()
        for source, impairment, sink in directions:
            if source in ready:
                while True:
                    try:
                        packet = os.read(source, 65_535)
                    except BlockingIOError:
                        break
                    impairment.send(packet, now)
            for packet in impairment.receive_ready(now):
                # a full device queue drops the packet, as a full router queue would
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(sink, packet)
    conn.send(("stats", LinkStats(directions[0][1].stats(), directions[1][1].stats())))
    os.close(host_fd)
    os.close(ns_fd)


@contextlib.contextmanager
def impaired_namespace(
    to_namespace: ImpairmentConfig,
    from_namespace: ImpairmentConfig,
    *,
    subnet: str = "10.202.0",
    seed: int = 1,
    tag: str | None = None,
) -> Iterator[ImpairedNamespace]:
    """A namespace reached from this host through an impaired link; removed on exit.

    ``to_namespace`` applies to packets from the host into the namespace,
    ``from_namespace`` to the way back; e.g. 50 ms ``delay`` each way is a
    100 ms round trip.  Names are unique per ``tag`` (8 random hex digits by
    default), so links can coexist on different ``subnet`` values.
    """
    require_tools("ip")
    if not os.path.exists("/dev/net/tun"):
        raise CommandError("/dev/net/tun is missing: the kernel has no TUN support")
    tag = tag or secrets.token_hex(4)
    if len(tag) > 12:
        raise ValueError(f"tag {tag!r} is longer than 12 characters (interface names max 15)")
    ns = ImpairedNamespace(f"il-{tag}", f"{subnet}.2", f"{subnet}.1")
    host_device, ns_device = f"il{tag}h", f"il{tag}n"
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    pump = context.Process(
        target=_pump,
        args=(host_device, ns_device, to_namespace, from_namespace, seed, child),
        name=f"tunlink-{tag}",
        daemon=True,
    )
    namespace_made = False
    pump.start()
    try:
        if not multiprocessing.connection.wait([parent, pump.sentinel], 30.0) or not parent.poll():
            raise CommandError(f"the TUN pump did not start (exit code {pump.exitcode})")
        kind, detail = parent.recv()
        if kind != "ready":
            raise CommandError(str(detail))
        run_command("ip", "netns", "add", ns.name)
        namespace_made = True
        run_command("ip", "link", "set", ns_device, "netns", ns.name)
        run_command("ip", "addr", "add", ns.host_address, "peer", ns.address, "dev", host_device)
        run_command("ip", "link", "set", host_device, "mtu", str(_MTU), "up")
        inside = ["ip", "netns", "exec", ns.name]
        run_command(*inside, "ip", "link", "set", "lo", "up")
        run_command(
            *inside, "ip", "addr", "add", ns.address, "peer", ns.host_address, "dev", ns_device
        )
        run_command(*inside, "ip", "link", "set", ns_device, "mtu", str(_MTU), "up")
        run_command(*inside, "ip", "route", "add", "default", "dev", ns_device)
        yield ns
    finally:
        if pump.is_alive():
            parent.send("stop")
            if parent.poll(5.0):
                with contextlib.suppress(EOFError):
                    kind, detail = parent.recv()
                    if kind == "stats":
                        ns.stats = detail
            pump.join(5.0)
            if pump.is_alive():
                pump.kill()
                pump.join(5.0)
        parent.close()
        if namespace_made:
            with contextlib.suppress(CommandError):
                run_command("ip", "netns", "del", ns.name)
