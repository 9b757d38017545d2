"""Access tokens: HS256 JWTs (RFC 7519) naming a room, an identity and a role.

Every entry point (WHIP, WHEP, signaling, RTMP, REST) verifies the same token.
The grants follow from the role unless the token says otherwise; the room's
live state may change a participant's role later (promotion), which is the
room's business, not the token's.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

ISSUER = "interlive"
SECRET_ENV = "INTERLIVE_SECRET"
SECRET_FILE = "secret"
DEFAULT_TTL = 6 * 3600


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    AUDIENCE = "audience"


@dataclass(frozen=True, slots=True)
class Grants:
    publish: bool
    subscribe: bool
    admin: bool

    @classmethod
    def for_role(cls, role: Role) -> Grants:
        return cls(
            publish=role in (Role.HOST, Role.COHOST),
            subscribe=True,
            admin=role is Role.HOST,
        )


@dataclass(frozen=True, slots=True)
class AccessToken:
    room: str
    identity: str
    role: Role
    grants: Grants
    expires_at: int


class TokenError(Exception):
    """The token is missing, malformed, badly signed or expired (HTTP 401)."""


def mint_token(
    secret: str,
    *,
    room: str,
    identity: str,
    role: Role | str,
    ttl: int = DEFAULT_TTL,
    grants: Grants | None = None,
    now: float | None = None,
) -> str:
    role = Role(role)
    if not room or not identity:
        raise ValueError("room and identity must be non-empty")
    issued = int(time.time() if now is None else now)
    g = grants or Grants.for_role(role)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": identity,
        "room": room,
        "role": role.value,
        "grants": {"publish": g.publish, "subscribe": g.subscribe, "admin": g.admin},
        "iat": issued,
        "nbf": issued - 5,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str, *, leeway: float = 5.0) -> AccessToken:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    try:
        role = Role(claims.get("role", "audience"))
        room = str(claims["room"])
        identity = str(claims["sub"])
        raw = claims.get("grants")
        base = Grants.for_role(role)
        grants = (
            Grants(
                publish=bool(raw.get("publish", base.publish)),
                subscribe=bool(raw.get("subscribe", base.subscribe)),
                admin=bool(raw.get("admin", base.admin)),
            )
            if isinstance(raw, dict)
            else base
        )
    except (KeyError, ValueError, AttributeError) as exc:
        raise TokenError(f"invalid token claims: {exc}") from exc
    return AccessToken(room, identity, role, grants, int(claims["exp"]))


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise TokenError("missing Authorization: Bearer token")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenError("Authorization must be 'Bearer <token>'")
    return value.strip()


def resolve_secret(explicit: str | None, data_dir: Path, *, create: bool) -> tuple[str, str]:
    """The server secret and where it came from: flag, environment, or the data dir.

    ``interlive serve`` creates the data-dir secret on first run (``create``);
    ``interlive token`` only reads it, so both agree with no options given.
    """
    if explicit:
        return explicit, "--secret"
    env = os.environ.get(SECRET_ENV)
    if env:
        return env, f"${SECRET_ENV}"
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip(), str(path)
    if not create:
        raise FileNotFoundError(
            f"no secret: pass --secret, set ${SECRET_ENV}, or run 'interlive serve' once "
            f"so that it creates {path}"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, f"{path} (generated)"
