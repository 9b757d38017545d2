from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from interlive.auth import (
    Grants,
    Role,
    TokenError,
    bearer_token,
    mint_token,
    resolve_secret,
    verify_token,
)

KEY = "k" * 32
OTHER = "o" * 32
S3CRET = "s" * 32


def test_round_trip_with_role_grants() -> None:
    token = mint_token(S3CRET, room="r1", identity="alice", role="cohost", now=1000, ttl=60)
    claims = jwt.decode(token, S3CRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["grants"] == {"publish": True, "subscribe": True, "admin": False}
    assert claims["exp"] == 1060 and claims["sub"] == "alice" and claims["room"] == "r1"
    fresh = mint_token(S3CRET, room="r1", identity="alice", role=Role.HOST)
    t = verify_token(S3CRET, fresh)
    assert (t.room, t.identity, t.role, t.grants) == (
        "r1",
        "alice",
        Role.HOST,
        Grants(True, True, True),
    )


def test_audience_cannot_publish() -> None:
    t = verify_token(KEY, mint_token(KEY, room="r", identity="v", role="audience"))
    assert t.grants == Grants(publish=False, subscribe=True, admin=False)


@pytest.mark.parametrize(
    "token",
    [
        mint_token(OTHER, room="r", identity="i", role="host"),
        mint_token(KEY, room="r", identity="i", role="host", now=0, ttl=10),
        "not.a.jwt",
        jwt.encode(
            {"sub": "i", "room": "r", "iss": "interlive", "exp": 2**40}, KEY * 2, algorithm="HS512"
        ),
        jwt.encode({"sub": "i", "room": "r", "exp": 2**40}, KEY, algorithm="HS256"),
        jwt.encode(
            {"sub": "i", "room": "r", "iss": "interlive", "exp": 2**40, "role": "king"},
            KEY,
            algorithm="HS256",
        ),
    ],
    ids=["wrong-secret", "expired", "garbage", "wrong-alg", "no-issuer", "bad-role"],
)
def test_rejected(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(KEY, token)


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    for bad in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(TokenError):
            bearer_token(bad)


def test_secret_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLIVE_SECRET", raising=False)
    with pytest.raises(FileNotFoundError):
        resolve_secret(None, tmp_path, create=False)
    created, source = resolve_secret(None, tmp_path, create=True)
    assert "generated" in source and (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    # `interlive token` reads what `serve` generated
    assert resolve_secret(None, tmp_path, create=False)[0] == created
    monkeypatch.setenv("INTERLIVE_SECRET", "from-env")
    assert resolve_secret(None, tmp_path, create=False) == ("from-env", "$INTERLIVE_SECRET")
    assert resolve_secret("flag", tmp_path, create=False)[0] == "flag"
