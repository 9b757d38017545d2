// A stage participant in the browser: /ws signaling and one RTCPeerConnection.
//
// The browser counterpart of interlive.client.StageClient (Python); the
// protocol is docs/signaling.md.
//
// Theory of operation
// - Requests carry an `id` ("c1", "c2"...); the server's `ack`, `answer`,
//   `pong` or `error` with that id settles the request's promise.
// - Negotiation runs on one promise chain (a lock): our own offers hold it
//   from createOffer until the server's answer is applied; server offers are
//   applied one at a time on the same chain and answered with their `id`.
//   The client is the impolite peer: a server `offer` that arrives while our
//   own offer is outstanding is ignored (the server rolls it back and offers
//   again after answering ours).
// - Publishing uses addTransceiver(track, {direction: "sendonly"}), never
//   addTrack (which may reuse a line the server created to send us someone).
// - `streams` in every server offer and answer maps receiving mids to
//   participants; lines not listed carry nothing.
// - If the WebSocket drops (any close but left/replaced/kicked/timeout), the
//   client reconnects with backoff and `join` + `resume` within 15 s; the peer
//   connection carries on. If ICE fails, it restarts ICE on the same peer
//   connection.
// - The room's state (participants, roles, hands, tracks, speaker, quality,
//   live) is kept in `client.room`, updated by the snapshot in `joined` and by
//   every event; listeners get each message with `client.on(...)`.

import { withAudioNack } from "/static/audio-nack.js";

const PROTOCOL_VERSION = 1;
const REQUEST_TIMEOUT_MS = 10000;
const RESUME_WINDOW_MS = 15000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];
const FINAL_CLOSE_CODES = new Set([1000, 4001, 4002, 4003]);

export class StageError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "StageError";
    this.code = code;
  }
}

export function wsUrl(origin = window.location.origin) {
  const url = new URL("/ws", origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// The room as this client knows it: participants by identity, the hand queue,
// the active speaker, per-participant server quality and the live flag.
export class RoomState {
  constructor() {
    this.name = null;
    this.live = false;
    this.maxPublishers = 16;
    this.participants = new Map();
    this.hands = [];
    this.speaker = null;
    this.quality = new Map();
  }

  load(snapshot) {
    this.name = snapshot.name;
    this.live = Boolean(snapshot.live);
    this.maxPublishers = snapshot.max_publishers ?? this.maxPublishers;
    this.participants = new Map();
    for (const p of snapshot.participants || []) {
      this.participants.set(p.identity, { ...p, tracks: [...(p.tracks || [])] });
    }
    this.hands = [...(snapshot.hands || [])];
  }

  apply(message) {
    const who = this.participants.get(message.identity);
    switch (message.type) {
      case "participant_joined":
        this.participants.set(message.identity, {
          identity: message.identity,
          role: message.role,
          joined_at: message.joined_at,
          state: "connected",
          hand_raised_at: null,
          tracks: [],
        });
        break;
      case "participant_left":
        this.participants.delete(message.identity);
        this.hands = this.hands.filter((h) => h.identity !== message.identity);
        this.quality.delete(message.identity);
        if (this.speaker === message.identity) this.speaker = null;
        break;
      case "connection_state":
        if (who) who.state = message.state;
        break;
      case "role_changed":
        if (who) who.role = message.new;
        break;
      case "hand_raised":
        if (who) who.hand_raised_at = message.since;
        this.hands = this.hands.filter((h) => h.identity !== message.identity);
        this.hands.push({ identity: message.identity, since: message.since });
        break;
      case "hand_lowered":
        if (who) who.hand_raised_at = null;
        this.hands = this.hands.filter((h) => h.identity !== message.identity);
        break;
      case "track_published":
        if (who) {
          who.tracks = who.tracks.filter((t) => t.track_id !== message.track_id);
          who.tracks.push({ track_id: message.track_id, kind: message.kind, muted: message.muted });
        }
        break;
      case "track_unpublished":
        if (who) who.tracks = who.tracks.filter((t) => t.track_id !== message.track_id);
        break;
      case "track_muted":
        if (who) {
          for (const t of who.tracks) if (t.track_id === message.track_id) t.muted = message.muted;
        }
        break;
      case "active_speaker":
        this.speaker = message.identity;
        break;
      case "connection_quality":
        this.quality.set(message.identity, message.quality);
        break;
      case "live":
        this.live = Boolean(message.live);
        break;
      default:
        break;
    }
  }

  onStage() {
    return [...this.participants.values()].filter((p) => p.role === "host" || p.role === "cohost");
  }
}

export class StageClient {
  constructor({ url = wsUrl(), token }) {
    this.url = url;
    this.token = token;
    this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.room = new RoomState();
    this.identity = null;
    this.role = null;
    this.session = null;
    this.state = "idle"; // idle, joining, joined, reconnecting, closed
    this.closeReason = null;
    //: mid -> {identity, kind}
    this.streams = new Map();
    //: our sending transceivers: {transceiver, kind, published}
    this.sending = [];
    this.serverOffers = 0;
    this._ws = null;
    this._ids = 0;
    this._replies = new Map();
    this._chain = Promise.resolve();
    this._offering = null;
    this._listeners = new Set();
    this._lostAt = null;
    this._closing = false;
    this.pc.addEventListener("iceconnectionstatechange", () => {
      if (this.pc.iceConnectionState === "failed" && this.state === "joined") {
        this.restartIce().catch((error) => this._emit({ type: "client_error", error: String(error) }));
      }
    });
  }

  // --- listeners ---------------------------------------------------------------------
  on(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  _emit(message) {
    for (const listener of this._listeners) {
      try {
        listener(message, this);
      } catch (error) {
        console.error("stage listener failed", error);
      }
    }
  }

  _setState(state, detail = null) {
    this.state = state;
    this._emit({ type: "client_state", state, detail });
  }

  // --- WebSocket -----------------------------------------------------------------------
  async join() {
    this._setState("joining");
    const joined = await this._connect(null);
    this._setState("joined");
    return joined;
  }

  _open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.addEventListener("open", () => resolve(ws), { once: true });
      ws.addEventListener("error", () => reject(new Error("WebSocket failed to open")), { once: true });
    });
  }

  async _connect(resume) {
    const ws = await this._open();
    this._ws = ws;
    ws.addEventListener("message", (event) => this._onFrame(event.data));
    ws.addEventListener("close", (event) => this._onClose(ws, event));
    const fields = { token: this.token };
    if (resume !== null) fields.resume = resume;
    const joined = await this.request("join", fields);
    this.identity = joined.identity;
    this.role = joined.role;
    this.session = joined.session;
    this.room.load(joined.room);
    this._emit({ ...joined, type: "room_loaded" });
    return joined;
  }

  _onFrame(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const type = message.type;
    if (this._offering !== null && message.id === this._offering && type !== "offer") {
      this._offering = null; // the server answered (or refused) our offer
    }
    if (type === "offer") {
      // Glare: a server offer crossing ours is ignored; the server offers again.
      if (this._offering === null) this._serialise(() => this._applyServerOffer(message));
    } else if (message.id !== undefined && this._replies.has(message.id)) {
      const { resolve, reject, timer } = this._replies.get(message.id);
      this._replies.delete(message.id);
      clearTimeout(timer);
      if (type === "error") reject(new StageError(message.code, message.message));
      else resolve(message);
    }
    this.room.apply(message);
    if (type === "role_changed" && message.identity === this.identity) this.role = message.new;
    this._emit(message);
  }

  _rejectPending() {
    for (const [id, pending] of this._replies) {
      clearTimeout(pending.timer);
      pending.reject(new Error("WebSocket closed"));
      this._replies.delete(id);
    }
  }

  // Closes the WebSocket without `leave`, as a lost network would (tests, and
  // a page that knows its network changed): the session is resumed.
  dropSocket() {
    const ws = this._ws;
    if (!ws || this.state !== "joined") return;
    this._ws = null;
    ws.close();
    this._rejectPending();
    this._resumeLoop();
  }

  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._rejectPending();
    if (this.state === "reconnecting" && !this._closing) return; // the resume loop carries on
    if (this._closing || FINAL_CLOSE_CODES.has(event.code) || this.state !== "joined") {
      this.closeReason = event.reason || String(event.code);
      if (this.state !== "closed") {
        this._setState("closed", this.closeReason);
        this.pc.close();
      }
      return;
    }
    this._resumeLoop();
  }

  async _resumeLoop() {
    this._lostAt = performance.now();
    this._setState("reconnecting");
    for (let attempt = 0; ; attempt += 1) {
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this._closing) return;
      if (performance.now() - this._lostAt > RESUME_WINDOW_MS) break;
      try {
        await this._connect(this.session);
        this._setState("joined");
        if (["failed", "disconnected"].includes(this.pc.iceConnectionState)) await this.restartIce();
        return;
      } catch (error) {
        if (error instanceof StageError) break; // not_found: the session expired
        const ws = this._ws;
        this._ws = null;
        if (ws) ws.close();
      }
    }
    this.closeReason = "resume window passed";
    this._setState("closed", this.closeReason);
    this.pc.close();
  }

  send(type, fields = {}) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) throw new Error("not connected");
    this._ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, ...fields }));
  }

  nextId() {
    this._ids += 1;
    return `c${this._ids}`;
  }

  // Sends a request; resolves with its ack/answer/pong, rejects with StageError.
  request(type, fields = {}, id = this.nextId()) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._replies.delete(id);
        reject(new Error(`${type}: no reply within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this._replies.set(id, { resolve, reject, timer });
      try {
        this.send(type, { id, ...fields });
      } catch (error) {
        clearTimeout(timer);
        this._replies.delete(id);
        reject(error);
      }
    });
  }

  // --- negotiation ---------------------------------------------------------------------
  _serialise(task) {
    const run = this._chain.then(task);
    this._chain = run.catch((error) => this._emit({ type: "client_error", error: String(error) }));
    return run;
  }

  async _applyServerOffer(offer) {
    if (this.pc.signalingState !== "stable" || !this._ws) return; // left unanswered
    await this.pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription({ type: "answer", sdp: withAudioNack(answer.sdp) });
    this._noteStreams(offer);
    this.serverOffers += 1;
    try {
      await this.request("answer", { sdp: this.pc.localDescription.sdp }, String(offer.id));
    } catch (error) {
      this._emit({ type: "client_error", error: String(error) });
    }
  }

  async _offer(options = {}) {
    const offer = await this.pc.createOffer(options);
    await this.pc.setLocalDescription({ type: "offer", sdp: withAudioNack(offer.sdp) });
    const id = this.nextId();
    this._offering = id;
    let answer;
    try {
      answer = await this.request("offer", { sdp: this.pc.localDescription.sdp }, id);
    } catch (error) {
      this._offering = null;
      if (this.pc.signalingState === "have-local-offer") {
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      throw error;
    }
    this._offering = null;
    this._noteStreams(answer);
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  _noteStreams(message) {
    this.streams = new Map();
    for (const s of message.streams || []) this.streams.set(s.mid, { identity: s.identity, kind: s.kind });
    this._emit({ type: "streams_changed", streams: this.streams });
  }

  // Opens the peer connection to watch: one recvonly line per kind (audience).
  connect({ receive = ["audio", "video"] } = {}) {
    return this._serialise(async () => {
      for (const kind of receive) this.pc.addTransceiver(kind, { direction: "recvonly" });
      await this._offer();
    });
  }

  // Sends the stream's tracks on the peer connection and announces them.
  async publish(stream, { videoCodec = "VP8" } = {}) {
    const added = await this._serialise(async () => {
      const fresh = [];
      for (const track of stream.getTracks()) {
        const transceiver = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
        if (track.kind === "video") preferVideoCodec(transceiver, videoCodec);
        const entry = { transceiver, kind: track.kind, published: false };
        this.sending.push(entry);
        fresh.push(entry);
      }
      // Watch too, if nothing receives yet (a host's first offer).
      if (!this.pc.getTransceivers().some((t) => t.direction === "recvonly")) {
        this.pc.addTransceiver("audio", { direction: "recvonly" });
        this.pc.addTransceiver("video", { direction: "recvonly" });
      }
      await this._offer();
      return fresh;
    });
    for (const entry of added) {
      await this.request("publish", { track_id: entry.transceiver.mid, kind: entry.kind });
      entry.published = true;
    }
    return added.map((entry) => entry.transceiver.mid);
  }

  // Swaps the track sent for a kind (device pickers); no renegotiation.
  async replaceTrack(kind, track) {
    const entry = this.sending.find((e) => e.kind === kind && e.transceiver.currentDirection !== "stopped");
    if (!entry) return false;
    await entry.transceiver.sender.replaceTrack(track);
    return true;
  }

  isPublishing() {
    return this.sending.some((e) => e.published);
  }

  restartIce() {
    return this._serialise(() => this._offer({ iceRestart: true }));
  }

  // --- received tracks -----------------------------------------------------------------
  transceiverOf(mid) {
    return this.pc.getTransceivers().find((t) => t.mid === mid) || null;
  }

  // identity -> {audio, video}: the received tracks each line carries now.
  remoteTracks() {
    const out = new Map();
    for (const [mid, { identity, kind }] of this.streams) {
      const transceiver = this.transceiverOf(mid);
      if (!transceiver) continue;
      if (!out.has(identity)) out.set(identity, {});
      out.get(identity)[kind] = transceiver.receiver.track;
    }
    return out;
  }

  // --- lifetime ------------------------------------------------------------------------
  async leave() {
    this._closing = true;
    try {
      if (this._ws) await this.request("leave");
    } catch {
      // closing anyway
    }
    this.close();
  }

  // For pagehide: say `leave` without waiting for the ack, then close.
  leaveNow() {
    try {
      if (this._ws) this.send("leave", { id: this.nextId() });
    } catch {
      // closing anyway
    }
    this.close();
  }

  close() {
    this._closing = true;
    if (this._ws) this._ws.close(1000);
    this._ws = null;
    this.pc.close();
    if (this.state !== "closed") this._setState("closed", "left");
  }
}

// Puts `codec` first among the line's video codecs (keeping rtx/red/ulpfec).
export function preferVideoCodec(transceiver, codec) {
  if (!codec || typeof transceiver.setCodecPreferences !== "function") return;
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps) return;
  const wanted = `video/${codec}`.toLowerCase();
  const primary = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (primary.length === 0) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  transceiver.setCodecPreferences([...primary, ...rest]);
}

// Per-participant inbound statistics and our own outbound, from getStats:
// {inbound: {identity: {audio: {...}, video: {...}}}, outbound: {audio, video}, rtt}.
export async function collectStats(client) {
  const report = await client.pc.getStats();
  const byTrack = new Map();
  for (const [mid, info] of client.streams) {
    const transceiver = client.transceiverOf(mid);
    if (transceiver) byTrack.set(transceiver.receiver.track.id, { mid, ...info });
  }
  const out = { inbound: {}, outbound: {}, remoteInbound: {}, rtt: null };
  report.forEach((s) => {
    if (s.type === "inbound-rtp") {
      let info = s.mid !== undefined ? client.streams.get(s.mid) : undefined;
      if (!info && s.trackIdentifier) info = byTrack.get(s.trackIdentifier);
      if (!info) return;
      out.inbound[info.identity] = out.inbound[info.identity] || {};
      out.inbound[info.identity][s.kind] = {
        mid: s.mid,
        packetsReceived: s.packetsReceived ?? 0,
        packetsLost: s.packetsLost ?? 0,
        jitter: s.jitter ?? 0,
        framesDecoded: s.framesDecoded ?? 0,
        framesPerSecond: s.framesPerSecond ?? 0,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
        freezeCount: s.freezeCount ?? 0,
        totalSamplesReceived: s.totalSamplesReceived ?? 0,
      };
    } else if (s.type === "outbound-rtp") {
      out.outbound[s.kind] = {
        mid: s.mid,
        packetsSent: s.packetsSent ?? 0,
        framesEncoded: s.framesEncoded ?? 0,
        framesPerSecond: s.framesPerSecond ?? 0,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
      };
    } else if (s.type === "remote-inbound-rtp") {
      out.remoteInbound[s.kind] = { fractionLost: s.fractionLost ?? 0, roundTripTime: s.roundTripTime ?? null };
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (s.currentRoundTripTime !== undefined) out.rtt = s.currentRoundTripTime;
    }
  });
  return out;
}

const QUALITY_ORDER = ["excellent", "good", "poor"];

// Loss (fraction) and RTT (seconds) to the server's quality words (stage/quality.py).
export function qualityOf(loss, rtt) {
  const rttMs = (rtt ?? 0) * 1000;
  if (loss < 0.02 && rttMs < 150) return "excellent";
  if (loss < 0.08 && rttMs < 400) return "good";
  return "poor";
}

// The worse of two quality words (either may be null).
export function worseQuality(a, b) {
  if (!a) return b;
  if (!b) return a;
  return QUALITY_ORDER.indexOf(a) >= QUALITY_ORDER.indexOf(b) ? a : b;
}
