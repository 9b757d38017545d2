"""WHIP publisher and WHEP subscriber on aiortc's ``RTCPeerConnection``.

Client side of WHIP (RFC 9725, sections 4.2 and 4.3) and of WHEP, which has the
same shape with a receive-only offer:

1. build the offer: ``sendonly`` transceivers for the publisher, ``recvonly``
   ones for the subscriber, all on one BUNDLE transport (``max-bundle``);
2. gather ICE candidates completely before sending: the server is ICE-lite and
   puts its own candidates in the answer, so neither side trickles. aiortc's
   ``setLocalDescription`` already gathers before it returns; the wait on
   ``iceGatheringState == "complete"`` only makes that explicit;
3. ``POST`` the offer (``Content-Type: application/sdp``, ``Authorization:
   Bearer``), expect ``201 Created`` with the answer, ``Location`` (relative
   locations resolve against the request URL) and optionally ``ETag``;
4. ``DELETE`` the ``Location`` to leave.

``RTCConfiguration(iceServers=[])`` is the default: with ``iceServers=None``
aiortc would query a public STUN server.

With ``opus_fec=True`` (the default) audio is Opus only, the offer announces
``useinbandfec=1`` and :mod:`interlive.client.opus_fec` replaces aiortc's Opus
encoder (publisher: in-band FEC driven by the server's receiver reports) and
decoder (subscriber: lost frames rebuilt from the next packet's FEC).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self, overload
from urllib.parse import quote

import aiohttp
import aiortc.rtcrtpsender
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from yarl import URL

from interlive.media.opus import OpusDecoderStats

from .errors import ClientError, ProtocolError
from .opus_fec import (
    OpusFecState,
    PublisherFec,
    SubscriberFec,
    answer_accepts_inband_fec,
    offer_with_inband_fec,
    opus_codec_preferences,
)

__all__ = [
    "WhepSubscriber",
    "WhipPublisher",
    "default_configuration",
    "video_codec_preferences",
    "whep_url",
    "whip_url",
]

SDP_TYPE: Final = "application/sdp"
_DEFAULT_HTTP_TIMEOUT: Final = 10.0
#: packets an aiortc sender keeps to answer NACKs.  aiortc keeps 128: 0.37 s of
#: a 2.4 Mbit/s stream, so at 10 % loss on a 100 ms path the server's second and
#: third tries found the packet gone (2-3 give-ups per 15 s, each a frozen
#: picture until a keyframe; none with 1024, ~3 s).  aiortc reads the module
#: constant at each send and lookup, and keeps the history in a dict.
SENDER_HISTORY_PACKETS: Final = 1024
aiortc.rtcrtpsender.RTP_HISTORY_SIZE = SENDER_HISTORY_PACKETS  # type: ignore[attr-defined]
_GONE: Final = frozenset({404, 410})


def whip_url(base_url: str, room: str) -> str:
    """``{base}/whip/{room}``, the room percent-encoded as one path segment."""
    return f"{base_url.rstrip('/')}/whip/{quote(room, safe='')}"


def whep_url(base_url: str, room: str, identity: str | None = None) -> str:
    """``{base}/whep/{room}`` or ``{base}/whep/{room}/{identity}``."""
    url = f"{base_url.rstrip('/')}/whep/{quote(room, safe='')}"
    if identity is not None:
        url += f"/{quote(identity, safe='')}"
    return url


def default_configuration() -> RTCConfiguration:
    """No STUN/TURN servers, one BUNDLE transport for every m-line."""
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def video_codec_preferences(codec: str) -> list[RTCRtpCodecCapability]:
    """aiortc's capabilities restricted to one video codec (all its profiles) and RTX.

    Raises ``ValueError`` for a codec aiortc cannot handle: aiortc 1.16 has VP8
    and H.264 only, so ``"VP9"`` and ``"AV1"`` are refused here rather than
    producing an offer the server cannot answer.
    """
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    wanted = [c for c in capabilities.codecs if c.name.lower() == codec.lower()]
    if not wanted:
        known = sorted({c.name for c in capabilities.codecs if c.name.lower() != "rtx"})
        raise ValueError(f"aiortc has no {codec} codec; available: {', '.join(known)}")
    rtx = [c for c in capabilities.codecs if c.name.lower() == "rtx"]
    return wanted + rtx


class _SessionResource:
    """One WHIP/WHEP session: the peer connection and its HTTP resource.

    Closing it deletes the resource, closes the peer connection and, if this
    object created it, the HTTP client session.
    """

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession | None,
        configuration: RTCConfiguration | None,
        http_timeout: float,
        opus_fec: bool,
    ) -> None:
        self._opus_fec = opus_fec
        self._http = http
        self._owns_http = http is None
        self._http_timeout = aiohttp.ClientTimeout(total=http_timeout)
        self._pc = RTCPeerConnection(configuration or default_configuration())
        self._location: str | None = None
        self._etag: str | None = None
        self._resource_live = False
        self._token: str | None = None
        self._negotiated = False
        self._closed = False

    @property
    def pc(self) -> RTCPeerConnection:
        return self._pc

    @property
    def location(self) -> str | None:
        """Absolute URL of the session resource, once negotiated (kept after close)."""
        return self._location

    @property
    def etag(self) -> str | None:
        """The ``ETag`` of the session resource, if the server gave one."""
        return self._etag

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    async def _negotiate(
        self, url: str, token: str, rewrite_answer: Callable[[str], str] | None = None
    ) -> None:
        if self._negotiated or self._closed:
            raise RuntimeError("a session resource negotiates once; make a new one")
        self._negotiated = True
        self._token = token
        pc = self._pc
        await pc.setLocalDescription(await pc.createOffer())
        await _wait_gathering_complete(pc, self._http_timeout.total or _DEFAULT_HTTP_TIMEOUT)
        offer = pc.localDescription
        assert offer is not None
        offer_sdp = offer_with_inband_fec(offer.sdp) if self._opus_fec else offer.sdp

        headers = self._headers(SDP_TYPE)
        headers["Accept"] = SDP_TYPE
        async with self._session().post(
            url, data=offer_sdp.encode(), headers=headers, timeout=self._http_timeout
        ) as response:
            body = await response.read()
            content_type = response.headers.get("Content-Type")
            if response.status != 201:
                raise ClientError.from_response(response.status, body, content_type)
            location = response.headers.get("Location")
            if not location:
                raise ProtocolError(response.status, "201 Created without a Location header")
            self._location = str(response.url.join(URL(location)))
            self._resource_live = True
            self._etag = response.headers.get("ETag")
            if response.content_type != SDP_TYPE or not body:
                await self._abandon()
                raise ProtocolError(
                    response.status, f"expected an SDP answer, got {content_type!r}"
                )
        try:
            answer = body.decode()
            if rewrite_answer is not None:
                answer = rewrite_answer(answer)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception:
            await self._abandon()
            raise

    async def _abandon(self) -> None:
        """Delete the server's resource after a failed negotiation, ignoring errors."""
        with contextlib.suppress(ClientError, aiohttp.ClientError, TimeoutError):
            await self._delete()

    async def _delete(self) -> None:
        location = self._location
        if location is None or not self._resource_live:
            return
        self._resource_live = False
        async with self._session().delete(
            location, headers=self._headers(), timeout=self._http_timeout
        ) as response:
            body = await response.read()
            if response.status >= 300 and response.status not in _GONE:
                raise ClientError.from_response(
                    response.status, body, response.headers.get("Content-Type")
                )

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until ``connectionState`` is ``"connected"`` (ICE and DTLS done).

        Raises ``ConnectionError`` if it becomes ``"failed"`` or ``"closed"``,
        ``TimeoutError`` after ``timeout`` seconds.
        """
        pc = self._pc
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def check() -> None:
            state = pc.connectionState
            if done.done():
                return
            if state == "connected":
                done.set_result(None)
            elif state in ("failed", "closed"):
                done.set_exception(ConnectionError(f"peer connection {state}"))

        check()
        pc.on("connectionstatechange", check)
        try:
            async with asyncio.timeout(timeout):
                await done
        finally:
            pc.remove_listener("connectionstatechange", check)

    async def close(self) -> None:
        """``DELETE`` the session resource, then close the peer connection.

        Local resources are always released; a failed ``DELETE`` (other than
        404/410, which mean the resource is already gone) is raised afterwards.
        """
        if self._closed:
            return
        self._closed = True
        try:
            await self._delete()
        finally:
            await self._pc.close()
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


async def _wait_gathering_complete(pc: RTCPeerConnection, timeout: float) -> None:
    if pc.iceGatheringState == "complete":
        return
    complete = asyncio.Event()

    def check() -> None:
        if pc.iceGatheringState == "complete":
            complete.set()

    pc.on("icegatheringstatechange", check)
    try:
        async with asyncio.timeout(timeout):
            await complete.wait()
    finally:
        pc.remove_listener("icegatheringstatechange", check)


class WhipPublisher(_SessionResource):
    """Publishes an audio and/or a video track to a room over WHIP.

    ``async with WhipPublisher() as pub: await pub.publish(...)``; ``close()``
    (or leaving the block) sends ``DELETE``. The tracks stay the caller's: they
    are not stopped on close.

    ``opus_fec`` (default on): audio goes out as Opus with in-band FEC whose
    loss hint follows the server's receiver reports; see :meth:`audio_fec_state`.
    """

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession | None = None,
        configuration: RTCConfiguration | None = None,
        http_timeout: float = _DEFAULT_HTTP_TIMEOUT,
        opus_fec: bool = True,
    ) -> None:
        super().__init__(
            http=http, configuration=configuration, http_timeout=http_timeout, opus_fec=opus_fec
        )
        self._audio_fec: PublisherFec | None = None

    async def publish(
        self,
        base_url: str,
        room: str,
        token: str,
        *,
        audio: MediaStreamTrack | None,
        video: MediaStreamTrack | None,
        video_codec: str | None = None,
    ) -> None:
        """Offer ``sendonly`` audio/video to ``{base_url}/whip/{room}``; apply the answer.

        ``video_codec`` (``"VP8"``, ``"H264"``) restricts the video m-line to that
        codec. Returns once the answer is applied; ICE and DTLS then run in the
        background (see :meth:`wait_connected`). Raises :class:`ClientError` if
        the server refuses.
        """
        if audio is None and video is None:
            raise ValueError("publish needs an audio or a video track")
        if audio is not None and audio.kind != "audio":
            raise ValueError(f"audio track has kind {audio.kind!r}")
        if video is not None and video.kind != "video":
            raise ValueError(f"video track has kind {video.kind!r}")
        preferences = video_codec_preferences(video_codec) if video_codec else None
        audio_transceiver: RTCRtpTransceiver | None = None
        if audio is not None:
            audio_transceiver = self._pc.addTransceiver(audio, direction="sendonly")
            if self._opus_fec:
                audio_transceiver.setCodecPreferences(opus_codec_preferences())
                self._audio_fec = PublisherFec(audio_transceiver.sender)
        if video is not None:
            transceiver = self._pc.addTransceiver(video, direction="sendonly")
            if preferences is not None:
                transceiver.setCodecPreferences(preferences)
        await self._negotiate(whip_url(base_url, room), token)
        answer = self._pc.remoteDescription
        if self._audio_fec is not None and audio_transceiver is not None and answer is not None:
            self._audio_fec.negotiated = answer_accepts_inband_fec(
                answer.sdp, audio_transceiver.mid
            )

    def audio_fec_state(self) -> OpusFecState | None:
        """The Opus encoder's FEC state, or None without audio or with ``opus_fec=False``."""
        return None if self._audio_fec is None else self._audio_fec.state()


class WhepSubscriber(_SessionResource):
    """Receives a room's stage, or one participant, over WHEP.

    One ``recvonly`` transceiver is offered per entry of ``kinds``, in order;
    offer ``("audio", "video") * n`` to receive up to ``n`` participants from
    ``/whep/{room}``. The transceivers exist from construction, so
    :func:`interlive.client.raw.attach_packet_tap` can be attached to
    :attr:`receivers` before :meth:`subscribe`.

    Received frames queue inside aiortc until read: read every track you keep
    (or stop it), or memory grows.

    ``opus_fec`` (default on): audio is decoded by interlive's Opus decoder,
    which rebuilds a lost frame from the next packet's in-band FEC before
    falling back to concealment; see :meth:`audio_fec_stats`.
    """

    def __init__(
        self,
        *,
        kinds: Sequence[str] = ("audio", "video"),
        video_codec: str | None = None,
        http: aiohttp.ClientSession | None = None,
        configuration: RTCConfiguration | None = None,
        http_timeout: float = _DEFAULT_HTTP_TIMEOUT,
        opus_fec: bool = True,
    ) -> None:
        if not kinds or any(kind not in ("audio", "video") for kind in kinds):
            raise ValueError('kinds must be a non-empty sequence of "audio" / "video"')
        preferences = video_codec_preferences(video_codec) if video_codec else None
        super().__init__(
            http=http, configuration=configuration, http_timeout=http_timeout, opus_fec=opus_fec
        )
        self.tracks: list[MediaStreamTrack] = []
        self._track_added = asyncio.Event()
        self._audio_fec: list[SubscriberFec] = []
        for kind in kinds:
            transceiver = self._pc.addTransceiver(kind, direction="recvonly")
            if kind == "video" and preferences is not None:
                transceiver.setCodecPreferences(preferences)
            if kind == "audio" and opus_fec:
                transceiver.setCodecPreferences(opus_codec_preferences())
                self._audio_fec.append(SubscriberFec(transceiver.receiver))
        self._pc.on("track", self._on_track)

    @property
    def receivers(self) -> list[RTCRtpReceiver]:
        """The receivers of the offered transceivers, in ``kinds`` order."""
        return [t.receiver for t in self._pc.getTransceivers()]

    def audio_fec_stats(self, index: int = 0) -> OpusDecoderStats:
        """Decoder counters of the ``index``-th audio m-line (in ``kinds`` order).

        Raises ``ValueError`` with ``opus_fec=False``, ``IndexError`` for an
        ``index`` beyond the audio m-lines offered.
        """
        if not self._opus_fec:
            raise ValueError("this subscriber was made with opus_fec=False")
        return self._audio_fec[index].stats()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tracks.append(track)
        self._track_added.set()

    async def subscribe(
        self,
        base_url: str,
        room: str,
        token: str,
        *,
        identity: str | None = None,
        rewrite_answer: Callable[[str], str] | None = None,
    ) -> None:
        """Offer to ``/whep/{room}`` (the stage) or ``/whep/{room}/{identity}``.

        m-lines the server leaves ``inactive`` produce no track; the others
        appear in :attr:`tracks` when the answer is applied.
        ``rewrite_answer``, if given, receives the server's SDP answer and returns
        the one to apply (the loss benchmark points the candidates at an
        impairment proxy with it).
        """
        await self._negotiate(whep_url(base_url, room, identity), token, rewrite_answer)

    async def wait_track(
        self, kind: str, timeout: float = 10.0, *, index: int = 0
    ) -> MediaStreamTrack:
        """The ``index``-th received track of ``kind``, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                matching = [t for t in self.tracks if t.kind == kind]
                if len(matching) > index:
                    return matching[index]
                self._track_added.clear()
                await self._track_added.wait()

    @overload
    async def recv_frames(
        self, kind: Literal["video"], n: int, timeout: float = ..., *, index: int = ...
    ) -> list[av.VideoFrame]: ...
    @overload
    async def recv_frames(
        self, kind: Literal["audio"], n: int, timeout: float = ..., *, index: int = ...
    ) -> list[av.AudioFrame]: ...
    async def recv_frames(
        self, kind: str, n: int, timeout: float = 10.0, *, index: int = 0
    ) -> list[av.VideoFrame] | list[av.AudioFrame]:
        """Read ``n`` decoded frames from the ``index``-th track of ``kind``.

        Raises ``TimeoutError`` if they do not all arrive within ``timeout``
        seconds, ``aiortc.MediaStreamError`` if the track ends first.
        """
        expected = {"video": av.VideoFrame, "audio": av.AudioFrame}[kind]
        frames: list[Any] = []
        async with asyncio.timeout(timeout):
            track = await self.wait_track(kind, timeout, index=index)
            while len(frames) < n:
                frame = await track.recv()
                if not isinstance(frame, expected):
                    raise TypeError(f"expected a decoded {kind} frame, got {type(frame).__name__}")
                frames.append(frame)
        return frames
