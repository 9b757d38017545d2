"""Development-only routes, registered by ``interlive serve --dev`` and never otherwise.

``GET /dev/token?room=R&identity=I&role=host|cohost|audience[&ttl=S]`` mints a
token signed with the server's secret, the same as ``interlive token`` on the
server's machine, so the web app can be tried from a browser alone
(``/static/dev.html``). Without ``--dev`` the route does not exist (404): no
token is ever minted over HTTP on a normal server.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from interlive.auth import DEFAULT_TTL, Role, mint_token
from interlive.server.errors import HttpError
from interlive.server.keys import PLANE

__all__ = ["register"]

MAX_NAME: Final = 128
MAX_TTL: Final = 24 * 3600


def _name(request: web.Request, field: str) -> str:
    value = request.query.get(field, "").strip()
    if not value or len(value) > MAX_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise HttpError(400, "bad_request", f"{field}: 1..{MAX_NAME} printable characters")
    return value


async def dev_token(request: web.Request) -> web.Response:
    room = _name(request, "room")
    identity = _name(request, "identity")
    try:
        role = Role(request.query.get("role", Role.HOST.value))
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise HttpError(400, "bad_request", f"role: one of {allowed}") from exc
    try:
        ttl = int(request.query.get("ttl", str(DEFAULT_TTL)))
    except ValueError as exc:
        raise HttpError(400, "bad_request", "ttl: an integer number of seconds") from exc
    if not 1 <= ttl <= MAX_TTL:
        raise HttpError(400, "bad_request", f"ttl: 1..{MAX_TTL} seconds")
    if room == "*":
        raise HttpError(400, "bad_request", "room: admin tokens are not minted over HTTP")
    secret: str = request.app[PLANE].secret
    token = mint_token(secret, room=room, identity=identity, role=role, ttl=ttl)
    return web.json_response(
        {"token": token, "room": room, "identity": identity, "role": role.value, "ttl": ttl},
        headers={"Cache-Control": "no-store"},
    )


def register(app: web.Application) -> None:
    """Add the development routes (call only when ``config.dev``)."""
    app.router.add_get("/dev/token", dev_token)
