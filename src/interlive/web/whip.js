// WHIP (RFC 9725) and WHEP clients for interlive's web pages.
//
// Theory of operation: interlive is ICE-lite and puts its candidate in the
// answer, so there is no trickle. A client builds its offer, waits for ICE
// gathering to finish (or a short deadline), POSTs the offer once with a
// Bearer token, and applies the answer from the 201. The session resource
// named by Location is DELETEd on stop.

import { withAudioNack } from "/static/audio-nack.js";

const GATHER_TIMEOUT_MS = 3000;

export class WhipError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.name = "WhipError";
    this.status = status;
    this.code = code;
  }
}

// Waits until ICE gathering completes, or the deadline passes: a partial
// candidate list still works against an ICE-lite server on loopback.
function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function errorFrom(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      return new WhipError(response.status, body.error.code || "error", body.error.message || "");
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return new WhipError(response.status, response.statusText || "error", text.trim());
}

// Orders a transceiver's codecs so that `codec` ("VP8", "H264", "VP9") comes
// first, keeping the repair formats (rtx, red, ulpfec) the server may accept.
// Returns false when the browser cannot send or receive that codec.
export function preferCodec(transceiver, kind, codec) {
  if (!codec || codec === "default") return true;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps || typeof transceiver.setCodecPreferences !== "function") return false;
  const wanted = `${kind}/${codec}`.toLowerCase();
  const primary = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (primary.length === 0) return false;
  // For H.264 prefer packetization-mode=1, Constrained Baseline: what every
  // receiver decodes.
  const score = (c) => {
    const f = c.sdpFmtpLine || "";
    return (f.includes("packetization-mode=1") ? 2 : 0) + (f.includes("42e01f") ? 1 : 0);
  };
  primary.sort((a, b) => score(b) - score(a));
  const repair = caps.codecs.filter((c) =>
    ["rtx", "red", "ulpfec"].includes(c.mimeType.split("/")[1].toLowerCase()),
  );
  transceiver.setCodecPreferences([...primary, ...repair]);
  return true;
}

class WhxClient {
  // endpoint: URL of the WHIP/WHEP resource; token: a JWT from `interlive token`.
  constructor(endpoint, token, { onState = () => {}, pc = null } = {}) {
    this.endpoint = new URL(endpoint, window.location.href).href;
    this.token = token;
    this.onState = onState;
    this.pc = pc || new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.location = null;
    this.etag = null;
    this.pc.addEventListener("connectionstatechange", () =>
      this.onState(this.pc.connectionState),
    );
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  // Creates the offer, POSTs it and applies the answer. Throws WhipError on
  // an HTTP error, with the server's {"error": {code, message}} when given.
  async negotiate() {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription({ type: "offer", sdp: withAudioNack(offer.sdp) });
    await gatheringComplete(this.pc, GATHER_TIMEOUT_MS);
    this.onState("posting");
    const response = await fetch(this.endpoint, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/sdp" }),
      body: this.pc.localDescription.sdp,
    });
    if (response.status !== 201) throw await errorFrom(response);
    const location = response.headers.get("Location");
    if (!location) throw new WhipError(response.status, "no_location", "201 without Location");
    this.location = new URL(location, this.endpoint).href;
    this.etag = response.headers.get("ETag");
    const sdp = await response.text();
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    this.onState("negotiated");
  }

  // Leaves: DELETE the session resource, if there is one, then close the
  // peer (closing first would end the session under the DELETE's feet).
  // Reports "stopped" unless `quiet` (cleaning up after an error).
  async stop({ quiet = false } = {}) {
    const location = this.location;
    this.location = null;
    try {
      if (location) {
        const response = await fetch(location, { method: "DELETE", headers: this.headers() });
        if (!response.ok && response.status !== 404) throw await errorFrom(response);
        await response.arrayBuffer(); // read to the end, so the request completes
      }
    } finally {
      this.pc.close();
      if (!quiet) this.onState("stopped");
    }
  }
}

export class WhipClient extends WhxClient {
  // Publishes every track of `stream`, send-only; `codec` picks the video codec.
  async publish(stream, { codec = "default" } = {}) {
    for (const track of stream.getTracks()) {
      const transceiver = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (track.kind === "video" && !preferCodec(transceiver, "video", codec)) {
        throw new WhipError(0, "codec_unsupported", `this browser cannot send ${codec}`);
      }
    }
    await this.negotiate();
  }
}

export class WhepClient extends WhxClient {
  // Plays: one recvonly transceiver per kind; returns the MediaStream that the
  // received tracks are added to as they arrive.
  async play({ audio = true, video = true, codec = "default" } = {}) {
    const stream = new MediaStream();
    this.pc.addEventListener("track", (event) => stream.addTrack(event.track));
    if (audio) this.pc.addTransceiver("audio", { direction: "recvonly" });
    if (video) {
      const transceiver = this.pc.addTransceiver("video", { direction: "recvonly" });
      preferCodec(transceiver, "video", codec);
    }
    await this.negotiate();
    return stream;
  }
}
