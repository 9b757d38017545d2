"""The signaling protocol: versioned JSON messages over the WebSocket at ``/ws``.

Every message, both ways, is one JSON object (one WebSocket text frame) of at
most :data:`MAX_MESSAGE_BYTES` UTF-8 bytes::

    {"v": 1, "type": "<message type>", "id": "<request id>", ...fields}

``v`` is the protocol version (:data:`PROTOCOL_VERSION`) and is required.
``type`` names the message.  ``id`` is optional on client messages (a string of
1..64 visible ASCII characters, or an integer 0..2**53); the server echoes it in
the ``error``, ``ack``, ``answer`` and ``pong`` it sends in reply, so a client can
match replies to requests.  Client messages are validated strictly: an unknown
type or field, a missing or wrongly typed field, a value out of range or an
oversize frame is refused with a precise ``error`` reply and changes nothing.

:func:`parse_client_message` turns a frame into one of the ``*Msg`` dataclasses
below or raises :class:`SignalingError` (and nothing else);
:func:`encode_server_message` turns a server message or a room event
(:mod:`interlive.stage.model`) into a frame.  :func:`room_request` maps a parsed
client message onto the room's request.  ``docs/signaling.md`` lists every
message with an example, and the renegotiation, glare and resume rules.

A session: the client sends ``join`` with its token; the server answers
``joined`` with the room snapshot and the session number (keep it: a ``join``
with ``"resume": <session>`` within 15 s of losing the socket resumes the session
with its role).  The client then sends an ``offer`` (one peer connection, unified
plan, all its tracks) and gets an ``answer``; ICE candidates trickle both ways as
``candidate``.  When tracks appear or go (a promotion, someone joins the stage),
the server sends its own ``offer`` and the client replies with an ``answer``.
Room events arrive as their own message types (``participant_joined``,
``role_changed``, ``active_speaker`` ...).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeAlias

from interlive.auth import Role
from interlive.stage.model import (
    AcceptHand,
    ActiveSpeakerChanged,
    BySession,
    ConnectionQualityChanged,
    ConnectionStateChanged,
    DeclineHand,
    Demote,
    Event,
    HandLowered,
    HandRaised,
    Kick,
    Leave,
    LiveStateChanged,
    LowerHand,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Publish,
    RaiseHand,
    Request,
    RoleChanged,
    RoomSnapshot,
    SetLive,
    SetMuted,
    TrackKind,
    TrackMuted,
    TrackPublished,
    TrackUnpublished,
    Unpublish,
)

__all__ = [
    "CLIENT_MESSAGE_TYPES",
    "EVENT_TYPES",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "AcceptHandMsg",
    "AckMsg",
    "AnswerMsg",
    "CandidateMsg",
    "ClientMessage",
    "DeclineHandMsg",
    "DemoteMsg",
    "ErrorMsg",
    "JoinMsg",
    "JoinedMsg",
    "KickMsg",
    "LeaveMsg",
    "LowerHandMsg",
    "MuteMsg",
    "OfferMsg",
    "PingMsg",
    "PongMsg",
    "PromoteMsg",
    "PublishMsg",
    "RaiseHandMsg",
    "RemoteStream",
    "RequestId",
    "ServerAnswerMsg",
    "ServerCandidateMsg",
    "ServerMessage",
    "ServerOfferMsg",
    "SignalingError",
    "StartLiveMsg",
    "StopLiveMsg",
    "UnpublishMsg",
    "encode_server_message",
    "parse_client_message",
    "room_request",
]

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_SDP: Final = 60_000
MAX_TOKEN: Final = 4096
MAX_IDENTITY: Final = 128
MAX_TRACK_ID: Final = 64
MAX_CANDIDATE: Final = 1024
MAX_REQUEST_ID_INT: Final = 2**53

RequestId: TypeAlias = str | int


class SignalingError(Exception):
    """A client message that cannot be accepted; reply with an ``error`` and go on.

    ``code`` is ``bad_request``, ``unsupported_version`` or ``too_large``;
    ``request_id`` is the message's ``id`` when it could be read, for the reply.
    """

    def __init__(self, code: str, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    def reply(self) -> ErrorMsg:
        """The ``error`` message to send back."""
        return ErrorMsg(self.request_id, self.code, self.message)


# --- client → server ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinMsg:
    """``join``: enter the room named by ``token``; ``resume`` takes back a session."""

    request_id: RequestId | None
    token: str
    resume: int | None = None


@dataclass(frozen=True, slots=True)
class PublishMsg:
    """``publish``: announce a track (its transceiver ``mid`` or track id) and kind."""

    request_id: RequestId | None
    track_id: str
    kind: TrackKind
    muted: bool = False


@dataclass(frozen=True, slots=True)
class UnpublishMsg:
    """``unpublish``: the track ended."""

    request_id: RequestId | None
    track_id: str


@dataclass(frozen=True, slots=True)
class MuteMsg:
    """``mute``: (un)mute one's own tracks, or (host) mute another participant's.

    ``identity`` defaults to the sender; ``track_id`` and ``kind`` narrow the
    tracks (both absent: all of them).
    """

    request_id: RequestId | None
    muted: bool
    identity: str | None = None
    track_id: str | None = None
    kind: TrackKind | None = None


@dataclass(frozen=True, slots=True)
class RaiseHandMsg:
    """``raise_hand``: an audience member asks to come on stage."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class LowerHandMsg:
    """``lower_hand``: withdraw the request."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class PromoteMsg:
    """``promote`` (host): bring ``identity`` onto the stage as a co-host."""

    request_id: RequestId | None
    identity: str


@dataclass(frozen=True, slots=True)
class DemoteMsg:
    """``demote`` (host): send ``identity`` back to the audience; its tracks stop."""

    request_id: RequestId | None
    identity: str


@dataclass(frozen=True, slots=True)
class KickMsg:
    """``kick`` (host): remove ``identity`` from the room."""

    request_id: RequestId | None
    identity: str


@dataclass(frozen=True, slots=True)
class AcceptHandMsg:
    """``accept_hand`` (host): promote ``identity``, whose hand is raised."""

    request_id: RequestId | None
    identity: str


@dataclass(frozen=True, slots=True)
class DeclineHandMsg:
    """``decline_hand`` (host): lower ``identity``'s hand."""

    request_id: RequestId | None
    identity: str


@dataclass(frozen=True, slots=True)
class StartLiveMsg:
    """``start_live`` (host): start the room's bypass live."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class StopLiveMsg:
    """``stop_live`` (host): stop the room's bypass live."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class OfferMsg:
    """``offer``: the client's SDP offer (its one peer connection, unified plan)."""

    request_id: RequestId | None
    sdp: str


@dataclass(frozen=True, slots=True)
class AnswerMsg:
    """``answer``: the client's SDP answer to a server ``offer``."""

    request_id: RequestId | None
    sdp: str


@dataclass(frozen=True, slots=True)
class CandidateMsg:
    """``candidate``: a trickled ICE candidate; ``""`` means end of candidates."""

    request_id: RequestId | None
    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True, slots=True)
class LeaveMsg:
    """``leave``: end the session."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class PingMsg:
    """``ping``: keepalive; ``ts`` (any number) is echoed in the ``pong``."""

    request_id: RequestId | None
    ts: float | None = None


ClientMessage: TypeAlias = (
    JoinMsg
    | PublishMsg
    | UnpublishMsg
    | MuteMsg
    | RaiseHandMsg
    | LowerHandMsg
    | PromoteMsg
    | DemoteMsg
    | KickMsg
    | AcceptHandMsg
    | DeclineHandMsg
    | StartLiveMsg
    | StopLiveMsg
    | OfferMsg
    | AnswerMsg
    | CandidateMsg
    | LeaveMsg
    | PingMsg
)


# --- server → client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinedMsg:
    """``joined``: the session is open; ``room`` is the snapshot of the whole room."""

    request_id: RequestId | None
    identity: str
    session: int
    role: Role
    resumed: bool
    room: RoomSnapshot


@dataclass(frozen=True, slots=True)
class ErrorMsg:
    """``error``: the request ``id`` was refused (``code``: a refusal or parse code)."""

    request_id: RequestId | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class AckMsg:
    """``ack``: the request ``id`` was applied."""

    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class RemoteStream:
    """Whose track an m-line carries to the client: ``mid`` → ``identity``'s ``kind``."""

    mid: str
    identity: str
    kind: TrackKind


#: fields left out of a server frame when empty (optional additions to a message)
_OMIT_EMPTY: Final = {"omit_empty": True}


@dataclass(frozen=True, slots=True)
class ServerOfferMsg:
    """``offer``: server-initiated renegotiation (tracks appeared or went).

    ``request_id`` names the offer: the client's ``answer`` carries it back.
    ``streams`` says whose track each sending m-line carries once applied.
    """

    sdp: str
    request_id: RequestId | None = None
    streams: tuple[RemoteStream, ...] = dataclasses.field(default=(), metadata=_OMIT_EMPTY)


@dataclass(frozen=True, slots=True)
class ServerAnswerMsg:
    """``answer``: the SDP answer to the client's ``offer`` ``id`` (``streams`` as in offer)."""

    request_id: RequestId | None
    sdp: str
    streams: tuple[RemoteStream, ...] = dataclasses.field(default=(), metadata=_OMIT_EMPTY)


@dataclass(frozen=True, slots=True)
class ServerCandidateMsg:
    """``candidate``: one of the server's ICE candidates."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True, slots=True)
class PongMsg:
    """``pong``: the reply to ``ping``."""

    request_id: RequestId | None
    ts: float | None = None


ServerMessage: TypeAlias = (
    JoinedMsg
    | ErrorMsg
    | AckMsg
    | ServerOfferMsg
    | ServerAnswerMsg
    | ServerCandidateMsg
    | PongMsg
    | Event
)

#: Room events and the ``type`` they travel as.
EVENT_TYPES: Final[Mapping[type[Event], str]] = {
    ParticipantJoined: "participant_joined",
    ParticipantLeft: "participant_left",
    ConnectionStateChanged: "connection_state",
    RoleChanged: "role_changed",
    HandRaised: "hand_raised",
    HandLowered: "hand_lowered",
    TrackPublished: "track_published",
    TrackUnpublished: "track_unpublished",
    TrackMuted: "track_muted",
    ActiveSpeakerChanged: "active_speaker",
    ConnectionQualityChanged: "connection_quality",
    LiveStateChanged: "live",
}

_SERVER_TYPES: Final[Mapping[type[Any], str]] = {
    JoinedMsg: "joined",
    ErrorMsg: "error",
    AckMsg: "ack",
    ServerOfferMsg: "offer",
    ServerAnswerMsg: "answer",
    ServerCandidateMsg: "candidate",
    PongMsg: "pong",
}


# --- validation ----------------------------------------------------------------------------

_Validator: TypeAlias = Callable[[str, object], object]

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]+")
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATE_OR_NUL = re.compile(r"[\x00\ud800-\udfff]")


def _bad(message: str) -> SignalingError:
    return SignalingError("bad_request", message)


def _string(
    max_len: int,
    *,
    min_len: int = 1,
    pattern: re.Pattern[str] | None = None,
    forbidden: re.Pattern[str] | None = _CONTROL_OR_SURROGATE,
) -> _Validator:
    def check(name: str, value: object) -> object:
        if not isinstance(value, str):
            raise _bad(f"field {name!r} must be a string")
        if not min_len <= len(value) <= max_len:
            raise _bad(f"field {name!r} must be {min_len}..{max_len} characters")
        if pattern is not None and value and not pattern.fullmatch(value):
            raise _bad(f"field {name!r} has characters that are not allowed")
        if forbidden is not None and forbidden.search(value):
            raise _bad(f"field {name!r} has characters that are not allowed")
        return value

    return check


def _integer(lo: int, hi: int) -> _Validator:
    def check(name: str, value: object) -> object:
        if type(value) is not int:
            raise _bad(f"field {name!r} must be an integer")
        if not lo <= value <= hi:
            raise _bad(f"field {name!r} must be in {lo}..{hi}")
        return value

    return check


def _boolean(name: str, value: object) -> object:
    if type(value) is not bool:
        raise _bad(f"field {name!r} must be true or false")
    return value


def _number(name: str, value: object) -> object:
    if not (type(value) is int or type(value) is float) or not math.isfinite(value):
        raise _bad(f"field {name!r} must be a finite number")
    return float(value)


def _kind(name: str, value: object) -> object:
    if not isinstance(value, str) or value not in TrackKind.__members__.values():
        raise _bad(f"field {name!r} must be 'audio' or 'video'")
    return TrackKind(value)


def _nullable(inner: _Validator) -> _Validator:
    def check(name: str, value: object) -> object:
        return None if value is None else inner(name, value)

    return check


_IDENTITY = _string(MAX_IDENTITY)
_TRACK_ID = _string(MAX_TRACK_ID, pattern=_VISIBLE_ASCII)
_SDP = _string(MAX_SDP, forbidden=_SURROGATE_OR_NUL)


@dataclass(frozen=True, slots=True)
class _Field:
    validate: _Validator
    required: bool = True


#: The client schema: type → (message class, {field: spec}).  ``v``, ``type`` and
#: ``id`` are common to all and not listed.
CLIENT_MESSAGE_TYPES: Final[Mapping[str, tuple[type[Any], Mapping[str, _Field]]]] = {
    "join": (
        JoinMsg,
        {
            "token": _Field(_string(MAX_TOKEN, pattern=_TOKEN)),
            "resume": _Field(_integer(1, 2**53), required=False),
        },
    ),
    "publish": (
        PublishMsg,
        {
            "track_id": _Field(_TRACK_ID),
            "kind": _Field(_kind),
            "muted": _Field(_boolean, required=False),
        },
    ),
    "unpublish": (UnpublishMsg, {"track_id": _Field(_TRACK_ID)}),
    "mute": (
        MuteMsg,
        {
            "muted": _Field(_boolean),
            "identity": _Field(_IDENTITY, required=False),
            "track_id": _Field(_TRACK_ID, required=False),
            "kind": _Field(_kind, required=False),
        },
    ),
    "raise_hand": (RaiseHandMsg, {}),
    "lower_hand": (LowerHandMsg, {}),
    "promote": (PromoteMsg, {"identity": _Field(_IDENTITY)}),
    "demote": (DemoteMsg, {"identity": _Field(_IDENTITY)}),
    "kick": (KickMsg, {"identity": _Field(_IDENTITY)}),
    "accept_hand": (AcceptHandMsg, {"identity": _Field(_IDENTITY)}),
    "decline_hand": (DeclineHandMsg, {"identity": _Field(_IDENTITY)}),
    "start_live": (StartLiveMsg, {}),
    "stop_live": (StopLiveMsg, {}),
    "offer": (OfferMsg, {"sdp": _Field(_SDP)}),
    "answer": (AnswerMsg, {"sdp": _Field(_SDP)}),
    "candidate": (
        CandidateMsg,
        {
            "candidate": _Field(_string(MAX_CANDIDATE, min_len=0)),
            "sdp_mid": _Field(_nullable(_string(MAX_TRACK_ID, pattern=_VISIBLE_ASCII)), False),
            "sdp_mline_index": _Field(_nullable(_integer(0, 1023)), False),
        },
    ),
    "leave": (LeaveMsg, {}),
    "ping": (PingMsg, {"ts": _Field(_number, required=False)}),
}

_REQUEST_ID = _string(64, pattern=_VISIBLE_ASCII)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _bad(f"duplicate field {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> object:
    raise _bad(f"{name} is not valid JSON")


def _request_id(obj: Mapping[str, object]) -> RequestId | None:
    if "id" not in obj:
        return None
    value = obj["id"]
    if type(value) is int:
        if not 0 <= value <= MAX_REQUEST_ID_INT:
            raise _bad(f"field 'id' must be in 0..{MAX_REQUEST_ID_INT}")
        return value
    if isinstance(value, str):
        _REQUEST_ID("id", value)
        return value
    raise _bad("field 'id' must be a string or an integer")


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse and validate one client frame; raise :class:`SignalingError` if it is bad."""
    if isinstance(text, bytes | bytearray):
        size = len(text)
    elif isinstance(text, str):
        size = len(text) if len(text) > MAX_MESSAGE_BYTES else len(text.encode("utf-8", "replace"))
    else:
        raise _bad("a message must be a text frame")
    if size > MAX_MESSAGE_BYTES:
        raise SignalingError("too_large", f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except SignalingError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _bad(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _bad("a message must be a JSON object")
    request_id = None
    try:
        request_id = _request_id(obj)
        version = obj.get("v")
        if "v" not in obj:
            raise _bad("missing field 'v' (protocol version)")
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise SignalingError(
                "unsupported_version", f"protocol version must be {PROTOCOL_VERSION}"
            )
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise _bad("missing or non-string field 'type'")
        schema = CLIENT_MESSAGE_TYPES.get(kind)
        if schema is None:
            raise _bad(f"unknown message type {kind[:40]!r}")
        cls, fields = schema
        unknown = sorted(set(obj) - set(fields) - {"v", "type", "id"})
        if unknown:
            raise _bad(f"unknown field {unknown[0][:40]!r} in {kind!r}")
        kwargs: dict[str, object] = {"request_id": request_id}
        for name, spec in fields.items():
            if name not in obj:
                if spec.required:
                    raise _bad(f"missing field {name!r} in {kind!r}")
                continue
            kwargs[name] = spec.validate(name, obj[name])
        message: ClientMessage = cls(**kwargs)
        return message
    except SignalingError as exc:
        exc.request_id = request_id
        raise


# --- encoding --------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def encode_server_message(msg: ServerMessage) -> str:
    """One server frame: ``{"v": 1, "type": ..., ["id": ...,] ...fields}``."""
    kind = EVENT_TYPES.get(type(msg)) if isinstance(msg, Event) else _SERVER_TYPES.get(type(msg))
    if kind is None:
        raise TypeError(f"{type(msg).__name__} is not a server message")
    out: dict[str, object] = {"v": PROTOCOL_VERSION, "type": kind}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if f.name == "request_id":
            if value is not None:
                out["id"] = value
        elif f.metadata.get("omit_empty") and not value:
            continue
        else:
            out[f.name] = _plain(value)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- onto the room -----------------------------------------------------------------------


def room_request(msg: ClientMessage, session: int) -> Request | None:
    """The room request a message from ``session`` stands for, or ``None``.

    ``None`` for ``join`` (the adapter verifies the token and makes a
    :class:`~interlive.stage.model.Join` or :class:`~interlive.stage.model.Resume`)
    and for the media and keepalive messages (``offer``, ``answer``, ``candidate``,
    ``ping``), which the adapter handles itself.
    """
    me = BySession(session)
    match msg:
        case PublishMsg(track_id=track_id, kind=kind, muted=muted):
            return Publish(session, track_id, kind, muted)
        case UnpublishMsg(track_id=track_id):
            return Unpublish(session, track_id)
        case MuteMsg(muted=muted, identity=identity, track_id=track_id, kind=kind):
            return SetMuted(me, identity, muted, track_id, kind)
        case RaiseHandMsg():
            return RaiseHand(session)
        case LowerHandMsg():
            return LowerHand(session)
        case PromoteMsg(identity=identity):
            return Promote(me, identity)
        case DemoteMsg(identity=identity):
            return Demote(me, identity)
        case KickMsg(identity=identity):
            return Kick(me, identity)
        case AcceptHandMsg(identity=identity):
            return AcceptHand(me, identity)
        case DeclineHandMsg(identity=identity):
            return DeclineHand(me, identity)
        case StartLiveMsg():
            return SetLive(me, True)
        case StopLiveMsg():
            return SetLive(me, False)
        case LeaveMsg():
            return Leave(session)
    return None
