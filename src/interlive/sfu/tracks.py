"""Published tracks (UpTrack) and their per-subscriber copies (DownTrack).

An UpTrack is what the server receives from a publisher: one SSRC, parsed
once per packet into sequence/keyframe facts, fanned out to DownTracks. A
DownTrack is one subscriber's view of a source: its own SSRC, payload type and
header-extension ids, and a Forwarder that keeps its numbering contiguous when
the source pauses or changes (mediasoup's Producer/Consumer, LiveKit's
receiver/DownTrack). Neither knows sockets: a transport object sends.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from interlive.codecs.descriptor import FrameInfo, PayloadError, descriptor_parser_for
from interlive.protection.nack import NackGenerator
from interlive.protection.red import (
    RedBlock,
    RedEncoder,
    decode_red,
    encode_red,
    red_primary,
    strip_red,
    unpadded,
    wrap_red,
)
from interlive.protection.rtx import RtxSender
from interlive.protection.ulpfec import FecDecoder, FecEncoder
from interlive.protection.viewer import (
    DEFAULT_MAX_PLAYOUT_DELAY,
    LossProtection,
    ViewerProtection,
)
from interlive.rtp import extensions as ext
from interlive.rtp.errors import RtpError
from interlive.rtp.ntp import ntp_compact
from interlive.rtp.packet import RtpPacket, rewrite_rtp
from interlive.rtp.rtcp import Bye, Nack, Pli, ReportBlock, RtcpPacket, SenderReport
from interlive.rtp.seq import SequenceUnwrapper
from interlive.sfu.forwarder import Drop, Forwarder
from interlive.sfu.history import PacketHistory
from interlive.sfu.keyframe import KeyframeRequester
from interlive.sfu.metrics import WorkerCounters
from interlive.sfu.receiver_stats import ReceiverStats

#: the playout delay's upper limit sent to viewers (seconds): libwebrtc's own default,
#: so asking for a floor never caps how much the viewer's jitter buffer may hold
PLAYOUT_DELAY_CEILING: Final = 10.0
#: extensions that name a stream inside its publisher's session; never forwarded
_SESSION_SCOPED = frozenset({ext.MID, ext.RID, ext.REPAIRED_RID})
_track_ids = itertools.count(1)
#: codecs that carry or protect another codec's packets rather than media of their own
_REPAIR_MIMES = frozenset({"red", "ulpfec", "rtx", "flexfec"})


def _is_repair(codec: Codec) -> bool:
    return codec.mime.split("/", 1)[-1].lower() in _REPAIR_MIMES


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    mime: str  # "video/VP8"
    clock_rate: int
    channels: int | None = None
    fmtp: Mapping[str, str] = field(default_factory=dict)
    rtx_payload_type: int | None = None

    @property
    def kind(self) -> str:
        return self.mime.split("/", 1)[0].lower()


class RtpSink(Protocol):
    """What a track sends through: the subscriber's or publisher's transport."""

    def send_rtp(self, packet: bytes) -> None: ...
    def send_rtcp(self, packets: Sequence[RtcpPacket]) -> None: ...


CodecMatcher = Callable[[Codec, Codec], bool]


def same_codec(a: Codec, b: Codec) -> bool:
    """Whether a packet of codec ``a`` can go out as codec ``b`` (no transcoding)."""
    if a.mime.lower() != b.mime.lower() or a.clock_rate != b.clock_rate:
        return False
    mime = a.mime.lower()
    if mime == "video/h264":  # the receiver's profile must cover the stream's
        from interlive.codecs.h264 import h264_decodable

        return h264_decodable(a.fmtp, b.fmtp)
    if mime == "video/vp9":
        return a.fmtp.get("profile-id", "0") == b.fmtp.get("profile-id", "0")
    return True


class UpTrack:
    # Slots keep attribute loads fast on the per-packet path: past 30 attributes a
    # plain instance dict stops sharing keys and CPython 3.11 de-specialises them.
    __slots__ = (
        "_parse_descriptor",
        "closed",
        "codec",
        "codecs",
        "counters",
        "downtracks",
        "extensions",
        "fec",
        "fec_mutable",
        "id",
        "identity",
        "keyframes",
        "keyframes_received",
        "kind",
        "nack",
        "red_pt",
        "rtcp_ssrc",
        "rtx_apt",
        "ssrc",
        "stats",
        "ulpfec_pt",
        "unwrapper",
        "upstream",
    )

    def __init__(
        self,
        *,
        identity: str,
        kind: str,
        ssrc: int,
        codecs: Sequence[Codec],
        extensions: Mapping[str, int],
        upstream: RtpSink,
        rtcp_ssrc: int,
        counters: WorkerCounters,
        keyframe_interval: float = 1.0,
        nack: bool = False,
    ) -> None:
        self.id = f"TR_{next(_track_ids)}"
        self.identity = identity
        self.kind = kind
        self.ssrc = ssrc
        self.codecs = {c.payload_type: c for c in codecs}
        self.extensions = dict(extensions)
        self.upstream = upstream
        self.rtcp_ssrc = rtcp_ssrc
        self.counters = counters
        self.downtracks: list[DownTrack] = []
        self.codec: Codec | None = None
        self._parse_descriptor: Callable[[bytes], FrameInfo] | None = None
        self.unwrapper = SequenceUnwrapper()
        self.stats = ReceiverStats(codecs[0].clock_rate if codecs else 90000)
        self.keyframes = KeyframeRequester(keyframe_interval)
        self.keyframes_received = 0
        #: RTX payload type -> the media payload type it repairs (RFC 4588 apt)
        self.rtx_apt = {
            c.rtx_payload_type: c.payload_type for c in codecs if c.rtx_payload_type is not None
        }
        # Browsers that negotiated red + ulpfec for video send every packet in RED and
        # their ULPFEC (RFC 5109) as RED blocks in the same sequence space.
        self.red_pt = next((c.payload_type for c in codecs if c.mime.lower() == "video/red"), -1)
        self.ulpfec_pt = next(
            (c.payload_type for c in codecs if c.mime.lower() == "video/ulpfec"), -1
        )
        #: repairs the publisher's losses with NACK when it negotiated it (RFC 4585); a
        #: video packet given up breaks the picture until a keyframe, so ask for one then,
        #: unless the stream has ULPFEC (its FEC packets are not retransmitted: a lost one
        #: would ask for keyframes with the picture intact)
        self.nack = (
            NackGenerator.for_kind(kind, keyframe_on_give_up=kind == "video" and self.ulpfec_pt < 0)
            if nack
            else None
        )
        #: recovers lost packets from the publisher's ULPFEC: it must hold the media
        #: from the start, since a frame's FEC follows the frame
        self.fec = FecDecoder(ssrc) if self.ulpfec_pt >= 0 else None
        #: the publisher computed its FEC with these send-time extensions zeroed
        self.fec_mutable = frozenset(
            i for uri, i in self.extensions.items() if uri in ext.MUTABLE_EXTENSIONS
        )
        self.closed = False

    @property
    def is_video(self) -> bool:
        return self.kind == "video"

    def on_rtp(
        self,
        packet: RtpPacket,
        now: float,
        *,
        retransmitted: bool = False,
        recovered: bool = False,
    ) -> None:
        if packet.payload_type == self.red_pt:
            self._on_video_red(packet, now, retransmitted)
            return
        codec = self.codecs.get(packet.payload_type)
        if codec is None:
            self.counters.drop("unknown_payload_type")
            return
        if codec is not self.codec:
            self.codec = codec
            self.stats.clock_rate = codec.clock_rate
            self._parse_descriptor = descriptor_parser_for(codec.mime)
        ext_seq = self._receive(packet, now, retransmitted or recovered, check=not recovered)
        if ext_seq is None:
            return
        keyframe_start = False
        if self._parse_descriptor is not None:
            try:
                info = self._parse_descriptor(packet.payload)
            except PayloadError:
                self.counters.drop("bad_payload_descriptor")
                return
            if info.is_keyframe:
                keyframe_start = info.start_of_frame
                if keyframe_start:
                    self.keyframes_received += 1
                    self.keyframes.on_keyframe()
        for down in self.downtracks:
            down.forward(self, packet, ext_seq, keyframe_start, now)
        if self.fec is not None and not recovered:
            try:
                found = self.fec.add_media(ext.zero_extensions(packet.data, self.fec_mutable))
            except RtpError:
                self.counters.drop("bad_fec")
                return
            self._deliver_recovered(found, now)

    def _receive(self, packet: RtpPacket, now: float, late: bool, *, check: bool) -> int | None:
        """Account for a packet in the sequence space: statistics, NACK; None if a duplicate."""
        ext_seq = self.unwrapper.unwrap(packet.sequence_number)
        nack = self.nack
        if check and (
            (late and (nack is None or ext_seq not in nack))
            or (nack is not None and nack.repaired(ext_seq))
        ):
            # a retransmission of a packet we have (arrived after all, or given up), or a
            # second copy of one repaired: plain resends (audio) look like any packet
            self.counters.drop("rtx_duplicate")
            return None
        self.stats.on_packet(ext_seq, packet.timestamp, now, len(packet.data))
        if nack is not None:
            nack.on_packet(ext_seq, now, retransmitted=late)
            if len(nack):  # losses pending: NACK as soon as due, not on the next tick
                self._poll_nack(now)
        return ext_seq

    def _on_video_red(self, packet: RtpPacket, now: float, retransmitted: bool) -> None:
        """Unwrap the publisher's video RED: media goes on plain, ULPFEC repairs losses."""
        try:
            block_pt, block = red_primary(packet.payload)
            if block_pt != self.ulpfec_pt:
                plain = RtpPacket.parse(strip_red(packet.data))
        except ValueError:  # RedError or RtpError
            self.counters.drop("bad_red")
            return
        if block_pt != self.ulpfec_pt:
            self.on_rtp(plain, now, retransmitted=retransmitted)
            return
        ext_seq = self._receive(packet, now, retransmitted, check=True)
        if ext_seq is None:
            return
        self.counters.fec_received += 1
        for down in self.downtracks:  # not forwarded: viewers get FEC of their own
            down.forwarder.skip(self, ext_seq)
        if self.fec is None:
            return
        try:
            out = self.fec.add_fec(block, packet.sequence_number, packet.timestamp)
        except ValueError:  # FecError, a malformed FEC header
            self.counters.drop("bad_fec")
            return
        self._deliver_recovered(out, now)

    def _deliver_recovered(self, packets: list[bytes], now: float) -> None:
        for data in packets:
            self.counters.fec_recovered += 1
            self.on_rtp(RtpPacket.parse(data), now, recovered=True)

    def request_keyframe(self, now: float) -> None:
        if self.is_video and self.keyframes.request(now):
            self._send_pli()

    def poll(self, now: float) -> None:
        """Timers: deferred keyframe requests, and NACKs for missing packets."""
        if self.keyframes.poll(now):
            self._send_pli()
        if self.nack is not None:
            self._poll_nack(now)

    def _poll_nack(self, now: float) -> None:
        nack = self.nack
        if nack is not None:
            due = nack.get_timer()
            if due is not None and now >= due:
                request = nack.poll(now)
                lost = request.lost
                if lost:
                    self.counters.nacks_sent += len(lost)
                    # scattered losses need 4 bytes each: keep every RTCP packet well under an MTU
                    self.upstream.send_rtcp(
                        [
                            Nack(
                                sender_ssrc=self.rtcp_ssrc,
                                media_ssrc=self.ssrc,
                                lost=lost[i : i + 200],
                            )
                            for i in range(0, len(lost), 200)
                        ]
                    )
                if request.keyframe:
                    self.request_keyframe(now)

    def _send_pli(self) -> None:
        self.counters.keyframe_requests += 1
        self.upstream.send_rtcp([Pli(sender_ssrc=self.rtcp_ssrc, media_ssrc=self.ssrc)])

    def on_sender_report(self, report: SenderReport, now: float) -> None:
        self.stats.on_sender_report(report.ntp_timestamp, report.rtp_timestamp, now)

    def report_block(self, now: float) -> ReportBlock | None:
        if self.stats.base_seq is None:
            return None
        r = self.stats.report(now)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=r.fraction_lost,
            packets_lost=r.packets_lost,
            highest_sequence=r.highest_sequence,
            jitter=r.jitter,
            lsr=r.lsr,
            dlsr=r.dlsr,
        )

    def describe(self) -> dict[str, object]:
        """What the publisher sent us and how its losses were repaired."""
        fec = self.fec
        return {
            "id": self.id,
            "kind": self.kind,
            "ssrc": self.ssrc,
            "codec": None if self.codec is None else self.codec.mime,
            "packets_received": self.stats.received,
            "packets_lost": self.stats.lost,
            "keyframes_received": self.keyframes_received,
            "fec_recovered": 0 if fec is None else fec.recovered,
            "keyframe_requests_sent": self.keyframes.requests_sent,
            "keyframe_requests_coalesced": self.keyframes.requests_coalesced,
            "nack": None if self.nack is None else self.nack.describe(),
            "subscribers": len(self.downtracks),
        }

    def close(self) -> None:
        self.closed = True
        for down in list(self.downtracks):
            down.detach()


class DownTrack:
    # Slots keep attribute loads fast on the per-packet path: past 30 attributes a
    # plain instance dict stops sharing keys and CPython 3.11 de-specialises them.
    __slots__ = (
        "_ext_map",
        "_fec_key",
        "_fec_mutable",
        "_fec_out",
        "_fec_ts",
        "_last_send_time",
        "_last_ts",
        "_out_pt",
        "_passthrough",
        "_playout",
        "_playout_id",
        "_pt_map",
        "_red",
        "_red_out",
        "_sr_sent",
        "codecs",
        "counters",
        "extensions",
        "fec_encoder",
        "fec_sent",
        "forwarder",
        "fraction_lost",
        "frames_sent",
        "history",
        "identity",
        "jitter",
        "keyframe_requests_received",
        "kind",
        "match",
        "mid",
        "nacks_received",
        "octets_sent",
        "packets_lost",
        "packets_sent",
        "protection",
        "red_encoder",
        "red_sent",
        "rtt",
        "rtx",
        "source",
        "ssrc",
        "transport",
    )

    def __init__(
        self,
        *,
        identity: str,
        kind: str,
        mid: str,
        ssrc: int,
        codecs: Sequence[Codec],
        extensions: Mapping[str, int],
        transport: RtpSink,
        counters: WorkerCounters,
        match: CodecMatcher = same_codec,
        rtx_ssrc: int | None = None,
        protection: LossProtection = "policy",
        max_playout_delay: float = DEFAULT_MAX_PLAYOUT_DELAY,
        nack: bool = True,
    ) -> None:
        self.identity = identity  # the subscriber's
        self.kind = kind
        self.mid = mid
        self.ssrc = ssrc
        self.codecs = list(codecs)
        self.extensions = dict(extensions)
        self.transport = transport
        self.counters = counters
        self.match = match
        clock_rate = self.codecs[0].clock_rate if self.codecs else 90000
        self.forwarder = Forwarder(clock_rate, is_video=kind == "video")
        self.history = PacketHistory()
        rtx_pts = {c.payload_type: c.rtx_payload_type for c in self.codecs if c.rtx_payload_type}
        #: answers the subscriber's NACKs from the history, in RTX when negotiated (RFC 4588)
        self.rtx = RtxSender(
            history=self.history,
            rtx_ssrc=rtx_ssrc if rtx_pts else None,
            rtx_payload_type=rtx_pts if rtx_pts and rtx_ssrc is not None else None,
        )
        self.source: UpTrack | None = None
        self._pt_map: dict[int, int | None] = {}
        self._red: dict[int, tuple[int, dict[int, int] | None]] = {}
        # RED this subscriber can receive (RFC 2198), added when its loss calls for it
        red = next((c for c in self.codecs if c.mime.lower() == "audio/red"), None)
        opus = next((c for c in self.codecs if c.mime.lower() == "audio/opus"), None)
        self._red_out = (red.payload_type, opus.payload_type) if red and opus else None
        self.red_encoder: RedEncoder | None = None
        # ULPFEC this subscriber can receive (RFC 5109 in RED, as browsers negotiate it)
        video_red = next((c for c in self.codecs if c.mime.lower() == "video/red"), None)
        ulpfec = next((c for c in self.codecs if c.mime.lower() == "video/ulpfec"), None)
        self._fec_out = (
            (video_red.payload_type, ulpfec.payload_type) if video_red and ulpfec else None
        )
        self.fec_encoder: FecEncoder | None = None
        #: the viewer zeroes these extensions before FEC recovery, so FEC skips them too
        self._fec_mutable = frozenset(
            i for uri, i in self.extensions.items() if uri in ext.MUTABLE_EXTENSIONS
        )
        self._fec_ts = -1
        self._fec_key = False
        #: the viewer's playout-delay extension id, and the element every packet carries
        #: once a delay was asked for (None: the viewer's buffer is its own business)
        self._playout_id = self.extensions.get(ext.PLAYOUT_DELAY) if kind == "video" else None
        self._playout: dict[int, bytes] | None = None
        self.protection = ViewerProtection(
            "video" if kind == "video" else "audio",
            protection,
            can_fec=self._fec_out is not None,
            can_red=self._red_out is not None,
            # a viewer that cannot be asked to wait is not counted on to wait
            max_playout_delay=max_playout_delay if self._playout_id is not None else 0.0,
            hidden_repairs=self.rtx.rtx_ssrc is None,
            can_nack=nack,
        )
        self.fec_sent = 0
        self.red_sent = 0
        self.frames_sent = 0
        #: payload type of the media last sent (before RED): the codec FEC must suit
        self._out_pt = -1
        self._ext_map: dict[int, int] = {}
        self._passthrough: frozenset[int] = frozenset()
        # sender statistics for SR
        self.packets_sent = 0
        self.octets_sent = 0
        self._last_ts: int | None = None
        self._last_send_time: float | None = None
        self._sr_sent: dict[int, float] = {}  # compact NTP of our SRs -> send time
        # what the subscriber reports
        self.rtt: float | None = None
        self.fraction_lost = 0.0
        self.packets_lost = 0
        self.jitter = 0
        self.keyframe_requests_received = 0
        self.nacks_received = 0

    # --- source management -------------------------------------------------
    def accepts(self, up: UpTrack) -> bool:
        if up.kind != self.kind:
            return False
        return any(self._map_codec(c) is not None for c in up.codecs.values() if not _is_repair(c))

    def attach(self, up: UpTrack, now: float) -> None:
        """Carry ``up`` from its next keyframe; numbering stays contiguous."""
        if self.source is up:
            return
        if self.source is not None:
            self._unlink()
        self.source = up
        self._pt_map = {pt: self._map_codec(c) for pt, c in up.codecs.items()}
        self._red = self._plan_red(up)
        if self.red_encoder is not None:
            self.red_encoder.reset()  # the old source's frames are no use to the new one
        self._ext_map = {}
        for uri, pub_id in up.extensions.items():
            sub_id = self.extensions.get(uri)
            if sub_id is not None and uri not in _SESSION_SCOPED:
                self._ext_map[pub_id] = sub_id
        self._passthrough = frozenset(k for k, v in self._ext_map.items() if k == v)
        self.forwarder.switch_source(up)
        up.downtracks.append(self)
        up.request_keyframe(now)

    def detach(self) -> None:
        if self.source is not None:
            self._unlink()
            self.source = None
            self.forwarder.switch_source(None)

    def _unlink(self) -> None:
        assert self.source is not None
        if self in self.source.downtracks:
            self.source.downtracks.remove(self)

    def _plan_red(self, up: UpTrack) -> dict[int, tuple[int, dict[int, int] | None]]:
        """How this subscriber gets the publisher's RED (RFC 2198) packets, by publisher PT.

        (subscriber RED PT, None): forward as is; (subscriber RED PT, {pub PT: sub PT}):
        rewrite the block payload types; (subscriber primary PT, {}): strip to the primary,
        for a subscriber that did not negotiate RED. Empty when the publisher sends no RED.
        """
        plan: dict[int, tuple[int, dict[int, int] | None]] = {}
        inner = {pt: mapped for pt, mapped in self._pt_map.items() if mapped is not None}
        for pt, codec in up.codecs.items():
            if codec.mime.lower() != "audio/red":
                continue
            sub_red = self._pt_map.get(pt)
            if sub_red is not None:
                renumber = {k: v for k, v in inner.items() if k != pt}
                identity = all(k == v for k, v in renumber.items())
                plan[pt] = (sub_red, None if identity else renumber)
            else:
                primary = next(
                    (m for c in up.codecs.values() if c.mime.lower() == "audio/opus"
                     and (m := self._pt_map.get(c.payload_type)) is not None),
                    None,
                )  # fmt: skip
                if primary is not None:
                    plan[pt] = (primary, {})
        return plan

    def _unred(self, packet: RtpPacket) -> tuple[bytes, int] | None:
        """The packet as this subscriber takes it, and its payload type; None to drop."""
        sub_pt, renumber = self._red[packet.payload_type]
        try:
            if renumber is None:
                return packet.data, sub_pt
            if not renumber:
                return strip_red(packet.data), sub_pt
            blocks = decode_red(packet.payload)
            primary = blocks[-1]
            redundant = [
                RedBlock(
                    renumber.get(b.payload_type, b.payload_type), b.timestamp_offset, b.payload
                )
                for b in blocks[:-1]
            ]
            body = encode_red(
                renumber.get(primary.payload_type, primary.payload_type), primary.payload, redundant
            )
        except ValueError:
            self.counters.drop("bad_red")
            return None
        copy = RtpPacket.parse(packet.data)
        copy.payload = body
        copy.padding_size = 0
        return bytes(copy), sub_pt

    def _map_codec(self, codec: Codec) -> int | None:
        for mine in self.codecs:
            if self.match(codec, mine):
                return mine.payload_type
        return None

    # --- hot path ------------------------------------------------------------
    def forward(
        self, up: UpTrack, packet: RtpPacket, ext_seq: int, keyframe_start: bool, now: float
    ) -> None:
        t = self.forwarder.translate(
            up, ext_seq, packet.timestamp, now, keyframe_start=keyframe_start
        )
        if isinstance(t, Drop):
            self.counters.drop(t.value)
            if t is Drop.WAITING_KEYFRAME:
                up.request_keyframe(now)
            return
        source_data = packet.data
        if self._red and packet.payload_type in self._red:
            unred = self._unred(packet)
            if unred is None:
                return
            source_data, pt_or_none = unred
            pt: int | None = pt_or_none
        else:
            pt = self._pt_map.get(packet.payload_type)
        if pt is None:
            self.counters.drop("codec_not_negotiated")
            return
        if pt != self._out_pt:
            self._codec_changed(pt)
        encoder = self.red_encoder
        if encoder is not None and self._red_out is not None and pt == self._red_out[1]:
            copy = RtpPacket.parse(source_data)
            copy.payload = encoder.encode(pt, copy.payload, t.timestamp)
            copy.padding_size = 0
            source_data, pt = bytes(copy), self._red_out[0]
            self.counters.red_sent += 1
            self.red_sent += 1
        exts = packet.extensions
        playout = self._playout
        if playout is None and (not exts or exts.keys() <= self._passthrough):
            data = rewrite_rtp(
                source_data,
                ssrc=self.ssrc,
                sequence_number=t.sequence_number & 0xFFFF,
                timestamp=t.timestamp,
                payload_type=pt,
            )
        else:
            data = rewrite_rtp(
                source_data,
                ssrc=self.ssrc,
                sequence_number=t.sequence_number & 0xFFFF,
                timestamp=t.timestamp,
                payload_type=pt,
                extension_ids=self._ext_map,
                set_extensions=playout,
            )
        if self.fec_encoder is not None:
            self._send_protected(data, t.timestamp, keyframe_start, now)
        else:
            self.history.store(t.sequence_number, data, now)
            self.transport.send_rtp(data)
        self.packets_sent += 1
        self.octets_sent += packet.payload_end - packet.payload_offset  # no payload copy
        if packet.marker:
            self.frames_sent += 1
        if self._last_send_time is None or t.sequence_number >= self.forwarder.last_sequence:
            self._last_ts = t.timestamp
            self._last_send_time = now

    def _codec_changed(self, pt: int) -> None:
        """The viewer now gets payload type ``pt``: FEC only if its codec can skip FEC losses."""
        self._out_pt = pt
        codec = next((c for c in self.codecs if c.payload_type == pt), None)
        if codec is not None and self.protection.set_codec(codec.mime):
            self._apply_protection()

    def _send_protected(
        self, data: bytes, timestamp: int, keyframe_start: bool, now: float
    ) -> None:
        """Send video in RED and follow each frame with its ULPFEC packets (RFC 5109).

        Browsers recover only packets they received inside RED, so while FEC is
        on every media packet goes in RED; the FEC covers the packet as the
        viewer rebuilds it from the RED block (header kept, padding dropped)
        and then hands it to its FEC decoder: with the send-time extensions
        zeroed, as libwebrtc's receiver does (a sender fills them in after FEC).
        """
        encoder = self.fec_encoder
        assert encoder is not None and self._fec_out is not None
        red_pt, ulpfec_pt = self._fec_out
        seq = int.from_bytes(data[2:4], "big")
        wrapped = wrap_red(data, red_pt)
        previous_key = self._fec_key
        if timestamp != self._fec_ts:
            self._fec_ts = timestamp
            self._fec_key = keyframe_start
        protection = self.protection
        key = self._fec_key or previous_key
        rate = protection.fec_rate_keyframe if key else protection.fec_rate
        self.history.store(seq, wrapped, now)  # RTX of it goes out as RED, apt=red
        self.transport.send_rtp(wrapped)
        protected = ext.zero_extensions(unpadded(data), self._fec_mutable)
        for payload in encoder.push(protected, rate):
            out_seq = self.forwarder.insert()
            if out_seq is None:
                break
            fec = bytes(
                RtpPacket(
                    payload_type=red_pt,
                    sequence_number=out_seq & 0xFFFF,
                    timestamp=self._fec_ts,
                    ssrc=self.ssrc,
                    payload=encode_red(ulpfec_pt, payload, []),
                )
            )
            self.history.store(out_seq, fec, now)
            self.transport.send_rtp(fec)
            self.packets_sent += 1
            self.fec_sent += 1
            self.counters.fec_sent += 1

    # --- RTCP ------------------------------------------------------------------
    def sender_report(self, now: float, ntp_now: int) -> SenderReport | None:
        """An SR mapping our RTP clock to the publisher's NTP clock (lip sync)."""
        if self._last_ts is None or self._last_send_time is None:
            return None
        clock = self.forwarder.clock_rate
        up = self.source
        if up is not None and up.stats.last_sr is not None and self.forwarder.anchored_to(up):
            # Publisher's mapping, moved to now and into our timestamp space.
            sr_ntp, sr_rtp, arrival = up.stats.last_sr
            elapsed = now - arrival
            ntp = sr_ntp + int(elapsed * (1 << 32))
            rtp = (sr_rtp + round(elapsed * clock) - self.forwarder.timestamp_offset) & 0xFFFFFFFF
        else:
            ntp = ntp_now
            rtp = (self._last_ts + round((now - self._last_send_time) * clock)) & 0xFFFFFFFF
        self._sr_sent[ntp_compact(ntp)] = now
        if len(self._sr_sent) > 8:
            del self._sr_sent[next(iter(self._sr_sent))]
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=rtp,
            packet_count=self.packets_sent & 0xFFFFFFFF,
            octet_count=self.octets_sent & 0xFFFFFFFF,
            reports=[],
        )

    def on_report_block(self, block: ReportBlock, now: float) -> None:
        self.fraction_lost = block.fraction_lost / 256.0
        self.packets_lost = block.packets_lost
        self.jitter = block.jitter
        sent = self._sr_sent.get(block.lsr)
        if block.lsr and sent is not None:
            self.rtt = max(0.0, now - sent - block.dlsr / 65536.0)
        if self.protection.on_report(
            block.highest_sequence,
            block.packets_lost,
            self.rtt,
            self.octets_sent,
            now,
            packets_sent=self.packets_sent - self.fec_sent,
            frames_sent=self.frames_sent,
        ):
            self._apply_protection()

    def _apply_protection(self) -> None:
        """Start, change or stop RED and ULPFEC as the viewer's protection decided."""
        protection = self.protection
        distance = protection.red_distance
        if distance == 0:
            self.red_encoder = None
        elif self.red_encoder is None:
            self.red_encoder = RedEncoder(distance)
        else:
            self.red_encoder.distance = distance
        if self._playout_id is not None and (protection.playout_delay or self._playout):
            # every packet carries it from now on: one lost packet must not leave the
            # viewer on an old value, and (0, ceiling) hands the buffer back to it
            limits = ext.build_playout_delay(protection.playout_delay, PLAYOUT_DELAY_CEILING)
            self._playout = {self._playout_id: limits}
        if protection.fec_rate <= 0 and protection.fec_rate_keyframe <= 0:
            self.fec_encoder = None
        else:
            if self.fec_encoder is None:
                self.fec_encoder = FecEncoder()
            self.fec_encoder.mask_kind = protection.decision.fec_mask

    def on_nack(self, lost: Sequence[int], now: float) -> None:
        self.nacks_received += len(lost)
        self.counters.nacks_received += len(lost)
        self.protection.on_nack(lost, now)
        if not self.protection.answers_nacks:
            return
        for packet in self.rtx.on_nack(lost, now, self.rtt):
            self.counters.retransmissions_sent += 1
            self.transport.send_rtp(packet)

    def describe(self) -> dict[str, object]:
        """This viewer's stream: what was sent, what the viewer reports, how loss is repaired."""
        source = self.source
        return {
            "mid": self.mid,
            "kind": self.kind,
            "ssrc": self.ssrc,
            "source": None if source is None else {"identity": source.identity, "track": source.id},
            "packets_sent": self.packets_sent,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "fraction_lost": round(self.fraction_lost, 4),
            "packets_lost": self.packets_lost,
            "nacks_received": self.nacks_received,
            "retransmissions_sent": self.rtx.sent,
            "nacked_not_in_history": self.rtx.not_in_history,
            "nacks_suppressed": self.rtx.suppressed,
            "keyframe_requests_received": self.keyframe_requests_received,
            "fec_packets_sent": self.fec_sent,
            "red_packets_sent": self.red_sent,
            "protection": self.protection.stats(),
        }

    def say_goodbye(self) -> None:
        """Tell the subscriber this stream stopped (RFC 3550 §6.6); it may resume later."""
        self.transport.send_rtcp([Bye(sources=[self.ssrc], reason=b"source left")])

    def on_keyframe_request(self, now: float) -> None:
        self.keyframe_requests_received += 1
        if self.source is not None:
            self.source.request_keyframe(now)
