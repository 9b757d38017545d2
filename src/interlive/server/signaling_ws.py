"""``GET /ws``: the WebSocket signaling endpoint (docs/signaling.md).

One :class:`Connection` per WebSocket; the :class:`SignalingHub` holds them all
and is the glue between three parts that know nothing of each other:

* the schema (``stage/signaling.py``): every frame is parsed and validated
  strictly; a bad one gets an ``error`` reply and changes nothing;
* the rooms (``server/rooms.py``): ``join`` and every room request go through
  the :class:`~interlive.server.rooms.RoomRegistry`, so the same rules hold as
  over WHIP, WHEP and REST; every room event reaches every connection of the
  room (a :attr:`RoomService.listeners` entry);
* the media worker hosting the room: the participant's one peer connection is a
  ``conference`` worker session (``worker/conference.py``).  The client's
  ``offer`` creates it or renegotiates it (an ICE restart included); the worker
  reports ``negotiation_needed`` when the stage's tracks change and the
  connection then makes the server's ``offer`` and applies the client's
  ``answer``.

Theory of operation
-------------------
*Order.*  A connection handles its frames one at a time, in order.  Each
offer/answer step runs under the connection's lock, so a server offer (made from
a worker event) never interleaves with the client's; who may offer next is
:class:`~interlive.stage.negotiation.Negotiation`'s to say (the client wins
glare: the server's offer is rolled back and made again after).

*Output.*  Frames go through a bounded queue drained by one writer task, so room
events can be sent from synchronous listeners; a client that does not read is
disconnected (1008) rather than buffered without end.

*Lifetime.*  The connection is the participant's anchor: closed without
``leave``, the participant is ``reconnecting`` for the resume window with its
role, hand and peer connection; a ``join`` with ``resume`` takes them back.  A
kick or a leave closes the connection after the event (close codes in
:data:`CLOSE_CODES`); a second ``join`` of the identity closes the older one.

*Active speaker* changes come from the media workers (``worker/speakers.py``,
RFC 6464 levels) and are broadcast like room events.

*Connection quality* (``stage/quality.py``) is sampled every
:data:`QUALITY_INTERVAL` seconds from the workers' session statistics of every
participant in a room with a /ws connection, and announced when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from interlive.auth import AccessToken, TokenError, verify_token
from interlive.server.keys import SIGNALING
from interlive.server.rooms import ADMIN_ROOM, CONFERENCE, Outcome
from interlive.server.workers import WorkerHandle
from interlive.stage.model import (
    PERMISSIONS,
    Action,
    ActiveSpeakerChanged,
    Event,
    ParticipantLeft,
    Refusal,
    RoleChanged,
    TrackKind,
)
from interlive.stage.negotiation import Negotiation
from interlive.stage.quality import QualityTracker, sample_from_stats
from interlive.stage.signaling import (
    EVENT_TYPES,
    MAX_MESSAGE_BYTES,
    AckMsg,
    AnswerMsg,
    CandidateMsg,
    ClientMessage,
    ErrorMsg,
    JoinedMsg,
    JoinMsg,
    LeaveMsg,
    OfferMsg,
    PingMsg,
    PongMsg,
    RemoteStream,
    RequestId,
    ServerAnswerMsg,
    ServerMessage,
    ServerOfferMsg,
    SignalingError,
    encode_server_message,
    parse_client_message,
    room_request,
)
from interlive.worker.channel import RequestError

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane

__all__ = ["CLOSE_CODES", "QUALITY_INTERVAL", "Connection", "SignalingHub", "register"]

log = logging.getLogger(__name__)

#: frames queued for a client before it counts as not reading
OUTBOX_LIMIT: Final = 1024
#: seconds between connection-quality samples
QUALITY_INTERVAL: Final = 2.0
#: WebSocket ping interval (aiohttp answers and checks pongs)
HEARTBEAT: Final = 20.0
#: frames above this are closed by aiohttp (1009); up to it, oversize ones get an error reply
MAX_FRAME: Final = 4 * MAX_MESSAGE_BYTES

#: why the server closes a connection, and the WebSocket close code it uses
CLOSE_CODES: Final[Mapping[str, int]] = {
    "left": 1000,
    "shutdown": 1001,
    "too_slow": 1008,
    "replaced": 4001,
    "kicked": 4002,
    "timeout": 4003,
}


@dataclass(frozen=True, slots=True)
class _Close:
    reason: str


def _streams(raw: object) -> tuple[RemoteStream, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        RemoteStream(str(s["mid"]), str(s["identity"]), TrackKind(s["kind"]))
        for s in raw
        if isinstance(s, dict)
    )


def _error_code(exc: RequestError) -> str:
    return {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "bad_request"}.get(
        exc.status, "unavailable" if exc.status >= 500 else "bad_request"
    )


class Connection:
    """One /ws WebSocket and the participant session it speaks for."""

    def __init__(self, hub: SignalingHub, conn_id: str, ws: web.WebSocketResponse) -> None:
        self.hub = hub
        self.id = conn_id
        self.ws = ws
        self.token: AccessToken | None = None
        self.session = 0
        #: the participant's conference worker session (its peer connection)
        self.sid: str | None = None
        self.worker: WorkerHandle | None = None
        self.negotiation = Negotiation()
        self.lock = asyncio.Lock()
        #: set when the server ends the connection on purpose (no resume window then)
        self.closing: str | None = None
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue(OUTBOX_LIMIT)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def joined(self) -> bool:
        return self.token is not None

    @property
    def room(self) -> str:
        return "" if self.token is None else self.token.room

    @property
    def identity(self) -> str:
        return "" if self.token is None else self.token.identity

    # --- output -----------------------------------------------------------------------
    def send(self, msg: ServerMessage) -> None:
        """Queue a frame; a client that stopped reading is disconnected."""
        if self.closing is not None and self.closing != "left":
            return
        try:
            self._outbox.put_nowait(encode_server_message(msg))
        except asyncio.QueueFull:
            log.warning("ws %s (%s): not reading, disconnected", self.id, self.identity)
            self.close("too_slow")

    def close(self, reason: str) -> None:
        """Close after the frames queued so far (``reason`` picks the close code)."""
        if self.closing is None or self.closing == "left":
            self.closing = reason
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(_Close(reason))
        if self._outbox.full():  # no room even to say goodbye: close now
            self.spawn(self.ws.close(code=CLOSE_CODES.get(reason, 1000), message=reason.encode()))

    async def write_loop(self) -> None:
        try:
            while True:
                item = await self._outbox.get()
                if isinstance(item, _Close):
                    code = CLOSE_CODES.get(item.reason, 1000)
                    await self.ws.close(code=code, message=item.reason.encode())
                    return
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):  # the peer went away mid-send
            return

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def error(self, request_id: RequestId | None, code: str, message: str) -> None:
        self.send(ErrorMsg(request_id, code, message))

    # --- input ------------------------------------------------------------------------
    async def on_frame(self, data: str | bytes) -> None:
        try:
            msg = parse_client_message(data)
        except SignalingError as exc:
            self.send(exc.reply())
            return
        try:
            await self._dispatch(msg)
        except RequestError as exc:
            self.error(msg.request_id, _error_code(exc), exc.message)
        except TimeoutError:
            self.error(msg.request_id, "unavailable", "the media worker did not answer in time")
        except Exception:  # a bug costs this request, not the connection
            log.exception("ws %s: %s failed", self.id, type(msg).__name__)
            self.error(msg.request_id, "internal_error", "the server failed on this request")

    async def _dispatch(self, msg: ClientMessage) -> None:
        match msg:
            case PingMsg(request_id=rid, ts=ts):
                self.send(PongMsg(rid, ts))
                return
            case JoinMsg():
                await self._join(msg)
                return
        if self.token is None:
            self.error(msg.request_id, "bad_request", "send join first")
            return
        match msg:
            case OfferMsg():
                await self._client_offer(msg)
            case AnswerMsg():
                await self._client_answer(msg)
            case CandidateMsg(request_id=rid):
                # The server is ICE-lite: its one candidate is in its SDP, and it needs
                # none of the client's (the client's checks reveal its address).
                if rid is not None:
                    self.send(AckMsg(rid))
            case _:
                await self._room_request(msg)

    async def _join(self, msg: JoinMsg) -> None:
        hub = self.hub
        plane = hub.plane
        if self.token is not None:
            self.error(msg.request_id, "bad_request", "already joined")
            return
        try:
            token = verify_token(plane.secret, msg.token)
        except TokenError as exc:
            self.error(msg.request_id, "unauthorized", str(exc))
            return
        if token.room == ADMIN_ROOM:
            self.error(msg.request_id, "bad_request", f"room {ADMIN_ROOM!r} is for admin tokens")
            return
        now = plane.stage.clock()
        if msg.resume is None:
            result = plane.rooms.signaling_join(token, self.id, now)
        else:
            result = plane.rooms.signaling_resume(token, msg.resume, self.id, now)
        if isinstance(result, Refusal):
            self.error(msg.request_id, result.code.value, result.message)
            return
        accepted, outcome = result
        key = (token.room, token.identity)
        older = hub.by_member.get(key)
        if older is not None and older is not self:
            older.closing = "replaced" if msg.resume is None else "resumed"
            older.close("replaced")
        hub.by_member[key] = self
        self.token = token
        self.session = accepted.session
        if accepted.resumed:
            self.sid = plane.rooms.conference_sid(token.room, token.identity)
            record = plane.sessions.get(self.sid) if self.sid is not None else None
            self.worker = None if record is None else record.worker
            if self.sid is not None and self.worker is None:
                self.sid = None
            self.negotiation.reset()  # the client may have missed the last offer
        stage = plane.rooms.stage(token.room)
        assert stage is not None
        self.send(
            JoinedMsg(
                msg.request_id,
                token.identity,
                accepted.session,
                accepted.role,
                accepted.resumed,
                stage.snapshot(),
            )
        )
        log.info(
            "ws %s: %s %s room %s as %s",
            self.id,
            token.identity,
            "resumed" if accepted.resumed else "joined",
            token.room,
            accepted.role.value,
        )
        await plane.stage.apply(outcome)
        if accepted.resumed and self.sid is not None:
            self.renegotiate()

    async def _room_request(self, msg: ClientMessage) -> None:
        plane = self.hub.plane
        request = room_request(msg, self.session)
        if request is None:  # every message type is routed above or here
            self.error(msg.request_id, "bad_request", "not a room request")
            return
        out = plane.rooms.signaling_request(self.room, self.identity, request, plane.stage.clock())
        if isinstance(out, Refusal):
            self.error(msg.request_id, out.code.value, out.message)
            return
        if isinstance(msg, LeaveMsg):
            self.closing = "left"
        if msg.request_id is not None:
            self.send(AckMsg(msg.request_id))
        await plane.stage.apply(out)

    # --- offer / answer ---------------------------------------------------------------
    def may_publish(self) -> bool:
        stage = self.hub.plane.rooms.stage(self.room)
        role = stage.role_of(self.identity) if stage is not None else None
        return role is not None and Action.PUBLISH in PERMISSIONS[role]

    async def _client_offer(self, msg: OfferMsg) -> None:
        plane = self.hub.plane
        assert self.token is not None
        async with self.lock:
            self.negotiation.client_offer()  # glare: the worker drops its proposal itself
            args: dict[str, Any] = {
                "room": self.room,
                "identity": self.identity,
                "offer": msg.sdp,
                "may_publish": self.may_publish(),
            }
            if self.sid is not None and self.worker is not None:
                worker = self.worker
                try:
                    result = await plane.pool.call(worker, "conference_offer", sid=self.sid, **args)
                except RequestError as exc:
                    if exc.status != 404:
                        raise
                    self.sid = self.worker = None  # the peer connection ended: start a new one
            if self.sid is None or self.worker is None:
                refusal = plane.rooms.admit(self.token, CONFERENCE)
                if refusal is not None:
                    self.error(msg.request_id, refusal.code.value, refusal.message)
                    return
                worker = plane.pool.place(self.room)
                result = await plane.pool.call(worker, "conference_offer", **args)
            if result["created"] and not await self._started(result["sid"], worker):
                self.error(msg.request_id, "forbidden", "the room changed; join again")
                return
            self.send(
                ServerAnswerMsg(msg.request_id, result["answer"], _streams(result["streams"]))
            )
        # the worker's negotiation_needed may have come before this connection knew the
        # session: look once anyway (the worker answers None when there is nothing to offer)
        self.want_offer()

    async def _started(self, sid: str, worker: WorkerHandle) -> bool:
        """Follow a new conference session in the registry (and the plane's sessions)."""
        from interlive.server.app import SessionRecord

        plane = self.hub.plane
        assert self.token is not None
        if sid in plane.ended_early:  # replaced at once by a racing offer
            del plane.ended_early[sid]
            return False
        joined = plane.rooms.session_started(self.token, CONFERENCE, sid, (), plane.stage.clock())
        if isinstance(joined, Refusal):
            with contextlib.suppress(RequestError, TimeoutError):
                await plane.pool.call(worker, "delete_session", sid=sid)
            return False
        plane.sessions[sid] = SessionRecord(sid, self.room, self.identity, CONFERENCE, worker, "")
        self.sid, self.worker = sid, worker
        self.negotiation = Negotiation()
        await plane.stage.apply(joined)
        return True

    async def _client_answer(self, msg: AnswerMsg) -> None:
        plane = self.hub.plane
        async with self.lock:
            if (
                self.sid is None
                or self.worker is None
                or not self.negotiation.answer(msg.request_id)
            ):
                self.error(
                    msg.request_id,
                    "bad_request",
                    f"no server offer {msg.request_id!r} is outstanding (answer it with its id)",
                )
                return
            try:
                await plane.pool.call(
                    self.worker, "conference_answer", sid=self.sid, answer=msg.sdp
                )
            except (RequestError, TimeoutError):
                self.negotiation.abandon()
                with contextlib.suppress(RequestError, TimeoutError):
                    await plane.pool.call(self.worker, "conference_rollback", sid=self.sid)
                raise
            if msg.request_id is not None:
                self.send(AckMsg(msg.request_id))
        if self.negotiation.offer_due:
            self.renegotiate()

    def want_offer(self) -> None:
        """The stage changed for this participant: offer when the connection is stable."""
        if self.negotiation.want_offer():
            self.renegotiate()

    def renegotiate(self) -> None:
        self.spawn(self._renegotiate())

    async def _renegotiate(self) -> None:
        plane = self.hub.plane
        async with self.lock:
            if not self.negotiation.offer_due or self.closing is not None:
                return
            if self.sid is None or self.worker is None:
                self.negotiation.nothing_to_offer()
                return
            try:
                result = await plane.pool.call(
                    self.worker,
                    "conference_reoffer",
                    sid=self.sid,
                    may_publish=self.may_publish(),
                )
            except (RequestError, TimeoutError) as exc:
                log.warning("ws %s: re-offer failed: %s", self.id, exc)
                self.negotiation.nothing_to_offer()
                return
            if result["offer"] is None:
                self.negotiation.nothing_to_offer()
                return
            offer_id = self.negotiation.offer_made()
            self.send(ServerOfferMsg(result["offer"], offer_id, _streams(result["streams"])))


class SignalingHub:
    """Every /ws connection of the control process.  See the module docstring."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.connections: dict[str, Connection] = {}
        #: the connection speaking for each (room, identity)
        self.by_member: dict[tuple[str, str], Connection] = {}
        self.quality = QualityTracker()
        self._ids = itertools.count(1)
        self._quality_task: asyncio.Task[None] | None = None
        plane.stage.listeners.append(self.on_room_event)
        plane.pool.listeners.append(self.on_worker_event)

    # --- the endpoint -----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        conn = Connection(self, f"ws-{next(self._ids)}", ws)
        self.connections[conn.id] = conn
        self._start_quality()
        writer = asyncio.get_running_loop().create_task(conn.write_loop())
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await conn.on_frame(message.data)
                elif message.type is WSMsgType.BINARY:
                    conn.error(None, "bad_request", "a message must be a text frame")
                elif message.type is WSMsgType.ERROR:
                    break
                if conn.closing is not None and conn.closing != "left":
                    break
                if conn.closing == "left":
                    conn.close("left")
                    break
        finally:
            self._closed(conn)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
            writer.cancel()
            await conn.stop_tasks()
            if not ws.closed:
                await ws.close()
        return ws

    def _closed(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        if not conn.joined:
            conn.close("left")
            return
        key = (conn.room, conn.identity)
        if self.by_member.get(key) is conn:
            del self.by_member[key]
            if conn.closing is None:  # dropped: the resume window starts
                plane = self.plane
                outcome = plane.rooms.signaling_lost(
                    conn.room, conn.identity, conn.id, plane.stage.clock()
                )
                plane.stage.dispatch(outcome)
        if conn.closing is None:
            conn.closing = "dropped"
        conn.close(conn.closing)

    async def shutdown(self, app: web.Application | None = None) -> None:
        """Close every connection (server shutdown): clients may resume on a new server."""
        if self._quality_task is not None:
            self._quality_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._quality_task
            self._quality_task = None
        for conn in list(self.connections.values()):
            conn.closing = "shutdown"
            with contextlib.suppress(Exception):
                await conn.ws.close(code=CLOSE_CODES["shutdown"], message=b"shutdown")

    # --- events -----------------------------------------------------------------------
    def room_connections(self, room: str) -> list[Connection]:
        return [c for c in self.connections.values() if c.joined and c.room == room]

    def on_room_event(self, room: str, event: Event) -> None:
        """Every room event to every connection of the room; then what it means for them."""
        if type(event) in EVENT_TYPES:
            for conn in self.room_connections(room):
                conn.send(event)
        if isinstance(event, ParticipantLeft):
            self.quality.forget(event.identity)
            gone = self.by_member.pop((room, event.identity), None)
            if gone is not None:
                gone.close(event.reason.value)
        elif isinstance(event, RoleChanged):
            changed = self.by_member.get((room, event.identity))
            if changed is not None:  # its right to publish changed: its receiving lines follow
                changed.want_offer()

    def on_worker_event(self, event: Any) -> None:
        if event.kind == "negotiation_needed":
            conn = self._by_sid(event.data.get("sid"))
            if conn is not None:
                conn.want_offer()
        elif event.kind == "active_speaker":
            room, identity = event.data.get("room"), event.data.get("identity")
            if isinstance(room, str) and (identity is None or isinstance(identity, str)):
                self.plane.stage.dispatch(Outcome(room, (ActiveSpeakerChanged(identity),)))
        elif event.kind == "session_ended":
            conn = self._by_sid(event.data.get("sid"))
            if conn is not None:  # its peer connection ended: a new offer starts another
                conn.sid = conn.worker = None
                conn.negotiation = Negotiation()

    def _by_sid(self, sid: object) -> Connection | None:
        if not isinstance(sid, str):
            return None
        return next((c for c in self.by_member.values() if c.sid == sid), None)

    # --- connection quality -------------------------------------------------------------
    def _start_quality(self) -> None:
        if self._quality_task is None or self._quality_task.done():
            self._quality_task = asyncio.get_running_loop().create_task(self._sample_quality())

    async def _sample_quality(self) -> None:
        while self.connections:
            await asyncio.sleep(QUALITY_INTERVAL)
            try:
                await self.sample_quality()
            except Exception:  # never let a bad sample stop the sampling
                log.exception("connection quality sampling failed")

    async def sample_quality(self) -> None:
        """Sample every participant of every room with a /ws connection once."""
        plane = self.plane
        rooms = {c.room for c in self.connections.values() if c.joined}
        groups: dict[tuple[str, str], list[Any]] = {}
        for record in list(plane.sessions.values()):
            if record.room in rooms:
                groups.setdefault((record.room, record.identity), []).append(record)
        for (room, identity), records in groups.items():
            stats = []
            for record in records:
                with contextlib.suppress(RequestError, TimeoutError):
                    stats.append(
                        await plane.pool.call(record.worker, "session_stats", sid=record.sid)
                    )
            if not stats:
                continue
            changed = self.quality.observe(identity, sample_from_stats(stats))
            if changed is not None:
                plane.stage.dispatch(Outcome(room, (changed,)))


def register(app: web.Application, plane: ControlPlane) -> SignalingHub:
    """Add ``GET /ws`` to ``app``; its connections close when the app shuts down."""
    hub = SignalingHub(plane)
    app[SIGNALING] = hub
    app.router.add_get("/ws", hub.handle)
    app.on_shutdown.append(hub.shutdown)
    return hub
