"""What the benchmarks read from the machine: /proc, Prometheus text and the sendto ceiling.

Linux only (proc(5)): CPU time of a process from ``/proc/<pid>/stat`` (utime
and stime, fields 14 and 15), machine-wide CPU from ``/proc/stat``, per-socket
receive drops from the last column of ``/proc/net/udp`` (matched by inode), and
the CPU model from ``/proc/cpuinfo``. :func:`sendto_ceiling` measures what one
Python process can push through the loopback interface with plain ``sendto``:
the hard upper bound for a single-process forwarder on this machine.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MachineInfo",
    "Metrics",
    "machine_info",
    "process_cpu_seconds",
    "sendto_ceiling",
    "system_cpu",
    "udp_drops",
    "udp_port_stats",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class MachineInfo:
    nproc: int
    cpu_model: str
    kernel: str
    python: str

    def describe(self) -> str:
        return (
            f"{self.nproc} x {self.cpu_model} (nproc {self.nproc}), Linux {self.kernel}, "
            f"Python {self.python}"
        )


def machine_info() -> MachineInfo:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return MachineInfo(
        nproc=os.cpu_count() or 1,
        cpu_model=model,
        kernel=platform.release(),
        python=platform.python_version(),
    )


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def udp_drops(inodes: Iterable[int]) -> int:
    """Datagrams the kernel dropped at these sockets' receive queues (IPv4 UDP)."""
    wanted = {str(i) for i in inodes}
    if not wanted:
        return 0
    total = 0
    try:
        with open("/proc/net/udp") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) >= 13 and fields[9] in wanted:
                    total += int(fields[-1])
    except OSError:
        return 0
    return total


def udp_port_stats(port: int) -> tuple[int, int]:
    """(receive queue bytes, drops) summed over the IPv4 UDP sockets bound to ``port``."""
    if not port:
        return 0, 0
    suffix = f":{port:04X}"
    queued = drops = 0
    try:
        with open("/proc/net/udp") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) >= 13 and fields[1].endswith(suffix):
                    queued += int(fields[4].partition(":")[2], 16)
                    drops += int(fields[-1])
    except OSError:
        pass
    return queued, drops


def sendto_ceiling(size: int = 1200, seconds: float = 1.0, rounds: int = 3) -> float:
    """Datagrams per second one Python process sends to a loopback UDP socket; best of rounds.

    The receiving socket is never read: once its queue is full the kernel drops
    at delivery, which costs the sender about the same as a delivered datagram.
    """
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        address = receiver.getsockname()
        payload = os.urandom(size)
        sendto = sender.sendto
        best = 0.0
        for _ in range(max(1, rounds)):
            count = 0
            start = time.perf_counter()
            deadline = start + seconds / max(1, rounds)
            now = start
            while now < deadline:
                for _ in range(1000):
                    sendto(payload, address)
                count += 1000
                now = time.perf_counter()
            best = max(best, count / (now - start))
        return best
    finally:
        sender.close()
        receiver.close()


class Metrics:
    """A parsed Prometheus text exposition (format 0.0.4): samples by name and labels."""

    def __init__(self, samples: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> None:
        self.samples = samples

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            name, brace, rest = head.partition("{")
            labels: list[tuple[str, str]] = []
            if brace:
                for part in _split_labels(rest.rstrip("}")):
                    key, _, raw = part.partition("=")
                    labels.append((key.strip(), _unquote(raw.strip())))
            try:
                number = float(value)
            except ValueError:
                continue
            samples.setdefault(name.strip(), {})[tuple(sorted(labels))] = number
        return cls(samples)

    def total(self, name: str) -> float:
        return sum(self.samples.get(name, {}).values())

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in self.samples.get(name, {}).items():
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append("\n" if escaped == "n" else escaped)
        else:
            out.append(char)
    return "".join(out)


def _split_labels(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == '"':
            quoted = not quoted
            current += char
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts
