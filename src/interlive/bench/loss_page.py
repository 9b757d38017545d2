"""The Chromium viewer page of the loss benchmark, served on the server's origin by Playwright.

The page holds one receive-only ``RTCPeerConnection`` and plays it in a
``<video>`` element (so audio is pulled and frames are rendered, as
``freezeCount`` and ``concealedSamples`` need).  Its offer asks for audio
NACK as the product's pages do (``web/audio-nack.js``).  Signalling is the
benchmark's: :data:`OFFER_JS` returns the offer once ICE gathering is done,
the Python side POSTs it to WHEP, rewrites the answer's candidates to the
impairment proxy and applies it with :data:`ANSWER_JS`.  :data:`STATS_JS`
returns every numeric field of the inbound-rtp stats per kind, the
connection state, the selected candidate pair and its STUN round-trip time
(through the proxy), and the seconds since the
``<video>`` element last presented a frame (``requestVideoFrameCallback``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ANSWER_JS", "OFFER_JS", "PAGE_HTML", "PAGE_PATH", "STATS_JS"]

PAGE_PATH: Final = "/bench/loss-viewer.html"

PAGE_HTML: Final = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>interlive loss benchmark viewer</title></head>
<body>
<video id="player" autoplay playsinline></video>
<script type="module">
import { withAudioNack } from "/static/audio-nack.js";

window.bench = {pc: null, state: "new", error: null, lastFrame: null, rendered: 0};
const player = document.getElementById("player");

// When the last video frame was presented: a stall still going on at the end
// of a window is a freeze that freezeCount has not counted yet.
function onFrame() {
  window.bench.lastFrame = performance.now();
  window.bench.rendered += 1;
  player.requestVideoFrameCallback(onFrame);
}
player.requestVideoFrameCallback(onFrame);

function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

window.benchOffer = async () => {
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: "max-bundle"});
  window.bench.pc = pc;
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    player.srcObject = stream;
    player.play().catch((error) => { window.bench.error = String(error); });
  });
  pc.addEventListener("connectionstatechange", () => { window.bench.state = pc.connectionState; });
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.addTransceiver("video", {direction: "recvonly"});
  const offer = await pc.createOffer();
  await pc.setLocalDescription({type: "offer", sdp: withAudioNack(offer.sdp)});
  await gathered(pc, 3000);
  return pc.localDescription.sdp;
};
</script>
</body>
</html>
"""

OFFER_JS: Final = "() => window.benchOffer()"

ANSWER_JS: Final = """
async (sdp) => { await window.bench.pc.setRemoteDescription({type: "answer", sdp}); }
"""

STATS_JS: Final = """
async () => {
  const pc = window.bench.pc;
  const last = window.bench.lastFrame;
  const out = {state: pc ? pc.connectionState : "none", error: window.bench.error,
               video: null, audio: null, pair: null, rendered: window.bench.rendered,
               sinceLastFrame: last === null ? null : (performance.now() - last) / 1000};
  if (!pc) return out;
  const report = await pc.getStats();
  const numbers = (s) => Object.fromEntries(
    Object.entries(s).filter(([, v]) => typeof v === "number"));
  let pairId = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && (s.kind === "video" || s.kind === "audio")) {
      out[s.kind] = numbers(s);
      const codec = s.codecId ? report.get(s.codecId) : null;
      out[s.kind + "Codec"] = codec ? codec.mimeType : null;
    } else if (s.type === "transport") {
      pairId = s.selectedCandidatePairId;
    }
  });
  const pair = pairId ? report.get(pairId) : null;
  if (pair) {
    const local = report.get(pair.localCandidateId) || {};
    const remote = report.get(pair.remoteCandidateId) || {};
    out.pair = `${local.address}:${local.port} -> ${remote.address}:${remote.port}`;
    out.rtt = pair.currentRoundTripTime ?? null;
  }
  return out;
}
"""
