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


MUNGE_OFFER_JS = """
async () => {
  const { withAudioNack } = await import("/static/audio-nack.js");
  const pc = new RTCPeerConnection();
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.addTransceiver("video", {direction: "recvonly"});
  const offer = await pc.createOffer();
  const munged = withAudioNack(offer.sdp);
  await pc.setLocalDescription({type: "offer", sdp: munged});
  const applied = pc.localDescription.sdp;
  pc.close();
  return {original: offer.sdp, munged, again: withAudioNack(munged), applied};
}
"""


def test_audio_nack_is_added_once_to_chromiums_own_offer(server: RunningServer) -> None:
    with chromium() as context:
        page, console = open_page(context, server.url("/static/watch.html"))
        sdp = page.evaluate(MUNGE_OFFER_JS)
    assert console.errors == []
    original, munged = sdp["original"].split("\r\n"), sdp["munged"].split("\r\n")
    audio_start = next(i for i, line in enumerate(original) if line.startswith("m=audio "))
    opus = next(line for line in original if " opus/48000" in line)
    pt = opus.split(":")[1].split()[0]
    nack = f"a=rtcp-fb:{pt} nack"
    assert nack not in original  # Chromium does not offer it (the reason for the page's line)
    # exactly one line more, in the audio section, right after Opus's own lines
    assert len(munged) == len(original) + 1
    added = munged.index(nack)
    assert munged[:added] + munged[added + 1 :] == original
    assert added > audio_start and munged[added - 1].split(":")[1].startswith(f"{pt} ")
    assert not any(line.startswith("m=") for line in munged[audio_start + 1 : added])
    assert sdp["again"] == sdp["munged"]  # asking twice changes nothing
    assert nack in sdp["applied"].split("\r\n")  # Chromium took the description as given
