"""Webhooks: the rooms' events POSTed as signed JSON to the URLs given to ``serve --webhook``.

Every delivery is one event: a JSON object with ``id`` (unique, the same on every
retry: receivers dedupe by it), ``event`` (its type), ``created_at`` (Unix
seconds), ``room``, and the event's own fields (see :func:`event_payload` and
docs/rest.md).  The body is signed with the server secret, HMAC-SHA256, hex, in
``X-Interlive-Signature: sha256=<hex>``; ``X-Interlive-Event``,
``X-Interlive-Event-Id`` and ``X-Interlive-Timestamp`` repeat the type, id and
time so a receiver can route and reject stale replays before parsing.

Delivery never blocks the control plane: :meth:`WebhookSender.submit` only puts
the signed body on each URL's bounded queue (a full queue drops the event, counted
and logged) and one task per URL posts them in order.  A network error, a
timeout, 408, 425, 429 or a 5xx is retried with exponential backoff
(:func:`retry_delays`; 3 attempts by default); other statuses are final.

The pure parts (payload, signature, retry schedule) are functions; the sender is
the asyncio adapter around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from interlive.server.rooms import (
    LiveOutputState,
    LiveStarted,
    LiveStopped,
    RoomFinished,
    RoomStarted,
)
from interlive.stage.model import (
    Event,
    ParticipantJoined,
    ParticipantLeft,
    RoleChanged,
    TrackPublished,
)

__all__ = [
    "EVENT_HEADER",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "WebhookSender",
    "check_url",
    "event_payload",
    "make_delivery",
    "mask_url",
    "retry_delays",
    "should_retry",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Interlive-Signature"
EVENT_HEADER: Final = "X-Interlive-Event"
EVENT_ID_HEADER: Final = "X-Interlive-Event-Id"
TIMESTAMP_HEADER: Final = "X-Interlive-Timestamp"
_SCHEME: Final = "sha256="


# --- pure parts ---------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``X-Interlive-Signature`` value of ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    if not header or not header.startswith(_SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body), header)


def mask_url(url: str) -> str:
    """``url`` with its secrets masked: credentials and query dropped, the stream key
    (the last path segment of an ``rtmp://app/key`` URL) replaced by ``***``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = parts.path
    segments = path.split("/")
    if len(segments) > 2 and segments[-1]:  # "/app/key": the key is the last segment
        segments[-1] = "***"
        path = "/".join(segments)
    return urlunsplit((parts.scheme, host, path, "", ""))


def event_payload(room: str, event: Event) -> dict[str, Any] | None:
    """The event's own fields, with its type under ``event``; None for events not sent."""
    if isinstance(event, RoomStarted):
        return {"event": "room_started", "room": room}
    if isinstance(event, RoomFinished):
        return {"event": "room_finished", "room": room}
    if isinstance(event, LiveStarted):
        return {
            "event": "live_started",
            "room": room,
            "job": event.job_id,
            "outputs": event.outputs,
        }
    if isinstance(event, LiveStopped):
        return {"event": "live_stopped", "room": room, "job": event.job_id, "reason": event.reason}
    if isinstance(event, LiveOutputState):
        return {
            "event": "live_output_state",
            "room": room,
            "job": event.job_id,
            "url": mask_url(event.url),
            "state": event.state,
            "reconnects": event.reconnects,
        }
    if isinstance(event, ParticipantJoined):
        return {
            "event": "participant_joined",
            "room": room,
            "identity": event.identity,
            "role": event.role.value,
            "joined_at": event.joined_at,
        }
    if isinstance(event, ParticipantLeft):
        return {
            "event": "participant_left",
            "room": room,
            "identity": event.identity,
            "reason": event.reason.value,
        }
    if isinstance(event, RoleChanged):
        return {
            "event": "role_changed",
            "room": room,
            "identity": event.identity,
            "old_role": event.old.value,
            "new_role": event.new.value,
            "by": event.by,
        }
    if isinstance(event, TrackPublished):
        return {
            "event": "track_published",
            "room": room,
            "identity": event.identity,
            "track_id": event.track_id,
            "kind": event.kind.value,
            "muted": event.muted,
        }
    return None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event, encoded and signed once: every attempt sends the same bytes."""

    id: str
    event: str
    created_at: float
    body: bytes
    signature: str

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "interlive-webhooks",
            SIGNATURE_HEADER: self.signature,
            EVENT_HEADER: self.event,
            EVENT_ID_HEADER: self.id,
            TIMESTAMP_HEADER: str(int(self.created_at)),
        }


def make_delivery(
    secret: str, room: str, event: Event, now: float, event_id: str | None = None
) -> Delivery | None:
    fields = event_payload(room, event)
    if fields is None:
        return None
    event_id = event_id or secrets.token_hex(16)
    payload = {"id": event_id, "created_at": now, **fields}
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return Delivery(event_id, fields["event"], now, body, sign(secret, body))


def retry_delays(attempts: int, base: float) -> list[float]:
    """Seconds to wait before attempts 2..n: ``base``, ``2 * base``, ``4 * base``..."""
    return [base * 2**i for i in range(max(0, attempts - 1))]


def should_retry(status: int) -> bool:
    """Whether an HTTP status may succeed later (the request itself was acceptable)."""
    return status in (408, 425, 429) or status >= 500


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"webhook URL must be http:// or https://, got {url!r}")
    return url


# --- the asyncio adapter ------------------------------------------------------------------


class WebhookSender:
    """Queues and posts deliveries, one ordered queue and task per URL."""

    def __init__(
        self,
        urls: Sequence[str],
        secret: str,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        queue_size: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.urls = [check_url(u) for u in urls]
        self._secret = secret
        self._delays = retry_delays(attempts, backoff)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._queue_size = queue_size
        self._clock = clock
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._closed = False
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, room: str, event: Event) -> None:
        """Queue ``event`` for every URL; never waits (a room-event listener)."""
        if not self.urls or self._closed:
            return
        delivery = make_delivery(self._secret, room, event, self._clock())
        if delivery is None:
            return
        if not self._queues:
            self._start()
        for url, queue in self._queues.items():
            try:
                queue.put_nowait(delivery)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning(
                    "webhook %s: queue full, %s %s dropped", url, delivery.event, delivery.id
                )

    async def drain(self) -> None:
        """Wait until every queued delivery was sent or given up (tests, shutdown)."""
        for queue in self._queues.values():
            await queue.join()

    async def close(self, grace: float = 1.0) -> None:
        """Give queued deliveries ``grace`` seconds, then stop."""
        self._closed = True
        if self._queues:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for url in self.urls:
            queue: asyncio.Queue[Delivery] = asyncio.Queue(self._queue_size)
            self._queues[url] = queue
            self._tasks.append(loop.create_task(self._run(url, queue), name=f"webhook {url}"))

    async def _run(self, url: str, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            try:
                await self._deliver(url, delivery)
            except Exception:  # never let one delivery stop the queue
                self.failed += 1
                log.exception("webhook %s: %s %s failed", url, delivery.event, delivery.id)
            finally:
                queue.task_done()

    async def _deliver(self, url: str, delivery: Delivery) -> bool:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        last = ""
        for attempt in range(len(self._delays) + 1):
            if attempt:
                await asyncio.sleep(self._delays[attempt - 1])
            try:
                async with self._http.post(
                    url, data=delivery.body, headers=delivery.headers()
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return True
                    last = f"HTTP {response.status}"
                    if not should_retry(response.status):
                        break
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
        self.failed += 1
        log.warning(
            "webhook %s: %s %s not delivered after %d attempt(s) (%s)",
            url,
            delivery.event,
            delivery.id,
            attempt + 1,
            last,
        )
        return False
