"""Kernel packet loss for tests: an nftables table that randomly drops UDP by source port.

This machine's kernel has no netem; nftables' `numgen random` gives real,
independent random drop on loopback. The table is the test's own and is
always deleted. Datagrams are dropped on the way in (prerouting, which
loopback traffic also passes): a drop on the sender's own output hook would
fail its sendto with EPERM, which no real network does.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator


def _nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def random_drop(*, source_port: int, percent: int) -> Iterator[None]:
    """Drop ``percent`` % of UDP datagrams sent from ``source_port`` while inside."""
    if shutil.which("nft") is None:
        raise AssertionError("nft is missing: `make test` installs Debian's nftables package")
    table = f"interlive_test_{secrets.token_hex(4)}"
    _nft("add", "table", "inet", table)
    try:
        _nft("add", "chain", "inet", table, "out",
             "{ type filter hook prerouting priority 0; policy accept; }")  # fmt: skip
        _nft("add", "rule", "inet", table, "out", "udp", "sport", str(source_port),
             "numgen", "random", "mod", "100", "<", str(percent), "drop")  # fmt: skip
        yield
    finally:
        _nft("delete", "table", "inet", table)
