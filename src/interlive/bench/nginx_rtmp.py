"""nginx-rtmp as an RTMP relay on a loopback port: the seed's RTMP co-streaming baseline.

Debian's ``nginx`` with ``libnginx-mod-rtmp`` (``scripts/setup.sh test``
installs both), started as an ordinary process with a configuration written
to a temporary directory: one ``live`` application that relays each
published stream to its players (``rtmp://127.0.0.1:PORT/live/NAME``), no
recording, no HLS.  This is what RTMP co-streaming looks like: every co-host
pushes to the origin and plays the others from it.

``nginx_rtmp()`` starts it, waits until the port accepts connections, and
stops it (SIGQUIT, SIGKILL if it lingers) when the context ends.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from interlive.bench.serverproc import free_tcp_port

__all__ = ["MODULE_PATHS", "NginxRtmp", "NginxRtmpError", "nginx_config", "nginx_rtmp"]

#: where Debian's libnginx-mod-rtmp installs the module
MODULE_PATHS: Final = (
    Path("/usr/lib/nginx/modules/ngx_rtmp_module.so"),
    Path("/usr/share/nginx/modules/ngx_rtmp_module.so"),
)
START_TIMEOUT: Final = 10.0


class NginxRtmpError(RuntimeError):
    """nginx or its RTMP module is missing, or nginx did not start."""


@dataclass(frozen=True)
class NginxRtmp:
    port: int
    prefix: Path
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    def url(self, name: str) -> str:
        """The publish and play URL of stream ``name`` in the ``live`` application."""
        return f"rtmp://{self.host}:{self.port}/live/{name}"

    def log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def nginx_config(port: int, prefix: Path, module: Path, host: str = "127.0.0.1") -> str:
    """A self-contained nginx.conf: the RTMP module, one ``live`` app on ``host``:``port``."""
    return f"""load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen {host}:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            wait_key on;
            wait_video on;
        }}
    }}
}}
"""


def _module() -> Path:
    for path in MODULE_PATHS:
        if path.exists():
            return path
    raise NginxRtmpError(
        "the nginx RTMP module is missing: install nginx and libnginx-mod-rtmp "
        "(scripts/setup.sh test)"
    )


def _wait_listening(
    host: str, port: int, process: subprocess.Popen[bytes], deadline: float
) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxRtmpError(f"nginx exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        time.sleep(0.05)
    raise NginxRtmpError(f"nginx did not listen on {port} within {START_TIMEOUT:.0f} s")


@contextlib.contextmanager
def nginx_rtmp(
    port: int | None = None, *, host: str = "127.0.0.1", wrapper: list[str] | None = None
) -> Iterator[NginxRtmp]:
    """nginx-rtmp on ``host``:``port`` (a free one by default) while the context lasts.

    ``wrapper`` runs nginx through another command, e.g. ``ip netns exec NAME``.
    """
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        raise NginxRtmpError(
            "nginx is missing: install nginx and libnginx-mod-rtmp (scripts/setup.sh test)"
        )
    module = _module()
    port = port or free_tcp_port()
    with tempfile.TemporaryDirectory(prefix="interlive-nginx-") as tmp:
        prefix = Path(tmp)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_config(port, prefix, module, host))
        with (prefix / "stdout.log").open("wb") as out:
            process = subprocess.Popen(
                [
                    *(wrapper or []),
                    binary,
                    "-p",
                    str(prefix),
                    "-e",
                    str(prefix / "error.log"),
                    "-c",
                    str(conf),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = NginxRtmp(port, prefix, process, host)
        try:
            try:
                _wait_listening(host, port, process, time.monotonic() + START_TIMEOUT)
            except NginxRtmpError as exc:
                raise NginxRtmpError(f"{exc}\n{server.log()}") from None
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
