"""One peer connection on a media worker: ICE-lite, DTLS-SRTP and its tracks.

A PeerSession is the worker's side of one WHIP or WHEP session (later, of a
participant's single peer connection carrying both directions). It owns the
sans-IO transport pieces, turns decrypted RTP into UpTrack input, sends
DownTrack output, and runs the RTCP schedule: RR + REMB towards publishers,
SR towards subscribers, PLI/FIR relayed upstream through the throttle.
The worker calls ``on_*`` with datagrams and ``tick`` with the time; the only
output is the ``sendto`` callable it was given.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from interlive.protection.rtx import RtxReceiver
from interlive.rtp import extensions as ext
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    parse_rtcp,
    serialize_rtcp,
)
from interlive.sfu.metrics import WorkerCounters
from interlive.sfu.room import Room, Subscription
from interlive.sfu.tracks import Codec, DownTrack, UpTrack
from interlive.transport.dtls import DtlsEndpoint, DtlsState
from interlive.transport.ice import Address, IceEvent, IceLiteResponder, StunError
from interlive.transport.plain import RtpCrypto
from interlive.transport.srtp import SrtpContext, SrtpError
from interlive.worker.settings import MediaSettings

log = logging.getLogger(__name__)

RTCP_INTERVAL = 1.0
#: a session whose ICE never completes is dropped after this long
CONNECT_TIMEOUT = 30.0
#: a plain-RTP session that hears nothing from its remote for this long is closed
PLAIN_TIMEOUT = 30.0
SDES_CNAME = 1


@dataclass
class RecvMedia:
    """A media section the server receives on (the publisher's sendonly m-line)."""

    mid: str
    kind: str
    codecs: list[Codec]
    extensions: dict[str, int]
    ssrcs: set[int] = field(default_factory=set)
    #: RTX SSRC -> the media SSRC it repairs (a=ssrc-group:FID)
    rtx_ssrcs: dict[int, int] = field(default_factory=dict)
    remb: bool = False
    nack: bool = False


@dataclass
class SendMedia:
    """A media section the server sends on (the viewer's recvonly m-line)."""

    mid: str
    kind: str
    codecs: list[Codec]
    extensions: dict[str, int]
    ssrc: int
    rtx_ssrc: int | None = None
    nack: bool = False


@dataclass
class MediaPlan:
    recv: list[RecvMedia]
    send: list[SendMedia]
    remote_fingerprints: list[tuple[str, str]]
    dtls_server: bool
    cname: str = field(default_factory=lambda: secrets.token_hex(8))


class PeerSession:
    #: called with every audio packet received (the worker's active-speaker detection)
    on_audio: Callable[[PeerSession, UpTrack, RtpPacket, float], None] | None = None

    def __init__(
        self,
        *,
        sid: str,
        room: Room,
        identity: str,
        mode: str,
        plan: MediaPlan,
        ice: IceLiteResponder | None,
        dtls: DtlsEndpoint | None,
        sendto: Callable[[bytes, Address], None],
        counters: WorkerCounters,
        now: float,
        only: str | None = None,
        settings: MediaSettings | None = None,
        crypto: RtpCrypto | None = None,
        remote: Address | None = None,
    ) -> None:
        """A WebRTC session (``ice`` and ``dtls``), or a plain-RTP one (``crypto`` and ``remote``).

        A plain session (no ICE, no DTLS: see ``transport/plain.py``) is connected
        from the start to its one fixed ``remote`` address.
        """
        self.sid = sid
        self.room = room
        self.identity = identity
        self.mode = mode
        self.plan = plan
        self.ice = ice
        self.dtls = dtls
        self.srtp: RtpCrypto | None = crypto
        self.addr: Address | None = remote
        #: last time anything came from the peer (the liveness of plain sessions)
        self.last_heard = now
        self.created = now
        self.closed = False
        self.close_reason: str | None = None
        self.counters = counters
        self.settings = settings or MediaSettings()
        self.rtcp_ssrc = secrets.randbits(32) or 1
        self._sendto = sendto
        self._next_rtcp = now + RTCP_INTERVAL / 2
        self._mid_by_ssrc: dict[int, RecvMedia] = {}
        self._rtx_ssrcs: dict[int, int] = {}
        self._rtx = RtxReceiver()
        for media in plan.recv:
            for ssrc in media.ssrcs:
                self._mid_by_ssrc[ssrc] = media
            self._rtx_ssrcs.update(media.rtx_ssrcs)
        self.uptracks: dict[int, UpTrack] = {}
        self._published_mids: set[str] = set()
        self._up_mids: dict[int, str] = {}
        self.downtracks: dict[int, DownTrack] = {
            m.ssrc: DownTrack(
                identity=identity,
                kind=m.kind,
                mid=m.mid,
                ssrc=m.ssrc,
                codecs=m.codecs,
                extensions=m.extensions,
                transport=self,
                counters=counters,
                rtx_ssrc=m.rtx_ssrc,
                protection=self.settings.loss_protection,
                max_playout_delay=self.settings.max_playout_delay,
                nack=m.nack,
            )
            for m in plan.send
        }
        # The subscription joins the room once SRTP is up: slots filled earlier would
        # ask for a keyframe that arrives before the transport can carry it.
        self.subscription: Subscription | None = None
        if self.downtracks:
            self.subscription = Subscription(identity, list(self.downtracks.values()), only)
        self._subscribed = False
        if self.srtp is not None and self.subscription is not None:  # plain: connected already
            self._subscribed = True
            self.room.subscribe(self.subscription, now)
        #: the next time ``tick`` has work to do
        self.wake = now

    @property
    def plain(self) -> bool:
        """A plain-RTP session: no ICE, no DTLS, one fixed remote address."""
        return self.ice is None

    # --- datagrams in --------------------------------------------------------
    def on_stun(self, data: bytes, addr: Address, now: float) -> IceEvent:
        if self.ice is None or self.dtls is None:
            self.counters.drop("stun_on_plain")
            return IceEvent.NONE
        try:
            result = self.ice.handle_request(data, addr, now)
        except StunError as exc:
            self.counters.drop("stun_rejected")
            log.debug("%s: STUN from %s rejected: %s", self.sid, addr, exc)
            return IceEvent.NONE
        self._sendto(result.response, addr)
        if result.event is IceEvent.NOMINATED or self.addr is None:
            self.addr = addr
            if not self.plan.dtls_server and self.dtls.state is DtlsState.NEW:
                self.dtls.start(now)
                self._flush_dtls()
                self.wake = now
        return result.event

    def on_dtls(self, data: bytes, addr: Address, now: float) -> None:
        if self.dtls is None:
            self.counters.drop("dtls_on_plain")
            return
        if self.addr is None:
            self.addr = addr
        self.dtls.receive(data, now)
        self._flush_dtls()
        self.wake = now  # the retransmission timer moved: let the next tick re-arm
        if self.dtls.state is DtlsState.CONNECTED and self.srtp is None:
            assert self.dtls.srtp_keys is not None
            self.srtp = SrtpContext(self.dtls.srtp_keys)
            log.info("%s: DTLS connected (%s)", self.sid, self.srtp.profile)
            if self.subscription is not None and not self._subscribed:
                self._subscribed = True
                self.room.subscribe(self.subscription, now)
            self.wake = now
        elif self.dtls.state is DtlsState.FAILED:
            self.counters.drop("dtls_failed")
            log.warning("%s: %s", self.sid, self.dtls.failure)
            self.close(f"dtls-failed: {self.dtls.failure}")
        elif self.dtls.state is DtlsState.CLOSED and not self.closed:
            self.close("dtls-closed")

    def on_srtp(self, data: bytes, now: float, *, rtcp: bool) -> None:
        self.last_heard = now
        if self.srtp is None:
            self.counters.drop("srtp_before_dtls")
            return
        if rtcp:
            try:
                plain = self.srtp.unprotect_rtcp(data)
                packets = parse_rtcp(plain)
            except (SrtpError, ValueError):
                self.counters.drop("bad_rtcp")
                return
            self.counters.rtcp_in += 1
            self._on_rtcp(packets, now)
            return
        try:
            plain = self.srtp.unprotect_rtp(data)
            packet = RtpPacket.parse(plain)
        except SrtpError:
            self.counters.drop("srtp_unprotect")
            return
        except ValueError:
            self.counters.drop("bad_rtp")
            return
        up = self.uptracks.get(packet.ssrc)
        if up is None:
            media_ssrc = self._rtx_ssrcs.get(packet.ssrc)
            if media_ssrc is not None:
                self._on_rtx(packet, media_ssrc, now)
                return
            up = self._bind_ssrc(packet, now)
            if up is None:
                return
        up.on_rtp(packet, now)
        if self.on_audio is not None and up.kind == "audio":
            self.on_audio(self, up, packet, now)

    def _on_rtx(self, packet: RtpPacket, media_ssrc: int, now: float) -> None:
        """A publisher's retransmission (RFC 4588): back into the media stream it repairs."""
        up = self.uptracks.get(media_ssrc)
        if up is None:
            self.counters.drop("rtx_before_media")
            return
        try:
            original = self._rtx.unwrap(packet, media_ssrc, up.rtx_apt)
            if original is None:
                self.counters.drop("rtx_padding")  # a bandwidth probe
                return
            repaired = RtpPacket.parse(original)
        except ValueError:
            self.counters.drop("bad_rtx")
            return
        self.counters.rtx_received += 1
        up.on_rtp(repaired, now, retransmitted=True)

    def _bind_ssrc(self, packet: RtpPacket, now: float) -> UpTrack | None:
        """First packet of an SSRC: find its m-line (a=ssrc, MID extension, or payload type)."""
        media = self._mid_by_ssrc.get(packet.ssrc)
        if media is None:
            for m in self.plan.recv:
                mid_id = m.extensions.get(ext.MID)
                value = packet.extensions.get(mid_id) if mid_id is not None else None
                if value is not None and value.decode("ascii", "replace") == m.mid:
                    media = m
                    break
        if media is None:
            owners = [
                m
                for m in self.plan.recv
                if any(c.payload_type == packet.payload_type for c in m.codecs)
            ]
            if len(owners) == 1:
                media = owners[0]
        if media is None:
            self.counters.drop("unknown_ssrc")
            return None
        if media.mid in self._published_mids:
            # One track per m-line until simulcast layers are handled (a later issue).
            self.counters.drop("extra_ssrc")
            return None
        up = UpTrack(
            identity=self.identity,
            kind=media.kind,
            ssrc=packet.ssrc,
            codecs=media.codecs,
            extensions=media.extensions,
            upstream=self,
            rtcp_ssrc=self.rtcp_ssrc,
            counters=self.counters,
            nack=media.nack,
        )
        self.uptracks[packet.ssrc] = up
        self._published_mids.add(media.mid)
        self._up_mids[packet.ssrc] = media.mid
        self.room.publish(up, now)
        log.info("%s: %s publishes %s ssrc=%d", self.sid, self.identity, media.kind, packet.ssrc)
        return up

    def _on_rtcp(self, packets: Sequence[RtcpPacket], now: float) -> None:
        for p in packets:
            if isinstance(p, SenderReport):
                up = self.uptracks.get(p.ssrc)
                if up is not None:
                    up.on_sender_report(p, now)
                self._on_report_blocks(p.reports, now)
            elif isinstance(p, ReceiverReport):
                self._on_report_blocks(p.reports, now)
            elif isinstance(p, Pli):
                down = self.downtracks.get(p.media_ssrc)
                if down is not None:
                    down.on_keyframe_request(now)
            elif isinstance(p, Fir):
                for ssrc, _seq in p.entries:
                    down = self.downtracks.get(ssrc)
                    if down is not None:
                        down.on_keyframe_request(now)
            elif isinstance(p, Nack):
                down = self.downtracks.get(p.media_ssrc)
                if down is not None:
                    down.on_nack(p.lost, now)
            elif isinstance(p, Bye):
                for ssrc in p.sources:
                    up = self.uptracks.pop(ssrc, None)
                    if up is not None:
                        self._published_mids.discard(self._up_mids.pop(ssrc, ""))
                        self.room.unpublish(up, now)

    def _on_report_blocks(self, blocks: Sequence[ReportBlock], now: float) -> None:
        for block in blocks:
            down = self.downtracks.get(block.ssrc)
            if down is not None:
                down.on_report_block(block, now)

    # --- datagrams out (RtpSink) ---------------------------------------------
    def send_rtp(self, packet: bytes) -> None:
        if self.srtp is None or self.addr is None or self.closed:
            self.counters.drop("transport_not_ready")
            return
        data = self.srtp.protect_rtp(packet)
        self.counters.packets_out += 1
        self.counters.bytes_out += len(data)
        self._sendto(data, self.addr)

    def send_rtcp(self, packets: Sequence[RtcpPacket]) -> None:
        if self.srtp is None or self.addr is None or self.closed:
            return
        data = self.srtp.protect_rtcp(serialize_rtcp(list(packets)))
        self.counters.rtcp_out += 1
        self._sendto(data, self.addr)

    def _flush_dtls(self) -> None:
        if self.addr is None or self.dtls is None:
            return
        for datagram in self.dtls.datagrams_to_send():
            self._sendto(datagram, self.addr)

    # --- time ----------------------------------------------------------------
    def tick(self, now: float, ntp_now: int) -> None:
        """Timers: consent, DTLS retransmission, RTCP. Cheap to call early; see ``wake``."""
        if self.closed or now < self.wake:
            return
        if self.ice is None:
            if now - self.last_heard > PLAIN_TIMEOUT:
                self.close("plain-timeout", now)
                return
        elif self.ice.consent_expired(now) or (
            self.ice.last_consent is None and now - self.created > CONNECT_TIMEOUT
        ):
            self.close("ice-consent-timeout", now)
            return
        dtls = self.dtls
        timer = dtls.get_timer() if dtls is not None else None
        if dtls is not None and timer is not None and now >= timer:
            dtls.handle_timer(now)
            self._flush_dtls()
        if now >= self._next_rtcp and self.srtp is not None:
            self._next_rtcp = now + RTCP_INTERVAL
            self._send_reports(now, ntp_now)
        # Consent and connect deadlines are checked at RTCP granularity at the latest.
        wake = self._next_rtcp if self.srtp is not None else now + 0.25
        timer = dtls.get_timer() if dtls is not None else None
        if timer is not None:
            wake = min(wake, timer)
        self.wake = wake

    def _send_reports(self, now: float, ntp_now: int) -> None:
        sdes = Sdes(
            chunks=[SdesChunk(ssrc=self.rtcp_ssrc, items=[(SDES_CNAME, self.plan.cname.encode())])]
        )
        if self.uptracks:
            blocks = [b for up in self.uptracks.values() if (b := up.report_block(now)) is not None]
            packets: list[RtcpPacket] = [
                ReceiverReport(ssrc=self.rtcp_ssrc, reports=blocks[:31]),
                sdes,
            ]
            video = [s for s, up in self.uptracks.items() if up.is_video]
            if video and any(m.remb for m in self.plan.recv):
                packets.append(
                    Remb(
                        sender_ssrc=self.rtcp_ssrc,
                        bitrate=self.settings.max_publish_bitrate,
                        ssrcs=video,
                    )
                )
            self.send_rtcp(packets)
        reports = [sr for d in self.downtracks.values() if (sr := d.sender_report(now, ntp_now))]
        if reports:
            sdes_chunks = [
                SdesChunk(ssrc=sr.ssrc, items=[(SDES_CNAME, self.plan.cname.encode())])
                for sr in reports
            ]
            self.send_rtcp([*reports, Sdes(chunks=sdes_chunks)])

    # --- lifetime --------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """The session's streams both ways, for ``GET .../sessions/{sid}/stats``."""
        return {
            "sid": self.sid,
            "room": self.room.name,
            "identity": self.identity,
            "mode": self.mode,
            "transport": "plain" if self.plain else "webrtc",
            "connected": self.srtp is not None,
            "published": [up.describe() for up in self.uptracks.values()],
            "subscribed": [down.describe() for down in self.downtracks.values()],
        }

    def close(self, reason: str, now: float | None = None) -> None:
        if self.closed:
            return
        when = self.created if now is None else now
        if self.srtp is not None and self.addr is not None:
            ssrcs = [*self.uptracks, *self.downtracks]
            if ssrcs:
                self.send_rtcp([Bye(sources=ssrcs[:31], reason=None)])
        self.closed = True
        self.close_reason = reason
        for up in list(self.uptracks.values()):
            self.room.unpublish(up, when)
        self.uptracks.clear()
        if self.subscription is not None and self._subscribed:
            self.room.unsubscribe(self.subscription)
        if self.dtls is not None:
            self.dtls.close()
            self._flush_dtls()
        log.info("%s: closed (%s)", self.sid, reason)
