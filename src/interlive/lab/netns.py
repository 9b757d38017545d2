"""Kernel-side impairment for tests: network namespaces, nftables drop, tbf rate caps.

The user-space proxy (:mod:`interlive.lab.proxy`) adds delay and jitter; this
module makes the kernel itself lose and throttle packets, on a private
network that cannot disturb the machine's own: two network namespaces joined
by a veth pair (``ip netns add``, ``ip link add ... type veth``), random drop
with an nftables rule (``numgen random mod 100 < N drop``) and a token bucket
(``tc qdisc ... tbf rate ... burst ... latency ...``).  The kernel here has no
netem (DESIGN.md), so these three are what it offers.

Everything is a context manager that undoes what it did, even when the body
fails; deleting a namespace removes its veth end, rules and qdiscs with it.
It needs root (CAP_NET_ADMIN) and the Debian packages iproute2 (``ip``,
``tc``) and nftables (``nft``); a missing tool raises
:class:`MissingToolError` naming the package to install.

Sockets inside a namespace: :meth:`Namespace.socket` creates the socket in a
short-lived thread that has joined the namespace with ``setns(2)`` (a network
namespace is per thread), so a test's own process can talk from one
namespace to the other without subprocesses.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "TOOL_PACKAGES",
    "CommandError",
    "MissingToolError",
    "Namespace",
    "NetnsPair",
    "netns_pair",
    "random_drop",
    "rate_limit",
    "require_tools",
    "run_command",
]

TOOL_PACKAGES: dict[str, str] = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables"}
_CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/run/netns"


class MissingToolError(RuntimeError):
    """A command this module needs is not installed; the message names its Debian package."""


class CommandError(RuntimeError):
    """A command failed; the message has the command line and its stderr."""


def require_tools(*names: str) -> None:
    """Raise :class:`MissingToolError` unless every tool in ``names`` is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        packages = sorted({TOOL_PACKAGES.get(name, name) for name in missing})
        raise MissingToolError(
            f"{', '.join(missing)} not found: install the Debian package(s) "
            f"{' '.join(packages)} (apt-get install {' '.join(packages)}; scripts/setup.sh does)"
        )


def run_command(*command: str) -> str:
    require_tools(command[0])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandError(
            f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout


@dataclass(frozen=True, slots=True)
class Namespace:
    """One end: a network namespace, its veth interface and that interface's address."""

    name: str
    interface: str
    address: str

    def run(self, *command: str) -> str:
        """Run ``command`` inside the namespace (``ip netns exec``); its stdout."""
        return run_command("ip", "netns", "exec", self.name, *command)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket that lives in this namespace (the caller closes it)."""
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def create() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"{_NETNS_DIR}/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        errno = ctypes.get_errno()
                        raise OSError(errno, f"setns into {self.name}: {os.strerror(errno)}")
                finally:
                    os.close(fd)
                made.append(socket.socket(family, kind))
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)

        thread = threading.Thread(target=create, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]


@dataclass(frozen=True, slots=True)
class NetnsPair:
    """Two namespaces ``a`` and ``b`` joined by one veth pair on a /30."""

    a: Namespace
    b: Namespace


@contextlib.contextmanager
def netns_pair(*, subnet: str = "10.201.0", tag: str | None = None) -> Iterator[NetnsPair]:
    """Create two namespaces joined by veth (``subnet``.1 and .2/30); delete them after.

    Names are unique (``il-<tag>-a``/``-b``, interfaces ``il<tag>a``/``b``;
    ``tag`` defaults to 8 random hex digits), so concurrent tests do not meet.
    """
    require_tools("ip")
    tag = tag or secrets.token_hex(4)
    if len(tag) > 12:
        raise ValueError(f"tag {tag!r} is longer than 12 characters (interface names max 15)")
    a = Namespace(f"il-{tag}-a", f"il{tag}a", f"{subnet}.1")
    b = Namespace(f"il-{tag}-b", f"il{tag}b", f"{subnet}.2")
    created: list[str] = []
    veth_in_root = False
    try:
        for ns in (a, b):
            run_command("ip", "netns", "add", ns.name)
            created.append(ns.name)
        run_command("ip", "link", "add", a.interface, "type", "veth", "peer", "name", b.interface)
        veth_in_root = True
        for ns in (a, b):
            run_command("ip", "link", "set", ns.interface, "netns", ns.name)
        veth_in_root = False
        for ns in (a, b):
            ns.run("ip", "link", "set", "lo", "up")
            ns.run("ip", "addr", "add", f"{ns.address}/30", "dev", ns.interface)
            ns.run("ip", "link", "set", ns.interface, "up")
        yield NetnsPair(a=a, b=b)
    finally:
        errors: list[str] = []
        if veth_in_root:
            with contextlib.suppress(CommandError):
                run_command("ip", "link", "del", a.interface)
        for name in reversed(created):
            try:
                run_command("ip", "netns", "del", name)
            except CommandError as exc:
                errors.append(str(exc))
        if errors:
            raise CommandError("; ".join(errors))


@contextlib.contextmanager
def random_drop(
    ns: Namespace | None,
    percent: float,
    *,
    protocol: str = "udp",
    source_port: int | None = None,
    dest_port: int | None = None,
) -> Iterator[None]:
    """Drop ``percent`` % of the ``protocol`` packets arriving in ``ns``, at random (nftables).

    ``ns`` None means this host's own namespace (loopback traffic passes
    prerouting too); ``source_port`` limits the drop to packets from that
    port, e.g. the server's media towards its viewers, ``dest_port`` to
    packets to it, e.g. publishers' media towards the server.

    The rule is ``meta l4proto <protocol> numgen random mod 100 < N drop`` in
    a prerouting chain of a table of its own (``mod 10000`` for fractional
    percentages; a plain ``drop`` at 100 %); the table is deleted on exit.
    The drop is on the way in, like a lossy link: dropping on a host's own output would fail the
    sender's ``sendto`` with EPERM instead.
    """
    require_tools("ip", "nft")
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be in [0, 100], got {percent!r}")
    if float(percent).is_integer():
        modulus, threshold = 100, int(percent)
    else:
        modulus, threshold = 10_000, round(percent * 100)
    run = run_command if ns is None else ns.run
    match: list[str] = []
    if source_port is not None:
        match += [protocol, "sport", str(source_port)]
    if dest_port is not None:
        match += [protocol, "dport", str(dest_port)]
    match = match or ["meta", "l4proto", protocol]
    table = f"interlive_drop_{secrets.token_hex(4)}"
    run("nft", "add", "table", "inet", table)
    try:
        run(
            "nft", "add", "chain", "inet", table, "in",
            "{ type filter hook prerouting priority -300; policy accept; }",
        )  # fmt: skip
        # nft refuses "numgen random mod 100 < 100": a total outage is a plain drop
        chance = [] if percent == 100 else ["numgen", "random", "mod", str(modulus), "<",
                                              str(threshold)]  # fmt: skip
        run("nft", "add", "rule", "inet", table, "in", *match, *chance, "drop")
        yield
    finally:
        with contextlib.suppress(CommandError):
            run("nft", "delete", "table", "inet", table)


@contextlib.contextmanager
def rate_limit(
    ns: Namespace,
    rate: int,
    *,
    burst: int | None = None,
    latency: float = 0.05,
    device: str | None = None,
) -> Iterator[None]:
    """Cap what ``ns`` sends to ``rate`` bits/s with a tbf qdisc; removed on exit.

    ``burst`` (bytes, default 10 ms of ``rate`` and at least 3000) is the
    bucket; packets that would wait more than ``latency`` seconds in the
    queue are dropped.  ``device`` defaults to the namespace's veth.
    """
    require_tools("ip", "tc")
    if rate <= 0:
        raise ValueError(f"rate must be > 0 bits/s, got {rate!r}")
    if latency <= 0:
        raise ValueError(f"latency must be > 0 s, got {latency!r}")
    bucket = burst if burst is not None else max(3000, rate // 800)
    dev = device or ns.interface
    ns.run(
        "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
        "rate", f"{rate}bit", "burst", str(bucket), "latency", f"{latency * 1000:g}ms",
    )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(CommandError):
            ns.run("tc", "qdisc", "del", "dev", dev, "root")
