"""The impairment lab's asyncio edge: a UDP proxy that impairs both directions.

:class:`ImpairmentProxy` listens on one address for a client and relays to
one target, pushing every datagram through a sans-IO impairment
(:mod:`interlive.lab.impair`): ``up`` for client→target, ``down`` for
target→client.  The client is whoever sends the first datagram; datagrams
from any other address are counted and dropped.  The target side uses its
own socket connected to the target, so the target sees the proxy as the
client.

Theory of operation: a datagram in is given to its impairment with the loop's
clock as ``now``; then (and whenever the timer fires) both impairments are
drained of what is due and the one timer is re-armed at the earlier of their
:meth:`get_timer` values.  Nothing else happens here.

:func:`run_scenario` runs a proxy for one scenario file's leg until stopped,
switching the impairments' configuration at each phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from interlive.lab.impair import Chain, Impairment, ImpairmentLike
from interlive.lab.scenario import DIRECTIONS, LEG_NAMES, LegConfig, Scenario

__all__ = [
    "LEG_CHOICES",
    "Address",
    "ImpairmentProxy",
    "LabImpairments",
    "ProxyStats",
    "build_impairments",
    "parse_address",
    "run_scenario",
]

Address = tuple[str, int]
LEG_CHOICES: tuple[str, ...] = (*LEG_NAMES, "both")


def parse_address(text: str) -> Address:
    """``HOST:PORT`` or ``[IPV6]:PORT`` to ``(host, port)``; ValueError if malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {text!r}: write an IPv6 host in brackets, [::1]:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {text!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {text!r}: port {port} is out of range")
    return host, port


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """The proxy's own counters (the impairments keep theirs)."""

    from_client: int = 0
    to_target: int = 0
    from_target: int = 0
    to_client: int = 0
    foreign_dropped: int = 0
    socket_errors: int = 0

    def __str__(self) -> str:
        return (
            f"client->proxy {self.from_client}, proxy->target {self.to_target}, "
            f"target->proxy {self.from_target}, proxy->client {self.to_client}, "
            f"foreign dropped {self.foreign_dropped}, socket errors {self.socket_errors}"
        )


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(
        self, on_datagram: Callable[[bytes, Address], None], on_error: Callable[[], None]
    ) -> None:
        self._on_datagram = on_datagram
        self._on_error = on_error

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self._on_error()


class ImpairmentProxy:
    """Relays UDP between one client and ``target`` through two impairments."""

    def __init__(
        self, listen: Address, target: Address, up: ImpairmentLike, down: ImpairmentLike
    ) -> None:
        self._listen = listen
        self._target = target
        self.up = up
        self.down = down
        self._client: Address | None = None
        self._client_side: asyncio.DatagramTransport | None = None
        self._target_side: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._from_client = 0
        self._to_target = 0
        self._from_target = 0
        self._to_client = 0
        self._foreign_dropped = 0
        self._socket_errors = 0

    async def start(self) -> None:
        """Bind the listening socket and the socket towards the target."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        client_side, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._on_client_datagram, self._on_socket_error),
            local_addr=self._listen,
        )
        try:
            target_side, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self._on_target_datagram, self._on_socket_error),
                remote_addr=self._target,
            )
        except BaseException:
            client_side.close()
            raise
        self._client_side = client_side
        self._target_side = target_side

    def close(self) -> None:
        """Close both sockets; datagrams still in flight are discarded."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        for transport in (self._client_side, self._target_side):
            if transport is not None:
                transport.close()
        self._client_side = None
        self._target_side = None

    async def __aenter__(self) -> ImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def listen_address(self) -> Address:
        """The address clients send to (the real port when 0 was asked for)."""
        if self._client_side is None:
            raise RuntimeError("the proxy is not started")
        sockname = self._client_side.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    @property
    def target_side_address(self) -> Address:
        """The proxy's own address as the target sees it."""
        if self._target_side is None:
            raise RuntimeError("the proxy is not started")
        sockname = self._target_side.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    @property
    def client(self) -> Address | None:
        """The client learned from the first datagram, if any yet."""
        return self._client

    def stats(self) -> ProxyStats:
        return ProxyStats(
            from_client=self._from_client,
            to_target=self._to_target,
            from_target=self._from_target,
            to_client=self._to_client,
            foreign_dropped=self._foreign_dropped,
            socket_errors=self._socket_errors,
        )

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_client_datagram(self, data: bytes, addr: Address) -> None:
        if self._client is None:
            self._client = addr
        elif addr != self._client:
            self._foreign_dropped += 1
            return
        self._from_client += 1
        self.up.send(data, self._now())
        self._pump(self._now())

    def _on_target_datagram(self, data: bytes, addr: Address) -> None:
        self._from_target += 1
        self.down.send(data, self._now())
        self._pump(self._now())

    def _on_socket_error(self) -> None:
        self._socket_errors += 1

    def _on_timer(self, when: float) -> None:
        self._timer = None
        self._timer_at = None
        # The loop may run a callback a clock tick early; the impairment must
        # still see its own deadline as come.
        self._pump(max(self._now(), when))

    def _pump(self, now: float) -> None:
        if self._target_side is None or self._client_side is None:
            return
        for datagram in self.up.receive_ready(now):
            self._target_side.sendto(datagram)
            self._to_target += 1
        for datagram in self.down.receive_ready(now):
            if self._client is not None:
                self._client_side.sendto(datagram, self._client)
                self._to_client += 1
        self._arm()

    def _arm(self) -> None:
        timers = [t for t in (self.up.get_timer(), self.down.get_timer()) if t is not None]
        when = min(timers) if timers else None
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(when, self._on_timer, when)


@dataclass(frozen=True, slots=True)
class LabImpairments:
    """The impairments of one proxy and the (leg, direction) parts they are built of."""

    up: ImpairmentLike
    down: ImpairmentLike
    parts: dict[tuple[str, str], Impairment]

    def apply(self, legs: dict[str, LegConfig] | None) -> None:
        """Set every part to its leg's conditions (a phase change)."""
        for (leg, direction), part in self.parts.items():
            conditions = (legs or {}).get(leg, LegConfig())
            part.set_config(conditions.direction(direction))


def build_impairments(scenario: Scenario, leg: str, seed: int | None = None) -> LabImpairments:
    """The proxy's ``up``/``down`` impairments for ``leg`` of ``scenario``.

    ``publisher`` or ``viewer``: that leg's own up and down directions.
    ``both``: the whole publisher→SFU→viewer path in series, for a proxy
    with the publisher on the client side and the viewer on the target side:
    client→target crosses the publisher's up then the viewer's down,
    target→client the viewer's up then the publisher's down.  A leg the
    scenario never mentions is unimpaired (but naming it alone is an error).
    Each part draws from its own generator seeded from ``seed`` (default:
    the scenario's), the leg and the direction.
    """
    if leg not in LEG_CHOICES:
        raise ValueError(f"leg must be one of {', '.join(LEG_CHOICES)}, got {leg!r}")
    mentioned = set(scenario.legs)
    for phase in scenario.phases:
        mentioned.update(phase.legs)
    if leg != "both" and leg not in mentioned:
        raise ValueError(
            f"scenario {scenario.name!r} has no {leg!r} leg "
            f"(it has: {', '.join(sorted(mentioned))}); use --leg both or another leg"
        )
    base = seed if seed is not None else scenario.seed
    legs = LEG_NAMES if leg == "both" else (leg,)
    parts: dict[tuple[str, str], Impairment] = {}
    for name in legs:
        conditions = scenario.legs.get(name, LegConfig())
        for direction in DIRECTIONS:
            rng = random.Random(f"{base}:{name}:{direction}")
            parts[(name, direction)] = Impairment(conditions.direction(direction), rng)
    if leg == "both":
        up: ImpairmentLike = Chain(parts[("publisher", "up")], parts[("viewer", "down")])
        down: ImpairmentLike = Chain(parts[("viewer", "up")], parts[("publisher", "down")])
    else:
        up, down = parts[(leg, "up")], parts[(leg, "down")]
    return LabImpairments(up=up, down=down, parts=parts)


def _print_stats(
    proxy: ImpairmentProxy, impairments: LabImpairments, elapsed: float, out: TextIO
) -> None:
    print(f"after {elapsed:.1f} s: {proxy.stats()}", file=out)
    for (leg, direction), part in impairments.parts.items():
        print(f"  {leg} {direction}: {part.stats()}", file=out)
    out.flush()


async def run_scenario(
    scenario: Scenario,
    *,
    listen: Address,
    target: Address,
    leg: str = "both",
    seed: int | None = None,
    duration: float | None = None,
    stats_interval: float = 0.0,
    out: TextIO | None = None,
    started: Callable[[ImpairmentProxy], None] | None = None,
) -> ImpairmentProxy:
    """Run a proxy for ``scenario`` until SIGINT/SIGTERM or ``duration`` seconds.

    Phases switch at their times from the start; counters are printed every
    ``stats_interval`` seconds (0: only at the end).  ``started`` is called
    once the sockets are bound.  Returns the closed proxy (for its counters).
    """
    out = out if out is not None else sys.stdout
    impairments = build_impairments(scenario, leg, seed)
    loop = asyncio.get_running_loop()
    proxy = ImpairmentProxy(listen, target, impairments.up, impairments.down)
    await proxy.start()
    start = loop.time()
    stop = asyncio.Event()
    handles: list[asyncio.TimerHandle] = []
    reporting: list[asyncio.TimerHandle] = []
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)

    def switch(index: int) -> None:
        phase = scenario.phases[index]
        impairments.apply(dict(phase.legs))
        print(f"t={phase.at:g} s: phase {index + 1} of {len(scenario.phases)}", file=out)
        out.flush()

    def report() -> None:
        _print_stats(proxy, impairments, loop.time() - start, out)
        reporting[:] = [loop.call_later(stats_interval, report)]

    try:
        for index, phase in enumerate(scenario.phases):
            handles.append(loop.call_at(start + phase.at, switch, index))
        if stats_interval > 0:
            reporting.append(loop.call_later(stats_interval, report))
        if duration is not None:
            handles.append(loop.call_later(duration, stop.set))
        client_side = proxy.listen_address
        print(
            f"interlive lab: scenario {scenario.name!r}, leg {leg}: "
            f"{client_side[0]}:{client_side[1]} <-> {target[0]}:{target[1]}",
            file=out,
        )
        out.flush()
        if started is not None:
            started(proxy)
        await stop.wait()
    finally:
        for handle in (*handles, *reporting):
            handle.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)
        proxy.close()
        _print_stats(proxy, impairments, loop.time() - start, out)
    return proxy
