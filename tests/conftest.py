"""Shared fixtures: a real interlive server (``server``, ``server_factory``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from tests.helpers.server import RunningServer, running_server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so fixtures can tell a failed test.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(
        getattr(getattr(node, f"rep_{phase}", None), "failed", False) for phase in ("setup", "call")
    )


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest,
) -> Generator[Callable[..., RunningServer], None, None]:
    """Starts servers on demand: ``server_factory(workers=2, extra_args=[...])``.

    Every server started is stopped after the test; their logs are printed
    when the test failed.
    """
    with contextlib.ExitStack() as stack:
        started: list[RunningServer] = []

        def start(**kwargs: Any) -> RunningServer:
            server = stack.enter_context(running_server(**kwargs))
            started.append(server)
            return server

        yield start
        if _failed(request):
            for server in started:
                print(f"--- interlive server log ({server.base_url}) ---\n{server.log()}")


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> Iterator[RunningServer]:
    """One running server (one media worker) for the test."""
    yield server_factory()
