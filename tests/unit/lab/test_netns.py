"""Kernel impairment for real: namespaces joined by veth, nftables drop, tbf rate.

Every test makes its own uniquely named namespaces and removes them, even on
failure.  They need root and the Debian packages iproute2 and nftables; a
missing tool fails the test with the package's name (never a skip), so a
machine without them is noticed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from interlive.lab.netns import (
    MissingToolError,
    NetnsPair,
    netns_pair,
    random_drop,
    rate_limit,
    require_tools,
)

PORT = 5000


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    require_tools("ip", "tc", "nft")
    with netns_pair() as made:
        yield made
    assert made.a.name not in _namespaces()


class Link:
    """A UDP socket in each namespace: ``a`` sends to ``b``."""

    def __init__(self, pair: NetnsPair) -> None:
        self.to = (pair.b.address, PORT)
        self.rx = pair.b.socket()
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.rx.bind(self.to)
        self.rx.setblocking(False)
        self.tx = pair.a.socket()
        self.received: list[tuple[float, int]] = []

    def drain(self) -> None:
        while True:
            try:
                data = self.rx.recv(65536)
            except BlockingIOError:
                return
            self.received.append((time.monotonic(), len(data)))

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


@pytest.fixture
def link(pair: NetnsPair) -> Iterator[Link]:
    made = Link(pair)
    yield made
    made.close()


def _send(link: Link, count: int, size: int = 200) -> int:
    """Send ``count`` datagrams, draining as we go; how many arrived."""
    before = len(link.received)
    for i in range(count):
        link.tx.sendto(bytes(size), link.to)
        if i % 100 == 99:
            link.drain()
    time.sleep(0.05)
    link.drain()
    return len(link.received) - before


def test_namespaces_are_isolated_and_connected(pair: NetnsPair, link: Link) -> None:
    assert pair.a.name in _namespaces() and pair.b.name in _namespaces()
    assert f"inet {pair.a.address}/30" in pair.a.run("ip", "addr", "show", pair.a.interface)
    assert _send(link, 3000) == 3000


def test_random_drop_loses_the_configured_share(pair: NetnsPair, link: Link) -> None:
    with random_drop(pair.b, 20):
        assert "numgen random mod 100 < 20 drop" in pair.b.run("nft", "list", "ruleset")
        arrived = _send(link, 10_000)
    # Binomial(10 000, 0.2): standard deviation 0.4 points; allow 2.
    assert 1 - arrived / 10_000 == pytest.approx(0.20, abs=0.02)
    assert "interlive_drop" not in pair.b.run("nft", "list", "ruleset")
    assert _send(link, 2000) == 2000


def test_random_drop_can_be_limited_to_a_destination_port(pair: NetnsPair, link: Link) -> None:
    with random_drop(pair.b, 100, dest_port=PORT + 1):
        assert _send(link, 500) == 500  # not to that port: untouched
    with random_drop(pair.b, 100, dest_port=PORT):
        assert f"udp dport {PORT} drop" in pair.b.run("nft", "list", "ruleset")
        assert _send(link, 500) == 0
    assert _send(link, 500) == 500


def test_fractional_drop_percentage(pair: NetnsPair, link: Link) -> None:
    with random_drop(pair.b, 2.5):
        assert "mod 10000 < 250 drop" in pair.b.run("nft", "list", "ruleset")
        arrived = _send(link, 20_000)
    assert 1 - arrived / 20_000 == pytest.approx(0.025, abs=0.006)


def test_tbf_caps_the_rate(pair: NetnsPair, link: Link) -> None:
    rate = 2_000_000
    with rate_limit(pair.a, rate, latency=0.05):
        assert "tbf" in pair.a.run("tc", "qdisc", "show", "dev", pair.a.interface)
        # Offer ~8 Mbit/s of 1000-byte datagrams for 1.5 s.
        start = time.monotonic()
        while time.monotonic() - start < 1.5:
            for _ in range(10):
                link.tx.sendto(bytes(1000), link.to)
            time.sleep(0.01)
            link.drain()
        offered_until = time.monotonic()
        time.sleep(0.1)
        link.drain()
    # Measure after the bucket's initial burst and before the queue drains.
    window = [n for t, n in link.received if start + 0.3 <= t <= offered_until]
    measured = sum(window) * 8 / (offered_until - start - 0.3)
    # tbf counts whole frames: 1000 B of payload is 1042 B with UDP, IP and Ethernet headers.
    assert measured == pytest.approx(rate * 1000 / 1042, rel=0.1)
    assert "tbf" not in pair.a.run("tc", "qdisc", "show", "dev", pair.a.interface)


def test_cleanup_after_a_failure() -> None:
    require_tools("ip")
    names = []
    with pytest.raises(RuntimeError, match="boom"), netns_pair() as made:
        names = [made.a.name, made.b.name]
        raise RuntimeError("boom")
    listed = _namespaces()
    assert names and all(name not in listed for name in names)
    assert (
        made.a.interface
        not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    )


@pytest.mark.parametrize(
    ("tool", "package"), [("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")]
)
def test_a_missing_tool_names_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, tool: str, package: str
) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == tool else real(name))
    with pytest.raises(MissingToolError, match=f"{tool} not found: install .*{package}"):
        require_tools("ip", "tc", "nft")


def test_a_missing_ip_fails_before_touching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingToolError, match="iproute2"), netns_pair():
        pass
