"""The lab's impairment proxy for synchronous tests: its event loop runs in a thread."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from interlive.lab.impair import Impairment, ImpairmentConfig
from interlive.lab.proxy import Address, ImpairmentProxy


@contextmanager
def impaired_path(
    target: Address, *, up: ImpairmentConfig, down: ImpairmentConfig, seed: int = 1
) -> Iterator[ImpairmentProxy]:
    """A proxy on 127.0.0.1 (a free port) relaying to ``target``, for the block's duration."""
    loop = asyncio.new_event_loop()
    rng = random.Random(seed)
    proxy = ImpairmentProxy(
        ("127.0.0.1", 0), target, Impairment(up, rng), Impairment(down, random.Random(seed + 1))
    )
    thread = threading.Thread(target=loop.run_forever, name="lab-proxy", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=5)
        yield proxy
    finally:
        loop.call_soon_threadsafe(proxy.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def via(answer: str, proxy: Address) -> str:
    """An SDP answer whose host candidates name the proxy instead of the server."""
    host, port = proxy
    return re.sub(
        r"^(a=candidate:\S+ \d+ (?:udp|UDP) \d+ )\S+ \d+( typ host)",
        lambda m: f"{m.group(1)}{host} {port}{m.group(2)}",
        answer,
        flags=re.MULTILINE,
    )
