"""REST, WHIP and WHEP entry points over a fake worker pool: statuses, bodies, the role matrix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from interlive.auth import Role
from interlive.server.api import ParticipantUpdate, parse_participant_update, room_json
from interlive.stage.model import TrackKind
from interlive.worker.channel import Event
from tests.unit.server.fakes import App, bearer, running_app, token

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

# --- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "update"),
    [
        (b'{"role": "cohost"}', ParticipantUpdate(role=Role.COHOST)),
        (b'{"role": "audience"}', ParticipantUpdate(role=Role.AUDIENCE)),
        (b'{"muted": {"audio": true}}', ParticipantUpdate(muted=((TrackKind.AUDIO, True),))),
        (
            b'{"muted": {"audio": true, "video": false}}',
            ParticipantUpdate(muted=((TrackKind.AUDIO, True), (TrackKind.VIDEO, False))),
        ),
    ],
)
def test_valid_bodies(body: bytes, update: ParticipantUpdate) -> None:
    assert parse_participant_update(body) == update


BAD_BODIES = [
    b"",
    b"not json",
    b"[]",
    b'"cohost"',
    b"{}",
    b'{"role": "host"}',
    b'{"role": "COHOST"}',
    b'{"role": 1}',
    b'{"role": "cohost", "muted": {"audio": true}}',
    b'{"role": "cohost", "role": "audience"}',
    b'{"muted": {}}',
    b'{"muted": true}',
    b'{"muted": {"audio": 1}}',
    b'{"muted": {"screen": true}}',
    b'{"muted": {"audio": NaN}}',
    b'{"mute": {"audio": true}}',
    b'{"role": "cohost", "extra": 1}',
    b"\xff\xfe",
    b'{"role": "' + b"x" * 5000 + b'"}',
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_participant_update(body)


# --- the room as REST shows it ------------------------------------------------------------


async def stage(app: App) -> None:
    """host1 (host, watching), co1 (co-host, publishing), aud1 (audience, watching)."""
    assert (await app.whep("r", token("r", "host1", "host"))).status == 201
    assert (await app.whip("r", token("r", "co1", "cohost"))).status == 201
    assert (await app.whep("r", token("r", "aud1", "audience"))).status == 201


def snapshot(app: App) -> Any:
    return room_json(app.plane.rooms, "r")


async def test_room_listing_and_details() -> None:
    async with running_app() as app:
        await stage(app)
        host = bearer(token("r", "alice", "host"))
        response = await app.client.get("/api/rooms", headers=host)
        assert response.status == 200
        (summary,) = (await response.json())["rooms"]
        assert summary["name"] == "r" and summary["participants"] == 3
        assert summary["publishers"] == 2 and summary["hands"] == 0

        response = await app.client.get("/api/rooms/r", headers=host)
        room = await response.json()
        assert room["max_publishers"] == 16 and room["live"] is False
        by_identity = {p["identity"]: p for p in room["participants"]}
        assert {i: p["role"] for i, p in by_identity.items()} == {
            "host1": "host",
            "co1": "cohost",
            "aud1": "audience",
        }
        co1 = by_identity["co1"]
        assert co1["tracks"] == [
            {"track_id": "whip:0", "kind": "audio", "muted": False},
            {"track_id": "whip:1", "kind": "video", "muted": False},
        ]
        assert co1["hand_raised_at"] is None and co1["state"] == "connected"
        assert isinstance(co1["joined_at"], float)
        (session,) = co1["sessions"]
        assert session["kind"] == "whip"
        assert session["location"] == f"/whip/r/sessions/{session['id']}"

        response = await app.client.get("/api/rooms/r/hands", headers=host)
        assert await response.json() == {"hands": []}
        response = await app.client.get("/api/rooms/r/participants/co1", headers=host)
        assert await response.json() == co1


async def test_admin_token_lists_every_room() -> None:
    async with running_app() as app:
        await stage(app)
        assert (await app.whep("other", token("other", "x", "audience"))).status == 201
        admin = bearer(token("*", "root", "host"))
        rooms = (await (await app.client.get("/api/rooms", headers=admin)).json())["rooms"]
        assert sorted(r["name"] for r in rooms) == ["other", "r"]
        response = await app.client.get("/api/rooms", headers=bearer(token("r", "a", "host")))
        assert [r["name"] for r in (await response.json())["rooms"]] == ["r"]
        # an admin token is no participant: the room "*" cannot be joined
        response = await app.whep("*", token("*", "root", "host"))
        assert response.status == 400


async def test_not_found() -> None:
    async with running_app() as app:
        host = bearer(token("r", "alice", "host"))
        response = await app.client.get("/api/rooms/r", headers=host)
        assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
        await stage(app)
        response = await app.client.post(
            "/api/rooms/r/participants/nobody", json={"role": "cohost"}, headers=host
        )
        assert response.status == 404
        response = await app.client.delete("/api/rooms/r/participants/nobody", headers=host)
        assert response.status == 404
        response = await app.client.get("/api/rooms/r/participants/nobody", headers=host)
        assert response.status == 404


async def test_stage_full_is_409_and_changes_nothing() -> None:
    async with running_app() as app:
        app.plane.rooms.max_publishers = 2  # before the room exists
        await stage(app)
        before = snapshot(app)
        response = await app.client.post(
            "/api/rooms/r/participants/aud1",
            json={"role": "cohost"},
            headers=bearer(token("r", "alice", "host")),
        )
        assert response.status == 409
        body = await response.json()
        assert body["error"]["code"] == "stage_full" and "2" in body["error"]["message"]
        assert snapshot(app) == before
        response = await app.whip("r", token("r", "co2", "cohost"))
        assert response.status == 409 and not app.pool.ops("create_session")[3:]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_bodies_are_400_and_change_nothing(body: bytes) -> None:
    async with running_app() as app:
        await stage(app)
        before = snapshot(app)
        calls = len(app.pool.calls)
        response = await app.client.post(
            "/api/rooms/r/participants/aud1",
            data=body,
            headers={**bearer(token("r", "alice", "host")), "Content-Type": "application/json"},
        )
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "bad_request" and error["message"]
        assert snapshot(app) == before and len(app.pool.calls) == calls


async def test_promotion_whip_demotion_mute_kick_through_the_entry_points() -> None:
    async with running_app() as app:
        await stage(app)
        host = bearer(token("r", "alice", "host"))
        aud1 = token("r", "aud1", "audience")
        response = await app.whip("r", aud1)
        assert response.status == 403
        assert (await response.json())["error"] == {
            "code": "forbidden",
            "message": "'aud1' is audience in room 'r' and may not publish",
        }
        url = "/api/rooms/r/participants/aud1"
        response = await app.client.post(url, json={"role": "cohost"}, headers=host)
        assert response.status == 200 and (await response.json())["role"] == "cohost"
        response = await app.whip("r", aud1)  # the same audience token
        assert response.status == 201
        participant = await (await app.client.get(url, headers=host)).json()
        assert [s["kind"] for s in participant["sessions"]] == ["whep", "whip"]
        assert len(participant["tracks"]) == 2

        response = await app.client.post(url, json={"muted": {"audio": True}}, headers=host)
        assert response.status == 200
        assert [t["muted"] for t in (await response.json())["tracks"]] == [True, False]
        assert app.pool.ops("set_muted")[-1] == (
            "set_muted",
            {"room": "r", "identity": "aud1", "kind": "audio", "muted": True},
        )

        response = await app.client.post(url, json={"role": "audience"}, headers=host)
        assert response.status == 200
        demoted = await response.json()
        assert demoted["role"] == "audience" and demoted["tracks"] == []
        assert len(demoted["sessions"]) == 2  # still connected
        assert ("stop_publishing", {"room": "r", "identity": "aud1"}) in app.pool.calls
        assert (await app.whip("r", aud1)).status == 403

        response = await app.client.delete(url, headers=host)
        assert response.status == 204
        (end,) = app.pool.ops("end_sessions")
        assert len(end[1]["sids"]) == 2 and end[1]["reason"] == "kicked"
        assert not [s for s in app.pool.sessions.values() if s[1] == "aud1"]
        assert (await app.client.get(url, headers=host)).status == 404
        # left with a hold and a mute: the worker forgets both
        assert ("forget_participant", {"room": "r", "identity": "aud1"}) in app.pool.calls
        # kicked, not banned: the token still joins
        assert (await app.whep("r", aud1)).status == 201


async def test_leaving_by_delete_finishes_the_room() -> None:
    async with running_app() as app:
        response = await app.whip("r", token("r", "co1", "cohost"))
        location = response.headers["Location"]
        assert app.plane.rooms.names() == ["r"]
        response = await app.client.delete(location, headers=bearer(token("r", "co1", "cohost")))
        assert response.status == 200
        assert app.plane.rooms.names() == []


async def test_a_session_ended_before_its_reply_is_not_followed() -> None:
    async with running_app() as app:
        app.pool.replace_at_once = True
        assert (await app.whip("r", token("r", "co1", "cohost"))).status == 201
        assert app.plane.rooms.names() == [] and app.plane.sessions == {}
        assert app.plane.ended_early == {}


async def test_the_rooms_timer_removes_a_participant_whose_successor_never_came() -> None:
    async with running_app() as app:
        app.plane.rooms.resume_window = 0.1  # before the room exists
        assert (await app.whip("r", token("r", "co1", "cohost"))).status == 201
        (sid,) = app.pool.sessions
        app.pool.end(sid, "replaced")  # the worker replaced it; the new POST then failed
        stage_room = app.plane.rooms.stage("r")
        assert stage_room is not None
        (info,) = stage_room.snapshot().participants
        assert info.state.value == "reconnecting"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while app.plane.rooms.names():
            assert loop.time() < deadline, "the resume window never expired"
            await asyncio.sleep(0.02)


async def test_a_worker_exit_ends_its_participants() -> None:
    async with running_app() as app:
        await stage(app)
        for listener in app.pool.listeners:
            listener(Event("worker_exited", {"worker": 0}))
        assert app.plane.rooms.names() == [] and app.plane.sessions == {}


# --- the permission matrix: every role x every action at every entry point ------------------

Action = Callable[[App, dict[str, str]], Awaitable[int]]


def _post(path: str, body: dict[str, Any]) -> Action:
    async def act(app: App, headers: dict[str, str]) -> int:
        return (await app.client.post(path, data=json.dumps(body), headers=headers)).status

    return act


def _get(path: str) -> Action:
    async def act(app: App, headers: dict[str, str]) -> int:
        return (await app.client.get(path, headers=headers)).status

    return act


def _delete(path: str) -> Action:
    async def act(app: App, headers: dict[str, str]) -> int:
        return (await app.client.delete(path, headers=headers)).status

    return act


def _media(kind: str) -> Action:
    async def act(app: App, headers: dict[str, str]) -> int:
        headers = {**headers, "Content-Type": "application/sdp"}
        return (await app.client.post(f"/{kind}/r", data="v=0\r\n", headers=headers)).status

    return act


P = "/api/rooms/r/participants"
ACTIONS: dict[str, Action] = {
    "whip": _media("whip"),
    "whep": _media("whep"),
    "list": _get("/api/rooms"),
    "room": _get("/api/rooms/r"),
    "hands": _get("/api/rooms/r/hands"),
    "participant": _get(f"{P}/co1"),
    "promote": _post(f"{P}/aud1", {"role": "cohost"}),
    "demote": _post(f"{P}/co1", {"role": "audience"}),
    "mute": _post(f"{P}/co1", {"muted": {"audio": True}}),
    "unmute": _post(f"{P}/co1", {"muted": {"audio": False}}),
    "kick": _delete(f"{P}/aud1"),
    "kick_host": _delete(f"{P}/host1"),
    "demote_host": _post(f"{P}/host1", {"role": "audience"}),
}

CALLERS: dict[str, str | None] = {
    "host": token("r", "h", "host"),
    "cohost": token("r", "c", "cohost"),
    "audience": token("r", "a", "audience"),
    "admin": token("*", "root", "host"),
    "other_room_host": token("x", "h", "host"),
    "present_host": token("r", "host1", "host"),
    "present_cohost": token("r", "co1", "cohost"),
    "present_audience": token("r", "aud1", "audience"),
    "no_token": None,
    "expired": token("r", "h", "host", ttl=-60),
    "bad_signature": token("r", "h", "host")[:-4] + "AAAA",
}

# fmt: off
#                     whip whep list room hands part promote demote mute unmute kick k_host d_host
MATRIX: dict[str, tuple[int, ...]] = {
    "host":             (201, 201, 200, 200, 200, 200, 200, 200, 200, 403, 204, 403, 403),
    "cohost":           (201, 201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "audience":         (403, 201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "admin":            (403, 403, 200, 200, 200, 200, 200, 200, 200, 403, 204, 403, 403),
    "other_room_host":  (403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "present_host":     (201, 201, 200, 200, 200, 200, 200, 200, 200, 403, 204, 403, 403),
    "present_cohost":   (201, 201, 403, 403, 403, 403, 403, 403, 200, 200, 403, 403, 403),
    "present_audience": (403, 201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "no_token":         (401,) * 13,
    "expired":          (401,) * 13,
    "bad_signature":    (401,) * 13,
}
# fmt: on

CELLS = [
    (caller, action, MATRIX[caller][i]) for caller in CALLERS for i, action in enumerate(ACTIONS)
]


@pytest.mark.parametrize(("caller", "action", "status"), CELLS)
async def test_permission_matrix(caller: str, action: str, status: int) -> None:
    async with running_app() as app:
        await stage(app)
        before = snapshot(app)
        tok = CALLERS[caller]
        headers = bearer(tok) if tok is not None else {}
        got = await ACTIONS[action](app, headers)
        assert got == status, f"{caller} {action}: {got}, expected {status}"
        if status >= 400:
            assert snapshot(app) == before, "a refused request changed the room"
