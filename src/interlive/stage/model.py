"""The stage's vocabulary: actions and the role rules, requests, refusals, events, effects.

Everything here is a plain value.  :class:`~interlive.stage.room.StageRoom` takes a
*request* (what a participant, or a REST caller holding a token, asks for) and
returns either a :class:`Refusal` (nothing changed) or a list of outputs:
*events* (:class:`Event`, broadcast to the room's clients over signaling) and
*effects* (:class:`Effect`, instructions for the adapter and the SFU: which
session to close, who may publish, which tracks to stop).  Decide, then apply:
the room never touches a socket or a packet.

The rules table (:data:`PERMISSIONS`) is the single source of truth for what each
role may do; every entry point (signaling, REST, WHIP, WHEP) asks the room, so the
matrix holds everywhere.  The role a token names is only the *starting* role: once
a participant is in the room, the room's state is authoritative (a promoted
audience member publishes with its unchanged audience token).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeAlias

from interlive.auth import AccessToken, Role

__all__ = [
    "ADMIN_ACTIONS",
    "PERMISSIONS",
    "RESUME_WINDOW",
    "AcceptHand",
    "Action",
    "ActiveSpeakerChanged",
    "Actor",
    "AllowPublishing",
    "BySession",
    "ByToken",
    "ConnectionLost",
    "ConnectionQuality",
    "ConnectionQualityChanged",
    "ConnectionState",
    "ConnectionStateChanged",
    "DeclineHand",
    "Demote",
    "Disconnect",
    "Effect",
    "Event",
    "HandInfo",
    "HandLowered",
    "HandRaised",
    "Join",
    "Kick",
    "Leave",
    "LeaveReason",
    "LiveStateChanged",
    "LowerHand",
    "LowerReason",
    "Output",
    "ParticipantInfo",
    "ParticipantJoined",
    "ParticipantLeft",
    "Promote",
    "Publish",
    "RaiseHand",
    "Refusal",
    "RefusalCode",
    "Request",
    "Resume",
    "Role",
    "RoleChanged",
    "RoomSnapshot",
    "SessionAccepted",
    "SetLive",
    "SetMuted",
    "StopPublishing",
    "TrackInfo",
    "TrackKind",
    "TrackMuted",
    "TrackPublished",
    "TrackUnpublished",
    "Unpublish",
    "may",
]

#: Seconds a participant whose connection dropped keeps its session (role, tracks,
#: hand) before it leaves the room.
RESUME_WINDOW: Final = 15.0


class Action(StrEnum):
    """What a participant may be allowed to do; the columns of :data:`PERMISSIONS`."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RAISE_HAND = "raise_hand"
    LOWER_HAND = "lower_hand"
    PROMOTE = "promote"
    DEMOTE = "demote"
    MUTE = "mute"  # mute someone else's track (muting one's own needs PUBLISH)
    KICK = "kick"
    ACCEPT_HAND = "accept_hand"
    DECLINE_HAND = "decline_hand"
    START_LIVE = "start_live"
    STOP_LIVE = "stop_live"


ADMIN_ACTIONS: Final = frozenset(
    {
        Action.PROMOTE,
        Action.DEMOTE,
        Action.MUTE,
        Action.KICK,
        Action.ACCEPT_HAND,
        Action.DECLINE_HAND,
        Action.START_LIVE,
        Action.STOP_LIVE,
    }
)

#: The rules table: role → the actions it may take.  Hosts administer the room,
#: co-hosts are on stage, the audience watches and may ask to come up.
PERMISSIONS: Final = MappingProxyType(
    {
        Role.HOST: frozenset({Action.PUBLISH, Action.SUBSCRIBE}) | ADMIN_ACTIONS,
        Role.COHOST: frozenset({Action.PUBLISH, Action.SUBSCRIBE}),
        Role.AUDIENCE: frozenset({Action.SUBSCRIBE, Action.RAISE_HAND, Action.LOWER_HAND}),
    }
)


def may(role: Role, action: Action) -> bool:
    """Whether ``role`` may take ``action`` according to :data:`PERMISSIONS`."""
    return action in PERMISSIONS[role]


class TrackKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


class ConnectionQuality(StrEnum):
    """How well a participant's media flows, from loss and round-trip time."""

    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"


class LeaveReason(StrEnum):
    LEFT = "left"
    KICKED = "kicked"
    TIMEOUT = "timeout"


class LowerReason(StrEnum):
    LOWERED = "lowered"  # the member lowered it
    ACCEPTED = "accepted"
    DECLINED = "declined"
    PROMOTED = "promoted"  # promoted directly while the hand was up
    LEFT = "left"  # left, kicked or timed out


class RefusalCode(StrEnum):
    """Why a request was refused; :attr:`http_status` is what REST answers."""

    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    STAGE_FULL = "stage_full"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS: Final = {
    RefusalCode.BAD_REQUEST: 400,
    RefusalCode.FORBIDDEN: 403,
    RefusalCode.NOT_FOUND: 404,
    RefusalCode.STAGE_FULL: 409,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: nothing in the room changed."""

    code: RefusalCode
    message: str

    @property
    def http_status(self) -> int:
        return self.code.http_status


# --- who asks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BySession:
    """A participant acting over its own session (signaling, WHIP/WHEP)."""

    session: int


@dataclass(frozen=True, slots=True)
class ByToken:
    """An out-of-band caller (REST) holding a verified token for this room.

    If the token's identity is in the room, the room's current role decides;
    otherwise the token's role, or its ``admin`` grant, does.
    """

    token: AccessToken


Actor: TypeAlias = BySession | ByToken


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """Enter the room with a verified token; a second join of an identity replaces the first."""

    token: AccessToken


@dataclass(frozen=True, slots=True)
class Resume:
    """Take back a session whose connection dropped, within :data:`RESUME_WINDOW`."""

    token: AccessToken
    session: int


@dataclass(frozen=True, slots=True)
class Leave:
    session: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The adapter saw the session's WebSocket (or ICE) go away."""

    session: int


@dataclass(frozen=True, slots=True)
class Publish:
    session: int
    track_id: str
    kind: TrackKind
    muted: bool = False


@dataclass(frozen=True, slots=True)
class Unpublish:
    session: int
    track_id: str


@dataclass(frozen=True, slots=True)
class SetMuted:
    """Mute (or unmute) ``target``'s tracks matching ``track_id`` and/or ``kind``.

    Anyone who may publish mutes and unmutes their own tracks; a host may mute
    anyone else's but never unmute them (nobody turns on another person's mic).
    """

    actor: Actor
    target: str | None  # None: the actor itself
    muted: bool
    track_id: str | None = None
    kind: TrackKind | None = None


@dataclass(frozen=True, slots=True)
class RaiseHand:
    session: int


@dataclass(frozen=True, slots=True)
class LowerHand:
    session: int


@dataclass(frozen=True, slots=True)
class Promote:
    """Bring ``target`` (audience) onto the stage as a co-host."""

    actor: Actor
    target: str


@dataclass(frozen=True, slots=True)
class Demote:
    """Send ``target`` (co-host) back to the audience; its tracks stop."""

    actor: Actor
    target: str


@dataclass(frozen=True, slots=True)
class Kick:
    actor: Actor
    target: str


@dataclass(frozen=True, slots=True)
class AcceptHand:
    actor: Actor
    target: str


@dataclass(frozen=True, slots=True)
class DeclineHand:
    actor: Actor
    target: str


@dataclass(frozen=True, slots=True)
class SetLive:
    """Start (``live=True``) or stop the bypass live of the room."""

    actor: Actor
    live: bool


Request: TypeAlias = (
    Join
    | Resume
    | Leave
    | ConnectionLost
    | Publish
    | Unpublish
    | SetMuted
    | RaiseHand
    | LowerHand
    | Promote
    | Demote
    | Kick
    | AcceptHand
    | DeclineHand
    | SetLive
)


# --- events: broadcast to the room's clients --------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base of what the room's clients are told."""


@dataclass(frozen=True, slots=True)
class ParticipantJoined(Event):
    identity: str
    role: Role
    joined_at: float


@dataclass(frozen=True, slots=True)
class ParticipantLeft(Event):
    identity: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class ConnectionStateChanged(Event):
    identity: str
    state: ConnectionState


@dataclass(frozen=True, slots=True)
class RoleChanged(Event):
    identity: str
    old: Role
    new: Role
    by: str


@dataclass(frozen=True, slots=True)
class HandRaised(Event):
    identity: str
    since: float


@dataclass(frozen=True, slots=True)
class HandLowered(Event):
    identity: str
    reason: LowerReason


@dataclass(frozen=True, slots=True)
class TrackPublished(Event):
    identity: str
    track_id: str
    kind: TrackKind
    muted: bool


@dataclass(frozen=True, slots=True)
class TrackUnpublished(Event):
    identity: str
    track_id: str


@dataclass(frozen=True, slots=True)
class TrackMuted(Event):
    identity: str
    track_id: str
    muted: bool
    by: str


@dataclass(frozen=True, slots=True)
class ActiveSpeakerChanged(Event):
    """The dominant speaker, or ``None`` when the stage has been silent for a while."""

    identity: str | None


@dataclass(frozen=True, slots=True)
class ConnectionQualityChanged(Event):
    """A participant's link got better or worse (``interlive.stage.quality``)."""

    identity: str
    quality: ConnectionQuality


@dataclass(frozen=True, slots=True)
class LiveStateChanged(Event):
    live: bool
    by: str


# --- effects: for the adapter and the SFU -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """Base of what the adapter (signaling endpoint, SFU) must apply."""


@dataclass(frozen=True, slots=True)
class SessionAccepted(Effect):
    """Bind this connection to ``session``; tell the client with a ``joined`` message."""

    identity: str
    session: int
    role: Role
    resumed: bool


@dataclass(frozen=True, slots=True)
class AllowPublishing(Effect):
    """The SFU may accept media from ``identity`` (renegotiate to add send tracks)."""

    identity: str


@dataclass(frozen=True, slots=True)
class StopPublishing(Effect):
    """The SFU must stop ``identity``'s tracks now and refuse new ones."""

    identity: str
    track_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disconnect(Effect):
    """Close ``session``'s connection(s) and peer connection."""

    identity: str
    session: int
    reason: str


Output: TypeAlias = Event | Effect


# --- snapshots: the room's state as plain values ----------------------------------------


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: str
    kind: TrackKind
    muted: bool


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    identity: str
    role: Role
    joined_at: float
    state: ConnectionState
    hand_raised_at: float | None
    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class HandInfo:
    identity: str
    since: float


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """The whole room at one moment: what a ``joined`` message carries and tests compare."""

    name: str
    live: bool
    max_publishers: int
    participants: tuple[ParticipantInfo, ...]
    hands: tuple[HandInfo, ...]
