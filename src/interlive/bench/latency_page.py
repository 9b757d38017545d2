"""The Chromium viewer of the latency benchmark: WHEP, and the frame code read from a canvas.

The page (served on the server's origin by Playwright's routing) subscribes
to one participant over WHEP itself (``POST /whep/{room}/{identity}``), plays
the video in a ``<video>`` element, and for every frame the compositor
presents (``requestVideoFrameCallback``) draws the picture's top band into a
canvas and reads the test pattern's block code back, as
:func:`interlive.client.media.decode_frame_index` does: 32 blocks of side
``width // 32``, the mean luma of each block's inner half, white for 1, a
CRC-8 check byte.  It records ``[index, wall-clock ms]`` pairs
(``performance.timeOrigin + presentationTime``) that the benchmark drains
with :data:`DRAIN_JS` and maps to its monotonic clock.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "DRAIN_JS", "PAGE_HTML", "PAGE_PATH", "START_JS"]

CHROMIUM: Final = "/usr/bin/chromium"
#: the flags DESIGN.md found to work for headless WebRTC on loopback here
CHROMIUM_ARGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    # the page is fulfilled by Playwright, so Chromium deems it public and would block its
    # requests to a server on a private address (behind the lab link: 10.x) as local
    # network access
    "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks,"
    "BlockInsecurePrivateNetworkRequests",
    "--autoplay-policy=no-user-gesture-required",
)
PAGE_PATH: Final = "/bench/latency-viewer.html"

PAGE_HTML: Final = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>interlive latency viewer</title></head>
<body>
<video id="player" autoplay playsinline muted></video>
<canvas id="band"></canvas>
<script>
"use strict";
window.lat = {frames: [], presented: 0, unreadable: 0, state: "new", error: null};
const player = document.getElementById("player");
const canvas = document.getElementById("band");
const ctx = canvas.getContext("2d", {willReadFrequently: true});

function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

// decode_frame_index() of interlive.client.media, on RGBA pixels of the top band
function decodeIndex(width, height) {
  const block = Math.floor(width / 32);
  if (block < 2 || height < block) return null;
  const x0 = Math.floor((width - block * 32) / 2);
  const inset = Math.floor(block / 4);
  const pixels = ctx.getImageData(0, 0, width, block).data;
  let word = 0;
  for (let bit = 0; bit < 32; bit++) {
    let sum = 0, n = 0;
    for (let y = inset; y < block - inset; y++) {
      for (let x = x0 + bit * block + inset; x < x0 + (bit + 1) * block - inset; x++) {
        const i = 4 * (y * width + x);
        sum += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
        n++;
      }
    }
    const mean = sum / n;
    if (Math.abs(mean - 127.5) < 48) return null;
    word = word * 2 + (mean > 127.5 ? 1 : 0);
  }
  const index = Math.floor(word / 256), check = word % 256;
  const bytes = [(index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff];
  if ((crc8(bytes) ^ 0xa5) !== check) return null;
  return index;
}

function onFrame(now, metadata) {
  const width = metadata.width, height = metadata.height;
  if (canvas.width !== width) { canvas.width = width; canvas.height = Math.floor(width / 32); }
  ctx.drawImage(player, 0, 0, width, height);
  const index = decodeIndex(width, height);
  window.lat.presented++;
  if (index === null) window.lat.unreadable++;
  else window.lat.frames.push([index, performance.timeOrigin + metadata.presentationTime]);
  player.requestVideoFrameCallback(onFrame);
}
player.requestVideoFrameCallback(onFrame);

window.latStart = async (url, token) => {
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: "max-bundle"});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addEventListener("track", (event) => {
    player.srcObject = new MediaStream([event.track]);
    player.play().catch((error) => { window.lat.error = String(error); });
  });
  pc.addEventListener("connectionstatechange", () => { window.lat.state = pc.connectionState; });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const timer = setTimeout(resolve, 2000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) {
    throw new Error("WHEP " + response.status + " " + await response.text());
  }
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.lat.pc = pc;
};
</script>
</body>
</html>
"""

START_JS: Final = "([url, token]) => window.latStart(url, token)"
DRAIN_JS: Final = """() => {
  const frames = window.lat.frames.splice(0);
  return {frames, presented: window.lat.presented, unreadable: window.lat.unreadable,
          state: window.lat.state, error: window.lat.error};
}"""
