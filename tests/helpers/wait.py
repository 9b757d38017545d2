"""Waiting on a condition from async tests: the twin of :func:`tests.helpers.browser.poll`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def poll_async(
    sample: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> Any:
    """Call ``sample`` until ``done(value)``, yielding to the loop; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    value = sample()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s; last: {value!r}")
        await asyncio.sleep(interval)
        value = sample()
    return value
