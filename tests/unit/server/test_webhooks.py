"""Webhooks: payloads, signatures, the retry schedule, and the sender against a real receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from interlive.auth import Role
from interlive.server.rooms import RoomFinished, RoomStarted
from interlive.server.webhooks import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    check_url,
    event_payload,
    make_delivery,
    retry_delays,
    should_retry,
    sign,
    verify_signature,
)
from interlive.stage.model import (
    HandRaised,
    LeaveReason,
    ParticipantJoined,
    ParticipantLeft,
    RoleChanged,
    TrackKind,
    TrackPublished,
    TrackUnpublished,
)
from tests.unit.server.fakes import SECRET, running_app, token

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    # the well-known HMAC-SHA256 example (key "key")
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign("key", body) == expected
    assert verify_signature("key", body, expected)
    assert not verify_signature("key", body + b".", expected)
    assert not verify_signature("other", body, expected)
    assert not verify_signature("key", body, expected.removeprefix("sha256="))
    assert not verify_signature("key", body, None)


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (RoomStarted("r", 1.0), {"event": "room_started", "room": "r"}),
        (RoomFinished("r", 2.0), {"event": "room_finished", "room": "r"}),
        (
            ParticipantJoined("carol", Role.AUDIENCE, 3.5),
            {
                "event": "participant_joined",
                "room": "r",
                "identity": "carol",
                "role": "audience",
                "joined_at": 3.5,
            },
        ),
        (
            ParticipantLeft("carol", LeaveReason.KICKED),
            {"event": "participant_left", "room": "r", "identity": "carol", "reason": "kicked"},
        ),
        (
            RoleChanged("carol", Role.AUDIENCE, Role.COHOST, "alice"),
            {
                "event": "role_changed",
                "room": "r",
                "identity": "carol",
                "old_role": "audience",
                "new_role": "cohost",
                "by": "alice",
            },
        ),
        (
            TrackPublished("carol", "whip:1", TrackKind.VIDEO, False),
            {
                "event": "track_published",
                "room": "r",
                "identity": "carol",
                "track_id": "whip:1",
                "kind": "video",
                "muted": False,
            },
        ),
    ],
)
def test_payloads(event: object, fields: dict[str, object]) -> None:
    assert event_payload("r", event) == fields  # type: ignore[arg-type]


def test_other_events_are_not_sent() -> None:
    assert event_payload("r", HandRaised("carol", 1.0)) is None
    assert event_payload("r", TrackUnpublished("carol", "whip:0")) is None
    assert make_delivery(SECRET, "r", HandRaised("carol", 1.0), 0.0) is None


def test_delivery_is_signed_json_with_id_and_time() -> None:
    delivery = make_delivery(SECRET, "r", RoomStarted("r", 1.0), 1712345678.25, "abc")
    assert delivery is not None
    assert json.loads(delivery.body) == {
        "id": "abc",
        "event": "room_started",
        "created_at": 1712345678.25,
        "room": "r",
    }
    headers = delivery.headers()
    assert verify_signature(SECRET, delivery.body, headers[SIGNATURE_HEADER])
    assert headers[EVENT_HEADER] == "room_started" and headers[EVENT_ID_HEADER] == "abc"
    assert headers[TIMESTAMP_HEADER] == "1712345678"
    assert headers["Content-Type"] == "application/json"
    other = make_delivery(SECRET, "r", RoomStarted("r", 1.0), 1.0)
    assert other is not None and other.id != delivery.id and len(other.id) == 32


def test_retry_schedule() -> None:
    assert retry_delays(3, 0.5) == [0.5, 1.0]
    assert retry_delays(4, 1.0) == [1.0, 2.0, 4.0]
    assert retry_delays(1, 0.5) == []
    assert [
        s for s in (200, 400, 401, 404, 408, 409, 425, 429, 500, 502, 503) if should_retry(s)
    ] == [
        408,
        425,
        429,
        500,
        502,
        503,
    ]


def test_urls_are_checked() -> None:
    assert check_url("https://example.com/hook") == "https://example.com/hook"
    for bad in ("ftp://example.com/x", "example.com/hook", "http://", ""):
        with pytest.raises(ValueError, match="webhook URL"):
            check_url(bad)
    with pytest.raises(ValueError, match="webhook URL"):
        WebhookSender(["file:///etc/passwd"], SECRET)


# --- the sender against a real receiver -----------------------------------------------------


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: statuses to answer, in order; 200 once they run out
    statuses: list[int] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.requests]

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < n:
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def receiver(*, gated: bool = False) -> AsyncIterator[Receiver]:
    state = Receiver(url="")
    if not gated:
        state.gate.set()

    async def hook(request: web.Request) -> web.Response:
        await state.gate.wait()
        state.requests.append((dict(request.headers), await request.read()))
        state.arrived.set()
        status = state.statuses.pop(0) if state.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        state.gate.set()
        await runner.cleanup()


async def _with_sender(
    url: str, body: Callable[[WebhookSender], Awaitable[None]], **kwargs: float
) -> WebhookSender:
    sender = WebhookSender([url], SECRET, backoff=0.01, timeout=2.0, **kwargs)  # type: ignore[arg-type]
    try:
        await body(sender)
    finally:
        await sender.close()
    return sender


async def test_retries_with_the_same_id_until_accepted() -> None:
    async with receiver() as hook:
        hook.statuses = [503, 500]

        async def run(sender: WebhookSender) -> None:
            sender.submit("r", RoomStarted("r", 1.0))
            await sender.drain()

        sender = await _with_sender(hook.url, run)
        assert len(hook.requests) == 3
        assert len({body for _, body in hook.requests}) == 1  # the same bytes each time
        headers, body = hook.requests[-1]
        assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
        assert sender.delivered == 1 and sender.failed == 0


async def test_gives_up_after_the_attempts_and_on_final_statuses() -> None:
    async with receiver() as hook:
        hook.statuses = [500, 500, 500, 400]

        async def run(sender: WebhookSender) -> None:
            sender.submit("r", RoomStarted("r", 1.0))  # 3 attempts, all 500
            sender.submit("r", RoomFinished("r", 2.0))  # 400: final at once
            sender.submit("r", RoomStarted("r", 3.0))  # delivered: the queue goes on
            await sender.drain()

        sender = await _with_sender(hook.url, run)
        assert [b["event"] for b in hook.bodies()] == ["room_started"] * 3 + [
            "room_finished",
            "room_started",
        ]
        assert sender.failed == 2 and sender.delivered == 1


async def test_an_unreachable_receiver_never_raises() -> None:
    async with receiver() as hook:
        url = hook.url
    # the receiver is gone: connection refused on every attempt

    async def run(sender: WebhookSender) -> None:
        sender.submit("r", RoomStarted("r", 1.0))
        await sender.drain()

    sender = await _with_sender(url, run)
    assert sender.failed == 1 and sender.delivered == 0


async def test_submit_never_waits_and_a_full_queue_drops() -> None:
    ticks = iter(range(100))
    async with receiver(gated=True) as hook:
        sender = WebhookSender(
            [hook.url], SECRET, backoff=0.01, queue_size=2, clock=lambda: float(next(ticks))
        )
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(5):
                sender.submit("r", RoomStarted("r", float(i)))
            assert loop.time() - start < 0.05
            hook.gate.set()
            await sender.drain()
        finally:
            await sender.close()
        # submitted back to back: two fit the queue, the rest are dropped, not waited for
        assert sender.dropped == 3 and sender.delivered == 2
        assert [b["created_at"] for b in hook.bodies()] == [0.0, 1.0]  # in order


async def test_the_app_sends_room_events_signed_with_the_server_secret() -> None:
    async with receiver() as hook, running_app(webhooks=(hook.url,)) as app:
        assert (await app.whip("r", token("r", "carol", "cohost"))).status == 201
        await hook.wait_for(4)
        events = [b["event"] for b in hook.bodies()]
        assert events == [
            "room_started",
            "participant_joined",
            "track_published",
            "track_published",
        ]
        for headers, body in hook.requests:
            assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
        assert all(b["room"] == "r" for b in hook.bodies())
