"""One RTMP publish turned into RTP for a plain-RTP session: the sans-IO core of the RTMP edge.

Stream keys
-----------
A publisher names its room and identity in the URL
``rtmp://HOST:1935/live/{room}/{identity}?token=<jwt>``.  Clients split that
URL differently (see :mod:`interlive.rtmp`): ffmpeg and librtmp cut at the
last slash (app ``live/room``, stream ``identity?token=...``), OBS takes the
"Server" field as the app (``live``) and the "Stream Key" as the stream
(``room/identity?token=...``).  :func:`parse_stream_key` therefore routes on
``app + "/" + stream`` and accepts a query on either part.

Media (theory of operation)
---------------------------
:class:`RtmpIngest` is fed every audio, video and data message of the
publish (FLV tag bodies, FLV spec v10.1 Annex E) with its arrival time:

1. *Learning the codecs.*  ``onMetaData`` says which kinds to expect (both
   when absent).  The AVC sequence header gives the SPS (profile-level-id for
   the session's H.264 fmtp, RFC 6184 §8.1) and the PPS; the AAC sequence
   header configures the decoder.  Once every expected kind is configured, or
   a coded frame of a configured kind arrives, :attr:`RtmpIngest.tracks`
   lists the streams the plain session needs; messages meanwhile are held
   (bounded), coded frames of a kind without its configuration are dropped.
   HEVC/AV1/VP9 (Enhanced RTMP FourCCs) and non-AAC audio raise
   :class:`IngestError`: the edge refuses the stream with that message.
2. *Running.*  After :meth:`RtmpIngest.start` with the SSRCs and payload
   types the worker chose, the held messages and all later ones are
   converted at once.  Video passes through: each NALU tag is one access
   unit, split from its length prefixes and packetized by
   :class:`~interlive.media.h264_rtp.H264Packetizer` (FU-A / STAP-A, the
   SPS and PPS in-band before every IDR); its RTP time is the presentation
   time, ``90 * (timestamp + composition time)``.  Audio is transcoded
   (:class:`~interlive.media.aac_opus.AacToOpus`) to 20 ms Opus packets at
   ``48 * timestamp``.  Both clocks start at random offsets (RFC 3550 §5.1).
3. *RTCP.*  Each stream sends a sender report (RFC 3550 §6.4.1) after its
   first packet and then every second.  Both map the same wall clock to the
   same FLV time line (:class:`FlvTimeline`), which is what lets a browser
   line audio up with video.  PLI/FIR from the worker (a viewer wants a
   keyframe) are counted: an RTMP publisher cannot be asked for one, so
   viewers wait for its next GOP.

No sockets, no asyncio: the edge (``server/rtmp_edge.py``) feeds messages,
sends :meth:`RtmpIngest.datagrams_to_send` and calls
:meth:`RtmpIngest.handle_timer` at :meth:`RtmpIngest.get_timer`.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from interlive.codecs.h264 import H264ProfileLevelId, ProfileLevelIdError
from interlive.media.aac_opus import AacToOpus
from interlive.media.avc import AvcDecoderConfiguration, Sps
from interlive.media.errors import MediaFormatError, UnsupportedCodec
from interlive.media.flv import AacPacketType, AudioData, AvcPacketType, ScriptData, VideoData
from interlive.media.h264_rtp import H264Packetizer, avcc_to_nals
from interlive.rtp.rtcp import (
    SDES_CNAME,
    Fir,
    Pli,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    parse_rtcp,
    serialize_rtcp,
)

from .events import MediaKind

__all__ = [
    "APP",
    "IngestError",
    "IngestStats",
    "RtmpIngest",
    "RtpStreamWriter",
    "StreamKey",
    "StreamKeyError",
    "TrackSpec",
    "check_app",
    "parse_stream_key",
]

#: the RTMP application publishers connect to
APP: Final = "live"
VIDEO_MID: Final = "video"
AUDIO_MID: Final = "audio"
RTCP_INTERVAL: Final = 1.0
#: the FLV time line is re-anchored when arrivals drift this far from it (ms)
TIMELINE_SLACK_MS: Final = 1000
SOUND_AAC: Final = 10
_SOUND_FORMATS: Final = {
    0: "linear PCM",
    1: "ADPCM",
    2: "MP3",
    3: "linear PCM (little endian)",
    4: "Nellymoser 16 kHz",
    5: "Nellymoser 8 kHz",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    11: "Speex",
    14: "MP3 8 kHz",
}
_RTP_HEADER: Final = struct.Struct("!BBHII")


# --- stream keys ----------------------------------------------------------------------------


class StreamKeyError(ValueError):
    """An app or stream name that does not name ``live/{room}/{identity}``."""


@dataclass(frozen=True, slots=True)
class StreamKey:
    room: str
    identity: str
    #: the ``token`` query parameter, None when absent
    token: str | None


def _split(text: str) -> tuple[str, dict[str, str]]:
    path, _, query = text.partition("?")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def check_app(app: str, expected: str = APP) -> None:
    """Raise :class:`StreamKeyError` unless ``app`` is ``expected`` or starts ``expected/``."""
    path, _ = _split(app)
    first = path.strip("/").split("/", 1)[0]
    if first != expected:
        raise StreamKeyError(f"unknown application {path!r}: publish to rtmp://HOST/{expected}/...")


def parse_stream_key(app: str, stream: str, expected: str = APP) -> StreamKey:
    """Room, identity and token from the connect app and the publish name (see module doc)."""
    check_app(app, expected)
    app_path, params = _split(app)
    stream_path, stream_params = _split(stream)
    params.update(stream_params)
    segments = [unquote(s) for s in f"{app_path.strip('/')}/{stream_path.strip('/')}".split("/")]
    if len(segments) != 3 or not all(segments):
        raise StreamKeyError(
            f"stream {'/'.join(segments[1:])!r} does not name a room and an identity: "
            f"publish to rtmp://HOST/{expected}/ROOM/IDENTITY?token=..."
        )
    return StreamKey(segments[1], segments[2], params.get("token"))


# --- RTP out ---------------------------------------------------------------------------------


class RtpStreamWriter:
    """One outgoing RTP stream (RFC 3550 §5.1): header, numbering, sender-report counters.

    Timestamps are given in the media clock from an arbitrary origin; the
    writer adds its random offset.
    """

    __slots__ = ("_seq", "clock_rate", "octets", "offset", "packets", "payload_type", "ssrc")

    def __init__(
        self, ssrc: int, payload_type: int, clock_rate: int, *, first_seq: int, offset: int
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self._seq = first_seq & 0xFFFF
        self.offset = offset & 0xFFFFFFFF
        self.packets = 0
        self.octets = 0

    def write(self, payload: bytes, timestamp: int, marker: bool) -> bytes:
        header = _RTP_HEADER.pack(
            0x80,
            (0x80 if marker else 0) | self.payload_type,
            self._seq,
            (self.offset + timestamp) & 0xFFFFFFFF,
            self.ssrc,
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        return header + payload

    def sender_report(self, ntp: int, media_time: int) -> SenderReport | None:
        """The SR for ``media_time`` (same origin as :meth:`write`) at NTP time ``ntp``."""
        if not self.packets:
            return None
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=(self.offset + media_time) & 0xFFFFFFFF,
            packet_count=self.packets & 0xFFFFFFFF,
            octet_count=self.octets & 0xFFFFFFFF,
        )


class FlvTimeline:
    """Maps arrival time to FLV time (ms), the clock both RTP streams derive from."""

    __slots__ = ("_anchor", "reanchors")

    def __init__(self) -> None:
        self._anchor: tuple[float, int] | None = None
        self.reanchors = 0

    def observe(self, timestamp_ms: int, now: float) -> None:
        anchor = self._anchor
        if anchor is None:
            self._anchor = (now, timestamp_ms)
            return
        drift = timestamp_ms - self.at(now)
        if abs(drift) > TIMELINE_SLACK_MS:
            self._anchor = (now, timestamp_ms)
            self.reanchors += 1

    def at(self, now: float) -> int:
        """FLV time (ms) at ``now``; 0 before any media."""
        if self._anchor is None:
            return 0
        then, timestamp = self._anchor
        return timestamp + round((now - then) * 1000)


# --- the ingest ------------------------------------------------------------------------------


class IngestError(ValueError):
    """The publish cannot be carried (an unsupported codec); the message is for the publisher."""


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """A stream the plain session must receive: one entry of ``create_plain_session``'s media."""

    mid: str
    kind: str
    mime: str
    clock_rate: int
    channels: int | None = None
    fmtp: Mapping[str, str] = field(default_factory=dict)

    def to_request(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "mid": self.mid,
            "kind": self.kind,
            "mime": self.mime,
            "clock_rate": self.clock_rate,
            "fmtp": dict(self.fmtp),
        }
        if self.channels is not None:
            entry["channels"] = self.channels
        return entry


@dataclass(slots=True)
class IngestStats:
    video_frames: int = 0
    keyframes: int = 0
    audio_frames: int = 0
    opus_packets: int = 0
    rtp_packets: int = 0
    rtp_bytes: int = 0
    sender_reports: int = 0
    keyframe_requests: int = 0
    #: messages dropped, by reason
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


_Held = tuple[MediaKind, int, bytes, float]


class RtmpIngest:
    """FLV messages of one publish in, RTP and RTCP for its plain session out (module doc)."""

    def __init__(
        self,
        *,
        mtu: int = 1200,
        audio_bitrate: int = 64_000,
        max_held_messages: int = 256,
        max_held_bytes: int = 8 << 20,
        rng: random.Random | None = None,
        cname: str | None = None,
    ) -> None:
        self._rng = rng or random.SystemRandom()
        self.cname = cname or f"rtmp-{self._rng.getrandbits(48):012x}"
        self.stats = IngestStats()
        self.timeline = FlvTimeline()
        self._packetizer = H264Packetizer(mtu)
        self._audio_bitrate = audio_bitrate
        self.avc: AvcDecoderConfiguration | None = None
        self.sps: Sps | None = None
        self.profile_level_id: str | None = None
        self.transcoder: AacToOpus | None = None
        #: kinds announced by onMetaData (None: not seen, expect both)
        self.expected: frozenset[str] | None = None
        self.metadata: dict[str, Any] = {}
        self._held: deque[_Held] = deque()
        self._held_bytes = 0
        self._max_held_messages = max_held_messages
        self._max_held_bytes = max_held_bytes
        self._coded_frame_seen: set[str] = set()
        self.tracks: list[TrackSpec] | None = None
        self.video: RtpStreamWriter | None = None
        self.audio: RtpStreamWriter | None = None
        self.started = False
        self._out: list[bytes] = []
        self._next_report: float | None = None
        self.last_media: float | None = None

    # --- input --------------------------------------------------------------------------
    def on_media(self, kind: MediaKind, timestamp: int, payload: bytes, now: float) -> None:
        """One message of the publish.  Raises :class:`IngestError` for a codec not carried."""
        self.last_media = now
        if kind is MediaKind.DATA:
            self._on_data(payload)
            return
        self.timeline.observe(timestamp, now)
        if self.started:
            self._convert(kind, timestamp, payload)
            return
        self._learn(kind, payload)
        if not self._hold((kind, timestamp, payload, now)):
            return
        if self.tracks is None and self._ready():
            self.tracks = self._track_specs()

    def _on_data(self, payload: bytes) -> None:
        try:
            script = ScriptData.parse(payload)
        except MediaFormatError:
            self.stats.drop("bad_script_data")
            return
        if script.name != "onMetaData" or not isinstance(script.value, dict):
            return
        meta = dict(script.value)
        self.metadata = meta
        if self.expected is None and self.tracks is None:
            kinds = {k for k, key in (("video", "videocodecid"), ("audio", "audiocodecid"))
                     if meta.get(key) not in (None, "", 0, 0.0)}  # fmt: skip
            self.expected = frozenset(kinds) if kinds else None

    def _learn(self, kind: MediaKind, payload: bytes) -> None:
        """Before the session: take in sequence headers, note coded frames."""
        if kind is MediaKind.VIDEO:
            tag = self._video_tag(payload)
            if tag is None:
                return
            if tag.avc_packet_type == AvcPacketType.SEQUENCE_HEADER:
                self._configure_video(tag.payload)
            elif tag.avc_packet_type == AvcPacketType.NALU:
                self._coded_frame_seen.add("video")
        else:
            audio = self._audio_tag(payload)
            if audio is None:
                return
            if audio.aac_packet_type == AacPacketType.SEQUENCE_HEADER:
                self._configure_audio(audio.payload)
            else:
                self._coded_frame_seen.add("audio")

    def _hold(self, item: _Held) -> bool:
        if len(self._held) >= self._max_held_messages or (
            self._held_bytes + len(item[2]) > self._max_held_bytes
        ):
            self.stats.drop("held_overflow")
            return False
        self._held.append(item)
        self._held_bytes += len(item[2])
        return True

    def _configured(self) -> set[str]:
        kinds = set()
        if self.avc is not None:
            kinds.add("video")
        if self.transcoder is not None:
            kinds.add("audio")
        return kinds

    def _ready(self) -> bool:
        configured = self._configured()
        if not configured:
            return False
        expected = self.expected if self.expected is not None else {"audio", "video"}
        return expected <= configured or bool(self._coded_frame_seen & configured)

    def _track_specs(self) -> list[TrackSpec]:
        specs = []
        if self.transcoder is not None:
            specs.append(
                TrackSpec(AUDIO_MID, "audio", "audio/opus", 48000, 2,
                          {"minptime": "10", "useinbandfec": "1"})
            )  # fmt: skip
        if self.avc is not None and self.profile_level_id is not None:
            specs.append(
                TrackSpec(VIDEO_MID, "video", "video/H264", 90000, None,
                          {"level-asymmetry-allowed": "1", "packetization-mode": "1",
                           "profile-level-id": self.profile_level_id})
            )  # fmt: skip
        return specs

    # --- codec configuration ------------------------------------------------------------
    def _video_tag(self, payload: bytes) -> VideoData | None:
        try:
            return VideoData.parse(payload)
        except UnsupportedCodec as exc:
            raise IngestError(
                f"{exc}; interlive carries H.264 only: publish with -c:v libx264 "
                "(OBS: x264 or another H.264 encoder)"
            ) from exc
        except MediaFormatError:
            self.stats.drop("bad_video_tag")
            return None

    def _audio_tag(self, payload: bytes) -> AudioData | None:
        try:
            audio = AudioData.parse(payload)
        except UnsupportedCodec as exc:
            raise IngestError(f"{exc}; publish AAC (-c:a aac)") from exc
        except MediaFormatError:
            self.stats.drop("bad_audio_tag")
            return None
        if audio.sound_format != SOUND_AAC:
            name = _SOUND_FORMATS.get(audio.sound_format, f"SoundFormat {audio.sound_format}")
            raise IngestError(f"audio codec {name} is not supported: publish AAC (-c:a aac)")
        return audio

    def _configure_video(self, record: bytes) -> None:
        try:
            config = AvcDecoderConfiguration.parse(record)
            if not config.sps or not config.pps:
                raise MediaFormatError("AVC sequence header without an SPS or a PPS")
            sps = Sps.parse(config.sps[0])
        except MediaFormatError:
            self.stats.drop("bad_avc_config")
            return
        profile_level_id = (
            f"{sps.profile_idc:02x}{sps.constraint_flags & 0xFF:02x}{sps.level_idc:02x}"
        )
        try:
            H264ProfileLevelId.parse(profile_level_id)
        except ProfileLevelIdError as exc:
            raise IngestError(
                f"H.264 profile_idc {sps.profile_idc} (profile-level-id {profile_level_id}) "
                "is not one WebRTC viewers decode: publish 8-bit 4:2:0 (Baseline, Main or High)"
            ) from exc
        if self.profile_level_id is not None and self.started:
            if profile_level_id != self.profile_level_id:
                self.stats.drop("profile_changed")  # viewers matched the old profile; carry on
        else:
            self.profile_level_id = profile_level_id
        self.avc = config
        self.sps = sps
        self._packetizer.set_parameter_sets(config.sps[0], config.pps[0])

    def _configure_audio(self, config: bytes) -> None:
        transcoder = self.transcoder or AacToOpus(bitrate=self._audio_bitrate)
        try:
            transcoder.set_config(config)
        except MediaFormatError:
            self.stats.drop("bad_aac_config")
            return
        self.transcoder = transcoder

    # --- running ------------------------------------------------------------------------
    def start(self, media: Iterable[Mapping[str, Any]], now: float) -> None:
        """The worker's answer (its ``media`` with SSRCs and payload types): send from now on."""
        for entry in media:
            writer = RtpStreamWriter(
                int(entry["ssrc"]),
                int(entry["payload_type"]),
                int(entry["clock_rate"]),
                first_seq=self._rng.getrandbits(16),
                offset=self._rng.getrandbits(32),
            )
            if entry["kind"] == "video":
                self.video = writer
            elif entry["kind"] == "audio":
                self.audio = writer
        self.started = True
        self._next_report = now
        held, self._held = self._held, deque()
        self._held_bytes = 0
        for kind, timestamp, payload, _arrival in held:
            self._convert(kind, timestamp, payload)

    def _convert(self, kind: MediaKind, timestamp: int, payload: bytes) -> None:
        if kind is MediaKind.VIDEO:
            self._convert_video(timestamp, payload)
        else:
            self._convert_audio(timestamp, payload)

    def _convert_video(self, timestamp: int, payload: bytes) -> None:
        tag = self._video_tag(payload)
        if tag is None:
            return
        if tag.avc_packet_type == AvcPacketType.SEQUENCE_HEADER:
            self._configure_video(tag.payload)
            return
        if tag.avc_packet_type != AvcPacketType.NALU:
            return  # end of sequence
        config, writer = self.avc, self.video
        if config is None or writer is None:
            self.stats.drop("video_without_config" if config is None else "video_without_track")
            return
        try:
            nals = avcc_to_nals(tag.payload, config.nal_length_size)
            packets = self._packetizer.packetize(nals)
        except MediaFormatError:
            self.stats.drop("bad_video_frame")
            return
        if not packets:
            return
        self.stats.video_frames += 1
        if tag.is_keyframe:
            self.stats.keyframes += 1
        rtp_time = 90 * (timestamp + tag.composition_time)
        for body, marker in packets:
            self._send(writer.write(body, rtp_time, marker))

    def _convert_audio(self, timestamp: int, payload: bytes) -> None:
        audio = self._audio_tag(payload)
        if audio is None:
            return
        if audio.aac_packet_type == AacPacketType.SEQUENCE_HEADER:
            self._configure_audio(audio.payload)
            return
        transcoder, writer = self.transcoder, self.audio
        if transcoder is None or writer is None:
            self.stats.drop("audio_without_config" if transcoder is None else "audio_without_track")
            return
        self.stats.audio_frames += 1
        for packet in transcoder.push(audio.payload, timestamp):
            self.stats.opus_packets += 1
            self._send(writer.write(packet.payload, packet.pts, writer.packets == 0))

    def _send(self, datagram: bytes) -> None:
        self.stats.rtp_packets += 1
        self.stats.rtp_bytes += len(datagram)
        self._out.append(datagram)

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    # --- time and RTCP ------------------------------------------------------------------
    def get_timer(self) -> float | None:
        return self._next_report

    def handle_timer(self, now: float, ntp: int) -> None:
        """Sender reports when due (each stream's first right after its first packet)."""
        if self._next_report is None or now < self._next_report:
            return
        flv_now = self.timeline.at(now)
        sent = False
        for writer in (self.video, self.audio):
            if writer is None:
                continue
            report = writer.sender_report(ntp, flv_now * writer.clock_rate // 1000)
            if report is None:
                continue
            sdes = Sdes(
                chunks=[SdesChunk(ssrc=writer.ssrc, items=[(SDES_CNAME, self.cname.encode())])]
            )
            self._out.append(serialize_rtcp([report, sdes]))
            self.stats.sender_reports += 1
            sent = True
        # until both streams have sent, look again soon; then once a second
        waiting = any(w is not None and not w.packets for w in (self.video, self.audio))
        self._next_report = now + (0.1 if waiting or not sent else RTCP_INTERVAL)

    def on_rtcp(self, data: bytes) -> list[RtcpPacket]:
        """RTCP from the worker; keyframe requests are counted.  ``ValueError`` if malformed."""
        packets = parse_rtcp(data)
        self.stats.keyframe_requests += sum(isinstance(p, Pli | Fir) for p in packets)
        return packets
