// The stage pages (studio.html, cohost.html, audience.html, all served from
// stage.html with their view filled in by the server): one app whose
// panels follow the participant's *current* role in the room.
//
// - everyone: the stage grid (a tile per person on stage: video, name, role,
//   speaking highlight, connection quality), status, leave;
// - publishers (host, co-host): their own tile, mute toggles, device pickers;
// - host: the raise-hand queue (accept/decline), promote/demote/mute/kick per
//   participant, the go-live panel (POST/PATCH/DELETE /api/rooms/{room}/live);
// - audience: raise/lower hand; accepted, the page publishes camera and mic on
//   the same peer connection, without reloading.
//
// Query string: `token` (required), `codec` (VP8 by default).
// `window.interlive` exposes {state, error, pc, client, view, stats()} to tests.
import { StageClient, collectStats, qualityOf, worseQuality } from "/static/stage-client.js";

const STATS_INTERVAL_MS = 1000;
const LIVE_POLL_MS = 3000;
const PREVIEW_MS = 1000; // the mix's snapshot (GET /live/{room}/preview.jpg) while live
const query = new URLSearchParams(window.location.search);
const view = document.body.dataset.view || "studio";
const $ = (id) => document.getElementById(id);

const handle = { state: "idle", error: null, pc: null, client: null, view, lastStats: null };
handle.stats = async () => (handle.client ? collectStats(handle.client) : null);
window.interlive = handle;

let client = null;
let localStream = null;
let soundBlocked = false;
let liveRunning = false; // from GET /api/rooms/{room}/live
const tiles = new Map(); // identity -> {root, video, key}
const previous = new Map(); // identity -> {received, lost} of the last stats sample
const localQuality = new Map(); // identity -> quality from our getStats

function setStatus(state, detail = "") {
  handle.state = state;
  const element = $("status");
  element.textContent = detail ? `${state}: ${detail}` : state;
  element.dataset.state = state;
}

function fail(error) {
  handle.error = String(error && error.message ? error.message : error);
  setStatus("error", handle.error);
}

function notice(text) {
  $("notice").textContent = text;
}

function isPublisher(role) {
  return role === "host" || role === "cohost";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

// --- tiles ---------------------------------------------------------------------------
function tileFor(identity) {
  let tile = tiles.get(identity);
  if (tile) return tile;
  const video = el("video", { autoplay: true, playsinline: true });
  const name = el("span", { class: "name" }, identity);
  const role = el("span", { class: "role" });
  const quality = el("span", { class: "quality", title: "connection quality" });
  const mutes = el("span", { class: "mutes" });
  const root = el(
    "figure",
    { class: "tile", dataset: { identity } },
    video,
    el("figcaption", {}, name, role, mutes, quality),
  );
  tile = { root, video, role, quality, mutes, key: "" };
  tiles.set(identity, tile);
  $("stage").append(root);
  return tile;
}

async function play(video) {
  try {
    await video.play();
  } catch (error) {
    if (error.name === "AbortError") return;
    if (error.name !== "NotAllowedError") throw error;
    soundBlocked = true;
    video.muted = true;
    $("sound").hidden = false;
    await video.play().catch(() => {});
  }
}

function setSource(tile, stream, key, { self = false } = {}) {
  if (tile.key === key) return;
  tile.key = key;
  tile.video.srcObject = stream;
  tile.video.muted = self || soundBlocked;
  tile.root.classList.toggle("self", self);
  if (stream) play(tile.video).catch(() => {});
}

function render() {
  if (!client) return;
  const room = client.room;
  const remote = client.remoteTracks();
  const wanted = new Set();
  const me = client.identity;
  for (const p of room.participants.values()) {
    const onStage = isPublisher(p.role);
    const self = p.identity === me;
    if (!onStage && !(self && localStream && client.isPublishing())) continue;
    wanted.add(p.identity);
    const tile = tileFor(p.identity);
    if (self) {
      setSource(tile, localStream, localStream ? `local:${localStream.id}` : "", { self: true });
    } else {
      const tracks = remote.get(p.identity) || {};
      const list = [tracks.video, tracks.audio].filter(Boolean);
      const key = list.map((t) => t.id).join(",");
      setSource(tile, key ? new MediaStream(list) : null, key);
    }
    tile.role.textContent = self ? `${p.role} (you)` : p.role;
    tile.root.classList.toggle("speaking", room.speaker === p.identity);
    tile.root.classList.toggle("reconnecting", p.state === "reconnecting");
    const muted = p.tracks.filter((t) => t.muted).map((t) => (t.kind === "audio" ? "mic off" : "cam off"));
    tile.mutes.textContent = muted.join(" ");
    const quality = worseQuality(room.quality.get(p.identity) || null, localQuality.get(p.identity) || null);
    tile.quality.textContent = quality || "…";
    tile.quality.dataset.quality = quality || "unknown";
  }
  for (const [identity, tile] of tiles) {
    if (!wanted.has(identity)) {
      tile.video.srcObject = null;
      tile.root.remove();
      tiles.delete(identity);
    }
  }
  $("stage").dataset.count = String(tiles.size);
  $("empty").hidden = tiles.size > 0;
  renderPanels();
}

function clock(unixSeconds) {
  return new Date(unixSeconds * 1000).toTimeString().slice(0, 8);
}

// --- panels --------------------------------------------------------------------------
function act(type, identity) {
  return client.request(type, { identity }).catch((error) => notice(`${type} ${identity}: ${error.message}`));
}

function renderPanels() {
  const room = client.room;
  const role = client.role;
  const host = role === "host";
  document.body.dataset.role = role || "";
  $("whoami").textContent = `${client.identity} · ${role} · room ${room.name}`;
  $("live-badge").hidden = !(room.live || liveRunning);
  for (const panel of document.querySelectorAll("[data-for]")) {
    const roles = panel.dataset.for.split(" ");
    panel.hidden = !roles.includes(role);
  }

  // raise-hand queue (host)
  const hands = $("hands");
  hands.replaceChildren(
    ...room.hands.map((h) =>
      el(
        "li",
        { dataset: { identity: h.identity } },
        el("span", { class: "name" }, h.identity),
        el("span", { class: "since" }, ` since ${clock(h.since)}`),
        el("button", { type: "button", class: "accept", dataset: { identity: h.identity }, onclick: () => act("accept_hand", h.identity) }, "Accept"),
        el("button", { type: "button", class: "decline", dataset: { identity: h.identity }, onclick: () => act("decline_hand", h.identity) }, "Decline"),
      ),
    ),
  );
  $("hands-empty").hidden = room.hands.length > 0;

  // participants (everyone sees the list; the host gets the buttons)
  const people = $("people");
  people.replaceChildren(
    ...[...room.participants.values()].map((p) => {
      const buttons = [];
      if (host && p.identity !== client.identity && p.role !== "host") {
        if (p.role === "audience") {
          buttons.push(el("button", { type: "button", class: "promote", dataset: { identity: p.identity }, onclick: () => act("promote", p.identity) }, "Promote"));
        } else {
          buttons.push(el("button", { type: "button", class: "demote", dataset: { identity: p.identity }, onclick: () => act("demote", p.identity) }, "Demote"));
          const audio = p.tracks.some((t) => t.kind === "audio" && !t.muted);
          if (audio) {
            buttons.push(
              el("button", {
                type: "button",
                class: "mute",
                dataset: { identity: p.identity },
                onclick: () => client.request("mute", { identity: p.identity, kind: "audio", muted: true }).catch((e) => notice(e.message)),
              }, "Mute"),
            );
          }
        }
        buttons.push(el("button", { type: "button", class: "kick", dataset: { identity: p.identity }, onclick: () => act("kick", p.identity) }, "Kick"));
      }
      const hand = p.hand_raised_at ? " · hand up" : "";
      return el(
        "li",
        { dataset: { identity: p.identity, role: p.role } },
        el("span", { class: "name" }, `${p.identity}${p.identity === client.identity ? " (you)" : ""}`),
        el("span", { class: "role" }, ` ${p.role}${hand}`),
        ...buttons,
      );
    }),
  );

  // audience: hand state
  const me = room.participants.get(client.identity);
  const raised = Boolean(me && me.hand_raised_at);
  $("raise").hidden = raised;
  $("lower").hidden = !raised;
  $("hand-state").textContent = raised ? "Your hand is raised: waiting for the host." : "";

  // own tracks: mute toggles
  if (me) {
    for (const kind of ["audio", "video"]) {
      const track = me.tracks.find((t) => t.kind === kind);
      const button = $(`mute-${kind}`);
      button.disabled = !track;
      button.dataset.muted = track && track.muted ? "1" : "0";
      const label = kind === "audio" ? "mic" : "camera";
      button.textContent = track && track.muted ? `Unmute ${label}` : `Mute ${label}`;
    }
  }
}

// --- media ---------------------------------------------------------------------------
async function startPublishing() {
  if (client.isPublishing()) {
    setStatus("on stage");
    render();
    return; // promoted again: the server re-enables the lines we already have
  }
  setStatus("media", "asking for camera and microphone");
  localStream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
  });
  await client.publish(localStream, { videoCodec: query.get("codec") || "VP8" });
  setStatus("on stage");
  await fillDevices();
  render();
}

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", $("camera")], ["audioinput", $("mic")]]) {
    const current = localStream?.getTracks().find((t) => (kind === "videoinput" ? t.kind === "video" : t.kind === "audio"));
    const currentId = current?.getSettings().deviceId;
    select.replaceChildren(
      ...devices
        .filter((d) => d.kind === kind)
        .map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === currentId }, d.label || `${kind} ${i + 1}`)),
    );
  }
}

async function switchDevice(kind, deviceId) {
  const constraints = kind === "video"
    ? { video: { deviceId: { exact: deviceId }, width: { ideal: 640 }, height: { ideal: 360 } } }
    : { audio: { deviceId: { exact: deviceId } } };
  const fresh = await navigator.mediaDevices.getUserMedia(constraints);
  const track = fresh.getTracks()[0];
  await client.replaceTrack(kind, track);
  for (const old of localStream.getTracks().filter((t) => t.kind === kind)) {
    localStream.removeTrack(old);
    old.stop();
  }
  localStream.addTrack(track);
  const self = tiles.get(client.identity);
  if (self) {
    self.key = "";
    setSource(self, localStream, `local:${localStream.id}:${track.id}`, { self: true });
  }
}

// --- stats: per-tile quality from getStats ------------------------------------------------
async function refreshStats() {
  if (!client || client.state === "closed") return;
  const stats = await collectStats(client);
  handle.lastStats = stats;
  for (const [identity, kinds] of Object.entries(stats.inbound)) {
    let received = 0;
    let lost = 0;
    for (const s of Object.values(kinds)) {
      received += s.packetsReceived;
      lost += Math.max(0, s.packetsLost);
    }
    const last = previous.get(identity) || { received: 0, lost: 0 };
    const dr = received - last.received;
    const dl = lost - last.lost;
    previous.set(identity, { received, lost });
    if (dr + dl > 0) localQuality.set(identity, qualityOf(dl / (dr + dl), stats.rtt));
  }
  if (client.identity && client.isPublishing()) {
    const remote = Object.values(stats.remoteInbound);
    const loss = Math.max(0, ...remote.map((r) => r.fractionLost || 0));
    localQuality.set(client.identity, qualityOf(loss, stats.rtt));
  }
  const video = Object.entries(stats.inbound)
    .map(([who, kinds]) => `${who} ${kinds.video ? `${kinds.video.framesDecoded}f ${kinds.video.frameWidth}x${kinds.video.frameHeight}` : "no video"}`)
    .join(" · ");
  $("stats").textContent = video || "no inbound media yet";
  render();
}

// --- go live (host) ---------------------------------------------------------------------
function liveUrl() {
  return `/api/rooms/${encodeURIComponent(client.room.name)}/live`;
}

async function liveCall(method, body) {
  const response = await fetch(liveUrl(), {
    method,
    headers: { Authorization: `Bearer ${client.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  // A 404/405 without our JSON error body: the route does not exist here.
  if ((response.status === 404 || response.status === 405) && !(json && json.error)) {
    return { unavailable: true, status: response.status };
  }
  return { status: response.status, json };
}

function liveUnavailable() {
  $("live-panel").dataset.available = "0";
  $("live-status").textContent = "bypass live not available on this server";
  for (const control of $("live-form").elements) control.disabled = true;
}

function liveSpec() {
  const outputs = $("destinations").value
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((url) => ({ url }));
  return { outputs, layout: $("layout").value };
}

function showLive(result) {
  if (result.unavailable) {
    liveUnavailable();
    return;
  }
  const { status, json } = result;
  $("live-panel").dataset.available = "1";
  liveRunning = status === 200 && Boolean(json) && json.state === "running";
  if (status === 200 && json && json.state) {
    const outputs = (json.outputs || []).map((o) => `${o.name || o.url}: ${o.state}`).join(", ");
    $("live-status").textContent = `${json.state}${json.uptime ? ` for ${json.uptime.toFixed(0)} s` : ""}${outputs ? ` · ${outputs}` : ""}`;
    $("live-start").disabled = true;
    $("live-stop").disabled = false;
    $("live-apply").disabled = false;
    $("live-hls").href = json.hls || `/live/${encodeURIComponent(client.room.name)}/index.m3u8`;
    $("live-hls").hidden = false;
  } else if (status === 404 || status === 204) {
    $("live-status").textContent = "not live";
    $("live-start").disabled = false;
    $("live-stop").disabled = true;
    $("live-apply").disabled = true;
    $("live-hls").hidden = true;
    $("live-hls").href = "#";
    $("live-preview").hidden = true;
  } else if (json && json.error) {
    $("live-status").textContent = `${status} ${json.error.code}: ${json.error.message}`;
  }
}

// The preview: one snapshot at a time, the next asked for once the last has loaded.
let previewLoading = false;
function refreshPreview() {
  const img = $("live-preview");
  if (!liveRunning || !client || previewLoading) return;
  previewLoading = true;
  const done = () => { previewLoading = false; };
  img.onload = () => { img.hidden = !liveRunning; done(); }; // the job may have ended meanwhile
  img.onerror = done; // not composed yet, or the job just ended: keep the last one
  img.src = `/live/${encodeURIComponent(client.room.name)}/preview.jpg?t=${Date.now()}`;
}

async function refreshLive() {
  if (!client || client.role !== "host" || $("live-panel").dataset.available === "0") return;
  showLive(await liveCall("GET"));
  render();
}

async function liveAction(method) {
  const body = method === "POST" ? liveSpec() : method === "PATCH" ? { layout: $("layout").value } : undefined;
  const result = await liveCall(method, body);
  if (result.unavailable) {
    liveUnavailable();
    return;
  }
  if (result.status >= 400) {
    const error = result.json && result.json.error;
    $("live-status").textContent = error ? `${result.status} ${error.code}: ${error.message}` : `HTTP ${result.status}`;
    return;
  }
  if (result.json && result.json.hls) {
    $("live-hls").href = result.json.hls;
    $("live-hls").hidden = false;
  }
  await refreshLive();
}

// --- wiring --------------------------------------------------------------------------
function bindControls() {
  $("leave").addEventListener("click", async () => {
    if (client) await client.leave();
    if (localStream) for (const t of localStream.getTracks()) t.stop();
    setStatus("left");
  });
  $("sound").addEventListener("click", () => {
    soundBlocked = false;
    for (const [identity, tile] of tiles) {
      if (identity !== client?.identity) tile.video.muted = false;
      tile.video.play().catch(() => {});
    }
    $("sound").hidden = true;
  });
  $("raise").addEventListener("click", () => client.request("raise_hand").catch((e) => notice(e.message)));
  $("lower").addEventListener("click", () => client.request("lower_hand").catch((e) => notice(e.message)));
  for (const kind of ["audio", "video"]) {
    $(`mute-${kind}`).addEventListener("click", (event) => {
      const muted = event.currentTarget.dataset.muted !== "1";
      client.request("mute", { kind, muted }).catch((e) => notice(e.message));
      const track = localStream?.getTracks().find((t) => t.kind === kind);
      if (track) track.enabled = !muted;
    });
  }
  $("camera").addEventListener("change", (e) => switchDevice("video", e.target.value).catch((err) => notice(err.message)));
  $("mic").addEventListener("change", (e) => switchDevice("audio", e.target.value).catch((err) => notice(err.message)));
  $("live-form").addEventListener("submit", (event) => {
    event.preventDefault();
    liveAction("POST").catch((e) => notice(e.message));
  });
  $("live-stop").addEventListener("click", () => liveAction("DELETE").catch((e) => notice(e.message)));
  $("live-apply").addEventListener("click", () => liveAction("PATCH").catch((e) => notice(e.message)));
  window.addEventListener("pagehide", () => client?.leaveNow());
}

function onMessage(message) {
  switch (message.type) {
    case "client_state":
      if (message.state === "reconnecting") setStatus("reconnecting");
      else if (message.state === "closed") setStatus("closed", message.detail || "");
      else if (message.state === "joined" && handle.state === "reconnecting") {
        setStatus(client.isPublishing() ? "on stage" : "watching");
      }
      break;
    case "client_error":
      console.warn("stage client:", message.error);
      break;
    case "role_changed":
      if (message.identity === client.identity) {
        if (message.new === "cohost" && message.old === "audience") {
          notice(`${message.by || "the host"} brought you on stage`);
          startPublishing().catch(fail);
        } else if (message.new === "audience") {
          notice("you are back in the audience");
          setStatus("watching");
        }
      }
      break;
    case "participant_left":
      if (message.identity === client.identity && message.reason === "kicked") notice("you were removed from the room");
      break;
    default:
      break;
  }
  render();
}

async function main() {
  bindControls();
  const token = query.get("token");
  if (!token) {
    fail(new Error("no token: open this page from the join page or add ?token=..."));
    return;
  }
  client = new StageClient({ token });
  handle.client = client;
  handle.pc = client.pc;
  client.on(onMessage);
  setStatus("joining");
  await client.join();
  render();
  if (isPublisher(client.role)) {
    await startPublishing();
  } else {
    await client.connect();
    setStatus("watching");
  }
  setInterval(() => refreshStats().catch((e) => console.warn("stats", e)), STATS_INTERVAL_MS);
  if (client.role === "host") {
    await refreshLive().catch((e) => notice(e.message));
    setInterval(() => refreshLive().catch(() => {}), LIVE_POLL_MS);
    setInterval(refreshPreview, PREVIEW_MS);
  }
}

main().catch(fail);
