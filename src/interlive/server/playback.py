"""FLV playback of one participant: HTTP-FLV and RTMP play, for live-players and ffmpeg.

``GET /live/{room}/{identity}.flv`` (HTTP-FLV) and
``rtmp://HOST:1935/live/{room}/{identity}`` (RTMP play, see
``server/rtmp_edge.py``) play what ``identity`` publishes in ``room``: its H.264
passed through, its Opus transcoded to AAC.  The room mix paths
(``/live/{room}.flv``, ``rtmp://HOST/live/{room}``) belong to the bypass-live
mixer (``server/live_api.py``): while a live job runs for the room they play
its encoded mix (RTMP players through :attr:`PlaybackHub.live`, the mixer's
own FLV source, see ``server/rtmp_edge.py``); otherwise they answer 404
``no live mix running for this room``.

Theory of operation
-------------------
One *feed* per (room, identity) is shared by all its players.  The first
player opens it: a UDP socket of this process on the workers' address, and a
plain-RTP subscribe session on the room's worker (``create_plain_session``,
``mode="subscribe"``, ``only=identity``) whose remote is that socket.  The
worker then sends the participant's audio and video there as if to a WHEP
viewer; :class:`~interlive.media.rtp_flv.RtpFlvSource` (sans-IO) turns them
into FLV tags and the feed offers every tag to every player's
:class:`~interlive.media.flv_queue.PlayerQueue`.  Each player has a writer
(the HTTP response or the RTMP connection) that takes batches from its queue
and reports them delivered once its socket took them; the queue decides GOP
drops and disconnects (a slow player never slows the others, nor grows
memory).  A player joining asks the publisher for a keyframe (a PLI through
the plain session's RTCP), so it starts at once instead of at the next GOP;
so does a player that dropped to "the next keyframe".

The feed ends when its last player leaves (the plain session is ended on the
worker), when the worker ends the session (the worker exits), when the
participant's streams said BYE and nothing came back for
:data:`GOODBYE_GRACE` seconds, or after :data:`IDLE_TIMEOUT` seconds without
media; its players are then closed.  The plain session's identity is
``{identity}~flv``: it never replaces the participant's own sessions and is
not a participant of the room.

Counters are rendered by :meth:`PlaybackHub.render_metrics` into ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import unquote

from aiohttp import web

from interlive.auth import AccessToken, TokenError, bearer_token, verify_token
from interlive.media.flv import FlvHeader, FlvTag
from interlive.media.flv_queue import PlayerQueue, QueueLimits, Verdict
from interlive.media.rtp_flv import RtpFlvSource, StreamSpec, subscribe_media
from interlive.server.errors import HttpError
from interlive.server.keys import LIVE, PLAYBACK
from interlive.server.workers import WorkerHandle
from interlive.worker.channel import Event, RequestError

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane
    from interlive.server.live_api import LiveManager

__all__ = [
    "NO_MIX_MESSAGE",
    "PlaybackError",
    "PlaybackHub",
    "Player",
    "limit_send_buffer",
    "parse_play_path",
    "register_routes",
    "request_token",
]

log = logging.getLogger(__name__)

Protocol = Literal["http", "rtmp"]

#: how long a new player waits for its first keyframe
START_TIMEOUT: Final = 10.0
#: a feed that receives no media for this long ends
IDLE_TIMEOUT: Final = 10.0
#: after the worker said BYE (the publisher left), how long the feed waits for it to return
GOODBYE_GRACE: Final = 3.0
MAX_PLAYERS: Final = 256
#: the kernel's send buffer of an HTTP-FLV player: bounds what hides from the queue's lag
PLAYER_SNDBUF: Final = 128 * 1024
NO_MIX_MESSAGE: Final = "no live mix running for this room"
FLV_START: Final = bytes(FlvHeader(has_audio=True, has_video=True)) + b"\x00\x00\x00\x00"
PLAIN_IDENTITY_SUFFIX: Final = "~flv"
FLV_HEADERS: Final = {
    "Content-Type": "video/x-flv",
    "Cache-Control": "no-cache, no-store",
    "Access-Control-Allow-Origin": "*",
}


class PlaybackError(Exception):
    """A refused play: the HTTP status, a reason code (metrics, RTMP) and the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def parse_play_path(path: str) -> tuple[str, str | None]:
    """``room/identity`` or ``room`` (the room mix) from the part after ``live/``."""
    segments = [unquote(s) for s in path.strip("/").split("/")]
    if not all(segments) or not 1 <= len(segments) <= 2:
        raise PlaybackError(
            404,
            "bad_stream_key",
            f"{path!r} does not name a room and an identity: play live/ROOM/IDENTITY",
        )
    return segments[0], segments[1] if len(segments) == 2 else None


@dataclass
class PlaybackStats:
    feeds_total: int = 0
    players_total: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)
    gop_drops: int = 0
    tags_dropped: int = 0
    slow_disconnects: int = 0
    bytes_sent: int = 0
    keyframe_requests: int = 0
    cpu_seconds: float = 0.0
    internal_errors: int = 0

    @staticmethod
    def count(counts: dict[str, int], key: str) -> None:
        counts[key] = counts.get(key, 0) + 1


class QueuedPlayer:
    """One HTTP-FLV response or RTMP play connection fed through a :class:`PlayerQueue`.

    Whoever feeds it offers tags to ``queue`` and calls :meth:`wake` when the
    queue has something to send; the writer loops on :meth:`next_batch` and
    reports each batch :meth:`delivered` once the socket took it; :meth:`close`
    ends it, ``kill`` also aborting its socket so a writer stuck on a full
    socket ends at once.
    """

    def __init__(
        self,
        protocol: str,
        name: str,
        kill: Callable[[], None],
        limits: QueueLimits | None = None,
        stats: PlaybackStats | None = None,
    ) -> None:
        self.protocol = protocol
        self.name = name
        self.queue = PlayerQueue(limits)
        self.stats = stats if stats is not None else PlaybackStats()
        self._kill = kill
        self._wake = asyncio.Event()
        #: why the player ended (``slow``, ``ended``, ``left``, ...), None while it plays
        self.closed: str | None = None

    def wake(self) -> None:
        self._wake.set()

    async def next_batch(self) -> list[FlvTag] | None:
        """The next tags to write (waiting for some); None once the player is closed."""
        while True:
            if self.closed is not None:
                return None
            batch = self.queue.take()
            if batch:
                return batch
            self._wake.clear()
            await self._wake.wait()

    def delivered(self, size: int) -> None:
        """The socket took the last batch (``size`` bytes written)."""
        self.queue.delivered()
        self.stats.bytes_sent += size

    def close(self, reason: str, *, kill: bool = False) -> None:
        """End the player: its writer sees None; ``kill`` also aborts its socket at once."""
        if self.closed is not None:
            return
        self.closed = reason
        self._wake.set()
        if kill:
            with contextlib.suppress(Exception):
                self._kill()


class Player(QueuedPlayer):
    """A player of one participant's feed: it starts at the feed's first keyframe."""

    def __init__(
        self, feed: _Feed, protocol: Protocol, name: str, kill: Callable[[], None]
    ) -> None:
        super().__init__(protocol, name, kill, feed.hub.limits, feed.hub.stats)
        self.feed = feed
        self._started = asyncio.Event()

    @property
    def room(self) -> str:
        return self.feed.room

    @property
    def identity(self) -> str:
        return self.feed.identity

    async def wait_started(self, timeout: float) -> bool:
        """Wait for the first keyframe; False on timeout or if the player was closed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._started.wait()
        return self.queue.started and self.closed is None

    def _offer(self, tag: FlvTag, config: list[FlvTag]) -> Verdict:
        verdict = self.queue.offer(tag, config)
        if verdict is not Verdict.WAITING:
            self._started.set()
            self.wake()
        return verdict

    def close(self, reason: str, *, kill: bool = False) -> None:
        if self.closed is None:
            self._started.set()
        super().close(reason, kill=kill)


class _FeedSocket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self._on_datagram = on_datagram

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.peer is not None and (addr[0], addr[1]) == self.peer:
            self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("flv feed socket: %s", exc)


class _Feed:
    """One plain subscription shared by every player of (room, identity)."""

    def __init__(self, hub: PlaybackHub, room: str, identity: str) -> None:
        self.hub = hub
        self.room = room
        self.identity = identity
        self.players: set[Player] = set()
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.source: RtpFlvSource | None = None
        self.socket: _FeedSocket | None = None
        self.sid: str | None = None
        self.worker: WorkerHandle | None = None
        self.closed: str | None = None
        self.created = self.loop.time()
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        return f"{self.room}/{self.identity}"

    async def start(self) -> None:
        hub = self.hub
        plane = hub.plane
        _, sock = await self.loop.create_datagram_endpoint(
            lambda: _FeedSocket(self._on_datagram), local_addr=(hub.media_host, 0)
        )
        self.socket = sock
        assert sock.transport is not None
        local = sock.transport.get_extra_info("sockname")
        worker = plane.pool.place(self.room)
        result = await plane.pool.call(
            worker,
            "create_plain_session",
            room=self.room,
            identity=self.identity + PLAIN_IDENTITY_SUFFIX,
            mode="subscribe",
            remote=[local[0], local[1]],
            media=subscribe_media(),
            only=self.identity,
        )
        self.sid, self.worker = result["sid"], worker
        sock.peer = (hub.media_host, int(result["port"]))
        self.source = RtpFlvSource([StreamSpec.from_reply(m) for m in result["media"]])
        hub._by_sid[self.sid] = self
        self._timer = asyncio.create_task(self._run_timers())
        log.info("flv %s: subscribed on worker %d (session %s)", self.name, worker.index, self.sid)

    # --- media in, tags out -----------------------------------------------------------
    def _on_datagram(self, data: bytes) -> None:
        source = self.source
        if source is None or self.closed is not None:
            return
        began = time.thread_time()
        try:
            source.receive(data, self.loop.time())
            tags = source.tags()
            if tags:
                self._fan_out(source, tags)
            if source.video_order.held:
                self._wake.set()  # a hole is waited for: its deadline is the next timer
        except Exception:  # a bug costs this datagram, never the feed
            self.hub.stats.internal_errors += 1
            log.exception("flv %s: datagram failed", self.name)
        self.hub.stats.cpu_seconds += time.thread_time() - began
        self._flush()

    def _fan_out(self, source: RtpFlvSource, tags: list[FlvTag]) -> None:
        config = source.start_tags()
        want_keyframe = False
        for player in list(self.players):
            if player.closed is not None:
                continue
            queue = player.queue
            drops, dropped = queue.stats.gop_drops, queue.stats.tags_dropped
            for tag in tags:
                verdict = player._offer(tag, config)
                if verdict is Verdict.DISCONNECT:
                    self.hub.stats.slow_disconnects += 1
                    log.info(
                        "flv %s: %s player %s is %d ms behind (%d bytes queued): disconnected",
                        self.name,
                        player.protocol,
                        player.name,
                        queue.lag_ms,
                        queue.queued_bytes,
                    )
                    self.hub.release(player, "slow", kill=True)
                    break
                if verdict is Verdict.DROPPED and queue.skipping:
                    want_keyframe = True
            self.hub.stats.gop_drops += queue.stats.gop_drops - drops
            self.hub.stats.tags_dropped += queue.stats.tags_dropped - dropped
            if queue.stats.gop_drops > drops:
                log.info(
                    "flv %s: %s player %s fell behind: dropped to the next keyframe",
                    self.name,
                    player.protocol,
                    player.name,
                )
        if want_keyframe:
            self.request_keyframe()

    def request_keyframe(self) -> None:
        source = self.source
        if source is None:
            return
        before = source.stats.plis_sent
        source.request_keyframe(self.loop.time())
        self.hub.stats.keyframe_requests += source.stats.plis_sent - before
        self._flush()
        self._wake.set()  # a deferred request needs the timer

    def _flush(self) -> None:
        source, sock = self.source, self.socket
        if source is None or sock is None or sock.transport is None or sock.peer is None:
            return
        for datagram in source.datagrams_to_send():
            sock.transport.sendto(datagram, sock.peer)

    async def _run_timers(self) -> None:
        source = self.source
        assert source is not None
        hub = self.hub
        while self.closed is None:
            now = self.loop.time()
            timer = source.get_timer()
            delay = 0.25 if timer is None else max(0.0, min(timer - now, 0.25))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            if self.closed is not None:
                return
            now = self.loop.time()
            before = source.stats.plis_sent
            source.handle_timer(now)
            hub.stats.keyframe_requests += source.stats.plis_sent - before
            tags = source.tags()  # video released after waiting for a repair
            if tags:
                self._fan_out(source, tags)
            self._flush()
            last = source.last_media if source.last_media is not None else self.created
            if source.goodbye_at is not None and now - source.goodbye_at > hub.goodbye_grace:
                await hub.close_feed(self, "ended")
            elif now - last > hub.idle_timeout:
                await hub.close_feed(self, "no-media")

    async def end_session(self) -> None:
        sid, worker = self.sid, self.worker
        self.sid = None
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        sock, self.socket = self.socket, None
        if sock is not None and sock.transport is not None:
            sock.transport.close()
        if sid is None or worker is None:
            return
        self.hub._by_sid.pop(sid, None)
        with contextlib.suppress(RequestError, TimeoutError, OSError):
            await self.hub.plane.pool.call(worker, "end_sessions", sids=[sid], reason="flv-closed")


class PlaybackHub:
    """Every FLV feed and player of the control process (see the module doc)."""

    def __init__(
        self,
        plane: ControlPlane,
        *,
        media_host: str | None = None,
        limits: QueueLimits | None = None,
        start_timeout: float = START_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        goodbye_grace: float = GOODBYE_GRACE,
        max_players: int = MAX_PLAYERS,
    ) -> None:
        self.plane = plane
        bind = plane.config.udp_bind
        #: where the workers' UDP ports are reached from this process
        self.media_host = media_host or ("127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind)
        self.limits = limits or QueueLimits()
        self.start_timeout = start_timeout
        self.idle_timeout = idle_timeout
        self.goodbye_grace = goodbye_grace
        self.max_players = max_players
        self.stats = PlaybackStats()
        #: the bypass-live jobs (set by :func:`register_routes`): the room mix's source
        self.live: LiveManager | None = None
        self._feeds: dict[tuple[str, str], _Feed] = {}
        self._by_sid: dict[str, _Feed] = {}
        self._closing: set[asyncio.Task[None]] = set()
        plane.pool.listeners.append(self._on_worker_event)

    # --- admission --------------------------------------------------------------------
    def refuse(self, code: str, status: int, message: str) -> PlaybackError:
        self.stats.count(self.stats.refused, code)
        log.info("flv: refused (%s): %s", code, message)
        return PlaybackError(status, code, message)

    def authorize(self, token: str | None, room: str, identity: str | None) -> AccessToken | None:
        """Check a player's token and what it asks for; raises :class:`PlaybackError`.

        ``identity`` None is the room mix: playable while a live job runs for the
        room, by anyone (the mix is the broadcast, what a CDN gets anyway, like
        its HLS): no token is needed, but one that is given must be valid and
        name the room.  A participant's stream needs a token the room admits.
        """
        if identity is None and not token:
            self._mix_running(room)
            return None
        if not token:
            raise self.refuse("no_token", 401, "missing ?token= (or Authorization: Bearer)")
        try:
            access = verify_token(self.plane.secret, token)
        except TokenError as exc:
            raise self.refuse("bad_token", 401, str(exc)) from exc
        if access.room != room:
            raise self.refuse(
                "forbidden", 403, f"the token is for room {access.room!r}, not {room!r}"
            )
        if identity is None:
            self._mix_running(room)
            return access
        refusal = self.plane.rooms.admit(access, "subscribe")
        if refusal is not None:
            raise self.refuse(refusal.code.value, refusal.http_status, refusal.message)
        publishing = any(t.mode == "publish" for t in self.plane.rooms.transports(room, identity))
        if not publishing:
            raise self.refuse(
                "not_publishing", 404, f"{identity!r} is not publishing in room {room!r}"
            )
        return access

    def _mix_running(self, room: str) -> None:
        job = self.live.jobs.get(room) if self.live is not None else None
        if job is None or not job.alive:
            raise self.refuse("no_mix", 404, NO_MIX_MESSAGE)

    # --- players ----------------------------------------------------------------------
    def players(self, protocol: Protocol | None = None) -> int:
        return sum(
            1
            for feed in self._feeds.values()
            for p in feed.players
            if protocol is None or p.protocol == protocol
        )

    async def open(
        self, room: str, identity: str, protocol: Protocol, name: str, kill: Callable[[], None]
    ) -> Player:
        """A player of (room, identity), its feed opened if needed; after :meth:`authorize`."""
        if self.players() >= self.max_players:
            raise self.refuse("too_many_players", 503, f"{self.max_players} players already")
        key = (room, identity)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(self, room, identity)
            self.stats.feeds_total += 1
            try:
                await feed.start()
            except (RequestError, TimeoutError, OSError) as exc:
                feed.closed = "failed"
                self._feeds.pop(key, None)
                await feed.end_session()
                error = self.refuse("worker_refused", 503, f"the media worker refused: {exc}")
                feed.ready.set_exception(error)
                feed.ready.exception()  # retrieved: other waiters re-raise it
                raise error from exc
            feed.ready.set_result(None)
        else:
            await asyncio.shield(feed.ready)
        if feed.closed is not None:
            raise self.refuse("ended", 404, f"the stream of {identity!r} just ended")
        player = Player(feed, protocol, name, kill)
        feed.players.add(player)
        self.stats.count(self.stats.players_total, protocol)
        log.info("flv %s: %s player %s joined (%d)", feed.name, protocol, name, len(feed.players))
        feed.request_keyframe()  # start now, not at the publisher's next GOP
        return player

    def release(self, player: Player, reason: str, *, kill: bool = False) -> None:
        """The player is done (left, too slow, ended); the feed closes with its last player."""
        feed = player.feed
        first = player.closed is None
        player.close(reason, kill=kill)
        if player not in feed.players:
            return
        feed.players.discard(player)
        if first:
            self.stats.count(self.stats.closed, reason)
        log.info("flv %s: %s player %s left (%s)", feed.name, player.protocol, player.name, reason)
        if not feed.players and feed.closed is None:
            task = asyncio.get_running_loop().create_task(self.close_feed(feed, "no-players"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close_feed(self, feed: _Feed, reason: str) -> None:
        if feed.closed is not None or (reason == "no-players" and feed.players):
            return  # closed already, or a player joined before the close ran
        feed.closed = reason
        if self._feeds.get((feed.room, feed.identity)) is feed:
            del self._feeds[(feed.room, feed.identity)]
        source = feed.source
        if source is not None:
            d = source.depacketizer.stats
            log.info(
                "flv %s: feed closed (%s): %d video frames (%d keyframes), %d AAC frames, "
                "%d packets lost, %d frames incomplete, %d waited for a keyframe, %d PLIs",
                feed.name,
                reason,
                source.stats.video_frames,
                source.stats.keyframes,
                source.stats.aac_frames,
                d.lost_packets,
                d.frames_incomplete,
                d.frames_waiting_keyframe,
                source.stats.plis_sent,
            )
        else:
            log.info("flv %s: feed closed (%s)", feed.name, reason)
        for player in list(feed.players):
            self.release(player, reason)
        await feed.end_session()

    def _on_worker_event(self, event: Event) -> None:
        feeds: list[_Feed] = []
        if event.kind == "session_ended":
            feed = self._by_sid.pop(event.data["sid"], None)
            if feed is not None:
                feed.sid = None  # ended already
                feeds.append(feed)
        elif event.kind == "worker_exited":
            for sid, feed in list(self._by_sid.items()):
                if feed.worker is not None and feed.worker.index == event.data["worker"]:
                    del self._by_sid[sid]
                    feed.sid = None
                    feeds.append(feed)
        for feed in feeds:
            task = asyncio.get_running_loop().create_task(self.close_feed(feed, "worker-ended"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        for feed in list(self._feeds.values()):
            await self.close_feed(feed, "shutdown")
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)

    # --- metrics ----------------------------------------------------------------------
    def render_metrics(self) -> str:
        """The playback counters in the Prometheus text format, for ``/metrics``."""
        s = self.stats
        lines: list[str] = []

        def one(name: str, kind: str, help_text: str, value: float) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"])

        def labelled(
            name: str, kind: str, help_text: str, label: str, counts: dict[str, int]
        ) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
            lines.extend(f'{name}{{{label}="{k}"}} {n}' for k, n in sorted(counts.items()))

        one(
            "interlive_flv_feeds",
            "gauge",
            "Participants played as FLV (one plain subscription each)",
            len(self._feeds),
        )
        labelled(
            "interlive_flv_players",
            "gauge",
            "FLV players connected",
            "protocol",
            {"http": self.players("http"), "rtmp": self.players("rtmp")},
        )
        one("interlive_flv_feeds_total", "counter", "FLV feeds opened", s.feeds_total)
        labelled(
            "interlive_flv_players_total",
            "counter",
            "FLV players accepted",
            "protocol",
            s.players_total,
        )
        labelled("interlive_flv_refused_total", "counter", "FLV plays refused", "reason", s.refused)
        labelled(
            "interlive_flv_closed_total", "counter", "FLV players ended, by why", "reason", s.closed
        )
        one(
            "interlive_flv_gop_drops_total",
            "counter",
            "Times a slow FLV player's queue dropped to a keyframe",
            s.gop_drops,
        )
        one(
            "interlive_flv_dropped_tags_total",
            "counter",
            "FLV tags dropped for slow players",
            s.tags_dropped,
        )
        one(
            "interlive_flv_slow_disconnects_total",
            "counter",
            "FLV players disconnected for staying behind",
            s.slow_disconnects,
        )
        one(
            "interlive_flv_bytes_sent_total",
            "counter",
            "FLV bytes written to players",
            s.bytes_sent,
        )
        one(
            "interlive_flv_keyframe_requests_total",
            "counter",
            "PLIs sent for FLV players (joins, drops, losses)",
            s.keyframe_requests,
        )
        one(
            "interlive_flv_cpu_seconds_total",
            "counter",
            "CPU time spent turning RTP into FLV (depacketizing, Opus to AAC)",
            round(s.cpu_seconds, 6),
        )
        return "\n".join(lines) + "\n"


# --- HTTP-FLV -----------------------------------------------------------------------------


def request_token(request: web.Request) -> str | None:
    token = request.query.get("token")
    if token:
        return token
    header = request.headers.get("Authorization")
    if header is None:
        return None
    try:
        return bearer_token(header)
    except TokenError:
        return None


def limit_send_buffer(transport: asyncio.BaseTransport | None) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PLAYER_SNDBUF)


async def _participant_flv(request: web.Request) -> web.StreamResponse:
    return await _play_participant(
        request, request.match_info["room"], request.match_info["identity"]
    )


_PARTICIPANT_FLV: Final = re.compile(r"/live/(?P<room>[^/]+)/(?P<identity>[^/]+)\.flv")


@web.middleware
async def _participant_flv_first(request: web.Request, handler: Any) -> web.StreamResponse:
    """``GET /live/{room}/{identity}.flv`` wins over a catch-all ``/live/{room}/{name}`` route.

    The bypass-live API serves HLS files under ``/live/{room}/``; this keeps the
    participant's FLV reachable whatever order the routes were added in.
    """
    match = _PARTICIPANT_FLV.fullmatch(request.rel_url.raw_path)
    if match is None or request.method not in ("GET", "HEAD"):
        response: web.StreamResponse = await handler(request)
        return response
    return await _play_participant(request, unquote(match["room"]), unquote(match["identity"]))


async def _play_participant(request: web.Request, room: str, identity: str) -> web.StreamResponse:
    hub: PlaybackHub = request.app[PLAYBACK]
    try:
        hub.authorize(request_token(request), room, identity)
        if request.method == "HEAD":  # playable: say so without opening a feed
            return web.Response(headers=FLV_HEADERS)
        transport = request.transport

        def kill() -> None:
            if transport is not None:
                transport.abort()

        player = await hub.open(room, identity, "http", request.remote or "?", kill)
    except PlaybackError as exc:
        raise HttpError(exc.status, exc.code, exc.message) from None
    reason = "left"
    try:
        if not await player.wait_started(hub.start_timeout):
            reason = player.closed or "no-keyframe"
            raise HttpError(
                504,
                "no_keyframe",
                f"no H.264 keyframe from {identity!r} within {hub.start_timeout:.0f} s "
                "(FLV carries H.264 only: a VP8 or VP9 publisher cannot be played as FLV)",
            )
        response = web.StreamResponse(headers=FLV_HEADERS)
        await response.prepare(request)
        limit_send_buffer(request.transport)
        try:
            await response.write(FLV_START)
            while (batch := await player.next_batch()) is not None:
                data = b"".join(bytes(tag) for tag in batch)
                await response.write(data)
                player.delivered(len(data))
            reason = player.closed or "ended"
            await response.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            reason = player.closed or "disconnected"
        return response
    finally:
        hub.release(player, reason)


async def _room_mix_flv(request: web.Request) -> web.Response:
    hub: PlaybackHub = request.app[PLAYBACK]
    try:
        hub.authorize(request_token(request), request.match_info["room"], None)
    except PlaybackError as exc:
        raise HttpError(exc.status, exc.code, exc.message) from None
    # live_api's middleware serves a running mix before this route is reached
    raise HttpError(404, "no_mix", NO_MIX_MESSAGE)


def register_routes(app: web.Application, hub: PlaybackHub) -> None:
    """``GET /live/{room}/{identity}.flv`` and the room mix's ``GET /live/{room}.flv``.

    Before the app starts (routes and middlewares freeze then).  A room-mix
    route added earlier by the bypass-live API takes precedence over the 404
    registered here, which is the hand-over this is meant for.
    """
    app[PLAYBACK] = hub
    if LIVE in app:
        hub.live = app[LIVE]
    app.middlewares.append(_participant_flv_first)
    app.router.add_get("/live/{room}/{identity}.flv", _participant_flv)
    app.router.add_get("/live/{room}.flv", _room_mix_flv)
