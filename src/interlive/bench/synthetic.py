"""Synthetic WebRTC peers for load generation: real ICE, DTLS-SRTP and RTP, no codecs.

A peer offers like a browser (RFC 8829 JSEP; Chrome's m-line layout: BUNDLE,
rtcp-mux, rtcp-rsize, Opus PT 111, VP8 PT 96 with RTX PT 97), sends the offer
to a WHIP (publish) or WHEP (subscribe) endpoint (RFC 9725) and reads the few
answer lines it needs. Then, on its own UDP socket, it is the controlling ICE
agent for the single candidate pair (RFC 8445 §7.2.4, nominating with
USE-CANDIDATE on every check), the DTLS client (RFC 5763 §5: it offered
``actpass`` and the server answers ``passive``), and finally an SRTP endpoint
(RFC 5764) using interlive's own transport classes.

Theory of operation
-------------------
:class:`PeerCore` is the sans-IO part: ``start``, ``receive`` and
``handle_timer`` take ``now``; ``datagrams_to_send`` and ``get_timer`` say what
to do next. It runs connectivity checks until one succeeds, then the DTLS
handshake, then consent freshness checks (RFC 7675) every few seconds, and
exposes the :class:`SrtpContext` once keys exist. Media never goes through it:
the asyncio adapters (:class:`SyntheticPublisher`, :class:`SyntheticSubscriber`)
check the first octet of each datagram (RFC 7983) and handle SRTP themselves,
because a subscriber's receive path runs hundreds of thousands of times a
second in one load-generator process: unprotect, a few ``struct`` reads and a
sequence-number update, nothing else.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import random
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import aiohttp
from aioice import stun
from OpenSSL import SSL
from yarl import URL

from interlive.bench.media import (
    AUDIO_CLOCK,
    AUDIO_PT,
    VIDEO_CLOCK,
    VIDEO_PT,
    AudioSource,
    StampedPacket,
    StreamCounter,
    VideoSettings,
    VideoSource,
    is_vp8_keyframe_start,
    stamp_offset,
)
from interlive.rtp.ntp import ntp_compact, ntp_from_unix
from interlive.rtp.rtcp import (
    Fir,
    Pli,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SenderReport,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from interlive.sdp import Candidate, SdpError, SessionDescription, effective_ice
from interlive.transport.dtls import DtlsEndpoint, DtlsState
from interlive.transport.ice import random_ice_string
from interlive.transport.srtp import SrtpContext, SrtpError

log = logging.getLogger(__name__)

Address = tuple[str, int]

#: a host candidate's priority for type preference 126, local preference 65535 (RFC 8445 §5.1.2)
HOST_PRIORITY = (126 << 24) | (65535 << 8) | 255
#: what this agent puts in PRIORITY for peer-reflexive candidates (type preference 110)
PRFLX_PRIORITY = (110 << 24) | (65535 << 8) | 255

# --- SDP ------------------------------------------------------------------------------

_EXTMAP_AUDIO = (
    (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    (2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    (3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
    (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
)
_EXTMAP_VIDEO = (
    (2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    (3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
    (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
)


@dataclass(frozen=True, slots=True)
class LocalStreams:
    """What a publisher announces in a=ssrc lines (RFC 5576) and a=msid (RFC 8830)."""

    audio_ssrc: int
    video_ssrc: int
    rtx_ssrc: int
    cname: str
    stream_id: str


def build_offer(
    *,
    publish: bool,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: str,
    candidate: Address,
    streams: LocalStreams | None = None,
    session_id: int | None = None,
) -> str:
    """A Chrome-shaped offer: audio then video, BUNDLEd, sendonly (publish) or recvonly."""
    if publish and streams is None:
        raise ValueError("a publishing offer needs its SSRCs")
    sid = session_id if session_id is not None else secrets.randbits(62)
    ip, port = candidate
    direction = "sendonly" if publish else "recvonly"
    lines = [
        "v=0",
        f"o=- {sid} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        f"a=msid-semantic: WMS {streams.stream_id if streams else ''}".rstrip(),
    ]

    def transport(mid: str) -> list[str]:
        return [
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            f"a=candidate:1 1 udp {HOST_PRIORITY} {ip} {port} typ host generation 0",
            "a=end-of-candidates",
            f"a=ice-ufrag:{ice_ufrag}",
            f"a=ice-pwd:{ice_pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:actpass",
            f"a=mid:{mid}",
        ]

    lines += [f"m=audio 9 UDP/TLS/RTP/SAVPF {AUDIO_PT}", *transport("0")]
    lines += [f"a=extmap:{i} {uri}" for i, uri in _EXTMAP_AUDIO]
    lines.append(f"a={direction}")
    if streams is not None:
        lines.append(f"a=msid:{streams.stream_id} audio-{streams.stream_id}")
    lines += [
        "a=rtcp-mux",
        "a=rtcp-rsize",
        f"a=rtpmap:{AUDIO_PT} opus/{AUDIO_CLOCK}/2",
        f"a=rtcp-fb:{AUDIO_PT} transport-cc",
        f"a=fmtp:{AUDIO_PT} minptime=10;useinbandfec=1",
    ]
    if streams is not None:
        lines += [
            f"a=ssrc:{streams.audio_ssrc} cname:{streams.cname}",
            f"a=ssrc:{streams.audio_ssrc} msid:{streams.stream_id} audio-{streams.stream_id}",
        ]
    lines += [f"m=video 9 UDP/TLS/RTP/SAVPF {VIDEO_PT} {VIDEO_PT + 1}", *transport("1")]
    lines += [f"a=extmap:{i} {uri}" for i, uri in _EXTMAP_VIDEO]
    lines.append(f"a={direction}")
    if streams is not None:
        lines.append(f"a=msid:{streams.stream_id} video-{streams.stream_id}")
    lines += [
        "a=rtcp-mux",
        "a=rtcp-rsize",
        f"a=rtpmap:{VIDEO_PT} VP8/{VIDEO_CLOCK}",
        f"a=rtcp-fb:{VIDEO_PT} goog-remb",
        f"a=rtcp-fb:{VIDEO_PT} transport-cc",
        f"a=rtcp-fb:{VIDEO_PT} ccm fir",
        f"a=rtcp-fb:{VIDEO_PT} nack",
        f"a=rtcp-fb:{VIDEO_PT} nack pli",
        f"a=rtpmap:{VIDEO_PT + 1} rtx/{VIDEO_CLOCK}",
        f"a=fmtp:{VIDEO_PT + 1} apt={VIDEO_PT}",
    ]
    if streams is not None:
        s = streams
        lines += [
            f"a=ssrc-group:FID {s.video_ssrc} {s.rtx_ssrc}",
            f"a=ssrc:{s.video_ssrc} cname:{s.cname}",
            f"a=ssrc:{s.video_ssrc} msid:{s.stream_id} video-{s.stream_id}",
            f"a=ssrc:{s.rtx_ssrc} cname:{s.cname}",
            f"a=ssrc:{s.rtx_ssrc} msid:{s.stream_id} video-{s.stream_id}",
        ]
    return "\r\n".join(lines) + "\r\n"


class AnswerError(ValueError):
    """The answer lacks something a peer needs to connect."""


@dataclass(frozen=True, slots=True)
class RemoteDescription:
    """The parts of an SDP answer this peer uses."""

    ice_ufrag: str
    ice_pwd: str
    address: Address
    fingerprints: list[tuple[str, str]]
    setup: str  # "active" | "passive" | "actpass"
    #: the server's SSRCs by media kind (a=ssrc in a subscriber's answer)
    ssrcs: dict[str, list[int]] = field(default_factory=dict)


def parse_answer(text: str) -> RemoteDescription:
    """Read ICE credentials, the first UDP candidate, fingerprints, setup and SSRCs."""
    try:
        answer = SessionDescription.parse(text)
    except SdpError as exc:
        raise AnswerError(f"answer does not parse: {exc}") from exc
    live = [m for m in answer.media if not m.rejected]
    if not live:
        raise AnswerError("answer accepts no media section")
    ice = effective_ice(answer, live[0])
    if not ice.ice_ufrag or not ice.ice_pwd:
        raise AnswerError("answer has no a=ice-ufrag / a=ice-pwd")
    if not ice.fingerprints:
        raise AnswerError("answer has no a=fingerprint")
    address: Address | None = None
    for media in live:
        for raw in media.candidates:
            candidate = Candidate.parse(raw)
            if candidate.transport.lower() == "udp" and candidate.component == 1:
                address = (candidate.ip, candidate.port)
                break
        if address is not None:
            break
    if address is None:
        raise AnswerError("answer has no UDP host candidate")
    ssrcs: dict[str, list[int]] = {}
    for media in live:
        ssrcs.setdefault(media.kind, []).extend(int(ssrc) for ssrc in media.ssrcs)
    return RemoteDescription(
        ice.ice_ufrag,
        ice.ice_pwd,
        address,
        [(f.algorithm.lower(), f.value) for f in ice.fingerprints],
        ice.setup or "active",
        ssrcs,
    )


# --- the sans-IO core -------------------------------------------------------------------


class PeerState(Enum):
    NEW = "new"
    CHECKING = "checking"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


class PeerCore:
    """Controlling ICE for one candidate pair, then DTLS, then SRTP keys; sans-IO."""

    CHECK_RTO = 0.05
    CHECK_RTO_MAX = 0.5
    CONNECT_TIMEOUT = 20.0
    CONSENT_INTERVAL = 5.0
    CONSENT_TIMEOUT = 30.0

    def __init__(
        self,
        *,
        context: SSL.Context,
        local_ufrag: str,
        local_pwd: str,
        remote: RemoteDescription,
        tie_breaker: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.local_ufrag = local_ufrag
        self.local_pwd = local_pwd
        self.remote = remote
        self.state = PeerState.NEW
        self.failure: str | None = None
        self.srtp: SrtpContext | None = None
        self._key = remote.ice_pwd.encode()
        self._tie_breaker = tie_breaker if tie_breaker is not None else secrets.randbits(64)
        self._rng = rng or random.Random()
        self.dtls = DtlsEndpoint(
            context, is_server=remote.setup == "active", remote_fingerprints=remote.fingerprints
        )
        self._outgoing: list[bytes] = []
        self._transactions: dict[bytes, bool] = {}  # id -> nominating
        self._rto = self.CHECK_RTO
        self._next_check: float | None = None
        self._next_consent: float | None = None
        self._deadline: float | None = None
        self.last_response: float | None = None
        self.checks_sent = 0

    # --- input ---------------------------------------------------------------------
    def start(self, now: float) -> None:
        if self.state is not PeerState.NEW:
            return
        self.state = PeerState.CHECKING
        self._deadline = now + self.CONNECT_TIMEOUT
        self._send_check(now, nominate=True)

    def receive(self, data: bytes, now: float) -> None:
        """A STUN or DTLS datagram from the remote (SRTP goes to ``srtp`` directly)."""
        if not data or self.state in (PeerState.FAILED, PeerState.CLOSED):
            return
        first = data[0]
        if first < 4:
            self._on_stun(data, now)
        elif 19 < first < 64:
            self.dtls.receive(data, now)
            self._after_dtls()

    def handle_timer(self, now: float) -> None:
        if self.state in (PeerState.FAILED, PeerState.CLOSED):
            return
        if self._deadline is not None and now >= self._deadline:
            self._fail(
                f"not connected within {self.CONNECT_TIMEOUT:.0f} s (state {self.state.value})"
            )
            return
        due = self._next_check
        if self.state is PeerState.CHECKING and due is not None and now >= due:
            self._rto = min(self._rto * 2, self.CHECK_RTO_MAX)
            self._send_check(now, nominate=True)
        timer = self.dtls.get_timer()
        if timer is not None and now >= timer:
            self.dtls.handle_timer(now)
            self._after_dtls()
        if self._next_consent is not None and now >= self._next_consent:
            if self.last_response is not None and now - self.last_response > self.CONSENT_TIMEOUT:
                self._fail("consent expired: no STUN response for 30 s (RFC 7675)")
                return
            self._send_check(now, nominate=False)
            self._next_consent = now + self.CONSENT_INTERVAL * self._rng.uniform(0.8, 1.2)

    def close(self) -> None:
        if self.state is PeerState.CLOSED:
            return
        self.dtls.close()
        self._outgoing.extend(self.dtls.datagrams_to_send())
        self.state = PeerState.CLOSED

    # --- output -----------------------------------------------------------------------
    def datagrams_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        if self.state in (PeerState.FAILED, PeerState.CLOSED):
            return None
        candidates = [
            t
            for t in (
                self._deadline,
                self._next_check if self.state is PeerState.CHECKING else None,
                self.dtls.get_timer(),
                self._next_consent,
            )
            if t is not None
        ]
        return min(candidates) if candidates else None

    # --- internals ----------------------------------------------------------------------
    def _send_check(self, now: float, *, nominate: bool) -> None:
        message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        message.attributes["USERNAME"] = f"{self.remote.ice_ufrag}:{self.local_ufrag}"
        message.attributes["PRIORITY"] = PRFLX_PRIORITY
        message.attributes["ICE-CONTROLLING"] = self._tie_breaker
        if nominate:
            message.attributes["USE-CANDIDATE"] = None
        message.add_message_integrity(self._key)
        self._transactions[message.transaction_id] = nominate
        if len(self._transactions) > 64:
            del self._transactions[next(iter(self._transactions))]
        self._outgoing.append(bytes(message))
        self.checks_sent += 1
        if self.state is PeerState.CHECKING:
            self._next_check = now + self._rto

    def _on_stun(self, data: bytes, now: float) -> None:
        try:
            message = stun.parse_message(data)
        except Exception:  # aioice raises several types on garbage
            return
        if message.message_method != stun.Method.BINDING:
            return
        if message.message_class != stun.Class.RESPONSE:
            return  # error responses and requests: an ICE-lite server sends neither here
        if message.transaction_id not in self._transactions:
            return
        if not message.check_message_integrity(self._key):
            return
        self._transactions.pop(message.transaction_id)
        self.last_response = now
        if self.state is PeerState.CHECKING:
            self.state = PeerState.HANDSHAKING
            self._next_check = None
            self._next_consent = now + self.CONSENT_INTERVAL * self._rng.uniform(0.8, 1.2)
            if not self.dtls.is_server:
                self.dtls.start(now)
                self._after_dtls()

    def _after_dtls(self) -> None:
        self._outgoing.extend(self.dtls.datagrams_to_send())
        if self.dtls.state is DtlsState.CONNECTED and self.srtp is None:
            assert self.dtls.srtp_keys is not None
            self.srtp = SrtpContext(self.dtls.srtp_keys)
            self.state = PeerState.CONNECTED
            self._deadline = None
        elif self.dtls.state is DtlsState.FAILED:
            self._fail(self.dtls.failure or "DTLS failed")
        elif self.dtls.state is DtlsState.CLOSED and self.state is PeerState.CONNECTED:
            self.state = PeerState.CLOSED

    def _fail(self, reason: str) -> None:
        self.state = PeerState.FAILED
        self.failure = reason


# --- asyncio adapters ---------------------------------------------------------------------


class PeerError(RuntimeError):
    """Signalling or connection failure of a synthetic peer."""


class LatencyRecorder:
    """One-way delay samples in microseconds, shared by the peers of one process."""

    def __init__(self) -> None:
        self.active = False
        self.samples: array.array[int] = array.array("q")


class SyntheticPeer(asyncio.DatagramProtocol):
    """The asyncio edge of a :class:`PeerCore`: a connected UDP socket and a timer."""

    publish = False

    def __init__(self, *, context: SSL.Context, fingerprint: str, identity: str) -> None:
        self.context = context
        self.fingerprint = fingerprint
        self.identity = identity
        self.core: PeerCore | None = None
        self.location: str | None = None
        self._token = ""
        self.local_address: Address | None = None
        self.socket_inode = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._connected: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._srtp: SrtpContext | None = None

    @property
    def connected(self) -> bool:
        return self._srtp is not None

    def local_streams(self) -> LocalStreams | None:
        return None

    async def connect(
        self, http: aiohttp.ClientSession, url: str, token: str, timeout: float = 20.0
    ) -> None:
        """POST the offer to ``url`` (WHIP or WHEP), then ICE and DTLS until SRTP is ready."""
        loop = self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.local_address = sock.getsockname()
            self.socket_inode = os.fstat(sock.fileno()).st_ino
            ufrag, pwd = random_ice_string(8), random_ice_string(24)
            assert self.local_address is not None
            offer = build_offer(
                publish=self.publish,
                ice_ufrag=ufrag,
                ice_pwd=pwd,
                fingerprint=self.fingerprint,
                candidate=self.local_address,
                streams=self.local_streams(),
            )
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
            async with http.post(url, data=offer.encode(), headers=headers) as response:
                body = await response.text()
                if response.status != 201:
                    raise PeerError(f"POST {url} -> {response.status}: {body.strip()[:300]}")
                location = response.headers.get("Location")
            if location:
                self.location = str(response.url.join(URL(location)))
            remote = parse_answer(body)
            sock.connect(remote.address)
            self._transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._token = token
        self.core = PeerCore(context=self.context, local_ufrag=ufrag, local_pwd=pwd, remote=remote)
        self._connected = loop.create_future()
        self.core.start(loop.time())
        self._pump()
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), timeout)
        except TimeoutError:
            state = self.core.state.value
            raise PeerError(
                f"{self.identity}: not connected after {timeout:.0f} s ({state})"
            ) from None

    def on_connected(self) -> None:
        """SRTP is ready."""

    async def close(self, http: aiohttp.ClientSession | None = None) -> bool:
        """Leave: DELETE the session resource (RFC 9725 §4.2), then close_notify and the socket.

        Returns whether the server accepted the DELETE.
        """
        deleted = False
        if http is not None and self.location is not None:
            headers = {"Authorization": f"Bearer {self._token}"}
            try:
                async with http.delete(self.location, headers=headers) as response:
                    await response.read()
                    deleted = response.status == 200
                    if not deleted:
                        log.warning("%s: DELETE -> %s", self.identity, response.status)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("%s: DELETE failed: %s", self.identity, exc)
        self.shutdown()
        return deleted

    def shutdown(self) -> None:
        if self.core is not None:
            self.core.close()
            self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._srtp = None

    # --- datagrams ---------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None:
            transport.sendto(data)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.core is not None and self._loop is not None:
            self.core.receive(data, self._loop.time())
            self._pump()

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: UDP error %s", self.identity, exc)

    # --- internals ----------------------------------------------------------------------
    def _flush(self) -> None:
        assert self.core is not None
        for datagram in self.core.datagrams_to_send():
            self.send(datagram)

    def _pump(self) -> None:
        core = self.core
        loop = self._loop
        if core is None or loop is None:
            return
        self._flush()
        if core.srtp is not None and self._srtp is None:
            self._srtp = core.srtp
            self.on_connected()
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(None)
        elif (
            core.state is PeerState.FAILED
            and self._connected is not None
            and not self._connected.done()
        ):
            self._connected.set_exception(PeerError(f"{self.identity}: {core.failure}"))
        when = core.get_timer()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = when
            if when is not None:
                self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.core is not None and self._loop is not None:
            self.core.handle_timer(self._loop.time())
            self._pump()


class SyntheticPublisher(SyntheticPeer):
    """Sends paced VP8-like video and Opus-like audio; answers PLI and FIR with a keyframe."""

    publish = True

    def __init__(
        self,
        *,
        context: SSL.Context,
        fingerprint: str,
        identity: str,
        video: VideoSettings | None = None,
    ) -> None:
        super().__init__(context=context, fingerprint=fingerprint, identity=identity)
        ssrcs = random.sample(range(1, 1 << 32), 4)
        self.streams = LocalStreams(
            audio_ssrc=ssrcs[0],
            video_ssrc=ssrcs[1],
            rtx_ssrc=ssrcs[2],
            cname=secrets.token_hex(8),
            stream_id=secrets.token_hex(6),
        )
        self.rtcp_ssrc = ssrcs[3]
        self.video = VideoSource(self.streams.video_ssrc, video)
        self.audio = AudioSource(self.streams.audio_ssrc)
        self.keyframe_requests = 0
        self.late_ticks = 0
        self.rtcp_received = 0
        self._protect: Callable[[bytes], bytes] | None = None
        self._handles: list[asyncio.TimerHandle] = []
        self._next_video = 0.0
        self._next_audio = 0.0
        self._last_video_send = 0.0
        self._last_audio_send = 0.0

    def local_streams(self) -> LocalStreams:
        return self.streams

    def on_connected(self) -> None:
        assert self._srtp is not None and self._loop is not None
        self._protect = self._srtp.protect_rtp
        now = self._loop.time()
        self._next_video = now
        self._next_audio = now
        self._video_tick()
        self._audio_tick()
        self._handles.append(self._loop.call_later(0.5, self._rtcp_tick))

    def shutdown(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        self._protect = None
        super().shutdown()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        srtp = self._srtp
        if srtp is not None and 127 < data[0] < 192 and is_rtcp(data):
            try:
                packets = parse_rtcp(srtp.unprotect_rtcp(data))
            except (SrtpError, ValueError):
                return
            self.rtcp_received += 1
            self._on_rtcp(packets)
            return
        super().datagram_received(data, addr)

    def _on_rtcp(self, packets: list[RtcpPacket]) -> None:
        video = self.streams.video_ssrc
        for p in packets:
            if (isinstance(p, Pli) and p.media_ssrc == video) or (
                isinstance(p, Fir) and any(ssrc == video for ssrc, _ in p.entries)
            ):
                self.keyframe_requests += 1
                self.video.request_keyframe()

    def _send_media(self, packet: StampedPacket) -> None:
        protect = self._protect
        if protect is not None:
            self.send(protect(packet.restamp(time.monotonic_ns())))

    def _reschedule(self, due: float, period: float, callback: Callable[[], None]) -> float:
        assert self._loop is not None
        now = self._loop.time()
        due += period
        if due < now - period:  # starved for more than a period: skip, as an encoder would
            self.late_ticks += 1
            due = now + period
        self._handles = [h for h in self._handles if not h.cancelled()]
        self._handles.append(self._loop.call_at(due, callback))
        return due

    def _video_tick(self) -> None:
        if self._protect is None or self._loop is None:
            return
        for packet in self.video.next_frame(time.monotonic_ns()):
            self._send_media(packet)
        self._last_video_send = self._loop.time()
        period = 1.0 / self.video.settings.fps
        self._next_video = self._reschedule(self._next_video, period, self._video_tick)

    def _audio_tick(self) -> None:
        if self._protect is None or self._loop is None:
            return
        self._send_media(self.audio.next_packet(time.monotonic_ns()))
        self._last_audio_send = self._loop.time()
        self._next_audio = self._reschedule(self._next_audio, AudioSource.PTIME, self._audio_tick)

    def _rtcp_tick(self) -> None:
        srtp, loop = self._srtp, self._loop
        if srtp is None or loop is None:
            return
        now = loop.time()
        ntp = ntp_from_unix(time.time())
        reports: list[RtcpPacket] = []
        for source, clock, last in (
            (self.video, VIDEO_CLOCK, self._last_video_send),
            (self.audio, AUDIO_CLOCK, self._last_audio_send),
        ):
            rtp = (source.last_timestamp + round((now - last) * clock)) & 0xFFFFFFFF
            reports.append(
                SenderReport(
                    ssrc=source.ssrc,
                    ntp_timestamp=ntp,
                    rtp_timestamp=rtp,
                    packet_count=source.packets_sent & 0xFFFFFFFF,
                    octet_count=source.octets_sent & 0xFFFFFFFF,
                )
            )
        reports.append(Sdes.from_cname(self.streams.video_ssrc, self.streams.cname))
        self.send(srtp.protect_rtcp(serialize_rtcp(reports)))
        self._handles.append(loop.call_later(1.0, self._rtcp_tick))


_FIXED = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
_STAMP = struct.Struct("!q")
#: at most one keyframe request per this many nanoseconds while waiting for a keyframe
PLI_INTERVAL_NS = 500_000_000


class SyntheticSubscriber(SyntheticPeer):
    """Receives SRTP, counts sequence numbers per SSRC and records one-way delay samples.

    Video counting starts at the first packet of a keyframe (which is where an SFU
    starts a new subscriber); packets before it are counted in ``pre_keyframe``.
    Sends a receiver report every second (RFC 3550 §6.4.2), with LSR/DLSR from
    the server's sender reports so the server can measure the round-trip time.
    """

    def __init__(
        self,
        *,
        context: SSL.Context,
        fingerprint: str,
        identity: str,
        recorder: LatencyRecorder,
    ) -> None:
        super().__init__(context=context, fingerprint=fingerprint, identity=identity)
        self.recorder = recorder
        self.streams: dict[int, StreamCounter] = {}
        self.packets = 0
        self.srtp_errors = 0
        self.pre_keyframe = 0
        self.rtcp_received = 0
        self.plis_sent = 0
        self._last_pli_ns = -PLI_INTERVAL_NS
        self.rtcp_ssrc = random.randrange(1, 1 << 32)
        self._unprotect: Callable[[bytes], bytes] | None = None
        self._last_sr: dict[int, tuple[int, float]] = {}  # ssrc -> (compact NTP, arrival)
        self._reported: dict[int, tuple[int, int]] = {}  # ssrc -> (expected, received)
        self._rr: asyncio.TimerHandle | None = None

    @property
    def receiving(self) -> bool:
        """Audio and video both flowing."""
        kinds = {s.video for s in self.streams.values()}
        return kinds == {True, False}

    def on_connected(self) -> None:
        assert self._srtp is not None and self._loop is not None
        self._unprotect = self._srtp.unprotect_rtp
        self._rr = self._loop.call_later(random.uniform(0.5, 1.5), self._send_rr)

    def shutdown(self) -> None:
        if self._rr is not None:
            self._rr.cancel()
            self._rr = None
        self._unprotect = None
        super().shutdown()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        unprotect = self._unprotect
        if unprotect is None or not 127 < data[0] < 192:
            super().datagram_received(data, addr)
            return
        if 191 < data[1] < 224:
            self._on_rtcp(data)
            return
        try:
            plain = unprotect(data)
        except SrtpError:
            self.srtp_errors += 1
            return
        now_ns = time.monotonic_ns()
        b0, b1, seq, _ts, ssrc = _FIXED.unpack_from(plain)
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            offset += 4 + 4 * _U16.unpack_from(plain, offset + 2)[0]
        video = (b1 & 0x7F) == VIDEO_PT
        stream = self.streams.get(ssrc)
        if stream is None:
            if video and not is_vp8_keyframe_start(plain, offset):
                self._before_keyframe(ssrc, now_ns)
                return
            self.streams[ssrc] = StreamCounter(seq, video)
        else:
            stream.on_packet(seq)
        self.packets += 1
        recorder = self.recorder
        if recorder.active:
            sent = _STAMP.unpack_from(plain, stamp_offset(plain, offset, video))[0]
            recorder.samples.append((now_ns - sent) // 1000)

    def _before_keyframe(self, ssrc: int, now_ns: int) -> None:
        """Video that starts mid-GOP: ask for a keyframe, as a browser's decoder would."""
        self.pre_keyframe += 1
        srtp = self._srtp
        if srtp is not None and now_ns - self._last_pli_ns >= PLI_INTERVAL_NS:
            self._last_pli_ns = now_ns
            self.plis_sent += 1
            packet = serialize_rtcp([Pli(sender_ssrc=self.rtcp_ssrc, media_ssrc=ssrc)])
            self.send(srtp.protect_rtcp(packet))

    def _on_rtcp(self, data: bytes) -> None:
        srtp, loop = self._srtp, self._loop
        if srtp is None or loop is None:
            return
        try:
            packets = parse_rtcp(srtp.unprotect_rtcp(data))
        except (SrtpError, ValueError):
            self.srtp_errors += 1
            return
        self.rtcp_received += 1
        now = loop.time()
        for p in packets:
            if isinstance(p, SenderReport):
                self._last_sr[p.ssrc] = (ntp_compact(p.ntp_timestamp), now)

    def _send_rr(self) -> None:
        srtp, loop = self._srtp, self._loop
        if srtp is None or loop is None:
            return
        now = loop.time()
        blocks = []
        for ssrc, stream in list(self.streams.items())[:31]:
            expected = stream.highest - stream.first + 1
            lost = expected - stream.received
            prev_expected, prev_received = self._reported.get(ssrc, (0, 0))
            interval_expected = expected - prev_expected
            interval_lost = interval_expected - (stream.received - prev_received)
            fraction = (
                min(255, (interval_lost << 8) // interval_expected)
                if interval_expected > 0 and interval_lost > 0
                else 0
            )
            self._reported[ssrc] = (expected, stream.received)
            lsr, arrival = self._last_sr.get(ssrc, (0, now))
            blocks.append(
                ReportBlock(
                    ssrc=ssrc,
                    fraction_lost=fraction,
                    packets_lost=max(-0x800000, min(0x7FFFFF, lost)),
                    highest_sequence=stream.highest & 0xFFFFFFFF,
                    jitter=0,
                    lsr=lsr,
                    dlsr=round((now - arrival) * 65536) if lsr else 0,
                )
            )
        packet = serialize_rtcp([ReceiverReport(ssrc=self.rtcp_ssrc, reports=blocks)])
        self.send(srtp.protect_rtcp(packet))
        self._rr = loop.call_later(1.0, self._send_rr)
