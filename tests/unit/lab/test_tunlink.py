"""The impaired TUN link for real: delay and loss applied to UDP and TCP, cleaned up after.

Each test makes its own namespace and TUN devices (unique tag and subnet) and
checks what crosses the link against what it was told to do.  Needs root,
/dev/net/tun and iproute2 (never skipped).
"""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time

from interlive.lab.impair import ImpairmentConfig
from interlive.lab.tunlink import impaired_namespace

ECHO = """
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9000))
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((sys.argv[1], 9001))
t.listen()
def serve_tcp():
    c, _ = t.accept()
    c.sendall(b"z" * 200_000)
    c.close()
threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print("got", data.decode(), flush=True)
    s.sendto(data, peer)
"""


class Output:
    """The server's output lines, read in a thread so a wait can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(
            target=lambda: [self.lines.put(line.strip()) for line in stdout], daemon=True
        ).start()

    def next(self, timeout: float = 20.0) -> str:
        """The next line, or fail after ``timeout`` s (a starved machine, a dead server)."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the server within {timeout:.0f} s") from None


def _listing(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def test_packets_take_the_configured_delay_both_ways_and_tcp_flows() -> None:
    one_way = ImpairmentConfig(delay=0.04)
    with impaired_namespace(one_way, one_way, subnet="10.211.0", tag="t1") as link:
        assert link.name in _listing("ip", "netns", "list")
        server = subprocess.Popen(
            link.command(sys.executable, "-c", ECHO, link.address),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert Output(server).next() == "ready"
            with socket.create_connection((link.address, 9001), timeout=10) as tcp:
                received = b""
                while chunk := tcp.recv(65536):
                    received += chunk
            assert received == b"z" * 200_000  # TCP through the link, every byte in order
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.settimeout(5)
                rtts = []
                for i in range(5):
                    sent = time.monotonic()
                    udp.sendto(b"%d" % i, (link.address, 9000))
                    assert udp.recvfrom(2048)[0] == b"%d" % i
                    rtts.append(time.monotonic() - sent)
        finally:
            server.kill()
            server.wait()
    # 40 ms each way: no round trip can be shorter than 80 ms
    assert min(rtts) >= 0.08
    assert link.stats is not None
    assert link.stats.to_namespace.delivered >= 5 and link.stats.to_namespace.lost == 0
    assert abs(link.stats.from_namespace.mean_delay - 0.04) < 1e-6
    assert link.name not in _listing("ip", "netns", "list")
    assert "ilt1h" not in _listing("ip", "link")


def test_loss_on_the_way_back_drops_every_reply_and_nothing_else() -> None:
    with impaired_namespace(
        ImpairmentConfig(), ImpairmentConfig(loss=1.0), subnet="10.212.0", tag="t2"
    ) as link:
        server = subprocess.Popen(
            link.command(sys.executable, "-c", ECHO, link.address),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            output = Output(server)
            assert output.next() == "ready"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.settimeout(0.5)
                for i in range(3):
                    udp.sendto(b"%d" % i, (link.address, 9000))
                assert sorted(output.next() for _ in range(3)) == ["got 0", "got 1", "got 2"]
                replies = 0
                try:
                    while True:
                        udp.recvfrom(2048)
                        replies += 1
                except TimeoutError:
                    pass
        finally:
            server.kill()
            server.wait()
    assert replies == 0
    assert link.stats is not None
    assert link.stats.to_namespace.delivered >= 3  # the requests got there
    assert link.stats.from_namespace.lost >= 3 and link.stats.from_namespace.delivered == 0
