"""A real ``interlive serve`` in a subprocess, on free ports, for end-to-end tests.

``running_server()`` starts the server with a temporary data dir and a random
secret, waits until ``GET /healthz`` answers 200 (media workers ready), and
stops it with SIGTERM on exit (SIGKILL to its process group if it lingers).
Everything the server prints goes to a log file that ``log()`` reads back, and
that is printed when the body of the context raises.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from interlive.auth import mint_token
from interlive.bench.serverproc import free_tcp_port, launch_server, stop_server
from interlive.bench.system import Metrics

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
PORT_ATTEMPTS = 3


class ServerStartError(RuntimeError):
    pass


@dataclass
class RunningServer:
    """A started server: its URL, secret, log and a way to mint tokens."""

    base_url: str
    http_port: int
    secret: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    extra_args: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def token(self, room: str, identity: str, role: str = "host", ttl: int = 3600) -> str:
        return mint_token(self.secret, room=room, identity=identity, role=role, ttl=ttl)

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET a path; (status, body) for any HTTP status."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` as {metric name: sum over all label sets}."""
        status, body = self.get("/metrics")
        if status != 200:
            raise AssertionError(f"GET /metrics -> {status}: {body[:500]}")
        metrics = Metrics.parse(body)
        return {name: metrics.total(name) for name in metrics.samples}

    def alive(self) -> bool:
        return self.process.poll() is None


def _wait_healthy(server: RunningServer, deadline: float) -> None:
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerStartError(
                f"interlive serve exited with {server.process.returncode} before /healthz was 200"
                f" ({last})\n--- server log ---\n{server.log()}"
            )
        try:
            status, body = server.get("/healthz", timeout=1.0)
            if status == 200:
                return
            last = f"/healthz -> {status} {body.strip()[:200]}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = f"/healthz: {exc}"
        time.sleep(POLL_INTERVAL)
    raise ServerStartError(
        f"/healthz not 200 within {STARTUP_TIMEOUT:.0f} s ({last})\n--- server log ---\n"
        f"{server.log()}"
    )


def _stop(server: RunningServer) -> None:
    stop_server(server.process, STOP_TIMEOUT)


def _start(tmp: Path, workers: int, log_level: str, extra_args: list[str]) -> RunningServer:
    secret = secrets.token_hex(24)
    data_dir = tmp / "data"
    data_dir.mkdir(exist_ok=True)
    port = free_tcp_port()
    log_path = tmp / f"server-{port}.log"
    process = launch_server(
        port=port,
        data_dir=data_dir,
        secret=secret,
        log_path=log_path,
        workers=workers,
        log_level=log_level,
        extra_args=extra_args,
    )
    return RunningServer(
        base_url=f"http://127.0.0.1:{port}",
        http_port=port,
        secret=secret,
        data_dir=data_dir,
        process=process,
        log_path=log_path,
        workers=workers,
        extra_args=extra_args,
    )


@contextlib.contextmanager
def running_server(
    *, workers: int = 1, log_level: str = "info", extra_args: list[str] | None = None
) -> Iterator[RunningServer]:
    """Start ``interlive serve`` on free ports; yield once /healthz is 200; stop it."""
    with tempfile.TemporaryDirectory(prefix="interlive-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        server: RunningServer | None = None
        for attempt in range(PORT_ATTEMPTS):
            server = _start(tmp, workers, log_level, list(extra_args or []))
            try:
                _wait_healthy(server, time.monotonic() + STARTUP_TIMEOUT)
                break
            except ServerStartError:
                _stop(server)
                # Another process took the port between bind-close and the server's bind.
                if "address already in use" in server.log().lower() and attempt + 1 < PORT_ATTEMPTS:
                    continue
                raise
        assert server is not None
        try:
            yield server
        except BaseException:
            print(
                f"--- interlive server log ({server.base_url}) ---\n{server.log()}", file=sys.stderr
            )
            raise
        finally:
            _stop(server)
