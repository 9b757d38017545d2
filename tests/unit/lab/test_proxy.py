"""The UDP impairment proxy on real loopback sockets, and ``interlive lab``'s entry point."""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from interlive.lab import add_lab_arguments, run_lab
from interlive.lab.impair import Chain, Impairment, ImpairmentConfig
from interlive.lab.proxy import (
    ImpairmentProxy,
    build_impairments,
    parse_address,
    run_scenario,
)
from interlive.lab.scenario import parse_scenario

LOOP = ("127.0.0.1", 0)


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait((asyncio.get_running_loop().time(), data))


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, int]]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=LOOP)
    host, port = transport.get_extra_info("sockname")[:2]
    yield host, port
    transport.close()


async def _client(
    target: tuple[str, int],
) -> tuple[asyncio.DatagramTransport, _Client]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Client, local_addr=LOOP, remote_addr=target
    )
    return transport, protocol


def _impairment(**config: object) -> Impairment:
    return Impairment(ImpairmentConfig(**config), random.Random(1))  # type: ignore[arg-type]


async def _drain(client: _Client, quiet: float = 0.3) -> list[tuple[float, bytes]]:
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(client.received.get(), quiet))
        except TimeoutError:
            return out


async def test_relays_both_ways_with_delay(echo: tuple[str, int]) -> None:
    up, down = _impairment(delay=0.03), _impairment(delay=0.02)
    async with ImpairmentProxy(LOOP, echo, up, down) as proxy:
        transport, client = await _client(proxy.listen_address)
        loop = asyncio.get_running_loop()
        sent = {}
        for i in range(20):
            sent[i] = loop.time()
            transport.sendto(i.to_bytes(2, "big"))
            await asyncio.sleep(0.005)
        got = await _drain(client)
        transport.close()
    rtts = [t - sent[int.from_bytes(d, "big")] for t, d in got]
    assert len(rtts) == 20
    # Never sooner than the 50 ms of impairment; the loop's timers and loopback add a
    # little (a busy machine may add more, so only the best case is bounded tightly).
    assert all(rtt >= 0.05 for rtt in rtts), rtts
    assert min(rtts) < 0.07 and max(rtts) < 0.3, rtts
    stats = proxy.stats()
    assert stats.from_client == stats.to_target == stats.from_target == stats.to_client == 20
    assert proxy.client == transport.get_extra_info("sockname")[:2]


async def test_loss_applies_per_direction(echo: tuple[str, int]) -> None:
    up, down = _impairment(loss=0.3), _impairment()
    async with ImpairmentProxy(LOOP, echo, up, down) as proxy:
        transport, client = await _client(proxy.listen_address)
        for i in range(1000):
            transport.sendto(i.to_bytes(2, "big"))
            if i % 50 == 0:
                await asyncio.sleep(0.002)
        got = await _drain(client)
        transport.close()
    assert up.stats().lost == 1000 - len(got)
    assert len(got) / 1000 == pytest.approx(0.7, abs=0.06)
    assert down.stats().lost == 0 and proxy.stats().to_client == len(got)


async def test_a_second_client_is_ignored(echo: tuple[str, int]) -> None:
    async with ImpairmentProxy(LOOP, echo, _impairment(), _impairment()) as proxy:
        first, first_rx = await _client(proxy.listen_address)
        second, second_rx = await _client(proxy.listen_address)
        first.sendto(b"one")
        assert (await asyncio.wait_for(first_rx.received.get(), 1))[1] == b"one"
        second.sendto(b"two")
        assert await _drain(second_rx, 0.1) == []
        first.close()
        second.close()
    assert proxy.stats().foreign_dropped == 1


async def test_rate_cap_through_the_proxy(echo: tuple[str, int]) -> None:
    # 40 datagrams of 1000 B through 800 kbit/s take 10 ms each: 400 ms in all.
    up = _impairment(rate=800_000, queue_limit=100_000)
    async with ImpairmentProxy(LOOP, echo, up, _impairment()) as proxy:
        transport, client = await _client(proxy.listen_address)
        start = asyncio.get_running_loop().time()
        for i in range(40):
            transport.sendto(i.to_bytes(2, "big") + bytes(998))
        got = await _drain(client)
        transport.close()
    assert [int.from_bytes(d[:2], "big") for _, d in got] == list(range(40))
    # Never faster than the cap; a busy machine may only make it later.
    assert 0.39 <= got[-1][0] - start < 0.6


async def test_run_scenario_switches_phases(echo: tuple[str, int]) -> None:
    scenario = parse_scenario(
        """
        [publisher.up]
        delay_ms = 10
        [[phases]]
        at = 0.3
        [phases.publisher.up]
        loss = 1.0
        """
    )
    out = io.StringIO()
    ready: asyncio.Future[ImpairmentProxy] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_scenario(
            scenario,
            listen=LOOP,
            target=echo,
            leg="publisher",
            duration=0.6,
            stats_interval=0.2,
            out=out,
            started=ready.set_result,
        )
    )
    proxy = await ready
    transport, client = await _client(proxy.listen_address)
    transport.sendto(b"before")
    assert (await asyncio.wait_for(client.received.get(), 1))[1] == b"before"
    await asyncio.sleep(0.35)
    transport.sendto(b"after")  # phase 1: everything up is lost
    assert await _drain(client, 0.1) == []
    transport.close()
    assert await task is proxy
    text = out.getvalue()
    assert "t=0.3 s: phase 1 of 1" in text
    assert "publisher up: sent 2" in text and "lost 1" in text
    assert text.count("after ") >= 3  # two periodic reports and the final one


def test_build_impairments_for_both_legs_chains_them() -> None:
    scenario = parse_scenario("[publisher]\ndelay_ms = 10\n[viewer]\ndelay_ms = 20\n")
    built = build_impairments(scenario, "both")
    assert isinstance(built.up, Chain) and isinstance(built.down, Chain)
    assert built.up.first is built.parts[("publisher", "up")]
    assert built.up.second is built.parts[("viewer", "down")]
    assert built.down.first is built.parts[("viewer", "up")]
    assert built.down.second is built.parts[("publisher", "down")]
    built.up.send(b"x", 0.0)
    assert built.up.receive_ready(0.0299) == []
    assert built.up.receive_ready(0.03) == [b"x"]


def test_build_impairments_rejects_a_leg_the_scenario_lacks() -> None:
    scenario = parse_scenario("[publisher]\nloss = 0.1\n")
    with pytest.raises(ValueError, match="no 'viewer' leg"):
        build_impairments(scenario, "viewer")
    built = build_impairments(scenario, "both")  # the viewer's part is unimpaired
    assert built.parts[("viewer", "down")].config == ImpairmentConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:5000", ("127.0.0.1", 5000)), ("[::1]:0", ("::1", 0)), ("h:65535", ("h", 65535))],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5000", "not HOST:PORT"),
        (":5000", "not HOST:PORT"),
        ("::1:5000", "IPv6 host in brackets"),
        ("h:x", "is not a number"),
        ("h:70000", "out of range"),
    ],
)
def test_parse_address_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_lab_arguments(parser)
    return parser.parse_args(list(argv))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(LOOP)
        return int(sock.getsockname()[1])


def test_run_lab_runs_for_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_udp_port()
    args = _args(
        "--listen", f"127.0.0.1:{port}", "--target", "127.0.0.1:9",
        "--scenario", "5pct", "--leg", "viewer", "--duration", "0.2",
    )  # fmt: skip
    assert run_lab(args) == 0
    out = capsys.readouterr().out
    assert f"scenario '5pct', leg viewer: 127.0.0.1:{port} <-> 127.0.0.1:9" in out
    assert "viewer up: sent 0" in out and "viewer down: sent 0" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"listen": "nowhere"}, "not HOST:PORT"),
        ({"scenario": "no-such"}, "no such file, nor a built-in scenario"),
        ({"scenario": "shrinking-bandwidth", "leg": "publisher"}, "no 'publisher' leg"),
        ({"duration": -1.0}, "--duration must be > 0"),
    ],
)
def test_run_lab_reports_bad_arguments(
    change: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args("--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--scenario", "good")
    for key, value in change.items():
        setattr(args, key, value)
    assert run_lab(args) == 2
    assert message in capsys.readouterr().err


def test_run_lab_reads_a_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[viewer]\nloss = 3\n")
    args = _args("--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--scenario", str(path))
    assert run_lab(args) == 2
    assert f"{path}: viewer.loss: must be between 0 and 1" in capsys.readouterr().err


def test_lab_arguments_defaults() -> None:
    args = _args("--listen", "a:1", "--target", "b:2", "--scenario", "good")
    assert (args.leg, args.seed, args.duration, args.stats_interval) == ("both", None, None, 0.0)
