"""Helpers for the stage tests: tokens and joins without any JWT or socket."""

from __future__ import annotations

from interlive.auth import AccessToken, Grants, Role
from interlive.stage.model import Join, Output, Refusal, Request, SessionAccepted
from interlive.stage.room import StageRoom

ROOM = "r"


def token(
    identity: str, role: Role | str, *, room: str = ROOM, admin: bool | None = None
) -> AccessToken:
    role = Role(role)
    grants = Grants.for_role(role)
    if admin is not None:
        grants = Grants(grants.publish, grants.subscribe, admin)
    return AccessToken(room, identity, role, grants, expires_at=2**31)


def ok(result: Refusal | list[Output]) -> list[Output]:
    assert not isinstance(result, Refusal), result
    return result


def refused(room: StageRoom, request: Request, now: float = 0.0) -> Refusal:
    """Apply ``request``, expect a refusal and check that nothing changed."""
    before = room.snapshot()
    result = room.handle(request, now)
    assert isinstance(result, Refusal), result
    assert room.snapshot() == before
    return result


def join(room: StageRoom, identity: str, role: Role | str, now: float = 0.0) -> int:
    out = ok(room.handle(Join(token(identity, role)), now))
    accepted = [o for o in out if isinstance(o, SessionAccepted)]
    assert len(accepted) == 1
    return accepted[0].session
