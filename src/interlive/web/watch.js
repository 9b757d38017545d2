// watch.html: play a room (or one participant) from interlive over WHEP.
import { WhepClient } from "/static/whip.js";
import { bindSession, createState, endpoint } from "/static/ui.js";

const STATS_INTERVAL_MS = 1000;

const form = document.getElementById("form");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const unmuteButton = document.getElementById("unmute");
const player = document.getElementById("player");
const statsLine = document.getElementById("stats");
const status = createState(document.getElementById("status"));

let client = null;
let statsTimer = null;
let previous = null;

function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
  for (const element of form.elements) {
    if (element.tagName !== "BUTTON") element.disabled = running;
  }
}

// Autoplay with sound may be refused without a user gesture: fall back to
// muted playback and offer an unmute button.
async function playMedia() {
  try {
    await player.play();
  } catch (error) {
    if (error.name !== "NotAllowedError") throw error;
    player.muted = true;
    unmuteButton.hidden = false;
    await player.play();
  }
}

// One line summarising the inbound streams, refreshed every second.
async function refreshStats() {
  if (!client) return;
  const report = await client.pc.getStats();
  let video = null;
  let audio = null;
  report.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") video = s;
    if (s.kind === "audio") audio = s;
  });
  const now = performance.now();
  const parts = [];
  if (video) {
    let fps = video.framesPerSecond;
    if (fps === undefined && previous) {
      fps = ((video.framesDecoded - previous.frames) * 1000) / (now - previous.at);
    }
    const codec = video.codecId ? report.get(video.codecId) : null;
    parts.push(
      `video ${codec ? codec.mimeType.split("/")[1] : "?"}: ${video.framesDecoded ?? 0} frames decoded, ` +
        `${(fps ?? 0).toFixed(1)} fps, ${video.frameWidth ?? 0}x${video.frameHeight ?? 0}, ` +
        `${video.packetsLost ?? 0} lost`,
    );
    previous = { frames: video.framesDecoded ?? 0, at: now };
  }
  if (audio) {
    parts.push(`audio: ${audio.totalSamplesReceived ?? 0} samples, ${audio.packetsLost ?? 0} lost`);
  }
  statsLine.textContent = parts.join(" | ") || "no inbound media yet";
}

async function start() {
  const room = form.elements.room.value.trim();
  const identity = form.elements.identity.value.trim();
  const token = form.elements.token.value.trim();
  setRunning(true);
  try {
    client = new WhepClient(endpoint("whep", room, identity), token, {
      onState: (state) => status.set(state),
    });
    status.handle.pc = client.pc;
    status.set("connecting");
    const stream = await client.play({ audio: true, video: true });
    status.handle.location = client.location;
    player.srcObject = stream;
    if (client.pc.connectionState !== "connected") status.set("connecting", "ICE and DTLS");
    statsTimer = setInterval(() => refreshStats().catch(() => {}), STATS_INTERVAL_MS);
    // Playback trouble is shown, but does not end the session.
    playMedia().catch((error) => {
      statsLine.textContent = `playback: ${error.message}`;
    });
  } catch (error) {
    await release({ quiet: true }).catch(() => {});
    status.fail(error);
    setRunning(false);
  }
}

async function release({ quiet = false } = {}) {
  clearInterval(statsTimer);
  statsTimer = null;
  previous = null;
  player.srcObject = null;
  const current = client;
  client = null;
  if (current) await current.stop({ quiet });
}

unmuteButton.addEventListener("click", () => {
  player.muted = false;
  unmuteButton.hidden = true;
});
bindSession({ form, stopButton, status, setRunning, start, release, current: () => client });
