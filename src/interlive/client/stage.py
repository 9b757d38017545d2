"""A stage participant over WebSocket signaling (``/ws``) on one aiortc peer connection.

The Python counterpart of what the web app does (``docs/signaling.md``): join a
room with a token, publish and watch on a single ``RTCPeerConnection`` (unified
plan, one BUNDLE transport), apply the server's offers as the stage changes,
raise a hand, act as host, and resume after losing the WebSocket::

    async with StageClient() as host:
        joined = await host.join("http://127.0.0.1:8080", host_token)
        await host.publish(audio=ToneAudioTrack(), video=TestPatternVideoTrack())
        await host.wait_for(lambda m: m["type"] == "hand_raised", timeout=60)
        await host.request("accept_hand", identity="bob")
        frames = await host.recv_frames("bob", "video", 30)

Theory of operation
-------------------
*Negotiation.*  The client is the *impolite* peer of the W3C "perfect
negotiation" pattern, the server the polite one.  The client's own offers
(:meth:`StageClient.connect`, :meth:`StageClient.publish`) hold the negotiation
lock from ``createOffer`` until the server's ``answer`` is applied; a server
``offer`` that arrives while the client's is outstanding is ignored (the server
rolls it back and offers again afterwards).  Server offers are applied in
arrival order by one task, under the same lock, and answered with the offer's
``id``.  New local tracks use ``addTransceiver(..., direction="sendonly")``
(never ``addTrack``, which may reuse a transceiver the server created).

*Tracks.*  Each server ``offer`` and ``answer`` carries ``streams``: which
participant's audio or video each m-line carries.  :meth:`StageClient.track`
looks a participant's track up through that map.

*Messages.*  Every server frame is kept in :attr:`StageClient.messages` (events,
replies, offers) and can be awaited with :meth:`StageClient.wait_for`; requests
get an ``id`` and :meth:`StageClient.request` returns their ``ack`` or raises
:class:`StageError` with the ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from .whip import default_configuration, video_codec_preferences

__all__ = ["PROTOCOL_VERSION", "StageClient", "StageError", "ws_url"]

PROTOCOL_VERSION: Final = 1
_DEFAULT_TIMEOUT: Final = 10.0


class StageError(Exception):
    """The server refused a request: its ``error`` ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def ws_url(base_url: str) -> str:
    """``ws://host:port/ws`` for ``http://host:port`` (``wss`` for ``https``)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    return base + "/ws"


class StageClient:
    """One participant: a /ws connection and one peer connection.  See the module doc."""

    def __init__(
        self,
        *,
        configuration: RTCConfiguration | None = None,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(configuration or default_configuration())
        self._http = http
        self._owns_http = http is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._negotiator: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._replies: dict[object, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        #: the id of our offer awaiting the server's answer (server offers are ignored then)
        self._offering: str | None = None
        self._closed = False
        #: every frame the server sent, in order
        self.messages: list[dict[str, Any]] = []
        #: mid -> {"identity", "kind"}: whose track each receiving m-line carries
        self.streams: dict[str, dict[str, str]] = {}
        #: the ``joined`` message of the current connection
        self.joined: dict[str, Any] | None = None
        #: how many server offers were applied (renegotiations of the same connection)
        self.server_offers = 0
        self.close_code: int | None = None
        self._base_url = ""
        self._token = ""

    # --- connection -------------------------------------------------------------------
    async def join(
        self, base_url: str, token: str, *, resume: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Open ``/ws`` and join (or resume ``resume``); returns the ``joined`` message."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        self._base_url, self._token = base_url, token
        self._ws = await self._http.ws_connect(
            ws_url(base_url), timeout=aiohttp.ClientWSTimeout(ws_close=timeout)
        )
        self.close_code = None
        self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))
        if self._negotiator is None:
            self._negotiator = asyncio.get_running_loop().create_task(self._apply_offers())
        fields: dict[str, Any] = {"token": token}
        if resume is not None:
            fields["resume"] = resume
        reply = await self.request("join", timeout=timeout, **fields)
        self.joined = reply
        return reply

    async def resume(self, timeout: float = 10.0) -> dict[str, Any]:
        """Reconnect the WebSocket and resume the session (the peer connection is kept)."""
        if self.joined is None:
            raise RuntimeError("nothing to resume: join first")
        session = int(self.joined["session"])
        await self.drop_socket()
        return await self.join(self._base_url, self._token, resume=session, timeout=timeout)

    async def drop_socket(self) -> None:
        """Close the WebSocket without ``leave`` (as a lost network would)."""
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            await ws.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def send(self, msg_type: str, **fields: Any) -> None:
        """Send one message as is (no id, no reply awaited)."""
        await self.send_raw(json.dumps({"v": PROTOCOL_VERSION, "type": msg_type, **fields}))

    async def send_raw(self, text: str | bytes) -> None:
        """Send a frame exactly as given (tests of bad input)."""
        if self._ws is None:
            raise ConnectionError("not connected")
        if isinstance(text, bytes):
            await self._ws.send_bytes(text)
        else:
            await self._ws.send_str(text)

    async def request(
        self,
        msg_type: str,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        request_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Send a request with ``request_id`` (default: a fresh one); its reply, or
        :class:`StageError`."""
        request_id = request_id or self.next_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        try:
            await self.send(msg_type, id=request_id, **fields)
            async with asyncio.timeout(timeout):
                reply = await future
        finally:
            self._replies.pop(request_id, None)
        if reply["type"] == "error":
            raise StageError(reply["code"], reply["message"])
        return reply

    def next_id(self) -> str:
        return f"c{next(self._ids)}"

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = _DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """The first message (already received or to come) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                self._changed.clear()
                await self._changed.wait()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            message: dict[str, Any] = json.loads(frame.data)
            self.messages.append(message)
            kind = message.get("type")
            if self._offering is not None and message.get("id") == self._offering:
                self._offering = None  # the server answered (or refused) our offer
            if kind == "offer" and self._offering is None:
                self._offers.put_nowait(message)
            # an offer crossing ours is ignored: the server rolls it back, offers again
            future = self._replies.get(message.get("id"))
            if future is not None and not future.done() and kind != "offer":
                future.set_result(message)
            self._changed.set()
        self.close_code = ws.close_code
        self._changed.set()

    # --- offers -----------------------------------------------------------------------
    async def connect(self, receive: Sequence[str] = ("audio", "video")) -> None:
        """Open the peer connection to watch: one recvonly m-line per entry of ``receive``."""
        async with self._lock:
            for kind in receive:
                self.pc.addTransceiver(kind, direction="recvonly")
            await self._offer()

    async def publish(
        self,
        *,
        audio: MediaStreamTrack | None = None,
        video: MediaStreamTrack | None = None,
        video_codec: str | None = "VP8",
    ) -> list[str]:
        """Send these tracks on the peer connection and announce them; their mids.

        The first call opens the peer connection; later ones renegotiate it (for a
        participant just promoted, say).
        """
        added: list[tuple[RTCRtpTransceiver, str]] = []
        async with self._lock:
            if audio is not None:
                added.append((self.pc.addTransceiver(audio, direction="sendonly"), "audio"))
            if video is not None:
                transceiver = self.pc.addTransceiver(video, direction="sendonly")
                if video_codec is not None:
                    transceiver.setCodecPreferences(video_codec_preferences(video_codec))
                added.append((transceiver, "video"))
            await self._offer()
        mids = []
        for transceiver, kind in added:
            assert transceiver.mid is not None
            await self.request("publish", track_id=transceiver.mid, kind=kind)
            mids.append(transceiver.mid)
        return mids

    async def _offer(self) -> None:
        """Our offer and the server's answer; the lock is held by the caller."""
        pc = self.pc
        await pc.setLocalDescription(await pc.createOffer())
        local = pc.localDescription
        assert local is not None
        self._offering = request_id = self.next_id()
        try:
            reply = await self.request("offer", request_id=request_id, sdp=local.sdp)
        finally:
            self._offering = None
        self._note_streams(reply)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

    async def _apply_offers(self) -> None:
        while True:
            offer = await self._offers.get()
            async with self._lock:
                if self.pc.signalingState != "stable" or self._ws is None:
                    continue
                # An offer we cannot apply stays unanswered; our next offer rolls it back.
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=offer["sdp"], type="offer")
                )
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                local = self.pc.localDescription
                assert local is not None
                self._note_streams(offer)
                self.server_offers += 1
                with contextlib.suppress(ConnectionError, StageError, TimeoutError):
                    await self.request("answer", request_id=str(offer["id"]), sdp=local.sdp)

    def _note_streams(self, message: dict[str, Any]) -> None:
        for stream in message.get("streams", ()):
            self.streams[stream["mid"]] = {"identity": stream["identity"], "kind": stream["kind"]}
        # lines the server left inactive (or dropped from the map) carry nothing any more
        listed = {s["mid"] for s in message.get("streams", ())}
        for mid in [m for m in self.streams if m not in listed]:
            del self.streams[mid]

    # --- tracks -----------------------------------------------------------------------
    def mid_of(self, identity: str, kind: str) -> str | None:
        return next(
            (m for m, s in self.streams.items() if s["identity"] == identity and s["kind"] == kind),
            None,
        )

    def track(self, identity: str, kind: str) -> MediaStreamTrack | None:
        """The received track of ``identity``'s ``kind``, if a line carries it now."""
        mid = self.mid_of(identity, kind)
        for transceiver in self.pc.getTransceivers():
            if mid is not None and transceiver.mid == mid:
                track: MediaStreamTrack | None = transceiver.receiver.track
                return track
        return None

    async def wait_track(
        self, identity: str, kind: str, timeout: float = _DEFAULT_TIMEOUT
    ) -> MediaStreamTrack:
        async with asyncio.timeout(timeout):
            while True:
                track = self.track(identity, kind)
                if track is not None:
                    return track
                self._changed.clear()
                await self._changed.wait()

    async def recv_frames(
        self, identity: str, kind: str, n: int, timeout: float = 20.0
    ) -> list[av.VideoFrame | av.AudioFrame]:
        """``n`` decoded frames of ``identity``'s ``kind`` track (waiting for the track)."""
        frames: list[Any] = []
        async with asyncio.timeout(timeout):
            track = await self.wait_track(identity, kind, timeout)
            while len(frames) < n:
                frames.append(await track.recv())
        return frames

    def transceiver(self, mid: str) -> RTCRtpTransceiver | None:
        return next((t for t in self.pc.getTransceivers() if t.mid == mid), None)

    # --- lifetime ---------------------------------------------------------------------
    async def leave(self) -> None:
        with contextlib.suppress(StageError, TimeoutError, ConnectionError):
            await self.request("leave")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.drop_socket()
        if self._negotiator is not None:
            self._negotiator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._negotiator
        await self.pc.close()
        if self._owns_http and self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
