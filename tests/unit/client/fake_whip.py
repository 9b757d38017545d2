"""A stand-in WHIP/WHEP endpoint for the client's unit tests.

An aiohttp app on 127.0.0.1 that speaks the HTTP side of RFC 9725 and answers
each offer with a second, full aiortc ``RTCPeerConnection`` in the same process.
It is a fake of interlive's server, not a model of it: no rooms, one token, and
the answering peer decodes media (the real server forwards packets).

- ``POST /whip/{room}``: receives the publisher's media; decoded video frames go
  through ``decode_frame_index`` into :attr:`FakeWhipServer.video_indexes`,
  audio frames into :attr:`FakeWhipServer.audio_frames`. ``Location`` is the
  path-relative ``../resources/{id}``.
- ``POST /whep/{room}[/{identity}]``: sends a test pattern (and a tone) on the
  first :attr:`FakeWhipServer.whep_streams` offered m-lines of each kind,
  leaves the others inactive. ``Location`` is the absolute path ``/resources/{id}``.
- ``DELETE /resources/{id}``: closes the answering peer, 204 (or
  :attr:`FakeWhipServer.delete_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import av
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from interlive.client import TestPatternVideoTrack, ToneAudioTrack, decode_frame_index


@dataclass(frozen=True, slots=True)
class SeenRequest:
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    body: str


@dataclass
class _Peer:
    pc: RTCPeerConnection
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    tracks: list[MediaStreamTrack] = field(default_factory=list)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FakeWhipServer:
    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[SeenRequest] = []
        self.video_indexes: asyncio.Queue[int | None] = asyncio.Queue()
        self.audio_frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue()
        self.whep_streams = 1
        self.omit_location = False
        self.delete_status = 204
        self.deleted = asyncio.Event()
        self._peers: dict[str, _Peer] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/whip/{room}", self._whip)
        app.router.add_post("/whep/{room}", self._whep)
        app.router.add_post("/whep/{room}/{identity}", self._whep)
        app.router.add_delete("/resources/{id}", self._delete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def close(self) -> None:
        for peer in list(self._peers.values()):
            await self._close_peer(peer)
        self._peers.clear()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _seen(self, request: web.Request) -> str:
        """Record the request and return its body."""
        body = await request.text()
        self.requests.append(
            SeenRequest(
                request.method,
                request.raw_path,
                request.headers.get("Authorization"),
                request.headers.get("Content-Type"),
                body,
            )
        )
        return body

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "bad or missing bearer token")
        if request.method == "POST" and request.content_type != "application/sdp":
            return _error(415, "unsupported_media_type", "expected application/sdp")
        return None

    async def _answer(self, peer: _Peer, offer: str) -> str:
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        assert peer.pc.localDescription is not None
        return peer.pc.localDescription.sdp

    def _created(self, peer: _Peer, answer: str, location_prefix: str) -> web.Response:
        session_id = str(next(self._ids))
        self._peers[session_id] = peer
        headers = {"ETag": f'"v{session_id}"'}
        if not self.omit_location:
            headers["Location"] = f"{location_prefix}{session_id}"
        return web.Response(
            status=201, text=answer, content_type="application/sdp", headers=headers
        )

    async def _whip(self, request: web.Request) -> web.Response:
        offer = await self._seen(request)
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        peer = _Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])))

        @peer.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            peer.tasks.append(asyncio.create_task(self._consume(track)))

        answer = await self._answer(peer, offer)
        return self._created(peer, answer, "../resources/")

    async def _whep(self, request: web.Request) -> web.Response:
        offer = await self._seen(request)
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        if request.match_info.get("identity") == "nobody":
            return _error(404, "participant_not_found", "nobody is not on stage")
        peer = _Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])))
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        sent = {"audio": 0, "video": 0}
        for transceiver in peer.pc.getTransceivers():
            kind = transceiver.kind
            if sent[kind] >= self.whep_streams:
                continue
            sent[kind] += 1
            track: MediaStreamTrack = (
                TestPatternVideoTrack(320, 180) if kind == "video" else ToneAudioTrack()
            )
            peer.tracks.append(track)
            peer.pc.addTrack(track)
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        assert peer.pc.localDescription is not None
        return self._created(peer, peer.pc.localDescription.sdp, "/resources/")

    async def _delete(self, request: web.Request) -> web.Response:
        await self._seen(request)
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        if self.delete_status >= 300:
            return _error(self.delete_status, "internal", "delete failed on purpose")
        peer = self._peers.pop(request.match_info["id"], None)
        if peer is None:
            return _error(404, "not_found", "no such session")
        await self._close_peer(peer)
        self.deleted.set()
        return web.Response(status=204)

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.video_indexes.put_nowait(decode_frame_index(frame))
                elif isinstance(frame, av.AudioFrame):
                    self.audio_frames.put_nowait(frame)

    async def _close_peer(self, peer: _Peer) -> None:
        await peer.pc.close()
        for track in peer.tracks:
            track.stop()
        for task in peer.tasks:
            task.cancel()
        await asyncio.gather(*peer.tasks, return_exceptions=True)
