"""The web app's pages load cleanly from the real server and report errors plainly."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers.browser import chromium, open_page, poll
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("path", "state"),
    [("/", None), ("/static/publish.html", "idle"), ("/static/watch.html", "idle")],
)
def test_page_loads_without_console_errors(
    server: RunningServer, path: str, state: str | None
) -> None:
    with chromium() as context:
        page, console = open_page(context, server.url(path))
        page.wait_for_load_state("networkidle")
        assert console.errors == []
        assert page.evaluate("window.interlive ? window.interlive.state : null") == state


def test_publish_with_bad_token_shows_the_server_error(server: RunningServer) -> None:
    query = urlencode({"room": "r1", "token": "not-a-jwt", "autostart": "1"})
    with chromium() as context:
        page, _ = open_page(context, server.url(f"/static/publish.html?{query}"))
        handle = poll(
            lambda: page.evaluate(
                "({state: window.interlive.state, error: window.interlive.error})"
            ),
            lambda h: h["state"] == "error",
            timeout=10.0,
            what="publish.html error state",
        )
        assert handle["error"].startswith("401 unauthorized"), handle
        assert "error: 401 unauthorized" in page.locator("#status").inner_text()


def test_watch_with_a_token_for_another_room_is_forbidden(server: RunningServer) -> None:
    token = server.token("other-room", "bob", "audience")
    query = urlencode({"room": "r1", "token": token, "autostart": "1"})
    with chromium() as context:
        page, _ = open_page(context, server.url(f"/static/watch.html?{query}"))
        handle = poll(
            lambda: page.evaluate(
                "({state: window.interlive.state, error: window.interlive.error})"
            ),
            lambda h: h["state"] == "error",
            timeout=10.0,
            what="watch.html error state",
        )
        assert handle["error"].startswith("403 forbidden"), handle
