"""Bypass live: REST for live jobs and the control side of the mixer (docs/bypass-live.md).

* ``POST /api/rooms/{room}/live`` (a host token of the room): body validated
  by :func:`~interlive.mix.job.parse_live_request` (400 with the reason), one
  job per room (409 if one runs), a mixer process spawned
  (:func:`~interlive.mix.process.run_mixer`) → ``201 {"id": ...}``.
* ``GET`` the job's status, ``PATCH`` its layout (with its background image),
  outputs, watermark and/or per-input audio gains (applied live: the encoder
  keeps running), ``DELETE`` stops it (files finalized).  The body may be up
  to :data:`MAX_BODY` (images come inline as data URIs; they are decoded on a
  thread, off the event loop); a longer one is 413.
* ``GET /live/{room}/index.m3u8`` and the segments: the HLS the mixer writes
  into ``<data dir>/live/{room}/hls``.
* ``GET /live/{room}.flv`` while the room is live (a middleware, so it wins
  over the playback module's 404 for that path whatever the route order), and
  RTMP play of ``rtmp://HOST/live/{room}`` (``server/rtmp_edge.py``): anyone
  may play the mix (it is the broadcast, like the HLS), a token if given must
  be valid for the room (:meth:`PlaybackHub.authorize
  <interlive.server.playback.PlaybackHub.authorize>`).

The mix's FLV players (theory of operation): while someone watches, the
mixer sends its encoded packets up the pipe (op ``flv``); the job muxes them
once (:class:`MixFlvSource`) and offers every tag to each player's
:class:`~interlive.media.flv_queue.PlayerQueue`, the queue and slow-player
policy the participants' players have (``server/playback.py``): a player
starts at a keyframe, one that falls behind drops to the next keyframe, one
that stays behind is disconnected.  No keyframe is requested for a player
that joins or drops: the mixer's GOP is fixed (2 s by default), so the next
keyframe is at most one keyframe interval away.  Drops and disconnects count
in the playback hub's ``interlive_flv_*`` counters.

The job follows the stage: on every room event (``RoomService.listeners``) it
compares the participants that publish tracks with its inputs; a new one gets
a UDP socket in the mixer (``add_input``) and a plain *subscribe* session on
the room's worker, restricted to that participant, whose remote is that
socket; one who left loses both.

Events: the job's start, its stop (``DELETE``, ``stop_live``, the mixer's exit,
shutdown) and its RTMP outputs' state changes (polled from the mixer's status
every :attr:`LiveManager.status_interval` seconds) are room events
(:class:`~interlive.server.rooms.LiveStarted`, ``LiveStopped``,
``LiveOutputState``) dispatched through ``RoomService``, so the webhooks send
them.  While a job runs the room's live flag is true (a ``SetLive`` by
:data:`LIVE_ACTOR`, so /ws clients get the ``live`` event); a host's
``start_live`` over /ws starts a job with no outputs (HLS and recording) and
``stop_live`` stops the running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from aiohttp import web

from interlive.auth import AccessToken, Grants, Role, TokenError, bearer_token, verify_token
from interlive.media.avc import AudioSpecificConfig
from interlive.media.flv import FlvMuxer, FlvReader, FlvTag
from interlive.media.flv_queue import Verdict
from interlive.media.h264_rtp import annexb_to_nals, nal_type
from interlive.media.rtp_flv import StartTags
from interlive.mix.job import LiveRequestError, LiveSpec, parse_live_patch, parse_live_request
from interlive.mix.outputs import EncodedPacket
from interlive.mix.process import SUBSCRIBE_MEDIA, run_mixer
from interlive.server.body import read_body
from interlive.server.errors import HttpError
from interlive.server.keys import LIVE, PLAYBACK
from interlive.server.playback import (
    FLV_HEADERS,
    FLV_START,
    PlaybackError,
    PlaybackHub,
    PlaybackStats,
    QueuedPlayer,
    limit_send_buffer,
    request_token,
)
from interlive.server.rooms import (
    LiveOutputState,
    LiveStarted,
    LiveStopped,
    Outcome,
    RoomStarted,
    allowed_actions,
    scoped_token,
)
from interlive.stage.model import ADMIN_ACTIONS, ByToken, Event, LiveStateChanged, SetLive
from interlive.worker.channel import Event as ChannelEvent
from interlive.worker.channel import Reply, Request, RequestError

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane
    from interlive.server.workers import WorkerHandle

__all__ = ["FlvPlayer", "LiveJob", "LiveManager", "MixFlvSource", "register"]

log = logging.getLogger(__name__)

#: room for a background image and a watermark as data URIs (base64: 4/3 of the bytes)
MAX_BODY: Final = 8 * 1024 * 1024
MAX_FLV_PLAYERS: Final = 200
#: who sets the room's live flag for a job (the ``by`` of its ``live`` events)
LIVE_ACTOR: Final = "interlive-live"
#: the mixer's output states that are reported (``live_output_state``), as reported
_OUTPUT_STATES: Final = {"live": "connected", "reconnecting": "reconnecting", "failed": "failed"}


@dataclass
class _Input:
    sid: str | None = None
    worker: WorkerHandle | None = None


class MixFlvSource:
    """The mix's encoded packets muxed once into FLV tags for every player of a job (sans-IO).

    One :class:`~interlive.media.flv.FlvMuxer` (SPS/PPS from the encoder's
    extradata, AAC config from its extradata or 48 kHz stereo) read back into
    tags; the latest onMetaData and sequence headers are kept, the tags a
    player that joins later starts with.
    """

    def __init__(self, video_extradata: bytes, audio_extradata: bytes) -> None:
        audio: AudioSpecificConfig | None
        try:
            audio = AudioSpecificConfig.parse(audio_extradata)
        except ValueError:
            audio = AudioSpecificConfig.for_rate(48_000, 2)
        self.muxer = FlvMuxer(audio_config=audio)
        nals = annexb_to_nals(video_extradata)
        sps = [n for n in nals if nal_type(n) == 7]
        pps = [n for n in nals if nal_type(n) == 8]
        if sps and pps:
            self.muxer.set_parameter_sets(sps[0], pps[0])
        self._reader = FlvReader()
        self.start = StartTags()

    def push(self, packet: EncodedPacket) -> list[FlvTag]:
        """One encoded packet in; the tags it completes out (none before the first keyframe)."""
        ms = int(packet.pts * packet.time_base * 1000)
        if packet.kind == "video":
            data = self.muxer.write_video(annexb_to_nals(packet.data), ms)
        else:
            data = self.muxer.write_audio(packet.data, ms)
        tags = self._reader.feed(data) if data else []
        for tag in tags:
            self.start.observe(tag)
        return tags

    def start_tags(self) -> list[FlvTag]:
        """What a new player gets before its first keyframe: onMetaData, then sequence headers."""
        return self.start.tags()


class FlvPlayer(QueuedPlayer):
    """One HTTP-FLV or RTMP player of the mix.

    The job offers it the mix's tags (:meth:`offer`), which applies the queue's
    verdicts: drops are counted, a ``DISCONNECT`` closes the player (reason
    ``slow``) and kills its socket.
    """

    def offer(self, tags: Sequence[FlvTag], config: Sequence[FlvTag]) -> None:
        """The mix's new tags; ``config`` are the tags a player starts with."""
        if self.closed is not None:
            return
        queue, stats = self.queue, self.stats
        drops, dropped = queue.stats.gop_drops, queue.stats.tags_dropped
        woken = False
        for tag in tags:
            verdict = queue.offer(tag, config)
            if verdict is Verdict.DISCONNECT:
                stats.slow_disconnects += 1
                log.info(
                    "live mix: %s player %s is %d ms behind (%d bytes queued): disconnected",
                    self.protocol,
                    self.name,
                    queue.lag_ms,
                    queue.queued_bytes,
                )
                self.close("slow", kill=True)
                break
            woken = woken or verdict is not Verdict.WAITING
        stats.gop_drops += queue.stats.gop_drops - drops
        stats.tags_dropped += queue.stats.tags_dropped - dropped
        if queue.stats.gop_drops > drops:
            log.info(
                "live mix: %s player %s fell behind: dropped to the next keyframe",
                self.protocol,
                self.name,
            )
        if woken:
            self.wake()


@dataclass
class LiveJob:
    id: str
    room: str
    spec: LiveSpec
    process: BaseProcess
    conn: Connection
    out_dir: Path
    inputs: dict[str, _Input] = field(default_factory=dict)
    pending: dict[int, asyncio.Future[Reply]] = field(default_factory=dict)
    next_id: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: one PATCH at a time: each applies to the spec the previous one left
    patch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    alive: bool = True
    flv_players: set[FlvPlayer] = field(default_factory=set)
    #: the mix muxed for the FLV players (None while nobody watches)
    flv_source: MixFlvSource | None = None
    watcher: asyncio.Task[None] | None = None
    output_states: dict[str, tuple[str, int]] = field(default_factory=dict)  # by url

    def flv_packet(self, packet: EncodedPacket) -> None:
        """An encoded packet of the mix, muxed once and offered to every FLV player."""
        source = self.flv_source
        if source is None:
            return
        tags = source.push(packet)
        if tags:
            config = source.start_tags()
            for player in list(self.flv_players):
                player.offer(tags, config)

    async def call(self, op: str, timeout: float = 10.0, **args: Any) -> Any:
        if not self.alive:
            raise RequestError(410, "gone", "the mixer process has exited")
        rid = self.next_id
        self.next_id += 1
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        self.conn.send(Request(rid, op, args))
        try:
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self.pending.pop(rid, None)
        if reply.error is not None:
            raise RequestError(*reply.error)
        return reply.result


class LiveManager:
    """The live jobs of this control process, one per room at most."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.jobs: dict[str, LiveJob] = {}  # by room
        self.live_dir = Path(plane.config.data_dir) / "live"
        self._tasks: set[asyncio.Future[None]] = set()  # reconciliations under way
        self._starting: set[str] = set()  # rooms whose mixer is being spawned
        self.status_interval = 1.0  # seconds between polls of the outputs' states
        #: the FLV players' counters when the server has no playback hub to count them
        self.flv_stats = PlaybackStats()
        plane.stage.listeners.append(self._on_room_event)

    @property
    def media_host(self) -> str:
        bind = self.plane.config.udp_bind
        return "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind

    def stage_inputs(self, room: str) -> list[str]:
        """Identities on stage that publish, in join order."""
        stage = self.plane.rooms.stage(room)
        if stage is None:
            return []
        return [p.identity for p in stage.snapshot().participants if p.tracks]

    async def start(self, room: str, spec: LiveSpec) -> LiveJob:
        if room in self.jobs or room in self._starting:
            raise HttpError(409, "conflict", f"room {room!r} is already live")
        self._starting.add(room)
        try:
            job = await self._start(room, spec)
        finally:
            self._starting.discard(room)
        self._emit(room, LiveStarted(job.id, len(spec.outputs)))
        self._set_live_flag(room, True)
        job.watcher = asyncio.ensure_future(self._watch(job))
        return job

    def _spawn(self, spec: LiveSpec, out_dir: Path, room: str) -> tuple[BaseProcess, Connection]:
        """The mixer process and the control end of its pipe (tests replace this)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=run_mixer,
            args=(spec, str(out_dir), self.media_host, self.plane.config.log_level.upper(), child),
            name=f"interlive-mixer-{room}",
            daemon=True,
        )
        process.start()
        child.close()
        return process, parent

    async def _start(self, room: str, spec: LiveSpec) -> LiveJob:
        job_id = secrets.token_urlsafe(8)
        out_dir = self.live_dir / room
        if out_dir.exists():
            shutil.rmtree(out_dir / "hls", ignore_errors=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        process, parent = self._spawn(spec, out_dir, room)
        job = LiveJob(job_id, room, spec, process, parent, out_dir)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Reply] = loop.create_future()
        job.pending[0] = ready
        loop.add_reader(parent.fileno(), self._on_readable, job)
        os.set_blocking(parent.fileno(), True)
        try:
            await asyncio.wait_for(ready, 30)
        except TimeoutError as exc:
            self._gone(job)
            process.kill()
            raise HttpError(500, "mixer_failed", "the mixer process did not start") from exc
        self.jobs[room] = job
        await self.reconcile(job)
        log.info("live %s: room %s started, %d outputs", job_id, room, len(spec.outputs))
        return job

    def _on_readable(self, job: LiveJob) -> None:
        try:
            while job.conn.poll():
                message = job.conn.recv()
                if isinstance(message, Reply):
                    future = job.pending.pop(message.id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, ChannelEvent) and message.kind == "packet":
                    job.flv_packet(message.data["packet"])
        except (EOFError, OSError):
            self._gone(job)

    def _gone(self, job: LiveJob) -> None:
        if not job.alive:
            return
        job.alive = False
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(job.conn.fileno())
        for player in job.flv_players:
            player.close("ended")
        for future in job.pending.values():
            if not future.done():
                future.set_exception(RequestError(410, "gone", "the mixer process has exited"))
        if job.watcher is not None:
            job.watcher.cancel()
        if self.jobs.get(job.room) is job:  # not stopped: it died (kept for GET and DELETE)
            log.warning("live %s: the mixer process of room %s exited", job.id, job.room)
            self._emit(job.room, LiveStopped(job.id, "mixer_exited"))
            self._set_live_flag(job.room, False)

    def _emit(self, room: str, event: Event) -> None:
        """A live-job event to the room's listeners (the webhooks among them)."""
        self.plane.stage.dispatch(Outcome(room, (event,)))

    def _set_live_flag(self, room: str, live: bool) -> None:
        """The room's live flag (a no-op if it is already so, or if the room is gone)."""
        token = AccessToken(room, LIVE_ACTOR, Role.HOST, Grants.for_role(Role.HOST), 0)
        request = SetLive(ByToken(token), live)
        outcome = self.plane.rooms.handle(room, [request], self.plane.stage.clock())
        if isinstance(outcome, Outcome):
            self.plane.stage.dispatch(outcome)
        else:
            log.debug("live: room %s's live flag not set: %s", room, outcome)

    async def _watch(self, job: LiveJob) -> None:
        """Poll the mixer's status; report each RTMP output's state changes."""
        while job.alive:
            await asyncio.sleep(self.status_interval)
            try:
                status = await job.call("status", timeout=5)
            except (RequestError, TimeoutError, OSError):
                continue
            for out in status.get("outputs", ()):
                state = _OUTPUT_STATES.get(out.get("state"))
                if state is None:
                    continue
                url, key = str(out.get("url")), (state, int(out.get("reconnects") or 0))
                if job.output_states.get(url) != key and self.jobs.get(job.room) is job:
                    job.output_states[url] = key
                    self._emit(job.room, LiveOutputState(job.id, url, *key))

    def _schedule(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_live_flag(self, room: str, event: LiveStateChanged) -> None:
        """A host's ``start_live``/``stop_live`` over /ws: start or stop the job."""
        if event.by == LIVE_ACTOR:
            return
        job = self.jobs.get(room)
        if event.live and job is None and room not in self._starting:
            self._schedule(self._start_for_flag(room))
        elif not event.live and job is not None and job.alive:
            self._schedule(self.stop(room, "stop_live"))

    async def _start_for_flag(self, room: str) -> None:
        try:
            spec = parse_live_request({"outputs": []}, self.stage_inputs(room))
            await self.start(room, spec)
        except (HttpError, LiveRequestError, OSError) as exc:
            log.warning("live: start_live in room %s failed: %s", room, exc)
            self._set_live_flag(room, False)

    def _on_room_event(self, room: str, event: Event) -> None:
        if isinstance(event, LiveStarted | LiveStopped | LiveOutputState):
            return
        if isinstance(event, LiveStateChanged):
            self._on_live_flag(room, event)
            return
        job = self.jobs.get(room)
        if job is None or not job.alive:
            return
        if isinstance(event, RoomStarted):  # the room came back while its job runs
            asyncio.get_running_loop().call_soon(self._set_live_flag, room, True)
        if type(event).__name__ == "ActiveSpeakerChanged":  # stage.model, from the workers
            task = asyncio.ensure_future(self._speaker(job, getattr(event, "identity", None)))
        else:
            task = asyncio.ensure_future(self.reconcile(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _speaker(self, job: LiveJob, identity: str | None) -> None:
        with contextlib.suppress(RequestError, TimeoutError, OSError):
            await job.call("set_speaker", identity=identity)

    async def reconcile(self, job: LiveJob) -> None:
        """Make the mixer's inputs the stage's publishers."""
        async with job.lock:
            if not job.alive:
                return
            wanted = self.stage_inputs(job.room)
            for identity in [i for i in job.inputs if i not in wanted]:
                await self._remove_input(job, identity)
            for identity in wanted:
                if identity not in job.inputs:
                    try:
                        await self._add_input(job, identity)
                    except (RequestError, TimeoutError) as exc:
                        log.warning("live %s: input %s: %s", job.id, identity, exc)

    async def _add_input(self, job: LiveJob, identity: str) -> None:
        addr = await job.call("add_input", identity=identity)
        job.inputs[identity] = entry = _Input()
        pool = self.plane.pool
        worker = pool.place(job.room)
        result = await pool.call(
            worker,
            "create_plain_session",
            room=job.room,
            identity=f"mix-{job.id}-{identity}",
            mode="subscribe",
            remote=[addr["host"], addr["port"]],
            media=SUBSCRIBE_MEDIA,
            only=identity,
        )
        entry.sid, entry.worker = result["sid"], worker

    async def _remove_input(self, job: LiveJob, identity: str) -> None:
        entry = job.inputs.pop(identity)
        if entry.sid is not None and entry.worker is not None:
            with contextlib.suppress(RequestError, TimeoutError):
                await self.plane.pool.call(entry.worker, "delete_session", sid=entry.sid)
        with contextlib.suppress(RequestError, TimeoutError):
            await job.call("remove_input", identity=identity)

    async def open_flv(
        self,
        job: LiveJob,
        protocol: str,
        name: str,
        kill: Callable[[], None],
        hub: PlaybackHub | None = None,
    ) -> FlvPlayer:
        """An FLV player of the mix; the first one turns the mixer's packet tap on.

        ``hub``, the server's FLV playback, gives the player its queue limits
        and counters (defaults and this manager's own counters without one).
        """
        if len(job.flv_players) >= MAX_FLV_PLAYERS:
            raise HttpError(503, "too_many_players", f"at most {MAX_FLV_PLAYERS} FLV players")
        if job.flv_source is None:
            config = await job.call("flv", on=True)
            if job.flv_source is None:  # not set by a player that joined meanwhile
                job.flv_source = MixFlvSource(config["video"], config["audio"])
        limits, stats = (hub.limits, hub.stats) if hub is not None else (None, self.flv_stats)
        player = FlvPlayer(protocol, name, kill, limits, stats)
        job.flv_players.add(player)
        log.info("live %s: %s player %s of the mix joined", job.id, protocol, name)
        return player

    async def close_flv(self, job: LiveJob, player: FlvPlayer) -> None:
        player.close("left")
        if player not in job.flv_players:
            return
        job.flv_players.discard(player)
        log.info(
            "live %s: %s player %s of the mix left (%s)",
            job.id,
            player.protocol,
            player.name,
            player.closed,
        )
        if not job.flv_players and job.alive:
            job.flv_source = None  # the next player starts a new muxer at a keyframe
            with contextlib.suppress(RequestError, TimeoutError, OSError):
                await job.call("flv", on=False)

    async def stop(self, room: str, reason: str = "deleted") -> None:
        job = self.jobs.pop(room, None)
        if job is None:
            return
        was_alive = job.alive  # else its end was already reported (mixer_exited)
        if job.watcher is not None:
            job.watcher.cancel()
        async with job.lock:
            for identity in list(job.inputs):
                entry = job.inputs.pop(identity)
                if entry.sid is not None and entry.worker is not None:
                    with contextlib.suppress(RequestError, TimeoutError):
                        await self.plane.pool.call(entry.worker, "delete_session", sid=entry.sid)
            with contextlib.suppress(RequestError, TimeoutError, OSError):
                await job.call("stop", timeout=15)
        await asyncio.get_running_loop().run_in_executor(None, job.process.join, 5)
        if job.process.is_alive():
            job.process.kill()
        self._gone(job)
        if was_alive:
            self._emit(room, LiveStopped(job.id, reason))
            self._set_live_flag(room, False)
        log.info("live %s: room %s stopped", job.id, room)

    async def close(self) -> None:
        for room in list(self.jobs):
            await self.stop(room, "shutdown")


# --- HTTP ------------------------------------------------------------------------------------


def _manager(request: web.Request) -> LiveManager:
    manager: LiveManager = request.app[LIVE]
    return manager


def _host_of(request: web.Request) -> str:
    """The room, after checking a host (or admin) token for it: 401, 403, 404 in that order."""
    plane = _manager(request).plane
    room = request.match_info["room"]
    try:
        token = verify_token(plane.secret, bearer_token(request.headers.get("Authorization")))
    except TokenError as exc:
        raise HttpError(401, "unauthorized", str(exc)) from exc
    scoped = scoped_token(token, room)
    if scoped is None:
        raise HttpError(403, "forbidden", f"token is for room {token.room!r}, not {room!r}")
    stage = plane.rooms.stage(room)
    if not allowed_actions(scoped, stage) >= ADMIN_ACTIONS:
        raise HttpError(403, "forbidden", f"{token.identity!r} is not a host of room {room!r}")
    if stage is None and room not in _manager(request).jobs:
        # a job outlives its room (everyone left): it can still be read and stopped
        raise HttpError(404, "not_found", f"no room {room!r}")
    return room


async def _json(request: web.Request) -> Any:
    too_large = f"body over {MAX_BODY} bytes ({MAX_BODY >> 20} MiB)"
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise HttpError(413, "too_large", too_large)
    body = await read_body(request, MAX_BODY)
    if len(body) > MAX_BODY:
        raise HttpError(413, "too_large", too_large)
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise HttpError(400, "bad_request", f"body is not JSON: {exc}") from None


def _job(request: web.Request, room: str) -> LiveJob:
    job = _manager(request).jobs.get(room)
    if job is None:
        raise HttpError(404, "not_found", f"room {room!r} is not live")
    return job


async def post_live(request: web.Request) -> web.Response:
    room = _host_of(request)
    manager = _manager(request)
    body = await _json(request)
    try:  # images are decoded here: off the event loop
        spec = await asyncio.to_thread(parse_live_request, body, manager.stage_inputs(room))
    except LiveRequestError as exc:
        raise HttpError(400, "bad_request", str(exc)) from None
    job = await manager.start(room, spec)
    return web.json_response(
        {"id": job.id, "hls": f"/live/{room}/index.m3u8"},
        status=201,
        headers={"Location": f"/api/rooms/{room}/live"},
    )


async def get_live(request: web.Request) -> web.Response:
    room = _host_of(request)
    job = _job(request, room)
    status: dict[str, Any] = {"id": job.id, "room": room, "state": "running"}
    status["pid"] = job.process.pid
    try:
        status.update(await job.call("status", timeout=5))
    except (RequestError, TimeoutError) as exc:
        status["state"] = "failed"
        status["error"] = str(exc)
    status["layout"] = job.spec.layout_json
    mark = job.spec.watermark
    status["watermark"] = None if mark is None else mark.describe()
    status["audio"] = job.spec.audio.to_json()
    return web.json_response(status)


async def patch_live(request: web.Request) -> web.Response:
    room = _host_of(request)
    manager = _manager(request)
    job = _job(request, room)
    body = await _json(request)
    async with job.patch_lock:
        inputs = manager.stage_inputs(room)
        try:  # images are decoded here: off the event loop
            spec = await asyncio.to_thread(parse_live_patch, body, job.spec, inputs)
        except LiveRequestError as exc:
            raise HttpError(400, "bad_request", str(exc)) from None
        try:
            if "layout" in body or "watermark" in body:
                await job.call("set_layout", spec=spec)
            if "audio" in body:
                await job.call("set_audio", spec=spec)
            if "outputs" in body:
                await job.call("set_outputs", spec=spec)
        except (RequestError, TimeoutError) as exc:
            raise HttpError(502, "mixer_failed", str(exc)) from None
        job.spec = spec
    return web.json_response({"id": job.id})


async def delete_live(request: web.Request) -> web.Response:
    room = _host_of(request)
    _job(request, room)
    await _manager(request).stop(room)
    return web.Response(status=204)


async def hls_file(request: web.Request) -> web.StreamResponse:
    manager = _manager(request)
    room = request.match_info["room"]
    name = request.match_info["name"]
    if "/" in room or room.startswith(".") or not (name.endswith((".m3u8", ".ts"))):
        raise HttpError(404, "not_found", "no such file")
    path = manager.live_dir / room / "hls" / name
    if not path.is_file():
        raise HttpError(404, "not_found", f"room {room!r} has no {name}")
    kind = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp2t"
    return web.FileResponse(path, headers={"Content-Type": kind, "Cache-Control": "no-cache"})


async def preview(request: web.Request) -> web.Response:
    """``GET /live/{room}/preview.jpg``: a snapshot of the running mix (the studio's preview).

    Public like the HLS and HTTP-FLV of the mix; 404 when the room is not live
    or before the first picture.
    """
    job = _manager(request).jobs.get(request.match_info["room"])
    if job is None or not job.alive:
        raise HttpError(404, "no_mix", "no live mix running for this room")
    try:
        result = await job.call("preview", timeout=5.0)
    except RequestError as exc:
        raise HttpError(exc.status, exc.code, exc.message) from None
    except TimeoutError:
        raise HttpError(503, "busy", "the mixer did not answer within 5 s") from None
    return web.Response(
        body=result["jpeg"], content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )


_MIX_FLV: Final = re.compile(r"/live/(?P<room>[^/]+)\.flv")


@web.middleware
async def _mix_flv(request: web.Request, handler: Any) -> web.StreamResponse:
    """``GET /live/{room}.flv`` while the room is live; otherwise the route's own answer."""
    match = _MIX_FLV.fullmatch(request.rel_url.raw_path)
    job = None
    if match is not None and request.method == "GET":
        job = _manager_of(request.app).jobs.get(unquote(match["room"]))
    if job is None or not job.alive:
        response: web.StreamResponse = await handler(request)
        return response
    return await _play_mix(request, job)


async def _play_mix(request: web.Request, job: LiveJob) -> web.StreamResponse:
    manager = _manager_of(request.app)
    hub: PlaybackHub | None = request.app.get(PLAYBACK)
    transport = request.transport

    def kill() -> None:
        if transport is not None:
            transport.abort()

    try:
        if hub is not None:  # no token needed; one that is given must be valid
            hub.authorize(request_token(request), job.room, None)
        player = await manager.open_flv(job, "http", request.remote or "?", kill, hub)
    except PlaybackError as exc:
        raise HttpError(exc.status, exc.code, exc.message) from None
    except (RequestError, TimeoutError) as exc:
        raise HttpError(502, "mixer_failed", str(exc)) from None
    try:
        response = web.StreamResponse(headers=FLV_HEADERS)
        await response.prepare(request)
        limit_send_buffer(request.transport)
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            await response.write(FLV_START)
            while (batch := await player.next_batch()) is not None:
                data = b"".join(bytes(tag) for tag in batch)
                await response.write(data)
                player.delivered(len(data))
        return response
    finally:
        await manager.close_flv(job, player)


async def _on_cleanup(app: web.Application) -> None:
    await _manager_of(app).close()


def _manager_of(app: web.Application) -> LiveManager:
    manager: LiveManager = app[LIVE]
    return manager


def register(app: web.Application, plane: ControlPlane) -> None:
    app[LIVE] = LiveManager(plane)
    app.on_shutdown.append(_on_cleanup)
    app.middlewares.append(_mix_flv)
    app.router.add_post("/api/rooms/{room}/live", post_live)
    app.router.add_get("/api/rooms/{room}/live", get_live)
    app.router.add_patch("/api/rooms/{room}/live", patch_live)
    app.router.add_delete("/api/rooms/{room}/live", delete_live)
    app.router.add_get("/live/{room}/preview.jpg", preview)
    app.router.add_get("/live/{room}/{name:[A-Za-z0-9_.-]+}", hls_file)
