"""A real RTMP server for push tests: Debian's nginx with ``libnginx-mod-rtmp``.

nginx runs as a plain user process (no daemon, no master) on a free loopback
port with the benchmark's config (:func:`interlive.bench.nginx_rtmp.nginx_config`)
written into the test's directory: one ``live`` application, no recording.
``stop()`` kills it (a CDN outage), ``start()`` brings it back on the same
port.  ``require_nginx_rtmp()`` fails the test (never skips) when the packages
are missing, like the browser helper.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlive.bench.nginx_rtmp import MODULE_PATHS, nginx_config
from interlive.bench.serverproc import free_tcp_port

START_TIMEOUT = 10.0


def require_nginx_rtmp() -> tuple[str, Path]:
    """nginx's path and its RTMP module; fails the test when either is missing."""
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    module = next((m for m in MODULE_PATHS if m.exists()), None)
    if path is None or module is None:
        pytest.fail(
            "nginx with libnginx-mod-rtmp is missing: `make test` installs it "
            "(scripts/setup.sh test)",
            pytrace=False,
        )
    return path, module


class NginxRtmp:
    """nginx-rtmp on ``127.0.0.1:port``; streams at ``rtmp://127.0.0.1:port/live/<key>``."""

    def __init__(self, root: Path) -> None:
        self.executable, module = require_nginx_rtmp()
        self.root = root
        self.port = free_tcp_port()
        self.conf = root / "nginx.conf"
        self.error_log = root / "error.log"  # where the config (bench.nginx_rtmp) logs
        self.conf.write_text(nginx_config(self.port, root, module))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> None:
        """Start nginx and return once its port accepts connections."""
        self.process = subprocess.Popen(
            [
                self.executable,
                "-p",
                str(self.root),
                "-c",
                str(self.conf),
                "-e",
                str(self.error_log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0),
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx not listening within {START_TIMEOUT:.0f} s:\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGKILL: every connection drops at once, as in an outage."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def nginx_rtmp(root: Path) -> Iterator[NginxRtmp]:
    """A started :class:`NginxRtmp` writing its files under ``root``; stopped on exit."""
    server = NginxRtmp(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
