"""One room's authoritative live state: participants, roles, the raise-hand queue, the stage.

:class:`StageRoom` is a sans-IO state machine.  The adapter feeds it requests
(:mod:`interlive.stage.model`) with the current time and applies what comes back:
a :class:`~interlive.stage.model.Refusal` (send an error reply; the room did not
change) or a list of events (broadcast to the room) and effects (for the adapter
and the SFU).  Time moves only through ``now`` arguments; the adapter arms a timer
for :meth:`StageRoom.next_deadline` and calls :meth:`StageRoom.handle_timer`.

Theory of operation
-------------------
*Participants.*  One per identity.  Each join opens a *session* (a number the room
hands out); a second join of the same identity *replaces* the older session: the
old connection is closed (``Disconnect``), its tracks are unpublished, and the
participant carries on with its role, join time and raised hand.  A dropped
connection moves the participant to ``reconnecting`` (:data:`_CONNECTION`); a
:class:`~interlive.stage.model.Resume` of the same session within
:data:`~interlive.stage.model.RESUME_WINDOW` (15 s) brings it back with role,
tracks (the peer connection does an ICE restart) and hand intact; after the window
the timer removes it as if it had left.

*Roles.*  The token's role is the starting role; afterwards the room decides.
Role changes follow :data:`_ROLE_CHANGES`; asking for the role one already has is
a no-op (an empty list), and no admin action ever targets a host.  The stage (hosts
and co-hosts) is capped at ``max_publishers``: promotion, accepting a hand and a
co-host's join are refused with ``stage_full`` when it is full.  Hosts are never
refused at the door (the show cannot be locked out of its own room) but do count.
Demotion stops the participant's tracks (``StopPublishing``) and keeps it in the
room as audience.

*Raise hand.*  The queue is ordered by time raised.  Audience members raise and
lower their own hand; a host accepts (promotion) or declines.  Leaving, being
kicked, timing out or being promoted some other way takes the hand down.

*Decide, then apply.*  Every handler first checks everything that can refuse the
request, touching nothing, and only then mutates and builds the outputs, so a
refusal leaves the room exactly as it was (the tests compare snapshots).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from interlive.auth import Role
from interlive.stage.model import (
    ADMIN_ACTIONS,
    PERMISSIONS,
    RESUME_WINDOW,
    AcceptHand,
    Action,
    Actor,
    AllowPublishing,
    BySession,
    ConnectionLost,
    ConnectionState,
    ConnectionStateChanged,
    DeclineHand,
    Demote,
    Disconnect,
    HandInfo,
    HandLowered,
    HandRaised,
    Join,
    Kick,
    Leave,
    LeaveReason,
    LiveStateChanged,
    LowerHand,
    LowerReason,
    Output,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Publish,
    RaiseHand,
    Refusal,
    RefusalCode,
    Request,
    Resume,
    RoleChanged,
    RoomSnapshot,
    SessionAccepted,
    SetLive,
    SetMuted,
    StopPublishing,
    TrackInfo,
    TrackMuted,
    TrackPublished,
    TrackUnpublished,
    Unpublish,
)

__all__ = ["MAX_TRACKS_PER_PARTICIPANT", "MAX_TRACK_ID", "StageRoom"]

MAX_TRACKS_PER_PARTICIPANT: Final = 8
MAX_TRACK_ID: Final = 64

#: Connection state machine: (state, signal) → next state.  A pair not listed is a
#: no-op.  Leaving, kicking and expiry remove the participant from any state.
_CONNECTION: Final = {
    (ConnectionState.CONNECTED, "lost"): ConnectionState.RECONNECTING,
    (ConnectionState.RECONNECTING, "resume"): ConnectionState.CONNECTED,
    # A resume while still "connected": the server had not yet noticed the old
    # socket go; the adapter binds the new one and drops the stale one.
    (ConnectionState.CONNECTED, "resume"): ConnectionState.CONNECTED,
}

#: Role changes: (current role, action) → new role.  (COHOST, PROMOTE) and
#: (AUDIENCE, DEMOTE) are no-ops; a HOST is never a target.
_ROLE_CHANGES: Final = {
    (Role.AUDIENCE, Action.PROMOTE): Role.COHOST,
    (Role.AUDIENCE, Action.ACCEPT_HAND): Role.COHOST,
    (Role.COHOST, Action.DEMOTE): Role.AUDIENCE,
}

_ON_STAGE: Final = frozenset({Role.HOST, Role.COHOST})


class _Participant:
    __slots__ = ("identity", "joined_at", "lost_at", "role", "session", "state", "tracks")

    def __init__(self, identity: str, role: Role, session: int, now: float) -> None:
        self.identity = identity
        self.role = role
        self.session = session
        self.joined_at = now
        self.state = ConnectionState.CONNECTED
        self.lost_at: float | None = None
        self.tracks: dict[str, TrackInfo] = {}


def _refuse(code: RefusalCode, message: str) -> Refusal:
    return Refusal(code, message)


class StageRoom:
    """The authoritative state of one room.  See the module docstring."""

    def __init__(
        self, name: str, *, max_publishers: int = 16, resume_window: float = RESUME_WINDOW
    ) -> None:
        if not name:
            raise ValueError("room name must be non-empty")
        if max_publishers < 1:
            raise ValueError("max_publishers must be at least 1")
        self.name = name
        self.max_publishers = max_publishers
        self.resume_window = resume_window
        self.live = False
        self._participants: dict[str, _Participant] = {}
        self._sessions: dict[int, str] = {}
        self._hands: dict[str, float] = {}  # insertion order is the queue order
        self._next_session = 1
        self._handlers: dict[type[Any], Callable[[Any, float], Refusal | list[Output]]] = {
            Join: self._join,
            Resume: self._resume,
            Leave: self._leave,
            ConnectionLost: self._connection_lost,
            Publish: self._publish,
            Unpublish: self._unpublish,
            SetMuted: self._set_muted,
            RaiseHand: self._raise_hand,
            LowerHand: self._lower_hand,
            Promote: self._promote,
            AcceptHand: self._accept_hand,
            DeclineHand: self._decline_hand,
            Demote: self._demote,
            Kick: self._kick,
            SetLive: self._set_live,
        }

    # --- queries ------------------------------------------------------------------------

    def snapshot(self) -> RoomSnapshot:
        return RoomSnapshot(
            name=self.name,
            live=self.live,
            max_publishers=self.max_publishers,
            participants=tuple(
                ParticipantInfo(
                    identity=p.identity,
                    role=p.role,
                    joined_at=p.joined_at,
                    state=p.state,
                    hand_raised_at=self._hands.get(p.identity),
                    tracks=tuple(p.tracks.values()),
                )
                for p in self._participants.values()
            ),
            hands=self.hands(),
        )

    def hands(self) -> tuple[HandInfo, ...]:
        """The raise-hand queue, oldest first."""
        return tuple(HandInfo(identity, since) for identity, since in self._hands.items())

    def role_of(self, identity: str) -> Role | None:
        p = self._participants.get(identity)
        return None if p is None else p.role

    def session_of(self, identity: str) -> int | None:
        p = self._participants.get(identity)
        return None if p is None else p.session

    def may(self, identity: str, action: Action) -> bool:
        """Whether ``identity``, if present, may take ``action`` now (e.g. WHIP publish)."""
        p = self._participants.get(identity)
        return p is not None and action in PERMISSIONS[p.role]

    @property
    def publisher_count(self) -> int:
        return sum(1 for p in self._participants.values() if p.role in _ON_STAGE)

    def __len__(self) -> int:
        return len(self._participants)

    # --- input --------------------------------------------------------------------------

    def handle(self, request: Request, now: float) -> Refusal | list[Output]:
        """Apply ``request`` at time ``now``: a refusal (nothing changed) or the outputs."""
        handler = self._handlers.get(type(request))
        if handler is None:
            return _refuse(RefusalCode.BAD_REQUEST, f"unknown request {type(request).__name__}")
        return handler(request, now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` next has work: the earliest resume-window expiry."""
        deadlines = [
            p.lost_at + self.resume_window
            for p in self._participants.values()
            if p.lost_at is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Output]:
        """Remove the participants whose resume window has run out."""
        expired = [
            p
            for p in self._participants.values()
            if p.lost_at is not None and now >= p.lost_at + self.resume_window
        ]
        out: list[Output] = []
        for p in expired:
            out += self._remove(p, LeaveReason.TIMEOUT)
        return out

    # --- actors -------------------------------------------------------------------------

    def _session(self, session: int) -> Refusal | _Participant:
        identity = self._sessions.get(session)
        if identity is None:
            return _refuse(
                RefusalCode.FORBIDDEN, "not in the room (left, kicked, replaced or timed out)"
            )
        return self._participants[identity]

    def _connected(self, session: int) -> Refusal | _Participant:
        p = self._session(session)
        if isinstance(p, _Participant) and p.state is not ConnectionState.CONNECTED:
            return _refuse(RefusalCode.FORBIDDEN, "session is reconnecting; resume it first")
        return p

    def _actor(self, actor: Actor) -> Refusal | tuple[str, frozenset[Action]]:
        """Who acts and what they may do: the room's role if present, else the token's."""
        if isinstance(actor, BySession):
            p = self._connected(actor.session)
            if isinstance(p, Refusal):
                return p
            return p.identity, PERMISSIONS[p.role]
        token = actor.token
        if token.room != self.name:
            return _refuse(RefusalCode.FORBIDDEN, f"token is for room {token.room!r}")
        present = self._participants.get(token.identity)
        if present is not None:
            return token.identity, PERMISSIONS[present.role]
        allowed = PERMISSIONS[token.role] | (ADMIN_ACTIONS if token.grants.admin else frozenset())
        return token.identity, allowed

    def _admin(
        self, actor: Actor, action: Action, target: str
    ) -> Refusal | tuple[str, _Participant]:
        who = self._actor(actor)
        if isinstance(who, Refusal):
            return who
        identity, allowed = who
        if action not in allowed:
            return _refuse(RefusalCode.FORBIDDEN, f"{identity!r} may not {action.value}")
        p = self._participants.get(target)
        if p is None:
            return _refuse(RefusalCode.NOT_FOUND, f"no participant {target!r} in the room")
        if p.role is Role.HOST:
            return _refuse(RefusalCode.FORBIDDEN, f"a host ({target!r}) cannot be a target")
        return identity, p

    def _stage_full(self) -> bool:
        return self.publisher_count >= self.max_publishers

    def _full_refusal(self) -> Refusal:
        return _refuse(
            RefusalCode.STAGE_FULL, f"the stage is full ({self.max_publishers} publishers)"
        )

    # --- joining and leaving ------------------------------------------------------------

    def _join(self, req: Join, now: float) -> Refusal | list[Output]:
        token = req.token
        if token.room != self.name:
            return _refuse(RefusalCode.FORBIDDEN, f"token is for room {token.room!r}")
        if not token.identity:
            return _refuse(RefusalCode.BAD_REQUEST, "empty identity")
        p = self._participants.get(token.identity)
        if p is None and token.role is Role.COHOST and self._stage_full():
            return self._full_refusal()
        # apply
        session = self._next_session
        self._next_session += 1
        out: list[Output] = []
        if p is None:
            p = _Participant(token.identity, token.role, session, now)
            self._participants[p.identity] = p
            out.append(ParticipantJoined(p.identity, p.role, now))
        else:  # the nth join replaces the older session
            del self._sessions[p.session]
            out.append(Disconnect(p.identity, p.session, "replaced"))
            out += self._drop_tracks(p)
            p.session = session
            if p.state is not ConnectionState.CONNECTED:
                p.state, p.lost_at = ConnectionState.CONNECTED, None
                out.append(ConnectionStateChanged(p.identity, p.state))
        self._sessions[session] = p.identity
        out.append(SessionAccepted(p.identity, session, p.role, resumed=False))
        if Action.PUBLISH in PERMISSIONS[p.role]:
            out.append(AllowPublishing(p.identity))
        return out

    def _resume(self, req: Resume, now: float) -> Refusal | list[Output]:
        if req.token.room != self.name:
            return _refuse(RefusalCode.FORBIDDEN, f"token is for room {req.token.room!r}")
        identity = self._sessions.get(req.session)
        if identity is None:
            return _refuse(RefusalCode.NOT_FOUND, f"no session {req.session}; join again")
        if identity != req.token.identity:
            return _refuse(RefusalCode.FORBIDDEN, "session belongs to another identity")
        p = self._participants[identity]
        if p.lost_at is not None and now >= p.lost_at + self.resume_window:
            return _refuse(RefusalCode.NOT_FOUND, f"session {req.session} expired; join again")
        new_state = _CONNECTION[(p.state, "resume")]
        out: list[Output] = []
        if new_state is not p.state:
            out.append(ConnectionStateChanged(identity, new_state))
        p.state, p.lost_at = new_state, None
        out.append(SessionAccepted(identity, p.session, p.role, resumed=True))
        return out

    def _connection_lost(self, req: ConnectionLost, now: float) -> Refusal | list[Output]:
        p = self._session(req.session)
        if isinstance(p, Refusal):
            return p
        new_state = _CONNECTION.get((p.state, "lost"))
        if new_state is None:
            return []
        p.state, p.lost_at = new_state, now
        return [ConnectionStateChanged(p.identity, new_state)]

    def _leave(self, req: Leave, now: float) -> Refusal | list[Output]:
        p = self._session(req.session)
        if isinstance(p, Refusal):
            return p
        return self._remove(p, LeaveReason.LEFT)

    def _remove(self, p: _Participant, reason: LeaveReason) -> list[Output]:
        out: list[Output] = [Disconnect(p.identity, p.session, reason.value)]
        out += self._drop_tracks(p)
        if self._hands.pop(p.identity, None) is not None:
            out.append(HandLowered(p.identity, LowerReason.LEFT))
        del self._sessions[p.session]
        del self._participants[p.identity]
        out.append(ParticipantLeft(p.identity, reason))
        return out

    def _drop_tracks(self, p: _Participant) -> list[Output]:
        out: list[Output] = [TrackUnpublished(p.identity, t) for t in p.tracks]
        p.tracks.clear()
        return out

    # --- tracks -------------------------------------------------------------------------

    def _publish(self, req: Publish, now: float) -> Refusal | list[Output]:
        p = self._connected(req.session)
        if isinstance(p, Refusal):
            return p
        if Action.PUBLISH not in PERMISSIONS[p.role]:
            return _refuse(RefusalCode.FORBIDDEN, f"{p.role.value} may not publish")
        if not req.track_id or len(req.track_id) > MAX_TRACK_ID:
            return _refuse(RefusalCode.BAD_REQUEST, f"track_id must be 1..{MAX_TRACK_ID} chars")
        if req.track_id in p.tracks:
            return _refuse(RefusalCode.BAD_REQUEST, f"track {req.track_id!r} already published")
        if len(p.tracks) >= MAX_TRACKS_PER_PARTICIPANT:
            return _refuse(
                RefusalCode.BAD_REQUEST, f"at most {MAX_TRACKS_PER_PARTICIPANT} tracks each"
            )
        p.tracks[req.track_id] = TrackInfo(req.track_id, req.kind, req.muted)
        return [TrackPublished(p.identity, req.track_id, req.kind, req.muted)]

    def _unpublish(self, req: Unpublish, now: float) -> Refusal | list[Output]:
        p = self._connected(req.session)
        if isinstance(p, Refusal):
            return p
        if req.track_id not in p.tracks:
            return _refuse(RefusalCode.NOT_FOUND, f"no track {req.track_id!r}")
        del p.tracks[req.track_id]
        return [TrackUnpublished(p.identity, req.track_id)]

    def _set_muted(self, req: SetMuted, now: float) -> Refusal | list[Output]:
        who = self._actor(req.actor)
        if isinstance(who, Refusal):
            return who
        identity = who[0]
        target = identity if req.target is None else req.target
        if target == identity:
            p = self._participants.get(identity)
            if p is None:
                return _refuse(RefusalCode.NOT_FOUND, f"{identity!r} is not in the room")
        else:
            checked = self._admin(req.actor, Action.MUTE, target)
            if isinstance(checked, Refusal):
                return checked
            p = checked[1]
            if not req.muted:
                return _refuse(RefusalCode.FORBIDDEN, "only the participant may unmute itself")
        tracks = [
            t
            for t in p.tracks.values()
            if (req.track_id is None or t.track_id == req.track_id)
            and (req.kind is None or t.kind is req.kind)
        ]
        if not tracks:
            return _refuse(RefusalCode.NOT_FOUND, f"{target!r} has no such track")
        out: list[Output] = []
        for t in tracks:
            if t.muted != req.muted:
                p.tracks[t.track_id] = TrackInfo(t.track_id, t.kind, req.muted)
                out.append(TrackMuted(p.identity, t.track_id, req.muted, identity))
        return out

    # --- hands --------------------------------------------------------------------------

    def _raise_hand(self, req: RaiseHand, now: float) -> Refusal | list[Output]:
        p = self._connected(req.session)
        if isinstance(p, Refusal):
            return p
        if Action.RAISE_HAND not in PERMISSIONS[p.role]:
            return _refuse(RefusalCode.FORBIDDEN, f"{p.role.value} is already on stage")
        if p.identity in self._hands:
            return []
        self._hands[p.identity] = now
        return [HandRaised(p.identity, now)]

    def _lower_hand(self, req: LowerHand, now: float) -> Refusal | list[Output]:
        p = self._connected(req.session)
        if isinstance(p, Refusal):
            return p
        if Action.LOWER_HAND not in PERMISSIONS[p.role]:
            return _refuse(RefusalCode.FORBIDDEN, f"{p.role.value} has no hand to lower")
        if self._hands.pop(p.identity, None) is None:
            return []
        return [HandLowered(p.identity, LowerReason.LOWERED)]

    def _accept_hand(self, req: AcceptHand, now: float) -> Refusal | list[Output]:
        checked = self._admin(req.actor, Action.ACCEPT_HAND, req.target)
        if isinstance(checked, Refusal):
            return checked
        by, p = checked
        if p.identity not in self._hands:
            return _refuse(RefusalCode.BAD_REQUEST, f"{p.identity!r} has no raised hand")
        return self._change_role(p, Action.ACCEPT_HAND, by, LowerReason.ACCEPTED)

    def _decline_hand(self, req: DeclineHand, now: float) -> Refusal | list[Output]:
        checked = self._admin(req.actor, Action.DECLINE_HAND, req.target)
        if isinstance(checked, Refusal):
            return checked
        p = checked[1]
        if self._hands.pop(p.identity, None) is None:
            return _refuse(RefusalCode.BAD_REQUEST, f"{p.identity!r} has no raised hand")
        return [HandLowered(p.identity, LowerReason.DECLINED)]

    # --- roles --------------------------------------------------------------------------

    def _promote(self, req: Promote, now: float) -> Refusal | list[Output]:
        checked = self._admin(req.actor, Action.PROMOTE, req.target)
        if isinstance(checked, Refusal):
            return checked
        by, p = checked
        return self._change_role(p, Action.PROMOTE, by, LowerReason.PROMOTED)

    def _demote(self, req: Demote, now: float) -> Refusal | list[Output]:
        checked = self._admin(req.actor, Action.DEMOTE, req.target)
        if isinstance(checked, Refusal):
            return checked
        by, p = checked
        return self._change_role(p, Action.DEMOTE, by, LowerReason.PROMOTED)

    def _change_role(
        self, p: _Participant, action: Action, by: str, hand_reason: LowerReason
    ) -> Refusal | list[Output]:
        new = _ROLE_CHANGES.get((p.role, action))
        if new is None:
            return []  # already there
        if new in _ON_STAGE and p.role not in _ON_STAGE and self._stage_full():
            return self._full_refusal()
        old, p.role = p.role, new
        out: list[Output] = [RoleChanged(p.identity, old, new, by)]
        if Action.PUBLISH in PERMISSIONS[new]:
            if self._hands.pop(p.identity, None) is not None:
                out.append(HandLowered(p.identity, hand_reason))
            out.append(AllowPublishing(p.identity))
        else:
            out.append(StopPublishing(p.identity, tuple(p.tracks)))
            out += self._drop_tracks(p)
        return out

    def _kick(self, req: Kick, now: float) -> Refusal | list[Output]:
        checked = self._admin(req.actor, Action.KICK, req.target)
        if isinstance(checked, Refusal):
            return checked
        return self._remove(checked[1], LeaveReason.KICKED)

    # --- the live -----------------------------------------------------------------------

    def _set_live(self, req: SetLive, now: float) -> Refusal | list[Output]:
        who = self._actor(req.actor)
        if isinstance(who, Refusal):
            return who
        identity, allowed = who
        action = Action.START_LIVE if req.live else Action.STOP_LIVE
        if action not in allowed:
            return _refuse(RefusalCode.FORBIDDEN, f"{identity!r} may not {action.value}")
        if self.live == req.live:
            return []
        self.live = req.live
        return [LiveStateChanged(req.live, identity)]
