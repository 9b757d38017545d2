"""The control process's HTTP surface: WHIP, WHEP, health, metrics, the web app.

WHIP and WHEP follow RFC 9725: POST an SDP offer with a Bearer token, get
201 Created with the answer, a Location for the session resource and an ETag
naming its ICE session; PATCH that resource with an SDP fragment to trickle
or restart ICE; DELETE it to leave.

Every WHIP/WHEP session is a participant of its room (``server/rooms.py``): the
room's current role decides whether it may publish, and the workers' reports of
sessions ending keep the room registry in step.  REST is in ``server/api.py``,
webhooks in ``server/webhooks.py``, WebSocket signaling (``GET /ws``) in
``server/signaling_ws.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from interlive.auth import AccessToken, TokenError, bearer_token, verify_token
from interlive.config import ServerConfig
from interlive.server import api, dev, signaling_ws
from interlive.server.body import read_body
from interlive.server.errors import HttpError, error_response
from interlive.server.keys import METRICS_SOURCES, MODES, PLANE
from interlive.server.live_api import register as register_live
from interlive.server.metrics import render_metrics
from interlive.server.rooms import Mode, RoomRegistry, RoomService
from interlive.server.webhooks import WebhookSender
from interlive.server.workers import WorkerHandle, WorkerPool
from interlive.stage.model import Refusal
from interlive.worker.channel import Event, RequestError

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"


@dataclass
class SessionRecord:
    sid: str
    room: str
    identity: str
    mode: str  # "publish" (WHIP) | "subscribe" (WHEP)
    worker: WorkerHandle
    etag: str


class ControlPlane:
    def __init__(self, config: ServerConfig, pool: WorkerPool, secret: str) -> None:
        self.config = config
        self.pool = pool
        self.secret = secret
        self.sessions: dict[str, SessionRecord] = {}
        self._etags = 0
        self.rooms = RoomRegistry()
        #: sessions whose end was reported before their create_session reply was handled
        #: (two POSTs of one identity racing: the second replaces the first at once)
        self.ended_early: OrderedDict[str, str | None] = OrderedDict()
        self.stage = RoomService(self.rooms, pool, self._worker_of)
        self.webhooks = WebhookSender(config.webhooks, secret)
        self.stage.listeners.append(self.webhooks.submit)
        pool.listeners.append(self._on_event)

    def _worker_of(self, sid: str) -> WorkerHandle | None:
        record = self.sessions.get(sid)
        return None if record is None else record.worker

    def _on_event(self, event: Event) -> None:
        if event.kind == "session_ended":
            sid = event.data["sid"]
            reason = event.data.get("reason")
            if self.sessions.pop(sid, None) is None:
                self.ended_early[sid] = reason
                while len(self.ended_early) > 256:
                    self.ended_early.popitem(last=False)
            self.stage.dispatch(self.rooms.session_ended(sid, reason, self.stage.clock()))
        elif event.kind == "worker_exited":
            index = event.data["worker"]
            for record in [r for r in self.sessions.values() if r.worker.index == index]:
                del self.sessions[record.sid]
                now = self.stage.clock()
                self.stage.dispatch(self.rooms.session_ended(record.sid, "worker-exited", now))

    def authenticate(self, request: web.Request, room: str) -> AccessToken:
        try:
            token = verify_token(self.secret, bearer_token(request.headers.get("Authorization")))
        except TokenError as exc:
            raise HttpError(401, "unauthorized", str(exc)) from exc
        if token.room != room:
            raise HttpError(403, "forbidden", f"token is for room {token.room!r}, not {room!r}")
        return token

    def next_etag(self) -> str:
        self._etags += 1
        return f'"ice-{self._etags}"'


async def _read_body(request: web.Request, content_type: str) -> str:
    if request.content_type != content_type:
        raise HttpError(415, "unsupported_media_type", f"Content-Type must be {content_type}")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise HttpError(413, "too_large", f"body over {MAX_SDP_BYTES} bytes")
    body = await read_body(request, MAX_SDP_BYTES)
    if len(body) > MAX_SDP_BYTES:
        raise HttpError(413, "too_large", f"body over {MAX_SDP_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "bad_sdp", "body is not UTF-8") from exc


def _plane(request: web.Request) -> ControlPlane:
    plane: ControlPlane = request.app[PLANE]
    return plane


def refusal_error(refusal: Refusal) -> HttpError:
    return HttpError(refusal.http_status, refusal.code.value, refusal.message)


async def _create(request: web.Request, mode: Mode, only: str | None) -> web.Response:
    plane = _plane(request)
    room = request.match_info["room"]
    token = plane.authenticate(request, room)
    # the room's current role decides (a promoted audience member may publish)
    refusal = plane.rooms.admit(token, mode)
    if refusal is not None:
        raise refusal_error(refusal)
    offer = await _read_body(request, SDP)
    worker = plane.pool.place(room)
    result = await plane.pool.call(
        worker,
        "create_session",
        room=room,
        identity=token.identity,
        mode=mode,
        offer=offer,
        only=only,
    )
    sid = result["sid"]
    etag = plane.next_etag()
    if sid in plane.ended_early:  # already replaced by a racing POST: nothing to follow
        del plane.ended_early[sid]
    else:
        tracks = [(t["mid"], t["kind"]) for t in result.get("tracks", ())]
        joined = plane.rooms.session_started(token, mode, sid, tracks, plane.stage.clock())
        if isinstance(joined, Refusal):  # the room changed while the worker answered
            with contextlib.suppress(RequestError, TimeoutError):
                await plane.pool.call(worker, "delete_session", sid=sid)
            raise refusal_error(joined)
        plane.sessions[sid] = SessionRecord(sid, room, token.identity, mode, worker, etag)
        await plane.stage.apply(joined)
    prefix = "whip" if mode == "publish" else "whep"
    location = f"/{prefix}/{room}/sessions/{sid}"
    return web.Response(
        status=201,
        text=result["answer"],
        content_type=SDP,
        headers={"Location": location, "ETag": etag, "Accept-Patch": SDPFRAG},
    )


async def whip_post(request: web.Request) -> web.Response:
    return await _create(request, "publish", None)


async def whep_post(request: web.Request) -> web.Response:
    return await _create(request, "subscribe", request.match_info.get("identity"))


def _session(request: web.Request, mode: str) -> tuple[ControlPlane, SessionRecord]:
    plane = _plane(request)
    room = request.match_info["room"]
    token = plane.authenticate(request, room)
    record = plane.sessions.get(request.match_info["sid"])
    if record is None or record.room != room or record.mode != mode:
        raise HttpError(404, "not_found", "no such session")
    if record.identity != token.identity and not token.grants.admin:
        raise HttpError(403, "forbidden", "the session belongs to another participant")
    return plane, record


async def session_delete(request: web.Request) -> web.Response:
    plane, record = _session(request, request.app[MODES][request.match_info["kind"]])
    try:
        await plane.pool.call(record.worker, "delete_session", sid=record.sid)
    except RequestError as exc:
        if exc.status != 404:
            raise
    plane.sessions.pop(record.sid, None)
    return web.Response(status=200)


async def session_patch(request: web.Request) -> web.Response:
    plane, record = _session(request, request.app[MODES][request.match_info["kind"]])
    fragment = await _read_body(request, SDPFRAG)
    if_match = request.headers.get("If-Match")
    if if_match is not None and if_match != "*" and if_match != record.etag:
        raise HttpError(412, "precondition_failed", "ETag does not name the current ICE session")
    result = await plane.pool.call(record.worker, "ice_restart", sid=record.sid, fragment=fragment)
    if not result["restart"]:
        return web.Response(status=204)
    record.etag = plane.next_etag()
    return web.Response(
        status=200, text=result["fragment"], content_type=SDPFRAG, headers={"ETag": record.etag}
    )


async def session_stats(request: web.Request) -> web.Response:
    """The session's streams both ways and, per viewer stream, how its loss is repaired."""
    plane, record = _session(request, request.app[MODES][request.match_info["kind"]])
    result = await plane.pool.call(record.worker, "session_stats", sid=record.sid)
    return web.json_response(result)


async def options(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            "Accept-Post": SDP,
            "Accept-Patch": SDPFRAG,
            "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
        },
    )


async def healthz(request: web.Request) -> web.Response:
    plane = _plane(request)
    if not plane.pool.ready:
        return error_response(503, "starting", "media workers are not ready")
    return web.json_response({"status": "ok", "workers": len(plane.pool.workers)})


async def metrics(request: web.Request) -> web.Response:
    plane = _plane(request)
    alive = [w for w in plane.pool.workers if w.alive]
    stats = await asyncio.gather(*(plane.pool.call(w, "stats") for w in alive))
    extra = {"interlive_workers_alive": float(len(alive))}
    text = render_metrics(stats, extra)
    # families of the control process's other parts (the RTMP edge), set up by serve()
    text += "".join(render() for render in request.app.get(METRICS_SOURCES, ()))
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@web.middleware
async def errors_and_cors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except HttpError as exc:
        response = exc.response()
    except RequestError as exc:
        response = error_response(exc.status, exc.code, exc.message)
    except TimeoutError:
        response = error_response(504, "worker_timeout", "media worker did not answer in time")
    # WHIP/WHEP players are often served from another origin (RFC 9725 §4.6).
    path = request.path
    if path.startswith(("/whip/", "/whep/")):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "Location, ETag, Accept-Patch, Link"
    return response


def web_root() -> Path:
    return Path(str(resources.files("interlive") / "web"))


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(web_root() / "index.html")


#: the stage pages: one template (web/stage.html), a view each: (title, heading)
STAGE_VIEWS: Final = {
    "studio": ("studio", "Studio"),
    "cohost": ("co-host", "Co-host"),
    "audience": ("watch the stage", "Audience"),
}


async def stage_page(request: web.Request) -> web.Response:
    """``/static/{studio,cohost,audience}.html``: the one stage app, told which view it is."""
    view = request.match_info["view"]
    title, heading = STAGE_VIEWS[view]
    html = (web_root() / "stage.html").read_text()
    for key, value in (("title", title), ("view", view), ("heading", heading)):
        html = html.replace("{{" + key + "}}", value)
    return web.Response(text=html, content_type="text/html")


async def _on_cleanup(app: web.Application) -> None:
    plane: ControlPlane = app[PLANE]
    await plane.stage.close()
    await plane.webhooks.close()


def create_app(config: ServerConfig, pool: WorkerPool, secret: str) -> web.Application:
    app = web.Application(middlewares=[errors_and_cors], client_max_size=MAX_SDP_BYTES * 2)
    app[PLANE] = ControlPlane(config, pool, secret)
    app.on_cleanup.append(_on_cleanup)
    app[MODES] = {"whip": "publish", "whep": "subscribe"}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/whip/{room}", whip_post)
    app.router.add_post("/whep/{room}", whep_post)
    app.router.add_post("/whep/{room}/{identity}", whep_post)
    app.router.add_delete("/{kind:whip|whep}/{room}/sessions/{sid}", session_delete)
    app.router.add_patch("/{kind:whip|whep}/{room}/sessions/{sid}", session_patch)
    app.router.add_get("/{kind:whip|whep}/{room}/sessions/{sid}/stats", session_stats)
    app.router.add_route("OPTIONS", "/{kind:whip|whep}/{tail:.*}", options)
    api.register(app)
    signaling_ws.register(app, app[PLANE])
    register_live(app, app[PLANE])
    if config.dev:  # only with `interlive serve --dev`: mints tokens over HTTP
        dev.register(app)
    root = web_root()
    if (root / "index.html").exists():
        app.router.add_get("/", index)
        app.router.add_get("/static/{view:studio|cohost|audience}.html", stage_page)
        app.router.add_static("/static/", root, show_index=False)
    return app
