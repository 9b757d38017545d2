"""One participant's RTP (H.264 + Opus) from a plain subscribe session turned into FLV tags.

The sans-IO core of FLV playback (HTTP-FLV and RTMP play).  The control
process opens a plain-RTP *subscribe* session on the room's worker
(``worker/plain.py``) restricted to one identity; :class:`RtpFlvSource` is fed
every datagram the worker sends (RTP and RTCP) with its arrival time, and
hands out FLV tags (FLV spec v10.1 Annex E) on one millisecond time line,
plus the RTCP to send back (receiver reports that keep the session alive,
PLIs when a keyframe is needed).

Video passes through (RFC 6184 packetization-mode 1): the
:class:`~interlive.media.h264_rtp.H264Depacketizer` rebuilds access units,
:class:`~interlive.media.flv.FlvMuxer` waits for an IDR with its SPS/PPS,
writes the AVC sequence header built from them and NALU tags after it.  Video
packets pass through a :class:`~interlive.rtp.reorder.ReorderBuffer` first:
a packet the publisher lost reaches us a round trip later (the worker's
NACK/RTX repair), after the packets behind it, and is put back in place if it
comes within :data:`REPAIR_WAIT`.  After a loss that was not repaired in time
the depacketizer waits for the next IDR and a PLI asks for one.

Audio is transcoded: :class:`~interlive.media.opus.OpusFecDecoder` decodes
Opus (a lost frame is rebuilt from the next packet's in-band FEC before
concealment), :class:`~interlive.media.opus_aac.OpusToAac` encodes AAC-LC
48 kHz stereo.

Timestamps and lip sync (theory of operation)
---------------------------------------------
:class:`AvSync` maps both RTP clocks onto one time line in ms.  Video is the
master: its FLV time is its RTP time, ``(ts - ts0) / 90``, so it never jumps.
Audio gets ``(ts - ts0_audio) / 48 + offset``, the offset chosen so that audio
and video sampled at the same instant get the same FLV time.  The instant of
an RTP time comes from each stream's latest RTCP sender report (RFC 3550
§6.4.1: the worker's SRs map a down-track's RTP clock to the *publisher's*
NTP clock, the same one for its audio and its video).  Until both streams
have had a sender report the arrival time of each stream's first packet
stands in for it (within a few tens of ms on loopback).  The offset is
recomputed at every SR and applied when it moved by :data:`AV_RESYNC_MS` or
more, so audio timestamps do not jitter with rounding.  FlvMuxer then starts
the time line at 0 at the first keyframe; audio sampled before that keyframe
is dropped, and so is an AAC frame that a backward step of the offset would
put at or before the previous one, so each track's timestamps increase.

No sockets, no asyncio: the adapter (``server/playback.py``) feeds
:meth:`RtpFlvSource.receive`, drains :meth:`RtpFlvSource.tags` and
:meth:`RtpFlvSource.datagrams_to_send`, and calls
:meth:`RtpFlvSource.handle_timer` at :meth:`RtpFlvSource.get_timer`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from interlive.rtp.ntp import unix_from_ntp
from interlive.rtp.packet import RtpPacket
from interlive.rtp.reorder import REPAIR_WAIT, ReorderBuffer
from interlive.rtp.rtcp import (
    SDES_CNAME,
    Bye,
    Pli,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from interlive.rtp.seq import SequenceUnwrapper, TimestampUnwrapper
from interlive.sfu.receiver_stats import ReceiverStats

from .errors import MediaFormatError
from .flv import AacPacketType, AvcPacketType, FlvMuxer, FlvReader, FlvTag, TagType
from .h264_rtp import H264Depacketizer
from .opus import OpusFecDecoder
from .opus_aac import OpusToAac

__all__ = [
    "AV_RESYNC_MS",
    "AvSync",
    "RtpFlvSource",
    "RtpFlvStats",
    "StartTags",
    "StreamSpec",
    "is_sequence_header",
    "is_video_keyframe",
    "subscribe_media",
]

Kind = Literal["audio", "video"]

VIDEO_RATE: Final = 90_000
AUDIO_RATE: Final = 48_000
#: an A/V offset that moved by this much (ms) at a sender report is applied
AV_RESYNC_MS: Final = 10
RTCP_INTERVAL: Final = 1.0
#: keyframe requests closer than this are merged into one
PLI_INTERVAL: Final = 0.5
#: while the depacketizer waits for an IDR, the request is repeated this often
PLI_RETRY: Final = 1.0
#: H.264 profile-level-id of the subscribe session: High 4:4:4 Predictive decodes every
#: profile (H.264 Annex A), so the worker forwards any H.264 publisher to it
SUBSCRIBE_PROFILE_LEVEL_ID: Final = "f4001f"


def subscribe_media() -> list[dict[str, Any]]:
    """The ``media`` of ``create_plain_session(mode="subscribe")`` for FLV playback."""
    return [
        {"mid": "audio", "kind": "audio", "mime": "audio/opus", "clock_rate": AUDIO_RATE,
         "channels": 2, "fmtp": {"minptime": "10", "useinbandfec": "1"}},
        {"mid": "video", "kind": "video", "mime": "video/H264", "clock_rate": VIDEO_RATE,
         "fmtp": {"level-asymmetry-allowed": "1", "packetization-mode": "1",
                  "profile-level-id": SUBSCRIBE_PROFILE_LEVEL_ID}},
    ]  # fmt: skip


def is_video_keyframe(tag: FlvTag) -> bool:
    """An AVC NALU tag of FrameType 1 (a keyframe a player can start from)."""
    data = tag.data
    return (
        tag.tag_type == TagType.VIDEO
        and len(data) >= 2
        and data[0] >> 4 == 1
        and data[1] == AvcPacketType.NALU
    )


def is_sequence_header(tag: FlvTag) -> bool:
    """An AVC or AAC sequence header, or script data: what a player needs before media."""
    data = tag.data
    if tag.tag_type == TagType.SCRIPT:
        return True
    if tag.tag_type == TagType.VIDEO:
        return len(data) >= 2 and data[1] == AvcPacketType.SEQUENCE_HEADER
    return len(data) >= 2 and data[0] >> 4 == 10 and data[1] == AacPacketType.SEQUENCE_HEADER


class StartTags:
    """The tags a player needs before media, kept up to date as tags go by.

    onMetaData, then the latest AAC and AVC sequence headers: a player that
    joins (or drops to a keyframe) after they were sent gets them first.
    """

    __slots__ = ("audio_config", "metadata", "video_config")

    def __init__(self) -> None:
        self.metadata: FlvTag | None = None
        self.audio_config: FlvTag | None = None
        self.video_config: FlvTag | None = None

    def observe(self, tag: FlvTag) -> None:
        if tag.tag_type == TagType.SCRIPT:
            self.metadata = tag
        elif is_sequence_header(tag):
            if tag.tag_type == TagType.VIDEO:
                self.video_config = tag
            else:
                self.audio_config = tag

    def tags(self) -> list[FlvTag]:
        return [t for t in (self.metadata, self.audio_config, self.video_config) if t is not None]


def _extend(ts32: int, reference: int) -> int:
    """The extended timestamp nearest ``reference`` whose low 32 bits are ``ts32``."""
    delta = ((ts32 - reference + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
    return reference + delta


@dataclass(slots=True)
class _Clock:
    """One stream's mapping of an extended RTP time to seconds, and where it came from."""

    first: int
    #: (seconds, extended RTP time) from the first packet's arrival (loop clock)
    arrival: tuple[float, int]
    #: (seconds, extended RTP time) from the last sender report (NTP clock)
    report: tuple[float, int] | None = None


class AvSync:
    """Both RTP clocks of one participant on one FLV time line in ms (see the module doc)."""

    __slots__ = (
        "_audio",
        "_video",
        "audio_offset_ms",
        "audio_rate",
        "resyncs",
        "source",
        "video_rate",
    )

    def __init__(self, *, video_rate: int = VIDEO_RATE, audio_rate: int = AUDIO_RATE) -> None:
        self.video_rate = video_rate
        self.audio_rate = audio_rate
        self._video: _Clock | None = None
        self._audio: _Clock | None = None
        #: ms added to the audio time line; None until both streams have been seen
        self.audio_offset_ms: float | None = None
        #: what the offset comes from: "arrival" (first packets) or "report" (sender reports)
        self.source: Literal["none", "arrival", "report"] = "none"
        self.resyncs = 0

    def on_packet(self, kind: Kind, ext_ts: int, arrival: float) -> None:
        """A packet's extended RTP time and arrival (loop clock, s): the first one anchors."""
        if kind == "video":
            if self._video is None:
                self._video = _Clock(ext_ts, (arrival, ext_ts))
                self._update()
        elif self._audio is None:
            self._audio = _Clock(ext_ts, (arrival, ext_ts))
            self._update()

    def on_sender_report(self, kind: Kind, ntp: int, rtp_timestamp: int) -> None:
        """A sender report for the stream (its 32-bit RTP time); ignored before its first packet."""
        clock = self._video if kind == "video" else self._audio
        if clock is None:
            return
        reference = clock.report[1] if clock.report is not None else clock.arrival[1]
        clock.report = (unix_from_ntp(ntp), _extend(rtp_timestamp, reference))
        self._update()

    def _update(self) -> None:
        video, audio = self._video, self._audio
        if video is None or audio is None:
            return
        if video.report is not None and audio.report is not None:
            source: Literal["arrival", "report"] = "report"
            v_at, a_at = video.report, audio.report
        else:
            source = "arrival"
            v_at, a_at = video.arrival, audio.arrival
        # the instant of the audio's first sample, then the video time at that instant
        instant = a_at[0] + (audio.first - a_at[1]) / self.audio_rate
        video_ts = v_at[1] + (instant - v_at[0]) * self.video_rate
        offset = (video_ts - video.first) * 1000 / self.video_rate
        current = self.audio_offset_ms
        if current is None or source != self.source or abs(offset - current) >= AV_RESYNC_MS:
            if current is not None:
                self.resyncs += 1
            self.audio_offset_ms = offset
            self.source = source

    def video_ms(self, ext_ts: int) -> int | None:
        """FLV time of a video RTP time; None before the first video packet."""
        video = self._video
        if video is None:
            return None
        return round((ext_ts - video.first) * 1000 / self.video_rate)

    def audio_ms(self, ext_ts: int) -> int | None:
        """FLV time of an audio RTP time; None until both streams have been seen."""
        audio, offset = self._audio, self.audio_offset_ms
        if audio is None or offset is None:
            return None
        return round((ext_ts - audio.first) * 1000 / self.audio_rate + offset)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream of the subscribe session, as the worker's reply describes it."""

    kind: Kind
    ssrc: int
    payload_type: int

    @classmethod
    def from_reply(cls, entry: Mapping[str, Any]) -> StreamSpec:
        kind = entry["kind"]
        if kind not in ("audio", "video"):
            raise ValueError(f"unknown kind {kind!r}")
        return cls(kind, int(entry["ssrc"]), int(entry["payload_type"]))


@dataclass(slots=True)
class RtpFlvStats:
    rtp_packets: int = 0
    rtcp_packets: int = 0
    bad_packets: int = 0
    unknown_ssrc: int = 0
    video_frames: int = 0
    keyframes: int = 0
    audio_frames: int = 0
    aac_frames: int = 0
    sender_reports: int = 0
    byes: int = 0
    plis_sent: int = 0
    tags: int = 0
    #: dropped before the muxer started or for lack of a time line
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class _Stream:
    __slots__ = ("receiver", "seq", "spec", "ts")

    def __init__(self, spec: StreamSpec, clock_rate: int) -> None:
        self.spec = spec
        self.seq = SequenceUnwrapper()
        self.ts = TimestampUnwrapper()
        self.receiver = ReceiverStats(clock_rate)


class RtpFlvSource:
    """RTP/RTCP of a plain subscribe session in, FLV tags and RTCP out (see the module doc)."""

    def __init__(
        self,
        streams: Iterable[StreamSpec],
        *,
        audio_bitrate: int = 128_000,
        rtcp_ssrc: int | None = None,
        cname: str | None = None,
    ) -> None:
        self.stats = RtpFlvStats()
        self.sync = AvSync()
        self._streams: dict[int, _Stream] = {}
        self.video: _Stream | None = None
        self.audio: _Stream | None = None
        for spec in streams:
            stream = _Stream(spec, VIDEO_RATE if spec.kind == "video" else AUDIO_RATE)
            self._streams[spec.ssrc] = stream
            if spec.kind == "video":
                self.video = stream
            else:
                self.audio = stream
        self.rtcp_ssrc = rtcp_ssrc or (secrets.randbits(32) or 1)
        self.cname = cname or f"flv-{secrets.token_hex(6)}"
        self.depacketizer = H264Depacketizer()
        self.video_order: ReorderBuffer[RtpPacket] = ReorderBuffer(REPAIR_WAIT)
        self.decoder = OpusFecDecoder(2)
        self.encoder = OpusToAac(bitrate=audio_bitrate)
        self.muxer = FlvMuxer(audio_config=self.encoder.config)
        self._reader = FlvReader()
        #: FLV time (before the muxer rebases it) of the first keyframe, and of the last AAC frame
        self._start_ms: int | None = None
        self._last_audio_ms: int | None = None
        self._tags: list[FlvTag] = []
        self._out: list[bytes] = []
        self.start = StartTags()
        self._next_report: float | None = None
        self._last_pli: float | None = None
        self._pli_due: float | None = None
        #: loop time of the last media packet (None before any)
        self.last_media: float | None = None
        #: set when the worker said BYE for a stream (its source left); cleared by media
        self.goodbye_at: float | None = None

    # --- input --------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """One datagram from the worker; malformed ones are counted and dropped."""
        if self._next_report is None:
            self._next_report = now + RTCP_INTERVAL
        try:
            if is_rtcp(data):
                self._on_rtcp(parse_rtcp(data), now)
            else:
                self._on_rtp(RtpPacket.parse(data), now)
        except (ValueError, MediaFormatError):
            self.stats.bad_packets += 1

    def _on_rtp(self, packet: RtpPacket, now: float) -> None:
        stream = self._streams.get(packet.ssrc)
        if stream is None or packet.payload_type != stream.spec.payload_type:
            self.stats.unknown_ssrc += 1
            return
        self.stats.rtp_packets += 1
        self.last_media = now
        self.goodbye_at = None
        ext_seq = stream.seq.unwrap(packet.sequence_number)
        ext_ts = stream.ts.unwrap(packet.timestamp)
        stream.receiver.on_packet(ext_seq, ext_ts, now, len(packet.payload))
        kind = stream.spec.kind
        self.sync.on_packet(kind, ext_ts, now)
        if kind == "video":
            # repairs (RTX from the publisher) arrive late: put them back in place
            for ready in self.video_order.push(packet.sequence_number, packet, now):
                self._on_video(ready, stream, now)
        else:
            self._on_audio(packet, stream)

    def _on_video(self, packet: RtpPacket, stream: _Stream, now: float) -> None:
        for unit in self.depacketizer.push_packet(packet):
            self.stats.video_frames += 1
            if unit.is_keyframe:
                self.stats.keyframes += 1
                self._pli_due = None  # the keyframe asked for came
            ms = self.sync.video_ms(stream.ts.unwrap(unit.timestamp))
            if ms is None:  # pragma: no cover - the packet anchored the clock
                continue
            started = self.muxer.started
            self._mux(self.muxer.write_video(unit.nals, ms))
            if not started and self.muxer.started:
                self._start_ms = ms
        if self.depacketizer.waiting_for_keyframe and (
            self._last_pli is None or now - self._last_pli >= PLI_RETRY
        ):
            # the start or a loss: only an IDR helps now; asked again each second
            self._send_pli(now)

    def _on_audio(self, packet: RtpPacket, stream: _Stream) -> None:
        for frame in self.decoder.receive(packet.sequence_number, packet.timestamp, packet.payload):
            self.stats.audio_frames += 1
            ext = stream.ts.unwrap(frame.timestamp & 0xFFFF_FFFF)
            for aac in self.encoder.push(frame.pcm, ext):
                self.stats.aac_frames += 1
                ms = self.sync.audio_ms(aac.pts)
                if ms is None or self._start_ms is None or ms < self._start_ms:
                    self.stats.drop("audio_before_video")
                    continue
                if self._last_audio_ms is not None and ms <= self._last_audio_ms:
                    # the A/V offset stepped back at a sender report: one frame overlaps
                    self.stats.drop("audio_overlap")
                    continue
                self._last_audio_ms = ms
                self._mux(self.muxer.write_audio(aac.payload, ms))

    def _mux(self, data: bytes) -> None:
        if not data:
            return
        for tag in self._reader.feed(data):
            self.start.observe(tag)
            self.stats.tags += 1
            self._tags.append(tag)

    def _on_rtcp(self, packets: list[RtcpPacket], now: float) -> None:
        self.stats.rtcp_packets += 1
        for p in packets:
            if isinstance(p, SenderReport):
                stream = self._streams.get(p.ssrc)
                if stream is None:
                    continue
                self.stats.sender_reports += 1
                stream.receiver.on_sender_report(p.ntp_timestamp, p.rtp_timestamp, now)
                self.sync.on_sender_report(stream.spec.kind, p.ntp_timestamp, p.rtp_timestamp)
            elif isinstance(p, Bye) and any(s in self._streams for s in p.sources):
                self.stats.byes += 1
                self.goodbye_at = now

    # --- output -------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether a keyframe has been muxed (players can start)."""
        return self.muxer.started

    def start_tags(self) -> list[FlvTag]:
        """What a new player gets before its first keyframe: onMetaData and sequence headers."""
        return self.start.tags()

    def tags(self) -> list[FlvTag]:
        """The tags produced since the last call, in order."""
        out, self._tags = self._tags, []
        return out

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    # --- RTCP out -----------------------------------------------------------------------
    def request_keyframe(self, now: float) -> None:
        """Ask the worker for a keyframe (PLI); requests within PLI_INTERVAL merge."""
        if self.video is None:
            return
        if self._last_pli is not None and now - self._last_pli < PLI_INTERVAL:
            self._pli_due = self._last_pli + PLI_INTERVAL
            return
        self._send_pli(now)

    def _send_pli(self, now: float) -> None:
        assert self.video is not None
        self._last_pli = now
        self._pli_due = None
        self.stats.plis_sent += 1
        self._out.append(
            serialize_rtcp([Pli(sender_ssrc=self.rtcp_ssrc, media_ssrc=self.video.spec.ssrc)])
        )

    def get_timer(self) -> float | None:
        timers = [
            t
            for t in (self._next_report, self._pli_due, self.video_order.get_timer())
            if t is not None
        ]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        """Receiver reports every second (they keep the plain session alive); deferred PLIs;
        video packets whose missing predecessors were waited for long enough."""
        if self.video is not None:
            for ready in self.video_order.poll(now):
                self._on_video(ready, self.video, now)
        if self._pli_due is not None and now >= self._pli_due:
            self._send_pli(now)
        if self._next_report is None or now < self._next_report:
            return
        self._next_report = now + RTCP_INTERVAL
        blocks = []
        for stream in self._streams.values():
            if stream.receiver.base_seq is None:
                continue
            r = stream.receiver.report(now)
            blocks.append(
                ReportBlock(
                    ssrc=stream.spec.ssrc,
                    fraction_lost=r.fraction_lost,
                    packets_lost=r.packets_lost,
                    highest_sequence=r.highest_sequence,
                    jitter=r.jitter,
                    lsr=r.lsr,
                    dlsr=r.dlsr,
                )
            )
        sdes = Sdes(
            chunks=[SdesChunk(ssrc=self.rtcp_ssrc, items=[(SDES_CNAME, self.cname.encode())])]
        )
        self._out.append(
            serialize_rtcp([ReceiverReport(ssrc=self.rtcp_ssrc, reports=blocks), sdes])
        )
