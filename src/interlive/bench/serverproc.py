"""``interlive serve`` as a subprocess on free ports: for benchmarks and tests.

Both start the real server the way a user would, in its own session (so its
media workers can be killed as a group), with output to a log file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just gave out and took back: free unless someone races us."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def interlive_command() -> list[str]:
    """``interlive`` from the same environment as the running Python."""
    script = Path(sys.executable).with_name("interlive")
    return [str(script)] if script.exists() else [sys.executable, "-m", "interlive"]


def launch_server(
    *,
    port: int,
    data_dir: Path,
    secret: str,
    log_path: Path,
    workers: int = 1,
    log_level: str = "info",
    extra_args: list[str] | None = None,
    host: str = "127.0.0.1",
    wrapper: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """``interlive serve`` on ``host``; ``wrapper`` runs it through another command first.

    ``wrapper`` is e.g. ``["ip", "netns", "exec", NAME]`` (which execs the
    server in place, so the process signalled is the server itself).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *(wrapper or []),
        *interlive_command(), "serve",
        "--host", host,
        "--udp-bind", host,
        "--http-port", str(port),
        "--udp-port", "0",
        "--workers", str(workers),
        "--data-dir", str(data_dir),
        f"--secret={secret}",  # a secret may start with '-'
        "--log-level", log_level,
        "--rtmp-port", "0",  # no fixed RTMP port by default: servers run side by side
        *(extra_args or []),
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )


def stop_server(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL to the server's process group if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_healthy(
    base_url: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float = 30.0,
) -> None:
    """Until ``GET /healthz`` answers 200; the server's log in the error if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            try:
                log = log_path.read_text(errors="replace")
            except OSError:
                log = ""
            raise RuntimeError(f"interlive serve did not start (exit {process.poll()}):\n{log}")
        time.sleep(0.1)


@contextlib.contextmanager
def temporary_server(prefix: str) -> Iterator[tuple[str, str]]:
    """A healthy one-worker ``interlive serve`` on loopback with its own data directory,
    for as long as the block runs: yields its base URL and its secret."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        port, secret = free_tcp_port(), secrets.token_urlsafe(32)
        log = Path(tmp) / "log"
        process = launch_server(port=port, data_dir=Path(tmp) / "data", secret=secret, log_path=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, process, log)
            yield base, secret
        finally:
            stop_server(process)
