"""A Chromium viewer behind 10 % random loss keeps decoding: the server answers its NACKs.

The kernel drops 10 % of everything the media worker sends (nftables random
drop on its UDP port), so the viewer leg loses packets and the viewer NACKs
them; the worker resends from its history in RTX. Continuity is judged by
Chromium's own counters over a 10 s window.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, Route

from interlive.bench.system import Metrics
from interlive.lab.impair import ImpairmentConfig
from interlive.lab.netns import random_drop
from tests.helpers.browser import chromium, open_page, peer_summary, poll
from tests.helpers.lab import impaired_path, via
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.browser

WINDOW = 10.0


def media_port(server: RunningServer) -> int:
    found = re.search(r"UDP port\(s\) (\d+)", server.log())
    assert found, server.log()
    return int(found.group(1))


def video_of(summary: dict[str, Any]) -> dict[str, Any]:
    if summary["state"] == "error":
        raise AssertionError(f"page failed: {summary['error']}")
    video: dict[str, Any] = summary["inbound"].get("video") or {}
    return video


def audio_of(summary: dict[str, Any]) -> dict[str, Any]:
    audio: dict[str, Any] = summary["inbound"].get("audio") or {}
    return audio


def test_viewer_behind_10_percent_loss_decodes_continuously(server: RunningServer) -> None:
    room = "lossy"
    url = server.url("/static/{}?{}")
    with chromium() as context:
        publisher, _ = open_page(
            context,
            url.format(
                "publish.html",
                urlencode(
                    {
                        "room": room,
                        "token": server.token(room, "alice", "host"),
                        "codec": "VP8",
                        "autostart": "1",
                    }
                ),
            ),
        )
        viewer, _ = open_page(
            context,
            url.format(
                "watch.html",
                urlencode(
                    {"room": room, "token": server.token(room, "bob", "audience"), "autostart": "1"}
                ),
            ),
        )
        poll(
            lambda: video_of(peer_summary(viewer)),
            lambda v: (v.get("framesDecoded") or 0) > 30,
            timeout=20.0,
            what="viewer decoding",
        )
        first = peer_summary(viewer)
        before, audio_before, metrics_before = video_of(first), audio_of(first), server.metrics()
        with random_drop(None, 10, source_port=media_port(server)):
            time.sleep(WINDOW)  # the measurement window itself, not a wait for a condition
            last = peer_summary(viewer)
            after, audio_after, metrics_after = video_of(last), audio_of(last), server.metrics()
        audio_down = subscribed(viewer, server.token(room, "bob", "audience"), "audio")
        publisher.evaluate("window.interlive.stop()")

    def delta(key: str, a: dict[str, Any] = after, b: dict[str, Any] = before) -> float:
        return float((a.get(key) or 0) - (b.get(key) or 0))

    decoded, fps = delta("framesDecoded"), after.get("framesPerSecond") or 0
    freezes = delta("totalFreezesDuration")
    print(
        f"10% loss, {WINDOW:.0f} s: framesDecoded +{decoded:.0f} (fps {fps}), "
        f"freezes +{delta('freezeCount'):.0f} ({freezes:.2f} s), packetsLost "
        f"+{delta('packetsLost'):.0f}, nackCount +{delta('nackCount'):.0f}, "
        f"retransmittedPacketsReceived +{delta('retransmittedPacketsReceived'):.0f}, "
        f"pliCount +{delta('pliCount'):.0f}, keyframes +{delta('keyFramesDecoded'):.0f}"
    )
    # the kernel really dropped packets on the viewer leg, the viewer asked for them,
    # and the server's retransmissions repaired most of them (a resent packet can be
    # dropped too: that one is asked for again after Chromium's RTT estimate)
    assert delta("nackCount") > 0
    resent = delta("interlive_retransmissions_sent_total", metrics_after, metrics_before)
    assert resent >= delta("nackCount") * 0.8
    assert delta("retransmittedPacketsReceived") >= delta("packetsLost") * 0.8 > 0
    # continuous decoding: at least half the window's worth of a 15 fps stream, and
    # few freezes (each a resend lost again; the freeze-time goals are the loss
    # benchmark's business, not this test's)
    assert decoded > WINDOW * 15 / 2
    assert freezes < 2.0
    # audio: the viewer's receiver reports show the loss, so its Opus goes out in RED
    # (RFC 2198) and the window's audio keeps playing with little concealment
    red = delta("interlive_red_packets_sent_total", metrics_after, metrics_before)
    samples = delta("totalSamplesReceived", audio_after, audio_before)
    concealed = delta("concealedSamples", audio_after, audio_before)
    print(f"audio: RED packets +{red:.0f}, samples +{samples:.0f}, concealed +{concealed:.0f}")
    assert red > 0
    assert samples > WINDOW * 48_000 * 0.9
    # the page asked for audio NACK (web/audio-nack.js), so Chromium's NetEq asks for
    # lost Opus too and the server resends it from the audio down-track's history
    print(f"audio down-track: {audio_down}, Chromium audio nackCount "
          f"+{delta('nackCount', audio_after, audio_before):.0f}")  # fmt: skip
    assert audio_down["nacks_received"] > 0
    assert audio_down["retransmissions_sent"] > 0
    assert audio_down["protection"]["nack"] is True


SESSION_STATS_JS = """
async (token) => {
  const location = window.interlive && window.interlive.location;
  if (!location) return null;  // not negotiated yet
  const response = await fetch(location + "/stats", {headers: {Authorization: "Bearer " + token}});
  if (!response.ok) return {error: response.status + " " + await response.text()};
  return await response.json();
}
"""


def session_stream(page: Page, token: str, direction: str, kind: str) -> dict[str, Any] | None:
    """The server's view of the ``kind`` stream of the page's WHIP/WHEP session,
    ``direction`` "published" (received from it) or "subscribed" (sent to it); None
    until the page has a session."""
    stats = page.evaluate(SESSION_STATS_JS, token)
    if stats is None:
        return None
    assert "error" not in stats, stats
    streams: list[dict[str, Any]] = [s for s in stats[direction] if s["kind"] == kind]
    assert len(streams) == 1, stats
    return streams[0]


def subscribed(page: Page, token: str, kind: str) -> dict[str, Any]:
    stream = session_stream(page, token, "subscribed", kind)
    assert stream is not None, "the page has no session"
    return stream


def test_a_lossy_publisher_has_its_lost_audio_asked_for_and_resent(server: RunningServer) -> None:
    """The publish page asks for audio NACK too, so the server NACKs the Opus packets the
    kernel drops on their way in and Chromium resends them from its history."""
    room = "lossy-up"
    token = server.token(room, "alice", "host")
    url = server.url("/static/{}?{}")
    with chromium() as context:
        publisher, _ = open_page(
            context,
            url.format("publish.html",
                       urlencode({"room": room, "token": token, "codec": "VP8", "autostart": "1"})),
        )  # fmt: skip
        poll(
            lambda: session_stream(publisher, token, "published", "audio"),
            lambda audio: audio is not None and audio["packets_received"] > 50,
            timeout=20.0,
            what="the publisher's audio arriving",
        )
        with random_drop(None, 10, dest_port=media_port(server)):
            time.sleep(WINDOW)  # the measurement window itself, not a wait for a condition
            audio = session_stream(publisher, token, "published", "audio")
        publisher.evaluate("window.interlive.stop()")
    print(f"published audio under 10 % loss: {audio}")
    assert audio is not None
    nack = audio["nack"]
    assert nack is not None, "audio NACK was not negotiated"
    assert nack["nacks_sent"] > 0
    # 10 % of 50 packets/s for 10 s: about 50 lost; on loopback nearly all come back
    # (a resend dropped too is asked for again until the audio deadline)
    assert nack["recovered"] > 20
    assert nack["recovered"] >= 5 * nack["given_up"]


@dataclass
class FarWindow:
    """What a far viewer's window saw: Chromium's video counters, the server's, the proxy's."""

    before: dict[str, Any]
    after: dict[str, Any]
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    path: dict[str, Any]

    def delta(self, key: str) -> float:
        return float((self.after.get(key) or 0) - (self.before.get(key) or 0))

    def server_delta(self, key: str) -> float:
        return self.metrics_after.get(key, 0) - self.metrics_before.get(key, 0)


def watch_far(
    server: RunningServer, room: str, loss: float, ready: Callable[[RunningServer], bool]
) -> FarWindow:
    """A Chromium publisher, and a Chromium viewer through the lab's proxy (50 ms each
    way, ``loss`` towards the viewer); measures a window once ``ready(server)`` holds.

    The WHEP answer's candidate is rewritten to the proxy on its way into the page,
    the page itself is the product's watch page.
    """
    url = server.url("/static/{}?{}")
    lossy = ImpairmentConfig(loss=loss, delay=0.05)
    with (
        impaired_path(("127.0.0.1", media_port(server)), up=ImpairmentConfig(delay=0.05),
                      down=lossy) as proxy,
        chromium() as context,
    ):  # fmt: skip
        publisher, _ = open_page(
            context,
            url.format("publish.html", urlencode({"room": room, "codec": "VP8", "autostart": "1",
                                                  "token": server.token(room, "alice", "host")})),
        )  # fmt: skip

        def through_proxy(route: Route) -> None:
            response = route.fetch()
            body = response.text()
            if response.status == 201:
                body = via(body, proxy.listen_address)
            route.fulfill(response=response, body=body)

        viewer = context.new_page()
        viewer.route(re.compile(r".*/whep/.*"), through_proxy)
        viewer.goto(url.format("watch.html", urlencode({"room": room, "autostart": "1",
                                "token": server.token(room, "bob", "audience")})))  # fmt: skip
        poll(
            lambda: video_of(peer_summary(viewer)),
            lambda v: (v.get("framesDecoded") or 0) > 30,
            timeout=30.0,
            what="viewer decoding through the proxy",
        )
        assert proxy.client is not None  # the viewer's media really takes the impaired path
        # the policy needs a few receiver reports to see the loss and the RTT
        poll(lambda: server, ready, timeout=15.0, what="the policy reacting to the loss")
        first = peer_summary(viewer)
        before, metrics_before = video_of(first), server.metrics()
        time.sleep(WINDOW)  # the measurement window itself, not a wait for a condition
        last = peer_summary(viewer)
        window = FarWindow(before, video_of(last), metrics_before, server.metrics(), proxy.stats())
        publisher.evaluate("window.interlive.stop()")
    print(
        f"{loss:.0%} loss, 100 ms RTT, {WINDOW:.0f} s: framesDecoded "
        f"+{window.delta('framesDecoded'):.0f}, freezes +{window.delta('freezeCount'):.0f} "
        f"({window.delta('totalFreezesDuration'):.2f} s), packetsLost "
        f"+{window.delta('packetsLost'):.0f}, nackCount +{window.delta('nackCount'):.0f}, "
        f"retransmitted +{window.delta('retransmittedPacketsReceived'):.0f}, jitter buffer "
        f"{jitter_buffer_ms(window):.0f} ms; server: FEC sent "
        f"+{window.server_delta('interlive_fec_packets_sent_total'):.0f}, retransmissions "
        f"+{window.server_delta('interlive_retransmissions_sent_total'):.0f}; proxy: {window.path}"
    )
    return window


def jitter_buffer_ms(window: FarWindow) -> float:
    """Chromium's mean video jitter-buffer delay over the window (ms)."""
    emitted = window.delta("jitterBufferEmittedCount")
    return 1000 * window.delta("jitterBufferDelay") / emitted if emitted else 0.0


def viewers_by_tool(server: RunningServer) -> dict[str, float]:
    _, body = server.get("/metrics")
    return Metrics.parse(body).by_label("interlive_viewer_streams_by_protection", "tool")


def test_far_lossy_viewer_gets_fec_and_nack_and_keeps_decoding(
    server_factory: Callable[..., RunningServer],
) -> None:
    """10 % loss at 100 ms RTT on a server that may not delay its viewers
    (``--max-playout-delay 0``): one NACK round fits the deadline, so the policy adds
    ULPFEC."""
    server = server_factory(extra_args=["--max-playout-delay", "0"])
    window = watch_far(
        server, "far", 0.10, lambda s: s.metrics().get("interlive_fec_packets_sent_total", 0) > 0
    )
    # both tools at work: FEC went to the viewer and its NACKs were answered.
    # (Chromium 156 leaves fecPacketsReceived undefined for video, so the viewer's
    # own FEC counters cannot be read; the loss benchmark measures what FEC buys.)
    assert window.server_delta("interlive_fec_packets_sent_total") > 0
    assert window.delta("nackCount") > 0
    assert window.server_delta("interlive_retransmissions_sent_total") > 0
    assert window.delta("packetsLost") > 0
    # continuous decoding through 10 % loss at 100 ms RTT
    assert window.delta("framesDecoded") > WINDOW * 15 / 2
    assert window.delta("totalFreezesDuration") < 2.0


def test_far_lossy_viewer_is_asked_to_wait_for_repairs_instead_of_fec(
    server: RunningServer,
) -> None:
    """20 % loss at 100 ms RTT with the defaults: the policy asks the viewer to hold its
    pictures longer (the playout-delay extension) so that NACK rounds land in time,
    and sends no FEC; Chromium's jitter buffer follows and the picture keeps going."""
    window = watch_far(
        server, "patient", 0.20, lambda s: viewers_by_tool(s).get("nack+delay", 0) > 0
    )
    assert window.server_delta("interlive_fec_packets_sent_total") == 0
    assert window.delta("nackCount") > 0
    assert window.server_delta("interlive_retransmissions_sent_total") > 0
    # the policy asks for 500 ms more at 20 % and 100 ms RTT; Chromium moves its delay
    # towards it by at most 100 ms a second, so the window sees well above the
    # 138 ms it kept on this link without the extension (loss benchmark, NACK only)
    assert jitter_buffer_ms(window) > 250
    assert window.delta("framesDecoded") > WINDOW * 15 / 2
    assert window.delta("totalFreezesDuration") < 1.0
