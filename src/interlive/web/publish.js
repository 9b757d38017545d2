// publish.html: camera and microphone to interlive over WHIP.
import { WhipClient } from "/static/whip.js";
import { bindSession, createState, endpoint } from "/static/ui.js";

const form = document.getElementById("form");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const preview = document.getElementById("preview");
const status = createState(document.getElementById("status"));

let client = null;
let stream = null;

function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
  for (const element of form.elements) {
    if (element.tagName !== "BUTTON") element.disabled = running;
  }
}

async function start() {
  const room = form.elements.room.value.trim();
  const token = form.elements.token.value.trim();
  const codec = form.elements.codec.value;
  setRunning(true);
  try {
    status.set("media", "asking for camera and microphone");
    stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
    });
    preview.srcObject = stream;
    client = new WhipClient(endpoint("whip", room), token, {
      onState: (state) => status.set(state),
    });
    status.handle.pc = client.pc;
    status.set("connecting");
    await client.publish(stream, { codec });
    status.handle.location = client.location;
    if (client.pc.connectionState !== "connected") status.set("connecting", "ICE and DTLS");
  } catch (error) {
    await release({ quiet: true }).catch(() => {});
    status.fail(error);
    setRunning(false);
  }
}

async function release({ quiet = false } = {}) {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  preview.srcObject = null;
  const current = client;
  client = null;
  if (current) await current.stop({ quiet });
}

bindSession({ form, stopButton, status, setRunning, start, release, current: () => client });
