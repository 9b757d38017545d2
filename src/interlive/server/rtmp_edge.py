"""The RTMP edge: RTMP publishers (OBS, ffmpeg, mini-programs) join rooms as participants.

``rtmp://HOST:1935/live/{room}/{identity}?token=<jwt>`` publishes into
``room`` as ``identity``.  This module is the asyncio adapter; the protocol is
:class:`~interlive.rtmp.server.RtmpServerConnection` and the media conversion
:class:`~interlive.rtmp.ingest.RtmpIngest`, both sans-IO.

Theory of operation
-------------------
One :class:`_Publisher` per TCP connection reads, feeds the RTMP core and
handles its events in order, awaiting whatever they need before it reads
again: that is the backpressure (a publisher we cannot keep up with is slowed
down by TCP, never buffered), and the core bounds what one read can hold.

* ``connect``: the app must be ``live`` (or ``live/...``), else it is rejected.
* ``publish``: the stream key names room and identity
  (:func:`~interlive.rtmp.ingest.parse_stream_key`); the token must be valid,
  name the same room and identity, and the room must admit the identity as a
  publisher (:meth:`~interlive.server.rooms.RoomRegistry.admit`, the rule WHIP
  follows).  A refusal answers ``NetStream.Publish.BadName`` with the reason,
  logs it and counts it.
* media: once the sequence headers tell the codecs, the room's worker gets a
  ``create_plain_session`` (``worker/plain.py``) whose remote is a UDP socket
  of this process bound for this publisher alone; the session then joins the
  room registry like a WHIP session (``session_started``) and the RTP and
  RTCP the ingest produces go to the worker's port.  RTCP from the worker
  (receiver reports, keyframe requests) comes back on that socket.
* the end: the publisher disconnecting, unpublishing, or sending no media for
  ``stall_timeout`` ends the session (``end_sessions``: the worker says BYE
  to its viewers and the registry lets the participant leave).  The worker
  ending it (a second push of the same identity replaces it, a host kicks it,
  the worker exits) closes the connection with an error status naming why.

Players (``play``): ``rtmp://HOST:1935/live/{room}/{identity}?token=<jwt>``
plays what ``identity`` publishes, through the FLV playback hub shared with
HTTP-FLV (``server/playback.py``); the token's rules are the stream key's, a
subscriber's (any role).  A play task takes the player's FLV tags from its
queue, sends them as RTMP messages and waits for TCP to take them; the read
loop goes on reading the player's acknowledgements and commands, with no
stall deadline.  ``rtmp://HOST:1935/live/{room}`` plays the room mix while a
bypass-live job runs (else it is refused with ``no_mix``); like the mix's
HLS and HTTP-FLV it needs no token (the mix is the broadcast), but a token
that is given must be valid for the room.  The player is one more FLV player
of the job (``LiveManager.open_flv``: the mix muxed once, a
:class:`~interlive.media.flv_queue.PlayerQueue` per player, the same GOP drop
and slow-player disconnect as a participant's players), sent the same way.

Counters are rendered by :meth:`RtmpEdge.render_metrics` into ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

from interlive.auth import AccessToken, TokenError, verify_token
from interlive.config import ServerConfig
from interlive.rtmp.events import (
    ConnectRequested,
    MediaKind,
    MediaMessage,
    PlayRequested,
    ProtocolError,
    PublishRequested,
    RtmpEvent,
    StreamDeleted,
)
from interlive.rtmp.ingest import (
    IngestError,
    RtmpIngest,
    StreamKeyError,
    check_app,
    parse_stream_key,
)
from interlive.rtmp.server import ConnectionState, RtmpServerConnection, split_stream_name
from interlive.rtp.ntp import ntp_from_unix
from interlive.rtp.rtcp import is_rtcp
from interlive.server.errors import HttpError
from interlive.server.playback import (
    NO_MIX_MESSAGE,
    PlaybackError,
    PlaybackHub,
    Player,
    parse_play_path,
)
from interlive.server.workers import WorkerHandle
from interlive.stage.model import Refusal
from interlive.worker.channel import Event, RequestError

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane
    from interlive.server.live_api import FlvPlayer, LiveJob, LiveManager

__all__ = ["RtmpEdge", "RtmpEdgeStats"]

log = logging.getLogger(__name__)

READ_SIZE: Final = 64 * 1024
#: no media (or, before publishing, no publish) for this long closes the connection
STALL_TIMEOUT: Final = 10.0
WRITE_TIMEOUT: Final = 10.0
#: after an error status, how long the connection stays open for the client to read it
LINGER: Final = 2.0
MAX_CONNECTIONS: Final = 64
#: UDP bytes queued in user space towards the worker before packets are dropped
MAX_UDP_BACKLOG: Final = 1 << 20


@dataclass
class RtmpEdgeStats:
    connections_total: int = 0
    publishers_total: int = 0
    protocol_errors: int = 0
    keyframe_requests: int = 0
    rtp_packets_sent: int = 0
    rtp_bytes_sent: int = 0
    rtp_dropped: int = 0
    rtcp_received: int = 0
    audio_frames: int = 0
    transcode_seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1


class RtmpEdge:
    """The RTMP server of the control process (see the module doc)."""

    def __init__(
        self,
        config: ServerConfig,
        plane: ControlPlane,
        *,
        stall_timeout: float = STALL_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        playback: PlaybackHub | None = None,
    ) -> None:
        self.config = config
        self.plane = plane
        #: RTMP play goes through it (None: play is refused)
        self.playback = playback
        self.stall_timeout = stall_timeout
        self.max_connections = max_connections
        self.stats = RtmpEdgeStats()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._publishers: set[_Publisher] = set()
        self._by_sid: dict[str, _Publisher] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        plane.pool.listeners.append(self._on_worker_event)

    @property
    def media_host(self) -> str:
        """Where the workers' UDP ports are reached from this process."""
        bind = self.config.udp_bind
        return "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, self.config.host, self.config.rtmp_port, limit=READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for publisher in list(self._publishers):
            publisher.abort("the server is shutting down", "shutdown")
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def publishers(self) -> int:
        return sum(1 for p in self._publishers if p.sid is not None)

    # --- connections ----------------------------------------------------------------------
    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections_total += 1
        peer = writer.get_extra_info("peername")
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self._publishers) >= self.max_connections:
            self.stats.reject("too_many_connections")
            log.warning("rtmp %s: refused, %d connections open", name, len(self._publishers))
            writer.close()
            return
        publisher = _Publisher(self, reader, writer, name)
        self._publishers.add(publisher)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await publisher.run()
        except Exception:  # a bug costs this connection, never the edge
            log.exception("rtmp %s: connection failed", name)
            publisher.closing = publisher.closing or "internal-error"
        finally:
            await publisher.finish()
            self._publishers.discard(publisher)
            if task is not None:
                self._tasks.discard(task)

    def _on_worker_event(self, event: Event) -> None:
        if event.kind == "session_ended":
            publisher = self._by_sid.pop(event.data["sid"], None)
            if publisher is not None:
                publisher.session_ended(str(event.data.get("reason") or "ended"))
        elif event.kind == "worker_exited":
            for sid, publisher in list(self._by_sid.items()):
                if publisher.worker is not None and publisher.worker.index == event.data["worker"]:
                    del self._by_sid[sid]
                    publisher.session_ended("worker-exited")

    # --- metrics --------------------------------------------------------------------------
    def render_metrics(self) -> str:
        """The edge's counters in the Prometheus text format, for ``/metrics``."""
        s = self.stats
        lines: list[str] = []

        def one(name: str, kind: str, help_text: str, value: float) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"])

        def by_reason(name: str, help_text: str, counts: dict[str, int]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} counter"])
            lines.extend(f'{name}{{reason="{r}"}} {n}' for r, n in sorted(counts.items()))

        one("interlive_rtmp_connections", "gauge", "Open RTMP connections", len(self._publishers))
        one("interlive_rtmp_publishers", "gauge", "RTMP publishers in a room", self.publishers())
        one(
            "interlive_rtmp_connections_total",
            "counter",
            "RTMP connections accepted",
            s.connections_total,
        )
        one(
            "interlive_rtmp_publishers_total",
            "counter",
            "RTMP publishes that joined a room",
            s.publishers_total,
        )
        by_reason(
            "interlive_rtmp_rejected_total", "RTMP connects and publishes refused", s.rejected
        )
        by_reason("interlive_rtmp_closed_total", "RTMP publishes ended, by why", s.closed)
        one(
            "interlive_rtmp_protocol_errors_total",
            "counter",
            "RTMP connections closed for breaking the protocol",
            s.protocol_errors,
        )
        one(
            "interlive_rtmp_keyframe_requests_total",
            "counter",
            "Keyframe requests (PLI/FIR) for RTMP sources; RTMP cannot forward them",
            s.keyframe_requests,
        )
        one(
            "interlive_rtmp_rtp_packets_sent_total",
            "counter",
            "RTP packets sent to media workers for RTMP publishers",
            s.rtp_packets_sent,
        )
        one(
            "interlive_rtmp_rtp_dropped_total",
            "counter",
            "RTP packets dropped because the UDP socket to the worker was backed up",
            s.rtp_dropped,
        )
        one(
            "interlive_rtmp_audio_transcode_seconds_total",
            "counter",
            "CPU time the control process spent turning AAC into Opus",
            round(s.transcode_seconds, 6),
        )
        one(
            "interlive_rtmp_audio_frames_total",
            "counter",
            "AAC frames transcoded to Opus",
            s.audio_frames,
        )
        return "\n".join(lines) + "\n"


_TAG_KINDS: Final = {8: MediaKind.AUDIO, 9: MediaKind.VIDEO, 18: MediaKind.DATA}


def _backlog(transport: asyncio.DatagramTransport) -> int:
    """Bytes the transport queued in user space (asyncio's and uvloop's UDP transports)."""
    size: Callable[[], int] | None = getattr(transport, "get_write_buffer_size", None)
    return size() if size is not None else 0


class _MediaSocket(asyncio.DatagramProtocol):
    """The UDP socket of one publisher: RTP/RTCP to its plain session, RTCP back."""

    def __init__(self, on_rtcp: Callable[[bytes], None]) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._on_rtcp = on_rtcp
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport has the interface without the asyncio base class
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.peer is not None and (addr[0], addr[1]) == self.peer and is_rtcp(data):
            self._on_rtcp(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("rtmp media socket: %s", exc)


class _Publisher:
    """One RTMP connection: its protocol state, its ingest and its plain session."""

    def __init__(
        self,
        edge: RtmpEdge,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
    ) -> None:
        self.edge = edge
        self.reader = reader
        self.writer = writer
        self.name = name
        self.conn = RtmpServerConnection(epoch_ms=int(time.monotonic() * 1000) & 0xFFFFFFFF)
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + edge.stall_timeout
        self._timeout: asyncio.Timeout | None = None
        self.ingest: RtmpIngest | None = None
        self.room: str | None = None
        self.identity: str | None = None
        self.token: AccessToken | None = None
        self.sid: str | None = None
        self.worker: WorkerHandle | None = None
        self.socket: _MediaSocket | None = None
        self.worker_addr: tuple[str, int] | None = None
        self.closing: str | None = None
        self.published_at: float | None = None
        self.first_packet_at: float | None = None
        self.player: Player | None = None
        #: playing the room mix: the live job and this connection's FLV player of it
        self.mix: tuple[LiveManager, LiveJob, FlvPlayer] | None = None
        self._mix_closing: asyncio.Task[None] | None = None
        self._play_task: asyncio.Task[None] | None = None

    # --- the read loop --------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                playing = (self.player or self.mix) is not None and self.closing is None
                async with asyncio.timeout_at(None if playing else self.deadline) as timeout:
                    self._timeout = timeout
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                if self.closing is None and self.ingest is not None:
                    self.abort(f"no media for {self.edge.stall_timeout:.0f} s", "stalled")
                elif self.closing is None:
                    self.abort("no publish in time", "idle")
                break
            except (ConnectionError, OSError):
                self._closed_by_peer("disconnected")
                break
            finally:
                self._timeout = None
            if not data:
                self._closed_by_peer("disconnected")
                break
            if self.closing is not None:
                continue  # lingering: what the client still sends is dropped
            self.conn.receive_data(data)
            while self.closing is None and (event := self.conn.next_event()) is not None:
                await self._handle(event)
            self._tick()
            await self._flush()
            if self.conn.state is ConnectionState.CLOSED and self.closing is None:
                self.closing = "closed"
            if self.closing is not None:
                self._linger()

    def _linger(self) -> None:
        """Closing: keep reading (and dropping) a moment so the client reads our last status.

        ffmpeg looks for server messages only between its writes; closing at once
        would show it a broken pipe instead of the reason.
        """
        self.deadline = min(self.deadline, self.loop.time() + LINGER)
        if self._timeout is not None:
            self._timeout.reschedule(self.deadline)

    async def _flush(self) -> None:
        out = self.conn.data_to_send()
        if not out or self.writer.is_closing():
            return
        self.writer.write(out)
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await self.writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            self._closed_by_peer("not-reading")

    def _closed_by_peer(self, reason: str) -> None:
        if self.closing is None:
            self.closing = reason

    def abort(self, message: str, reason: str) -> None:
        """End the publish with an error status for the client; close after a short linger."""
        if self.closing is not None:
            return
        self.closing = reason
        if self.conn.state is not ConnectionState.CLOSED:
            self.conn.abort(message)
        out = self.conn.data_to_send()
        if out and not self.writer.is_closing():
            self.writer.write(out)
        log.info("rtmp %s: %s (%s)", self.name, message, reason)
        self._linger()

    def session_ended(self, reason: str) -> None:
        """The worker ended our session (replaced, kicked, worker gone): close the connection."""
        self.sid = None
        messages = {
            "replaced": f"{self.identity} is published again from elsewhere",
            "worker-exited": "the media worker exited",
        }
        self.abort(messages.get(reason, f"session ended: {reason}"), reason)

    async def finish(self) -> None:
        """After the read loop: the session ends, the sockets close."""
        reason = self.closing or "closed"
        self.edge.stats.close(reason)
        self._stop_playing(reason)
        if self._mix_closing is not None:
            with contextlib.suppress(Exception):
                await self._mix_closing
        await self._end_session(reason)
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    # --- events ---------------------------------------------------------------------------
    async def _handle(self, event: RtmpEvent) -> None:
        if isinstance(event, MediaMessage):
            await self._on_media(event)
        elif isinstance(event, ConnectRequested):
            try:
                check_app(event.app)
            except StreamKeyError as exc:
                self._refuse(str(exc), "unknown_app")
                return
            self.conn.accept_connect()
        elif isinstance(event, PublishRequested):
            await self._on_publish(event)
        elif isinstance(event, PlayRequested):
            await self._on_play(event)
        elif isinstance(event, StreamDeleted):
            self._stop_playing("stopped")
            await self._end_session("unpublished")
            self.ingest = None
            self.deadline = self.loop.time() + self.edge.stall_timeout
        elif isinstance(event, ProtocolError):
            self.edge.stats.protocol_errors += 1
            log.info("rtmp %s: protocol error: %s", self.name, event.reason)
            self.closing = "protocol-error"

    def _refuse(self, message: str, reason: str) -> None:
        self.edge.stats.reject(reason)
        log.warning("rtmp %s: refused (%s): %s", self.name, reason, message)
        self.conn.reject(message)
        self.closing = f"refused-{reason}"

    async def _on_publish(self, event: PublishRequested) -> None:
        plane = self.edge.plane
        try:
            key = parse_stream_key(self.conn.app or "", event.stream_key)
        except StreamKeyError as exc:
            self._refuse(str(exc), "bad_stream_key")
            return
        if not key.token:
            self._refuse("missing ?token= on the stream key", "no_token")
            return
        try:
            token = verify_token(plane.secret, key.token)
        except TokenError as exc:
            self._refuse(str(exc), "bad_token")
            return
        if (token.room, token.identity) != (key.room, key.identity):
            self._refuse(
                f"the token is for {token.identity!r} in room {token.room!r}, "
                f"not {key.identity!r} in {key.room!r}",
                "forbidden",
            )
            return
        refusal = plane.rooms.admit(token, "publish")
        if refusal is not None:
            self._refuse(refusal.message, refusal.code.value)
            return
        self.room, self.identity, self.token = key.room, key.identity, token
        self.ingest = RtmpIngest()
        self.published_at = self.loop.time()
        self.deadline = self.published_at + self.edge.stall_timeout
        self.conn.accept_publish()
        log.info("rtmp %s: %s publishes into room %s", self.name, key.identity, key.room)

    # --- playing ----------------------------------------------------------------------------
    async def _on_play(self, event: PlayRequested) -> None:
        playback = self.edge.playback
        if playback is None:
            self._refuse("RTMP playback is not available on this server", "play")
            return
        app_path, app_params = split_stream_name(self.conn.app or "")
        stream_path, params = split_stream_name(event.stream_name)
        path = f"{app_path.strip('/')}/{stream_path.strip('/')}".split("/", 1)[1]
        try:
            room, identity = parse_play_path(path)
            playback.authorize(params.get("token") or app_params.get("token"), room, identity)
            if identity is None:  # authorized: a live job runs for the room
                await self._on_play_mix(playback, room)
                return
            player = await playback.open(room, identity, "rtmp", self.name, self._kill)
        except PlaybackError as exc:
            self._refuse(exc.message, exc.code)
            return
        if self.closing is not None or self.conn.state is not ConnectionState.PLAY_PENDING:
            playback.release(player, "left")
            return
        self.player = player
        self.conn.accept_play()
        self._play_task = asyncio.create_task(self._play(player, playback))
        log.info("rtmp %s: plays %s in room %s", self.name, identity, room)

    async def _on_play_mix(self, playback: PlaybackHub, room: str) -> None:
        """Play the room mix as one more FLV player of its live job (see the module doc)."""
        live = playback.live
        job = live.jobs.get(room) if live is not None else None
        if live is None or job is None or not job.alive:
            raise playback.refuse("no_mix", 404, NO_MIX_MESSAGE)
        try:
            mix = await live.open_flv(job, "rtmp", self.name, self._kill, playback)
        except HttpError as exc:
            raise playback.refuse(exc.code, exc.status, exc.message) from None
        except (RequestError, TimeoutError) as exc:
            raise playback.refuse("mixer_failed", 502, f"the mixer refused: {exc}") from None
        self.mix = (live, job, mix)
        if self.closing is not None or self.conn.state is not ConnectionState.PLAY_PENDING:
            self._stop_playing("left")
            return
        self.conn.accept_play()
        self._play_task = asyncio.create_task(self._play_mix(job, mix))
        log.info("rtmp %s: plays the mix of room %s", self.name, room)

    async def _play_mix(self, job: LiveJob, mix: FlvPlayer) -> None:
        """The mix player's tags to RTMP messages, as fast as TCP takes them."""
        await self._send_tags(mix)
        reason = mix.closed
        self._stop_playing(reason or "left")
        if reason == "ended" and self.closing is None:  # the live job stopped: the stream stopped
            self.closing = "play-ended"
            self.conn.close()
            out = self.conn.data_to_send()
            if out and not self.writer.is_closing():
                self.writer.write(out)
            self._linger()

    def _kill(self) -> None:
        self.writer.transport.abort()

    async def _play(self, player: Player, playback: PlaybackHub) -> None:
        """Player's tags to RTMP messages, as fast as TCP takes them (see the module doc)."""
        if not await player.wait_started(playback.start_timeout):
            if player.closed is None:
                self.abort(
                    f"no H.264 keyframe from {player.identity} within "
                    f"{playback.start_timeout:.0f} s (FLV carries H.264 only)",
                    "no-keyframe",
                )
            self._stop_playing(player.closed or "no-keyframe")
            return
        await self._send_tags(player)
        reason = player.closed
        self._stop_playing(reason or "left")
        if reason in ("ended", "no-media", "worker-ended", "shutdown") and self.closing is None:
            # the participant stopped publishing: the player is told the stream stopped
            self.closing = f"play-{reason}"
            self.conn.close()
            out = self.conn.data_to_send()
            if out and not self.writer.is_closing():
                self.writer.write(out)
            self._linger()

    async def _send_tags(self, player: Player | FlvPlayer) -> None:
        """The player's batches as RTMP messages, each reported delivered once TCP took it."""
        try:
            while (batch := await player.next_batch()) is not None:
                if self.conn.state is not ConnectionState.PLAYING or self.writer.is_closing():
                    break
                for tag in batch:
                    self.conn.send_media(_TAG_KINDS[tag.tag_type], tag.timestamp, tag.data)
                out = self.conn.data_to_send()
                self.writer.write(out)
                await self.writer.drain()
                player.delivered(len(out))
        except (ConnectionError, OSError):
            self._closed_by_peer("disconnected")

    def _stop_playing(self, reason: str) -> None:
        player, self.player = self.player, None
        task, self._play_task = self._play_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        playback = self.edge.playback
        if player is not None and playback is not None:
            playback.release(player, reason if reason != "disconnected" else "left")
        mix, self.mix = self.mix, None
        if mix is not None:
            live, job, flv = mix
            flv.close(reason if reason != "disconnected" else "left")
            self._mix_closing = asyncio.create_task(live.close_flv(job, flv))

    async def _on_media(self, event: MediaMessage) -> None:
        ingest = self.ingest
        if ingest is None:
            return
        now = self.loop.time()
        self.deadline = now + self.edge.stall_timeout
        audio = event.kind is MediaKind.AUDIO and ingest.started
        began = time.thread_time() if audio else 0.0
        try:
            ingest.on_media(event.kind, event.timestamp, event.payload, now)
        except IngestError as exc:
            self.edge.stats.reject("unsupported_codec")
            self.abort(str(exc), "unsupported-codec")
            return
        if audio:
            self.edge.stats.transcode_seconds += time.thread_time() - began
            self.edge.stats.audio_frames += 1
        if not ingest.started and ingest.tracks is not None:
            await self._create_session(ingest, now)
        self._send(ingest.datagrams_to_send())

    # --- the plain session ----------------------------------------------------------------
    async def _create_session(self, ingest: RtmpIngest, now: float) -> None:
        assert ingest.tracks is not None and self.token is not None
        assert self.room is not None and self.identity is not None
        plane = self.edge.plane
        host = self.edge.media_host
        _, socket = await self.loop.create_datagram_endpoint(
            lambda: _MediaSocket(self._on_rtcp), local_addr=(host, 0)
        )
        self.socket = socket
        assert socket.transport is not None
        local = socket.transport.get_extra_info("sockname")
        media = [t.to_request() for t in ingest.tracks]
        try:
            worker = plane.pool.place(self.room)
            result = await plane.pool.call(
                worker,
                "create_plain_session",
                room=self.room,
                identity=self.identity,
                mode="publish",
                remote=[local[0], local[1]],
                media=media,
            )
        except (RequestError, TimeoutError) as exc:
            self.abort(f"the media worker refused the stream: {exc}", "worker-refused")
            return
        sid: str = result["sid"]
        self.sid, self.worker = sid, worker
        self.worker_addr = socket.peer = (host, int(result["port"]))
        self.edge._by_sid[sid] = self
        tracks = [(t["mid"], t["kind"]) for t in result["tracks"]]
        joined = plane.rooms.session_started(
            self.token, "publish", sid, tracks, plane.stage.clock()
        )
        if isinstance(joined, Refusal):  # the room changed since admit()
            self.edge.stats.reject(joined.code.value)
            await self._end_session("refused")
            self.abort(joined.message, f"refused-{joined.code.value}")
            return
        from interlive.server.app import SessionRecord

        plane.sessions[sid] = SessionRecord(
            sid, self.room, self.identity, "publish", worker, plane.next_etag()
        )
        self.edge.stats.publishers_total += 1
        ingest.start(result["media"], self.loop.time())
        log.info(
            "rtmp %s: %s in room %s on worker %d: %s",
            self.name,
            self.identity,
            self.room,
            worker.index,
            ", ".join(f"{t.kind} {t.mime} {dict(t.fmtp)}" for t in ingest.tracks),
        )
        await plane.stage.apply(joined)

    async def _end_session(self, reason: str) -> None:
        """End our plain session (if the worker has not) and close its UDP socket."""
        sid, worker = self.sid, self.worker
        self.sid = None
        socket, self.socket, self.worker_addr = self.socket, None, None
        if socket is not None and socket.transport is not None:
            socket.transport.close()
        if sid is None or worker is None:
            return
        self.edge._by_sid.pop(sid, None)
        with contextlib.suppress(RequestError, TimeoutError, OSError):
            await self.edge.plane.pool.call(
                worker, "end_sessions", sids=[sid], reason=f"rtmp-{reason}"
            )

    def _send(self, datagrams: list[bytes]) -> None:
        if not datagrams:
            return
        socket, addr = self.socket, self.worker_addr
        transport = socket.transport if socket is not None else None
        if transport is None or addr is None or self.sid is None:
            return
        stats = self.edge.stats
        if self.first_packet_at is None and self.published_at is not None:
            self.first_packet_at = self.loop.time()
            log.info(
                "rtmp %s: first RTP %.0f ms after publish",
                self.name,
                1000 * (self.first_packet_at - self.published_at),
            )
        for datagram in datagrams:
            if _backlog(transport) > MAX_UDP_BACKLOG:
                stats.rtp_dropped += 1
                continue
            transport.sendto(datagram, addr)
            stats.rtp_packets_sent += 1
            stats.rtp_bytes_sent += len(datagram)

    def _tick(self) -> None:
        ingest = self.ingest
        if ingest is None or not ingest.started:
            return
        timer = ingest.get_timer()
        now = self.loop.time()
        if timer is not None and now >= timer:
            ingest.handle_timer(now, ntp_from_unix(time.time()))
            self._send(ingest.datagrams_to_send())

    def _on_rtcp(self, data: bytes) -> None:
        ingest = self.ingest
        if ingest is None:
            return
        self.edge.stats.rtcp_received += 1
        before = ingest.stats.keyframe_requests
        try:
            ingest.on_rtcp(data)
        except ValueError:
            return
        self.edge.stats.keyframe_requests += ingest.stats.keyframe_requests - before
