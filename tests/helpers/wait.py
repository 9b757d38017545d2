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


async def eventually(
    check: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """``check()``'s first truthy value (awaited if it is a coroutine); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s; last: {value!r}")
        await asyncio.sleep(interval)
