"""``GET /dev/token``: only with ``serve --dev``; validated; mints tokens the server accepts."""

from __future__ import annotations

from typing import Any

import pytest

from interlive.auth import Role, verify_token
from tests.unit.server.fakes import SECRET, running_app

QUERY = {"room": "show", "identity": "alice", "role": "host"}


async def test_without_dev_the_route_does_not_exist() -> None:
    async with running_app() as app:
        response = await app.client.get("/dev/token", params=QUERY)
        assert response.status == 404


async def test_dev_mints_a_token_for_the_room_identity_and_role() -> None:
    async with running_app(dev=True) as app:
        response = await app.client.get("/dev/token", params={**QUERY, "ttl": "60"})
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
        token = verify_token(SECRET, body["token"])
        assert (token.room, token.identity, token.role) == ("show", "alice", Role.HOST)
        assert token.grants.admin
        assert body["ttl"] == 60
        # and the server takes it: the host reads its (empty) room -> 404, not 401
        headers = {"Authorization": f"Bearer {body['token']}"}
        room = await app.client.get("/api/rooms/show", headers=headers)
        assert room.status == 404


async def test_the_role_defaults_to_host() -> None:
    async with running_app(dev=True) as app:
        response = await app.client.get("/dev/token", params={"room": "r", "identity": "a"})
        assert response.status == 200
        assert verify_token(SECRET, (await response.json())["token"]).role is Role.HOST


@pytest.mark.parametrize(
    "params",
    [
        {"identity": "alice"},
        {"room": "show"},
        {"room": "", "identity": "alice"},
        {"room": "show", "identity": "a\nb"},
        {"room": "show", "identity": "x" * 129},
        {"room": "show", "identity": "alice", "role": "admin"},
        {"room": "*", "identity": "alice"},
        {"room": "show", "identity": "alice", "ttl": "soon"},
        {"room": "show", "identity": "alice", "ttl": "0"},
        {"room": "show", "identity": "alice", "ttl": str(7 * 24 * 3600)},
    ],
)
async def test_bad_queries_are_400(params: dict[str, Any]) -> None:
    async with running_app(dev=True) as app:
        response = await app.client.get("/dev/token", params=params)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_request"
