"""The control process's rooms: one :class:`~interlive.stage.room.StageRoom` per room name.

:class:`RoomRegistry` is sans-IO: it is told that a WHIP or WHEP session started
or ended (with ``now``), or handed the requests of a REST call, and returns an
:class:`Outcome`: the events for listeners (webhooks, later signaling) and the
:class:`SfuAction` values the media worker hosting the room must apply.
:class:`RoomService` is the asyncio adapter: it sends those actions through the
worker pool, hands the events to its listeners and arms one timer for the
rooms' next deadline.

Theory of operation
-------------------
*Participants are identities.*  A room is created by its first participant and
removed when its last one leaves (``RoomStarted`` / ``RoomFinished``).  A WHIP
(publish) or WHEP (subscribe) session is a *transport* of its identity's
participant: the first transport joins the room with the session's token
(``Join``); more transports of the same identity join nothing, they attach to the
participant (a co-host may publish over WHIP and watch over WHEP at once).  The
media worker replaces a session of the same identity *and direction* (its
``session_ended`` event, reason ``replaced``, arrives before the new session's
reply); the registry follows: if that was the participant's last transport it
becomes ``reconnecting`` (``ConnectionLost``) and the new session resumes it
(``Resume``), so role, join time and raised hand survive.  Any other end of the
last transport (DELETE, ICE consent lost, worker exit, DTLS failure) leaves the
room.  A participant left ``reconnecting`` (the new session never came) is
removed by the room's resume-window timer.

*The room decides.*  Admission (:meth:`RoomRegistry.admit`) asks the room's
*current* role of the identity if it is present, else the token's role and
grants: an audience member promoted by a host publishes over WHIP with its
unchanged audience token.  A WHIP session's m-lines become the participant's
tracks, ``whip:<mid>``, published when the session starts.

*Effects on the SFU* (keyed by identity, so they hold for every session of the
participant, present and future):

==================================  ============================================
room output                         SFU action
==================================  ============================================
``Disconnect`` (kick)               :class:`EndSessions` of its transports
``StopPublishing`` (demotion)       :class:`StopMedia`: its tracks stop being
                                    forwarded, its sessions stay connected
``AllowPublishing`` after a demote  :class:`ResumeMedia`, and its WHIP tracks
                                    are published in the room again
``TrackMuted``                      :class:`MuteMedia` for the track's kind
participant left, held or muted     :class:`ForgetMedia`
==================================  ============================================

*All or nothing.*  A REST call may carry several requests (mute audio, unmute
video); they are tried on a copy of the room first, so a refusal of any of them
leaves the room unchanged.

*Signaling participants* (``/ws``, ``server/signaling_ws.py``).  A WebSocket
``join`` enters the room before any media (:meth:`RoomRegistry.signaling_join`);
the connection is the participant's anchor (``_Member.signaling``), and its one
peer connection is a worker session of mode ``conference``, a transport like the
others but not one that keeps the participant in the room: the media may fail
and be offered again while the connection stays.  The tracks the client
announces (``publish``) belong to that peer connection: they are unlisted when
it ends, listed again on re-promotion after a demotion, like a WHIP session's.
The connection dropping (:meth:`RoomRegistry.signaling_lost`) makes the
participant ``reconnecting`` if nothing else of it is connected; a ``join`` with
``resume`` within the window (:meth:`RoomRegistry.signaling_resume`) takes it
back with role, hand, tracks and the same peer connection.  A second ``join`` of
the identity replaces the older connection: its peer connection ends, WHIP and
WHEP sessions of the identity carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from interlive.auth import AccessToken, Role
from interlive.server.workers import WorkerHandle, WorkerPool
from interlive.stage.model import (
    ADMIN_ACTIONS,
    PERMISSIONS,
    RESUME_WINDOW,
    Action,
    AllowPublishing,
    ConnectionLost,
    Disconnect,
    Event,
    Join,
    Leave,
    Output,
    ParticipantLeft,
    Publish,
    Refusal,
    RefusalCode,
    Request,
    Resume,
    SessionAccepted,
    StopPublishing,
    TrackKind,
    TrackMuted,
    Unpublish,
)
from interlive.stage.room import StageRoom
from interlive.worker.channel import RequestError

__all__ = [
    "ADMIN_ROOM",
    "EndSessions",
    "ForgetMedia",
    "LiveOutputState",
    "LiveStarted",
    "LiveStopped",
    "Mode",
    "MuteMedia",
    "Outcome",
    "ResumeMedia",
    "RoomFinished",
    "RoomRegistry",
    "RoomService",
    "RoomStarted",
    "SfuAction",
    "StopMedia",
    "allowed_actions",
    "scoped_token",
]

log = logging.getLogger(__name__)

#: The room an *admin* token names: a host token for room ``"*"`` administers every
#: room over REST.  No participant can join a room of that name.
ADMIN_ROOM: Final = "*"

Mode = Literal["publish", "subscribe", "conference"]

#: the mode of a signaling participant's peer connection (worker/conference.py)
CONFERENCE: Final = "conference"

#: prefix of the track ids of a WHIP session's m-lines
WHIP_TRACK_PREFIX: Final = "whip:"


# --- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomStarted(Event):
    room: str
    at: float


@dataclass(frozen=True, slots=True)
class RoomFinished(Event):
    room: str
    at: float


@dataclass(frozen=True, slots=True)
class LiveStarted(Event):
    """A bypass-live job of the room started (server/live_api.py)."""

    job_id: str
    outputs: int


@dataclass(frozen=True, slots=True)
class LiveStopped(Event):
    """It stopped: ``deleted``, ``stop_live``, ``mixer_exited`` or ``shutdown``."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class LiveOutputState(Event):
    """One RTMP output went ``connected``, ``reconnecting`` or ``failed``."""

    job_id: str
    url: str
    state: str
    reconnects: int


@dataclass(frozen=True, slots=True)
class SfuAction:
    """Base of what the media worker hosting the room must apply."""


@dataclass(frozen=True, slots=True)
class EndSessions(SfuAction):
    sids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class StopMedia(SfuAction):
    identity: str


@dataclass(frozen=True, slots=True)
class ResumeMedia(SfuAction):
    identity: str


@dataclass(frozen=True, slots=True)
class MuteMedia(SfuAction):
    identity: str
    kind: TrackKind
    muted: bool


@dataclass(frozen=True, slots=True)
class ForgetMedia(SfuAction):
    identity: str


@dataclass(frozen=True, slots=True)
class Outcome:
    room: str
    events: tuple[Event, ...] = ()
    actions: tuple[SfuAction, ...] = ()


# --- permissions --------------------------------------------------------------------------


def scoped_token(token: AccessToken, room: str) -> AccessToken | None:
    """``token`` as it acts in ``room``: itself, an admin token narrowed to it, or None."""
    if token.room == room and room != ADMIN_ROOM:
        return token
    if token.room == ADMIN_ROOM and token.grants.admin:
        return replace(token, room=room)
    return None


def allowed_actions(token: AccessToken, stage: StageRoom | None) -> frozenset[Action]:
    """What a REST caller holding ``token`` (scoped to the room) may do there.

    The room's current role if the identity is present, else the token's role and
    its ``admin`` grant: the same rule :class:`StageRoom` applies to ``ByToken``.
    """
    role = stage.role_of(token.identity) if stage is not None else None
    if role is not None:
        return PERMISSIONS[role]
    return PERMISSIONS[token.role] | (ADMIN_ACTIONS if token.grants.admin else frozenset())


# --- the registry -------------------------------------------------------------------------


@dataclass(slots=True)
class _Transport:
    sid: str
    mode: Mode
    #: track id -> kind: the m-lines a WHIP session publishes on
    tracks: dict[str, TrackKind] = field(default_factory=dict)


@dataclass(slots=True)
class _Member:
    identity: str
    session: int
    transports: dict[str, _Transport] = field(default_factory=dict)  # by mode
    reconnecting: bool = False
    #: demoted while publishing: the worker holds its tracks until promoted again
    held: bool = False
    #: kinds whose tracks were muted: new tracks of the kind start muted
    muted: set[TrackKind] = field(default_factory=set)
    #: the /ws connection that speaks for it, if any
    signaling: str | None = None
    #: tracks its client announced over signaling (on its conference peer connection)
    announced: dict[str, TrackKind] = field(default_factory=dict)


@dataclass(slots=True)
class _Room:
    stage: StageRoom
    created_at: float
    members: dict[str, _Member] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TransportInfo:
    sid: str
    mode: Mode


class RoomRegistry:
    """Every room of this node and the sessions of its participants.  See the module doc."""

    def __init__(self, *, max_publishers: int = 16, resume_window: float = RESUME_WINDOW) -> None:
        self.max_publishers = max_publishers
        self.resume_window = resume_window
        self._rooms: dict[str, _Room] = {}
        self._sids: dict[str, tuple[str, str]] = {}  # sid -> (room, identity)

    # --- queries -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._rooms)

    def stage(self, room: str) -> StageRoom | None:
        entry = self._rooms.get(room)
        return None if entry is None else entry.stage

    def created_at(self, room: str) -> float | None:
        entry = self._rooms.get(room)
        return None if entry is None else entry.created_at

    def transports(self, room: str, identity: str) -> tuple[TransportInfo, ...]:
        entry = self._rooms.get(room)
        member = entry.members.get(identity) if entry is not None else None
        if member is None:
            return ()
        return tuple(TransportInfo(t.sid, t.mode) for t in member.transports.values())

    def locate(self, sid: str) -> tuple[str, str] | None:
        """(room, identity) of a session the registry follows."""
        return self._sids.get(sid)

    def __len__(self) -> int:
        return len(self._rooms)

    # --- sessions ------------------------------------------------------------------------
    def _room_for(self, name: str, now: float) -> tuple[_Room, bool]:
        """The room ``name``, or a new one (not registered until someone is in it)."""
        entry = self._rooms.get(name)
        if entry is not None:
            return entry, False
        stage = StageRoom(
            name, max_publishers=self.max_publishers, resume_window=self.resume_window
        )
        return _Room(stage, now), True

    def admit(self, token: AccessToken, mode: Mode) -> Refusal | None:
        """Whether a WHIP (``publish``) or WHEP (``subscribe``) session may start; no change."""
        if token.room == ADMIN_ROOM:
            return Refusal(RefusalCode.BAD_REQUEST, f"room {ADMIN_ROOM!r} is for admin tokens")
        entry = self._rooms.get(token.room)
        action, verb = (
            (Action.PUBLISH, "publish") if mode == "publish" else (Action.SUBSCRIBE, "subscribe")
        )
        role = entry.stage.role_of(token.identity) if entry is not None else None
        if role is not None:  # the room's live state is authoritative
            if action not in PERMISSIONS[role]:
                return Refusal(
                    RefusalCode.FORBIDDEN,
                    f"{token.identity!r} is {role.value} in room {token.room!r} and may not {verb}",
                )
            return None
        granted = token.grants.publish if mode == "publish" else token.grants.subscribe
        if action not in PERMISSIONS[token.role] or not granted:
            return Refusal(RefusalCode.FORBIDDEN, f"role {token.role.value!r} may not {verb}")
        # StageRoom refuses a co-host's join when the stage is full: say so before any SDP work
        if (
            entry is not None
            and token.role is Role.COHOST
            and entry.stage.publisher_count >= entry.stage.max_publishers
        ):
            return Refusal(
                RefusalCode.STAGE_FULL,
                f"the stage is full ({entry.stage.max_publishers} publishers)",
            )
        return None

    def session_started(
        self,
        token: AccessToken,
        mode: Mode,
        sid: str,
        tracks: Iterable[tuple[str, str]],
        now: float,
    ) -> Refusal | Outcome:
        """A worker created session ``sid`` for ``token``; ``tracks`` are its (mid, kind).

        A refusal (the room changed while the worker answered) means the caller
        must end that session; nothing changed here.
        """
        refusal = self.admit(token, mode)
        if refusal is not None:
            return refusal
        name, identity = token.room, token.identity
        entry, created = self._room_for(name, now)
        events: list[Event] = []
        actions: list[SfuAction] = []
        member = entry.members.get(identity)
        if member is None:
            out = entry.stage.handle(Join(token), now)
            if isinstance(out, Refusal):
                return out
            if created:
                self._rooms[name] = entry
                events.append(RoomStarted(name, now))
            self._absorb(entry, out, events, actions, now)
            member = entry.members[identity]
        elif member.reconnecting:
            out = entry.stage.handle(Resume(token, member.session), now)
            if isinstance(out, Refusal):
                return out
            self._absorb(entry, out, events, actions, now)
        old = member.transports.pop(mode, None)
        if old is not None:  # replaced before its end was reported: it is gone all the same
            self._sids.pop(old.sid, None)
            self._unpublish(entry, member, old, now, events, actions)
            if mode == CONFERENCE:
                self._unannounce(entry, member, now, events, actions)
        transport = _Transport(sid, mode)
        if mode == "publish":
            for mid, kind in tracks:
                if kind in (TrackKind.AUDIO, TrackKind.VIDEO):
                    transport.tracks[WHIP_TRACK_PREFIX + mid] = TrackKind(kind)
        member.transports[mode] = transport
        self._sids[sid] = (name, identity)
        if transport.tracks and not member.held:
            self._publish(entry, member, transport, now, events, actions)
            # the worker's room may be new: tell it again what is muted
            actions += [MuteMedia(identity, kind, True) for kind in sorted(member.muted)]
        return Outcome(name, tuple(events), tuple(actions))

    def session_ended(self, sid: str, reason: str | None, now: float) -> Outcome | None:
        """A worker ended session ``sid``; None if the registry did not follow it."""
        where = self._sids.pop(sid, None)
        if where is None:
            return None
        name, identity = where
        entry = self._rooms[name]
        member = entry.members[identity]
        transport = next(t for t in member.transports.values() if t.sid == sid)
        del member.transports[transport.mode]
        events: list[Event] = []
        actions: list[SfuAction] = []
        self._unpublish(entry, member, transport, now, events, actions)
        if transport.mode == CONFERENCE:  # its announced tracks cannot flow any more
            self._unannounce(entry, member, now, events, actions)
        if member.signaling is not None or (member.reconnecting and transport.mode == CONFERENCE):
            pass  # a /ws connection keeps it in the room, or its resume window runs
        elif not member.transports:
            if reason == "replaced":  # its successor resumes the participant
                member.reconnecting = True
                request: Request = ConnectionLost(member.session)
            else:
                request = Leave(member.session)
            out = entry.stage.handle(request, now)
            if not isinstance(out, Refusal):
                self._absorb(entry, out, events, actions, now)
        self._finish_if_empty(name, entry, events, now)
        return Outcome(name, tuple(events), tuple(actions))

    # --- signaling (/ws) ------------------------------------------------------------------
    def signaling_join(
        self, token: AccessToken, conn: str, now: float
    ) -> Refusal | tuple[SessionAccepted, Outcome]:
        """A ``join`` on /ws connection ``conn``: the session it speaks for, and the outcome.

        A new identity joins the room; one present only over WHIP/WHEP is joined by
        the connection (the same room session); one with a /ws connection, or
        reconnecting, is *replaced*: a new room session, the older connection's
        peer connection ended (:class:`EndSessions`), its WHIP/WHEP sessions kept.
        """
        refusal = self.admit(token, CONFERENCE)
        if refusal is not None:
            return refusal
        name, identity = token.room, token.identity
        entry, created = self._room_for(name, now)
        events: list[Event] = []
        actions: list[SfuAction] = []
        member = entry.members.get(identity)
        accepted: SessionAccepted | None = None
        if member is not None and member.signaling is None and not member.reconnecting:
            role = entry.stage.role_of(identity)
            assert role is not None
            accepted = SessionAccepted(identity, member.session, role, resumed=False)
        else:
            out = entry.stage.handle(Join(token), now)
            if isinstance(out, Refusal):
                return out
            if created:
                self._rooms[name] = entry
                events.append(RoomStarted(name, now))
            if member is not None:  # replacing: end only the old connection's peer connection
                out = [o for o in out if not isinstance(o, Disconnect)]
                conference = member.transports.pop(CONFERENCE, None)
                if conference is not None:
                    self._sids.pop(conference.sid, None)
                    actions.append(EndSessions((conference.sid,), "replaced"))
                member.announced.clear()  # the room dropped every track of the old session
            self._absorb(entry, out, events, actions, now)
            accepted = next(o for o in out if isinstance(o, SessionAccepted))
            member = entry.members[identity]
            publish = member.transports.get("publish")
            if member is not None and publish is not None and not member.held:
                self._publish(entry, member, publish, now, events, actions)
        member.signaling = conn
        member.reconnecting = False
        return accepted, Outcome(name, tuple(events), tuple(actions))

    def signaling_resume(
        self, token: AccessToken, session: int, conn: str, now: float
    ) -> Refusal | tuple[SessionAccepted, Outcome]:
        """A ``join`` with ``resume``: connection ``conn`` takes back room session ``session``."""
        if token.room == ADMIN_ROOM:
            return Refusal(RefusalCode.BAD_REQUEST, f"room {ADMIN_ROOM!r} is for admin tokens")
        entry = self._rooms.get(token.room)
        member = entry.members.get(token.identity) if entry is not None else None
        if entry is None or member is None or member.session != session:
            return Refusal(RefusalCode.NOT_FOUND, f"no session {session}; join again")
        out = entry.stage.handle(Resume(token, session), now)
        if isinstance(out, Refusal):
            return out
        events: list[Event] = []
        actions: list[SfuAction] = []
        self._absorb(entry, out, events, actions, now)
        accepted = next(o for o in out if isinstance(o, SessionAccepted))
        member.signaling = conn
        member.reconnecting = False
        return accepted, Outcome(token.room, tuple(events), tuple(actions))

    def signaling_lost(self, room: str, identity: str, conn: str, now: float) -> Outcome | None:
        """Connection ``conn`` dropped without ``leave``: the resume window starts.

        None if the connection no longer speaks for the participant (replaced,
        kicked, left).  A participant still connected over WHIP/WHEP stays
        connected; its peer connection is kept for a resume either way.
        """
        entry = self._rooms.get(room)
        member = entry.members.get(identity) if entry is not None else None
        if entry is None or member is None or member.signaling != conn:
            return None
        member.signaling = None
        events: list[Event] = []
        actions: list[SfuAction] = []
        if not any(t.mode != CONFERENCE for t in member.transports.values()):
            member.reconnecting = True
            out = entry.stage.handle(ConnectionLost(member.session), now)
            if not isinstance(out, Refusal):
                self._absorb(entry, out, events, actions, now)
        return Outcome(room, tuple(events), tuple(actions))

    def signaling_request(
        self, room: str, identity: str, request: Request, now: float
    ) -> Refusal | Outcome:
        """A room request from a /ws connection; ``publish``/``unpublish`` are remembered."""
        out = self.handle(room, [request], now)
        if isinstance(out, Refusal):
            return out
        entry = self._rooms.get(room)
        member = entry.members.get(identity) if entry is not None else None
        if member is not None:
            if isinstance(request, Publish):
                member.announced[request.track_id] = request.kind
            elif isinstance(request, Unpublish):
                member.announced.pop(request.track_id, None)
        return out

    def conference_sid(self, room: str, identity: str) -> str | None:
        """The worker session of ``identity``'s signaling peer connection, if it has one."""
        entry = self._rooms.get(room)
        member = entry.members.get(identity) if entry is not None else None
        transport = member.transports.get(CONFERENCE) if member is not None else None
        return None if transport is None else transport.sid

    def session_of(self, room: str, identity: str) -> int | None:
        """The room session number ``identity`` acts as."""
        entry = self._rooms.get(room)
        member = entry.members.get(identity) if entry is not None else None
        return None if member is None else member.session

    # --- out-of-band requests (REST) -----------------------------------------------------
    def handle(self, room: str, requests: Sequence[Request], now: float) -> Refusal | Outcome:
        """Apply ``requests`` in order, all or nothing."""
        entry = self._rooms.get(room)
        if entry is None:
            return Refusal(RefusalCode.NOT_FOUND, f"no room {room!r}")
        if len(requests) > 1:
            trial = copy.deepcopy(entry.stage)
            for request in requests:
                result = trial.handle(request, now)
                if isinstance(result, Refusal):
                    return result
        events: list[Event] = []
        actions: list[SfuAction] = []
        for request in requests:
            out = entry.stage.handle(request, now)
            if isinstance(out, Refusal):  # only the first can be: the trial passed
                return out
            self._absorb(entry, out, events, actions, now)
        self._finish_if_empty(room, entry, events, now)
        return Outcome(room, tuple(events), tuple(actions))

    # --- time ----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [d for e in self._rooms.values() if (d := e.stage.next_deadline()) is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Outcome]:
        outcomes = []
        for name, entry in list(self._rooms.items()):
            deadline = entry.stage.next_deadline()
            if deadline is None or deadline > now:
                continue
            events: list[Event] = []
            actions: list[SfuAction] = []
            self._absorb(entry, entry.stage.handle_timer(now), events, actions, now)
            self._finish_if_empty(name, entry, events, now)
            outcomes.append(Outcome(name, tuple(events), tuple(actions)))
        return outcomes

    # --- applying the room's outputs -----------------------------------------------------
    def _absorb(
        self,
        entry: _Room,
        outputs: Sequence[Output],
        events: list[Event],
        actions: list[SfuAction],
        now: float,
    ) -> None:
        """Follow the room's outputs: bookkeeping, events out, effects into SFU actions."""
        republish: list[_Member] = []
        for o in outputs:
            if isinstance(o, Event):
                events.append(o)
            if isinstance(o, SessionAccepted):
                member = entry.members.get(o.identity)
                if member is None:
                    entry.members[o.identity] = _Member(o.identity, o.session)
                else:
                    member.session, member.reconnecting = o.session, False
            elif isinstance(o, Disconnect):
                member = entry.members.get(o.identity)
                if member is not None and member.transports:
                    sids = tuple(t.sid for t in member.transports.values())
                    actions.append(EndSessions(sids, o.reason))
            elif isinstance(o, StopPublishing):
                member = entry.members.get(o.identity)
                if member is not None:
                    member.held = True
                actions.append(StopMedia(o.identity))
            elif isinstance(o, AllowPublishing):
                member = entry.members.get(o.identity)
                if member is not None and member.held:
                    member.held = False
                    actions.append(ResumeMedia(o.identity))
                    republish.append(member)
            elif isinstance(o, TrackMuted):
                member = entry.members.get(o.identity)
                kind = self._kind_of(member, o.track_id)
                if member is not None and kind is not None:
                    if o.muted:
                        member.muted.add(kind)
                    else:
                        member.muted.discard(kind)
                    action = MuteMedia(o.identity, kind, o.muted)
                    if action not in actions:
                        actions.append(action)
            elif isinstance(o, ParticipantLeft):
                member = entry.members.pop(o.identity, None)
                if member is not None:
                    for t in member.transports.values():
                        self._sids.pop(t.sid, None)
                    if member.held or member.muted:
                        actions.append(ForgetMedia(o.identity))
        for member in republish:
            transport = member.transports.get("publish")
            if transport is not None:
                self._publish(entry, member, transport, now, events, actions)
            for track_id, kind in list(member.announced.items()):
                request = Publish(member.session, track_id, kind, muted=kind in member.muted)
                out = entry.stage.handle(request, now)
                if not isinstance(out, Refusal):
                    self._absorb(entry, out, events, actions, now)

    def _publish(
        self,
        entry: _Room,
        member: _Member,
        transport: _Transport,
        now: float,
        events: list[Event],
        actions: list[SfuAction],
    ) -> None:
        for track_id, kind in transport.tracks.items():
            request = Publish(member.session, track_id, kind, muted=kind in member.muted)
            out = entry.stage.handle(request, now)
            if isinstance(out, Refusal):
                log.warning("room %s: track %s not listed: %s", entry.stage.name, track_id, out)
                continue
            self._absorb(entry, out, events, actions, now)

    def _unpublish(
        self,
        entry: _Room,
        member: _Member,
        transport: _Transport,
        now: float,
        events: list[Event],
        actions: list[SfuAction],
    ) -> None:
        for track_id in transport.tracks:
            out = entry.stage.handle(Unpublish(member.session, track_id), now)
            if not isinstance(out, Refusal):  # refused: not published (held, or never listed)
                self._absorb(entry, out, events, actions, now)

    def _unannounce(
        self,
        entry: _Room,
        member: _Member,
        now: float,
        events: list[Event],
        actions: list[SfuAction],
    ) -> None:
        for track_id in list(member.announced):
            out = entry.stage.handle(Unpublish(member.session, track_id), now)
            if not isinstance(out, Refusal):  # refused: not listed (held, or left)
                self._absorb(entry, out, events, actions, now)
        member.announced.clear()

    @staticmethod
    def _kind_of(member: _Member | None, track_id: str) -> TrackKind | None:
        if member is None:
            return None
        if track_id in member.announced:
            return member.announced[track_id]
        for transport in member.transports.values():
            kind = transport.tracks.get(track_id)
            if kind is not None:
                return kind
        return None

    def _finish_if_empty(self, name: str, entry: _Room, events: list[Event], now: float) -> None:
        if not entry.members and self._rooms.get(name) is entry:
            del self._rooms[name]
            events.append(RoomFinished(name, now))


# --- the asyncio adapter ------------------------------------------------------------------

EventListener = Callable[[str, Event], None]


class RoomService:
    """Applies the registry's outcomes: worker operations, listeners, the rooms' timer."""

    def __init__(
        self,
        registry: RoomRegistry,
        pool: WorkerPool,
        worker_of: Callable[[str], WorkerHandle | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self._worker_of = worker_of
        self.clock = clock
        #: called with (room, event) for every event, in order, synchronously
        self.listeners: list[EventListener] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, outcome: Outcome | None) -> None:
        """From synchronous code: events now, worker actions in a task."""
        if outcome is None:
            return
        self._announce(outcome)
        if outcome.actions:
            task = asyncio.get_running_loop().create_task(self._act_all(outcome))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm()

    async def apply(self, outcome: Outcome) -> None:
        """From a request handler: events now, and return once the workers applied the rest."""
        self._announce(outcome)
        await self._act_all(outcome)
        self._arm()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _announce(self, outcome: Outcome) -> None:
        for event in outcome.events:
            for listener in self.listeners:
                try:
                    listener(outcome.room, event)
                except Exception:  # a listener's bug must not stop the others
                    log.exception("room event listener failed on %s", event)

    async def _act_all(self, outcome: Outcome) -> None:
        for action in outcome.actions:
            try:
                await self._act(outcome.room, action)
            except (RequestError, TimeoutError, OSError) as exc:
                log.warning("room %s: %s not applied: %s", outcome.room, action, exc)

    async def _act(self, room: str, action: SfuAction) -> None:
        if isinstance(action, EndSessions):
            by_worker: dict[int, tuple[WorkerHandle, list[str]]] = {}
            for sid in action.sids:
                worker = self._worker_of(sid)
                if worker is not None:
                    by_worker.setdefault(worker.index, (worker, []))[1].append(sid)
            for worker, sids in by_worker.values():
                await self.pool.call(worker, "end_sessions", sids=sids, reason=action.reason)
            return
        index = self.pool.room_worker.get(room)
        if index is None:
            return  # no media for the room on any worker: nothing to stop or mute
        worker = self.pool.workers[index]
        if isinstance(action, StopMedia):
            await self.pool.call(worker, "stop_publishing", room=room, identity=action.identity)
        elif isinstance(action, ResumeMedia):
            await self.pool.call(worker, "allow_publishing", room=room, identity=action.identity)
        elif isinstance(action, MuteMedia):
            await self.pool.call(
                worker,
                "set_muted",
                room=room,
                identity=action.identity,
                kind=action.kind.value,
                muted=action.muted,
            )
        elif isinstance(action, ForgetMedia):
            await self.pool.call(worker, "forget_participant", room=room, identity=action.identity)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.registry.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        for outcome in self.registry.handle_timer(self.clock()):
            self.dispatch(outcome)
        self._arm()
