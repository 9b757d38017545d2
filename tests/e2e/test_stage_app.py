"""The stage web app in headless Chromium: a co-hosted show run from three pages.

The host studio, a co-host and an audience member join one room over ``/ws``
(``web/stage-client.js``); host and co-host decode each other; the audience
raises a hand, the host accepts it by clicking the real button, and the
audience page goes on stage without reloading while the host decodes it.
``/dev/token`` exists only with ``interlive serve --dev``.

Screenshots of the studio go to the test's tmp dir; set
``INTERLIVE_DOCS_SCREENSHOT=1`` to also refresh ``docs/img/studio.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, ViewportSize

from interlive.auth import Role, verify_token
from interlive.client import StageClient
from tests.helpers.browser import ConsoleLog, chromium, open_page, poll
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser

ROOM = "show"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
STATS_JS = "async () => await window.interlive.stats()"
MIN_FRAMES = 30
QUALITIES = ("excellent", "good", "poor")


def _page_url(server: RunningServer, page: str, identity: str, role: str) -> str:
    token = server.token(ROOM, identity, role)
    return server.url(f"/static/{page}?{urlencode({'token': token})}")


def _open(context: Any, url: str) -> tuple[Page, ConsoleLog]:
    page, console = open_page(context, url)
    page.set_viewport_size(VIEWPORT)
    return page, console


def _state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        "({state: window.interlive.state, error: window.interlive.error,"
        " role: window.interlive.client ? window.interlive.client.role : null})"
    )
    return state


def _wait_state(page: Page, state: str, what: str, timeout: float = 30.0) -> None:
    poll(
        lambda: _state(page),
        lambda s: s["state"] == state,
        timeout=timeout,
        what=what,
    )


def _decoded(page: Page, identity: str) -> int:
    stats = page.evaluate(STATS_JS) or {}
    video = stats.get("inbound", {}).get(identity, {}).get("video") or {}
    frames: int = video.get("framesDecoded", 0)
    return frames


def _wait_decoded(page: Page, identity: str, what: str, timeout: float = 30.0) -> int:
    frames: int = poll(
        lambda: _decoded(page, identity),
        lambda n: n >= MIN_FRAMES,
        timeout=timeout,
        what=what,
    )
    return frames


def _tile_playing(page: Page, identity: str) -> bool:
    playing: bool = page.evaluate(
        """(identity) => {
          const video = document.querySelector(`.tile[data-identity="${identity}"] video`);
          return Boolean(video && video.videoWidth > 0 && video.readyState >= 2);
        }""",
        identity,
    )
    return playing


def _page_errors(*consoles: ConsoleLog) -> list[str]:
    return [e for c in consoles for e in c.errors if e.startswith("pageerror")]


@pytest.mark.parametrize("path", ["/static/join.html", "/static/dev.html"])
def test_token_pages_load_without_console_errors(server: RunningServer, path: str) -> None:
    with chromium() as context:
        page, console = open_page(context, server.url(path))
        page.wait_for_load_state("networkidle")
        assert console.errors == []
        assert page.evaluate("window.interlive.state") == "idle"


@pytest.mark.parametrize("path", ["studio.html", "cohost.html", "audience.html"])
def test_stage_pages_without_a_token_say_so(server: RunningServer, path: str) -> None:
    with chromium() as context:
        page, console = open_page(context, server.url(f"/static/{path}"))
        page.wait_for_load_state("networkidle")
        assert _state(page)["state"] == "error"
        assert "no token" in page.locator("#status").inner_text()
        assert console.errors == []


def test_a_bad_token_is_refused_plainly(server: RunningServer) -> None:
    with chromium() as context:
        page, _ = open_page(context, server.url("/static/studio.html?token=not-a-jwt"))
        state = poll(
            lambda: _state(page), lambda s: s["state"] == "error", timeout=10.0, what="error"
        )
        assert state["error"].startswith("unauthorized"), state


def test_three_pages_run_a_co_hosted_show(server: RunningServer, tmp_path: Path) -> None:
    with chromium() as context:
        host, host_console = _open(context, _page_url(server, "studio.html", "alice", "host"))
        _wait_state(host, "on stage", "host studio publishing")
        cohost, cohost_console = _open(context, _page_url(server, "cohost.html", "carol", "cohost"))
        _wait_state(cohost, "on stage", "co-host publishing")

        # everyone on stage decodes everyone else
        _wait_decoded(host, "carol", "host decoding the co-host")
        _wait_decoded(cohost, "alice", "co-host decoding the host")
        poll(lambda: _tile_playing(host, "carol"), bool, timeout=15.0, what="carol's tile plays")

        audience, audience_console = _open(
            context, _page_url(server, "audience.html", "bob", "audience")
        )
        _wait_state(audience, "watching", "audience watching")
        _wait_decoded(audience, "alice", "audience decoding the host")
        _wait_decoded(audience, "carol", "audience decoding the co-host")
        assert audience.locator("#hands-panel").is_hidden()  # no admin panels for the audience
        assert audience.locator("#live-panel").is_hidden()
        assert cohost.locator("#hands-panel").is_hidden()
        assert cohost.locator("button.kick").count() == 0

        # the go-live panel talks to the real endpoint: not live yet
        poll(
            lambda: host.locator("#live-status").inner_text(),
            lambda text: text == "not live",
            timeout=10.0,
            what="go-live panel status",
        )

        # raise hand -> accepted in the host's page -> on stage without reloading
        audience.evaluate("window.__sameDocument = true")
        audience.click("#raise")
        accept = host.locator('#hands button.accept[data-identity="bob"]')
        accept.wait_for(state="visible", timeout=15_000)
        host.screenshot(path=str(tmp_path / "studio-hand-raised.png"))
        accept.click()
        _wait_state(audience, "on stage", "audience promoted and publishing")
        assert audience.evaluate("window.__sameDocument === true"), "the audience page reloaded"
        assert _state(audience)["role"] == "cohost"
        _wait_decoded(host, "bob", "host decoding the promoted audience member")
        _wait_decoded(cohost, "bob", "co-host decoding the promoted audience member")
        poll(lambda: _tile_playing(host, "bob"), bool, timeout=15.0, what="bob's tile plays")
        assert host.locator("#hands li").count() == 0

        # quality badges filled from the server's events and getStats
        poll(
            lambda: host.locator(".tile .quality").all_inner_texts(),
            lambda texts: len(texts) == 3 and all(t in QUALITIES for t in texts),
            timeout=15.0,
            what="quality on every tile",
        )
        studio = tmp_path / "studio.png"
        host.screenshot(path=str(studio), full_page=True)
        audience.screenshot(path=str(tmp_path / "audience-on-stage.png"))
        cohost.screenshot(path=str(tmp_path / "cohost.png"))
        if os.environ.get("INTERLIVE_DOCS_SCREENSHOT") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(studio, DOCS_IMG / "studio.png")

        # the host mutes carol's microphone: every page shows it on her tile
        host.click('#people button.mute[data-identity="carol"]')
        for page in (host, cohost, audience):
            poll(
                page.locator('.tile[data-identity="carol"] .mutes').inner_text,
                lambda text: text == "mic off",
                timeout=10.0,
                what="carol muted",
            )

        # demote and promote again: the same page, the same tracks
        host.click('#people button.demote[data-identity="bob"]')
        _wait_state(audience, "watching", "bob back in the audience")
        poll(
            lambda: host.locator('.tile[data-identity="bob"]').count(),
            lambda n: n == 0,
            timeout=10.0,
            what="bob's tile gone",
        )
        assert audience.locator("#raise").is_visible()
        host.click('#people button.promote[data-identity="bob"]')
        _wait_state(audience, "on stage", "bob promoted again")
        frames = _decoded(host, "bob")
        poll(
            lambda: _decoded(host, "bob"),
            lambda n: n >= frames + MIN_FRAMES,
            timeout=30.0,
            what="host decoding bob again",
        )
        assert audience.evaluate("window.__sameDocument === true"), "the audience page reloaded"
        assert _page_errors(host_console, cohost_console, audience_console) == []


def test_a_dropped_websocket_resumes_and_the_camera_can_change(server: RunningServer) -> None:
    with chromium() as context:
        host, console = _open(context, _page_url(server, "studio.html", "alice", "host"))
        _wait_state(host, "on stage", "host studio publishing")
        cohost, _ = _open(context, _page_url(server, "cohost.html", "carol", "cohost"))
        _wait_state(cohost, "on stage", "co-host publishing")
        before = _wait_decoded(host, "carol", "host decoding the co-host")
        session = host.evaluate("window.interlive.client.session")
        host.evaluate(
            """() => { window.__states = [];
                 window.interlive.client.on((m) => {
                   if (m.type === 'client_state') window.__states.push(m.state);
                 }); }"""
        )
        host.evaluate("window.interlive.client.dropSocket()")
        states = poll(
            lambda: host.evaluate("window.__states"),
            lambda s: "joined" in s,
            timeout=20.0,
            what="resumed",
        )
        assert states[0] == "reconnecting", states
        assert host.evaluate("window.interlive.client.session") == session
        assert _state(host) == {"state": "on stage", "error": None, "role": "host"}
        # the peer connection carried on: still decoding carol, still sending to her
        poll(
            lambda: _decoded(host, "carol"),
            lambda n: n > before + MIN_FRAMES,
            timeout=20.0,
            what="host still decoding",
        )
        after = _decoded(cohost, "alice")
        poll(
            lambda: _decoded(cohost, "alice"),
            lambda n: n > after + MIN_FRAMES,
            timeout=20.0,
            what="co-host still decoding",
        )

        # the camera picker swaps the sent track (replaceTrack, no renegotiation)
        sender_track = """() => window.interlive.pc.getSenders()
            .filter((s) => s.track && s.track.kind === 'video').map((s) => s.track.id)[0]"""
        old_track = host.evaluate(sender_track)
        offers = host.evaluate("window.interlive.client.serverOffers")
        host.evaluate(
            """() => { const select = document.getElementById('camera');
                 select.dispatchEvent(new Event('change')); }"""
        )
        poll(
            lambda: host.evaluate(sender_track),
            lambda track: track not in (None, old_track),
            timeout=10.0,
            what="camera track replaced",
        )
        after = _decoded(cohost, "alice")
        poll(
            lambda: _decoded(cohost, "alice"),
            lambda n: n > after + MIN_FRAMES,
            timeout=20.0,
            what="co-host decoding the new camera",
        )
        assert host.evaluate("window.interlive.client.serverOffers") == offers
        assert _page_errors(console) == []


def _clicked_call(page: Page, selector: str, method: str) -> int:
    """Click ``selector``; the status of the ``method`` call to the live endpoint it makes."""
    with page.expect_response(
        lambda r: r.request.method == method and r.url.endswith("/live")
    ) as response:
        page.click(selector)
    status: int = response.value.status
    return status


def test_go_live_panel_starts_and_stops_the_bypass_live(server: RunningServer) -> None:
    with chromium() as context:
        host, console = _open(context, _page_url(server, "studio.html", "alice", "host"))
        _wait_state(host, "on stage", "host studio publishing")
        status = host.locator("#live-status")
        poll(status.inner_text, lambda t: t == "not live", timeout=10.0, what="not live")
        host.select_option("#layout", "speaker")
        # no destinations: HLS and the recording only
        assert _clicked_call(host, "#live-start", "POST") == 201
        poll(status.inner_text, lambda t: t.startswith("running"), timeout=30.0, what="live")
        poll(host.locator("#live-badge").is_visible, bool, timeout=5.0, what="LIVE badge")
        host.select_option("#layout", "grid")
        assert _clicked_call(host, "#live-apply", "PATCH") == 200
        assert _clicked_call(host, "#live-stop", "DELETE") == 204
        poll(status.inner_text, lambda t: t == "not live", timeout=30.0, what="stopped")
        assert host.locator("#live-badge").is_hidden()
        assert _page_errors(console) == []


def test_studio_says_when_the_server_has_no_bypass_live(server: RunningServer) -> None:
    with chromium() as context:
        page = context.new_page()
        console = ConsoleLog()
        console.attach(page)
        # a server without the live endpoint answers aiohttp's plain 404/405
        page.route(
            "**/api/rooms/*/live",
            lambda route: route.fulfill(status=405, body="405: Method Not Allowed"),
        )
        page.goto(_page_url(server, "studio.html", "alice", "host"))
        _wait_state(page, "on stage", "host studio publishing")
        poll(
            lambda: page.locator("#live-status").inner_text(),
            lambda text: text == "bypass live not available on this server",
            timeout=10.0,
            what="go-live panel status",
        )
        assert page.locator("#live-start").is_disabled()


def test_without_dev_no_token_is_minted_over_http(server: RunningServer) -> None:
    status, body = server.get(f"/dev/token?{urlencode({'room': ROOM, 'identity': 'x'})}")
    assert status == 404, body
    with chromium() as context:
        page, _ = open_page(context, server.url("/static/join.html?room=show&identity=x"))
        page.click("#join")
        handle = poll(
            lambda: page.evaluate("window.interlive"),
            lambda h: h["state"] == "error",
            timeout=10.0,
            what="join page error",
        )
        assert "does not mint tokens" in handle["error"]


async def _join_over_ws(base_url: str, token: str) -> dict[str, Any]:
    async with StageClient() as client:
        joined = await client.join(base_url, token)
        await client.leave()
        return joined


def test_dev_mints_tokens_that_work(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(extra_args=["--dev"])
    query = urlencode({"room": ROOM, "identity": "dana", "role": "cohost"})
    status, body = server.get(f"/dev/token?{query}")
    assert status == 200, body
    minted = json.loads(body)
    token = verify_token(server.secret, minted["token"])
    assert (token.room, token.identity, token.role) == (ROOM, "dana", Role.COHOST)
    joined = asyncio.run(_join_over_ws(server.base_url, minted["token"]))
    assert (joined["identity"], joined["role"]) == ("dana", "cohost")

    for bad in ({"room": ROOM, "identity": "x", "role": "admin"}, {"room": "*", "identity": "x"}):
        status, body = server.get(f"/dev/token?{urlencode(bad)}")
        assert status == 400, (bad, body)

    # the dev page mints the three tokens and links into the pages
    with chromium() as context:
        page, console = open_page(context, server.url("/static/dev.html"))
        page.click("#mint")
        handle = poll(
            lambda: page.evaluate("window.interlive"),
            lambda h: h["state"] in ("minted", "error"),
            timeout=10.0,
            what="dev page minting",
        )
        assert handle["state"] == "minted", handle
        assert page.locator("#links a").count() == 3
        page.goto(server.url(handle["links"]["host"]))
        _wait_state(page, "on stage", "studio opened from the dev page")
        assert _page_errors(console) == []


def test_a_page_that_loses_its_network_resumes_with_an_ice_restart(
    server: RunningServer,
) -> None:
    """WebSocket and ICE both lost for a few seconds: the page resumes its session,
    keeps its role and restarts ICE on the same peer connection."""
    from interlive.lab.netns import random_drop
    from tests.e2e.test_browser_loss import media_port

    with chromium() as context:
        host, _ = _open(context, _page_url(server, "studio.html", "alice", "host"))
        _wait_state(host, "on stage", "host studio publishing")
        cohost, _ = _open(context, _page_url(server, "cohost.html", "carol", "cohost"))
        _wait_state(cohost, "on stage", "co-host publishing")
        _wait_decoded(host, "carol", "host decoding the co-host")
        session = host.evaluate("window.interlive.client.session")
        ufrag = """() => (window.interlive.pc.localDescription.sdp
            .match(/a=ice-ufrag:(\\S+)/) || [])[1]"""
        old_ufrag = host.evaluate(ufrag)
        with random_drop(None, 100, source_port=media_port(server)):
            # the server's media (and ICE answers) stop reaching anyone
            poll(
                lambda: host.evaluate("window.interlive.pc.iceConnectionState"),
                lambda state: state in ("disconnected", "failed"),
                timeout=20.0,
                what="the host's ICE noticing the loss",
            )
            host.evaluate("window.interlive.client.dropSocket()")
            # signaling comes back first (TCP is not dropped): the page resumes its
            # session and, its ICE still down, restarts ICE on the same connection
            poll(
                lambda: host.evaluate(ufrag),
                lambda current: current not in (None, old_ufrag),
                timeout=30.0,
                what="an ICE restart (new ufrag)",
            )
        # the media path is back
        assert host.evaluate("window.interlive.client.session") == session
        assert _state(host)["role"] == "host"
        before = _decoded(host, "carol")
        poll(
            lambda: _decoded(host, "carol"),
            lambda n: n > before + MIN_FRAMES,
            timeout=20.0,
            what="the host decoding again after the restart",
        )
        after = _decoded(cohost, "alice")
        poll(
            lambda: _decoded(cohost, "alice"),
            lambda n: n > after + MIN_FRAMES,
            timeout=20.0,
            what="the co-host decoding the host again",
        )
