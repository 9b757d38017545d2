"""The media worker process: uvloop, the UDP socket, the control channel.

This is the asyncio edge around MediaWorker: it feeds datagrams and channel
requests in, and ticks the clock; everything it does is in MediaWorker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from multiprocessing.connection import Connection
from typing import Any

from interlive.worker.channel import Event, Ready, Reply, Request, RequestError
from interlive.worker.settings import MediaSettings
from interlive.worker.worker import MediaWorker

log = logging.getLogger(__name__)

TICK = 0.02
#: about 20 ms of traffic at a saturated worker's rate: enough for keyframe bursts,
#: small enough that an overloaded worker drops instead of queueing seconds of
#: media ahead of STUN, DTLS and RTCP
SOCKET_BUFFER = 1024 * 1024


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.worker: MediaWorker | None = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        worker = self.worker
        if worker is None:
            return
        try:
            worker.datagram_received(data, (addr[0], addr[1]))
        except Exception:  # a bug must cost one datagram, never the worker
            worker.counters.drop("internal_error")
            log.exception("datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


def run_worker(
    index: int,
    bind: str,
    port: int,
    candidate_ip: str,
    settings: MediaSettings,
    log_level: str,
    conn: Connection,
) -> None:
    """Entry point of a spawned worker process."""
    logging.basicConfig(
        level=log_level.upper(), format=f"%(asctime)s worker{index} %(name)s: %(message)s"
    )
    # The control process decides when we stop (Ctrl-C and `kill` reach the whole
    # process group); if it dies instead, the pipe closes and we stop on our own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    asyncio.run(_main(index, bind, port, candidate_ip, settings, conn))


async def _main(
    index: int, bind: str, port: int, candidate_ip: str, settings: MediaSettings, conn: Connection
) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.bind((bind, port))
    protocol = _UdpProtocol()
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    stopped = loop.create_future()

    def emit(event: Event) -> None:
        conn.send(event)

    worker = MediaWorker(
        index=index,
        candidate_ip=candidate_ip,
        port=sock.getsockname()[1],
        sendto=transport.sendto,
        emit=emit,
        settings=settings,
        clock=loop.time,
    )
    protocol.worker = worker

    def on_request() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if not isinstance(message, Request):
                    continue
                if message.op == "shutdown":
                    if not stopped.done():
                        stopped.set_result(None)
                    conn.send(Reply(message.id, {}))
                    continue
                try:
                    conn.send(Reply(message.id, worker.handle(message.op, message.args)))
                except RequestError as exc:
                    conn.send(Reply(message.id, error=(exc.status, exc.code, exc.message)))
                except Exception as exc:
                    log.exception("request %s failed", message.op)
                    conn.send(Reply(message.id, error=(500, "internal", str(exc))))
        except (EOFError, OSError):  # the control process is gone
            if not stopped.done():
                stopped.set_result(None)

    loop.add_reader(conn.fileno(), on_request)
    # uvloop makes a watched fd non-blocking; Connection.send expects a blocking pipe.
    os.set_blocking(conn.fileno(), True)
    conn.send(Ready(index, worker.port))

    async def ticker() -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                worker.tick()
            except Exception:
                log.exception("tick failed")

    tick_task = asyncio.create_task(ticker())
    try:
        await stopped
    finally:
        tick_task.cancel()
        for sid in list(worker.sessions):
            worker.op_delete_session(sid=sid)
        loop.remove_reader(conn.fileno())
        transport.close()
