"""Debian's headless Chromium driven by Playwright's Python API.

Playwright is used only as a driver: the browser is ``/usr/bin/chromium``
(installed by ``make test``), never one fetched by ``playwright install``.
The flags give it a fake camera and microphone, allow loopback ICE and keep
it from reaching the network.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def require_chromium() -> str:
    """The browser's path; fails the test (never skips) when it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: browser tests need Debian's chromium package; "
            "`make test` installs it (scripts/setup.sh test)",
            pytrace=False,
        )
    return CHROMIUM


@contextlib.contextmanager
def chromium(extra_args: list[str] | None = None) -> Iterator[BrowserContext]:
    """A fresh persistent Chromium context (own temporary profile), closed on exit."""
    executable = require_chromium()
    with (
        tempfile.TemporaryDirectory(prefix="interlive-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_ARGS, *(extra_args or [])],
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class ConsoleLog:
    """A page's console output and uncaught errors, for assertions and reports."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "requestfailed",
            lambda request: self.errors.append(
                f"requestfailed: {request.method} {request.url} {request.failure}"
            ),
        )

    def _on_console(self, message: ConsoleMessage) -> None:
        line = f"{message.type}: {message.text}"
        self.messages.append(line)
        if message.type == "error":
            self.errors.append(line)


def open_page(context: BrowserContext, url: str) -> tuple[Page, ConsoleLog]:
    """A new tab at ``url`` with its console recorded from the first line."""
    page = context.new_page()
    console = ConsoleLog()
    console.attach(page)
    page.goto(url)
    return page, console


# Summarises a page's `window.interlive.pc`: peer, ICE and DTLS states, the
# selected candidate pair and the inbound/outbound RTP counters that matter.
PEER_SUMMARY_JS = """
async () => {
  const handle = window.interlive || {};
  const pc = handle.pc;
  const out = {state: handle.state ?? null, error: handle.error ?? null, pc: null,
               inbound: {}, outbound: {}, transport: null, pair: null};
  if (!pc) return out;
  out.pc = {connection: pc.connectionState, ice: pc.iceConnectionState,
            gathering: pc.iceGatheringState, signaling: pc.signalingState};
  const report = await pc.getStats();
  const codecOf = (s) => {
    const codec = s.codecId ? report.get(s.codecId) : null;
    return codec ? codec.mimeType : null;
  };
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      out.inbound[s.kind] = {codec: codecOf(s), packetsReceived: s.packetsReceived,
        packetsLost: s.packetsLost, bytesReceived: s.bytesReceived,
        framesDecoded: s.framesDecoded, framesPerSecond: s.framesPerSecond,
        frameWidth: s.frameWidth, frameHeight: s.frameHeight, keyFramesDecoded: s.keyFramesDecoded,
        totalSamplesReceived: s.totalSamplesReceived, concealedSamples: s.concealedSamples,
        nackCount: s.nackCount, pliCount: s.pliCount, firCount: s.firCount,
        freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration,
        framesDropped: s.framesDropped, jitterBufferDelay: s.jitterBufferDelay,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount,
        retransmittedPacketsReceived: s.retransmittedPacketsReceived,
        fecPacketsReceived: s.fecPacketsReceived, fecPacketsDiscarded: s.fecPacketsDiscarded};
    } else if (s.type === 'outbound-rtp') {
      out.outbound[s.kind] = {codec: codecOf(s), packetsSent: s.packetsSent,
        bytesSent: s.bytesSent, framesEncoded: s.framesEncoded,
        framesPerSecond: s.framesPerSecond, frameWidth: s.frameWidth,
        frameHeight: s.frameHeight, nackCount: s.nackCount, pliCount: s.pliCount,
        qualityLimitationReason: s.qualityLimitationReason};
    } else if (s.type === 'transport') {
      out.transport = {dtls: s.dtlsState, ice: s.iceState, srtpCipher: s.srtpCipher,
                       dtlsCipher: s.dtlsCipher, selectedPair: s.selectedCandidatePairId};
    }
  });
  if (out.transport && out.transport.selectedPair) {
    const pair = report.get(out.transport.selectedPair);
    if (pair) {
      const local = report.get(pair.localCandidateId) || {};
      const remote = report.get(pair.remoteCandidateId) || {};
      out.pair = {state: pair.state, local: `${local.address}:${local.port}`,
                  remote: `${remote.address}:${remote.port}`,
                  bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived};
    }
  }
  return out;
}
"""


def peer_summary(page: Page) -> dict[str, Any]:
    summary: dict[str, Any] = page.evaluate(PEER_SUMMARY_JS)
    return summary


def poll(
    sample: Callable[[], Any],
    done: Callable[[Any], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    describe: Callable[[Any], str] = repr,
    what: str = "condition",
) -> Any:
    """Call ``sample`` until ``done(value)``, or fail after ``timeout`` s with the last value."""
    deadline = time.monotonic() + timeout
    value = sample()
    while not done(value):
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what} not reached within {timeout:.0f} s; last: {describe(value)}"
            )
        time.sleep(interval)
        value = sample()
    return value
