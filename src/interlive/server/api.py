"""REST for hosts and admins: rooms, participants, the raise-hand queue (docs/rest.md).

Every call carries ``Authorization: Bearer <token>``.  A token acts in the room it
names; an *admin token* (a host token for room ``"*"``, see
:data:`~interlive.server.rooms.ADMIN_ROOM`) acts in every room.  Reading a room
needs the host role (the room's current role if the token's identity is in it,
else the token's role or ``admin`` grant); participant actions are decided by the
room itself (:class:`~interlive.stage.room.StageRoom`), so the rules are the same
as over signaling: a host promotes, demotes, mutes and kicks, anyone mutes and
unmutes their own tracks, nobody targets a host.

Errors are ``{"error": {"code": ..., "message": ...}}``: 400 malformed, 401 no,
bad or expired token, 403 not allowed or another room, 404 unknown room or
identity, 409 stage full.  A refused request changes nothing: several changes in
one body are applied all or none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from interlive.auth import AccessToken, Role, TokenError, bearer_token, verify_token
from interlive.server.body import read_body
from interlive.server.errors import HttpError
from interlive.server.keys import PLANE
from interlive.server.rooms import (
    ADMIN_ROOM,
    RoomRegistry,
    TransportInfo,
    allowed_actions,
    scoped_token,
)
from interlive.stage.model import (
    ADMIN_ACTIONS,
    ByToken,
    Demote,
    HandInfo,
    Kick,
    ParticipantInfo,
    Promote,
    Refusal,
    Request,
    SetMuted,
    TrackKind,
)
from interlive.stage.room import StageRoom

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane

__all__ = [
    "MAX_BODY",
    "ParticipantUpdate",
    "parse_participant_update",
    "participant_json",
    "register",
    "room_json",
]

#: bytes of JSON a participant update may have
MAX_BODY: Final = 4096

_ROLES: Final = {"cohost": Role.COHOST, "audience": Role.AUDIENCE}


# --- pure parts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantUpdate:
    """A validated ``POST /api/rooms/{room}/participants/{identity}`` body."""

    role: Role | None = None
    muted: tuple[tuple[TrackKind, bool], ...] = ()

    def requests(self, token: AccessToken, target: str) -> list[Request]:
        actor = ByToken(token)
        if self.role is Role.COHOST:
            return [Promote(actor, target)]
        if self.role is Role.AUDIENCE:
            return [Demote(actor, target)]
        return [SetMuted(actor, target, muted, kind=kind) for kind, muted in self.muted]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_participant_update(body: bytes) -> ParticipantUpdate:
    """The update a body asks for; ``ValueError`` (said in the message) if malformed.

    Exactly one of ``{"role": "cohost" | "audience"}`` and
    ``{"muted": {"audio": bool, "video": bool}}`` (one kind or both).
    """
    if len(body) > MAX_BODY:
        raise ValueError(f"body over {MAX_BODY} bytes")
    try:
        data = json.loads(
            body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"body is not a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    if set(data) == {"role"}:
        role = data["role"]
        if not isinstance(role, str) or role not in _ROLES:
            raise ValueError('"role" must be "cohost" or "audience"')
        return ParticipantUpdate(role=_ROLES[role])
    if set(data) == {"muted"}:
        muted = data["muted"]
        if not isinstance(muted, dict) or not muted:
            raise ValueError('"muted" must be an object like {"audio": true}')
        kinds = []
        for kind, value in muted.items():
            if kind not in ("audio", "video") or not isinstance(value, bool):
                raise ValueError('"muted" keys are "audio" and "video", values true or false')
            kinds.append((TrackKind(kind), value))
        return ParticipantUpdate(muted=tuple(kinds))
    raise ValueError('give exactly one of "role" and "muted"')


def participant_json(
    room: str, info: ParticipantInfo, transports: Sequence[TransportInfo]
) -> dict[str, Any]:
    return {
        "identity": info.identity,
        "role": info.role.value,
        "joined_at": info.joined_at,
        "state": info.state.value,
        "hand_raised_at": info.hand_raised_at,
        "tracks": [
            {"track_id": t.track_id, "kind": t.kind.value, "muted": t.muted} for t in info.tracks
        ],
        "sessions": [_session_json(room, t) for t in transports],
    }


def _session_json(room: str, t: TransportInfo) -> dict[str, Any]:
    if t.mode == "conference":  # a signaling (/ws) peer connection: no HTTP resource
        return {"id": t.sid, "kind": "ws", "location": None}
    kind = "whip" if t.mode == "publish" else "whep"
    return {"id": t.sid, "kind": kind, "location": f"/{kind}/{room}/sessions/{t.sid}"}


def _hands_json(hands: Sequence[HandInfo]) -> list[dict[str, Any]]:
    return [{"identity": h.identity, "since": h.since} for h in hands]


def room_json(registry: RoomRegistry, name: str) -> dict[str, Any] | None:
    stage = registry.stage(name)
    if stage is None:
        return None
    snap = stage.snapshot()
    return {
        "name": name,
        "created_at": registry.created_at(name),
        "live": snap.live,
        "max_publishers": snap.max_publishers,
        "publishers": stage.publisher_count,
        "participants": [
            participant_json(name, p, registry.transports(name, p.identity))
            for p in snap.participants
        ],
        "hands": _hands_json(snap.hands),
    }


def _room_summary(registry: RoomRegistry, name: str, stage: StageRoom) -> dict[str, Any]:
    return {
        "name": name,
        "created_at": registry.created_at(name),
        "live": stage.live,
        "participants": len(stage),
        "publishers": stage.publisher_count,
        "hands": len(stage.hands()),
    }


# --- handlers -----------------------------------------------------------------------------


def _plane(request: web.Request) -> ControlPlane:
    plane: ControlPlane = request.app[PLANE]
    return plane


def _token(request: web.Request) -> AccessToken:
    try:
        return verify_token(
            _plane(request).secret, bearer_token(request.headers.get("Authorization"))
        )
    except TokenError as exc:
        raise HttpError(401, "unauthorized", str(exc)) from exc


def _scoped(token: AccessToken, room: str) -> AccessToken:
    scoped = scoped_token(token, room)
    if scoped is None:
        raise HttpError(403, "forbidden", f"token is for room {token.room!r}, not {room!r}")
    return scoped


def _administers(token: AccessToken, stage: StageRoom | None) -> bool:
    return allowed_actions(token, stage) >= ADMIN_ACTIONS


def _admin_of(request: web.Request) -> tuple[RoomRegistry, str, StageRoom]:
    """The room a host (or admin) may read; 401, 403 or 404 otherwise, in that order."""
    registry = _plane(request).rooms
    room = request.match_info["room"]
    token = _scoped(_token(request), room)
    stage = registry.stage(room)
    if not _administers(token, stage):
        raise HttpError(403, "forbidden", f"{token.identity!r} is not a host of room {room!r}")
    if stage is None:
        raise HttpError(404, "not_found", f"no room {room!r}")
    return registry, room, stage


def _refused(refusal: Refusal) -> HttpError:
    return HttpError(refusal.http_status, refusal.code.value, refusal.message)


async def list_rooms(request: web.Request) -> web.Response:
    registry = _plane(request).rooms
    token = _token(request)
    if token.room == ADMIN_ROOM:
        if not token.grants.admin:
            raise HttpError(403, "forbidden", "an admin token needs the admin grant")
        names = registry.names()
    else:
        stage = registry.stage(token.room)
        if not _administers(token, stage):
            raise HttpError(403, "forbidden", f"{token.identity!r} is not a host")
        names = [token.room] if stage is not None else []
    rooms = []
    for name in names:
        stage = registry.stage(name)
        if stage is not None:
            rooms.append(_room_summary(registry, name, stage))
    return web.json_response({"rooms": rooms})


async def get_room(request: web.Request) -> web.Response:
    registry, room, _ = _admin_of(request)
    return web.json_response(room_json(registry, room))


async def get_hands(request: web.Request) -> web.Response:
    _, _, stage = _admin_of(request)
    return web.json_response({"hands": _hands_json(stage.hands())})


def _participant(registry: RoomRegistry, room: str, identity: str) -> dict[str, Any] | None:
    stage = registry.stage(room)
    if stage is None:
        return None
    for p in stage.snapshot().participants:
        if p.identity == identity:
            return participant_json(room, p, registry.transports(room, identity))
    return None


async def get_participant(request: web.Request) -> web.Response:
    registry, room, _ = _admin_of(request)
    identity = request.match_info["identity"]
    answer = _participant(registry, room, identity)
    if answer is None:
        raise HttpError(404, "not_found", f"no participant {identity!r} in room {room!r}")
    return web.json_response(answer)


async def update_participant(request: web.Request) -> web.Response:
    plane = _plane(request)
    room = request.match_info["room"]
    identity = request.match_info["identity"]
    token = _scoped(_token(request), room)
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise HttpError(400, "bad_request", f"body over {MAX_BODY} bytes")
    body = await read_body(request, MAX_BODY)
    try:
        update = parse_participant_update(body)
    except ValueError as exc:
        raise HttpError(400, "bad_request", str(exc)) from None
    result = plane.rooms.handle(room, update.requests(token, identity), plane.stage.clock())
    if isinstance(result, Refusal):
        raise _refused(result)
    answer = _participant(plane.rooms, room, identity)  # as the change left it
    await plane.stage.apply(result)  # returns once the media worker applied it
    return web.json_response(answer)


async def kick_participant(request: web.Request) -> web.Response:
    plane = _plane(request)
    room = request.match_info["room"]
    identity = request.match_info["identity"]
    token = _scoped(_token(request), room)
    result = plane.rooms.handle(room, [Kick(ByToken(token), identity)], plane.stage.clock())
    if isinstance(result, Refusal):
        raise _refused(result)
    await plane.stage.apply(result)
    return web.Response(status=204)


def register(app: web.Application) -> None:
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get("/api/rooms/{room}", get_room)
    app.router.add_get("/api/rooms/{room}/hands", get_hands)
    app.router.add_get("/api/rooms/{room}/participants/{identity}", get_participant)
    app.router.add_post("/api/rooms/{room}/participants/{identity}", update_participant)
    app.router.add_delete("/api/rooms/{room}/participants/{identity}", kick_participant)
