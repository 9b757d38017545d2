"""FLV container: header, tags, AVC/AAC tag bodies and a live muxer.

Follows the Adobe Flash Video File Format Specification v10.1, Annex E:

* E.2 the FLV header (``FLV``, version 1, TypeFlagsAudio/Video, DataOffset 9),
  followed in the body by PreviousTagSize0 = 0;
* E.3 the body: each FLVTAG (11-byte header: Filter/TagType, 24-bit DataSize,
  24+8-bit Timestamp/TimestampExtended in ms, 24-bit StreamID 0) is followed by
  its PreviousTagSize (11 + DataSize);
* E.4.2.1 VIDEODATA: FrameType (1 key, 2 inter, 5 info/command) and CodecID
  (7 = AVC), then AVCVIDEOPACKET: AVCPacketType (0 sequence header carrying an
  AVCDecoderConfigurationRecord, 1 NALUs, 2 end of sequence) and a signed
  24-bit CompositionTime;
* E.4.2.1 AUDIODATA: SoundFormat (10 = AAC), SoundRate, SoundSize, SoundType,
  then AACAUDIODATA: AACPacketType (0 AudioSpecificConfig, 1 raw frame);
* E.4.4 SCRIPTDATA: an AMF0 string name (``onMetaData``) and an AMF0 value.

Enhanced RTMP (veovera enhanced-rtmp v1/v2): when bit 7 of the first VIDEODATA
byte (IsExHeader) is set, the low nibble is a VideoPacketType and a FourCC
follows (``hvc1``, ``av01``, ``vp09``, ``avc1``).  interlive does not carry those
yet: :meth:`VideoData.parse` raises :class:`~interlive.media.errors.UnsupportedCodec`
naming the FourCC, as it does for legacy CodecIDs other than 7.

Script data values are encoded with :mod:`interlive.rtmp.amf0`.

:class:`FlvMuxer` is the sans-IO HTTP-FLV writer: it waits for an IDR access
unit, then emits the header, onMetaData (size from the SPS), the AVC sequence
header and NALU tags; timestamps start at 0 at the first frame and never go
backwards.  :class:`FlvReader` is the incremental parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from interlive.rtmp import amf0
from interlive.rtmp.amf0 import AmfValue, EcmaArray
from interlive.rtmp.errors import AmfError

from .avc import AudioSpecificConfig, AvcDecoderConfiguration, Sps
from .errors import FlvError, UnsupportedCodec
from .h264_rtp import nals_to_avcc

__all__ = [
    "AacPacketType",
    "AudioData",
    "AvcPacketType",
    "FlvHeader",
    "FlvMuxer",
    "FlvMuxerStats",
    "FlvReader",
    "FlvTag",
    "FrameType",
    "ScriptData",
    "TagType",
    "VideoData",
    "parse_flv",
]

FLV_HEADER_SIZE = 9
TAG_HEADER_SIZE = 11
CODEC_AVC = 7
SOUND_AAC = 10
_MAX_DATA_SIZE = 0xFFFFFF
_LEGACY_VIDEO = {
    1: "JPEG",
    2: "Sorenson H.263",
    3: "Screen video",
    4: "On2 VP6",
    5: "On2 VP6 with alpha",
    6: "Screen video v2",
    12: "HEVC (CodecID 12)",
    13: "AV1 (CodecID 13)",
}


class TagType(IntEnum):
    """FLVTAG TagType (E.4.1)."""

    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


class FrameType(IntEnum):
    """VIDEODATA FrameType (E.4.3.1)."""

    KEY = 1
    INTER = 2
    DISPOSABLE_INTER = 3
    GENERATED_KEY = 4
    INFO = 5


class AvcPacketType(IntEnum):
    """AVCVIDEOPACKET AVCPacketType."""

    SEQUENCE_HEADER = 0
    NALU = 1
    END_OF_SEQUENCE = 2


class AacPacketType(IntEnum):
    """AACAUDIODATA AACPacketType."""

    SEQUENCE_HEADER = 0
    RAW = 1


# -- header and tags -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlvHeader:
    """The 9-byte FLV header (E.2); PreviousTagSize0 is not part of it."""

    has_audio: bool
    has_video: bool
    version: int = 1

    @classmethod
    def parse(cls, data: bytes) -> FlvHeader:
        """Decode the first 9 bytes; raises :class:`FlvError`."""
        if len(data) < FLV_HEADER_SIZE:
            raise FlvError(f"FLV header needs 9 bytes, got {len(data)}")
        if data[:3] != b"FLV":
            raise FlvError(f"FLV signature is {bytes(data[:3])!r}")
        offset = int.from_bytes(data[5:9], "big")
        if offset < FLV_HEADER_SIZE:
            raise FlvError(f"FLV DataOffset {offset} < 9")
        return cls(bool(data[4] & 0x04), bool(data[4] & 0x01), data[3])

    def __bytes__(self) -> bytes:
        flags = (0x04 if self.has_audio else 0) | (0x01 if self.has_video else 0)
        return b"FLV" + bytes((self.version & 0xFF, flags)) + FLV_HEADER_SIZE.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLVTAG with its body kept as bytes (E.4.1).

    ``timestamp`` is the full 32-bit value in ms (Timestamp + TimestampExtended).
    ``__bytes__`` writes the tag followed by its PreviousTagSize.
    """

    tag_type: int
    timestamp: int
    data: bytes
    stream_id: int = 0

    @classmethod
    def parse_header(cls, header: bytes) -> tuple[int, int, int]:
        """(tag type, data size, timestamp) from an 11-byte tag header; raises :class:`FlvError`."""
        if len(header) < TAG_HEADER_SIZE:
            raise FlvError(f"FLV tag header needs 11 bytes, got {len(header)}")
        first = header[0]
        if first & 0x20:
            raise FlvError("FLV tag Filter bit set (encrypted tags are not supported)")
        if first & 0xC0:
            raise FlvError(f"FLV tag reserved bits set: {first:#04x}")
        tag_type = first & 0x1F
        if tag_type not in (8, 9, 18):
            raise FlvError(f"FLV TagType {tag_type} is not 8, 9 or 18")
        size = int.from_bytes(header[1:4], "big")
        timestamp = int.from_bytes(header[4:7], "big") | (header[7] << 24)
        return tag_type, size, timestamp

    @classmethod
    def parse(cls, data: bytes) -> FlvTag:
        """Decode exactly one tag followed by its PreviousTagSize; raises :class:`FlvError`."""
        tag_type, size, timestamp = cls.parse_header(data)
        end = TAG_HEADER_SIZE + size
        if len(data) != end + 4:
            raise FlvError(f"FLV tag with DataSize {size} needs {end + 4} bytes, got {len(data)}")
        previous = int.from_bytes(data[end : end + 4], "big")
        if previous != end:
            raise FlvError(f"PreviousTagSize {previous}, expected {end}")
        stream_id = int.from_bytes(data[8:11], "big")
        return cls(tag_type, timestamp, bytes(data[TAG_HEADER_SIZE:end]), stream_id)

    def __bytes__(self) -> bytes:
        size = len(self.data)
        if size > _MAX_DATA_SIZE:
            raise FlvError(f"FLV tag body of {size} bytes exceeds 24 bits")
        if self.tag_type not in (8, 9, 18):
            raise FlvError(f"FLV TagType {self.tag_type} is not 8, 9 or 18")
        ts = self.timestamp & 0xFFFFFFFF
        header = (
            bytes((self.tag_type,))
            + size.to_bytes(3, "big")
            + (ts & 0xFFFFFF).to_bytes(3, "big")
            + bytes((ts >> 24,))
            + (self.stream_id & 0xFFFFFF).to_bytes(3, "big")
        )
        return header + self.data + (TAG_HEADER_SIZE + size).to_bytes(4, "big")


class FlvReader:
    """Incremental FLV parser: :meth:`feed` bytes, get back whole tags.

    The header is read first (``header`` is then set) and PreviousTagSize0
    skipped; each tag's PreviousTagSize is checked.  Buffered data never
    exceeds one tag (at most 16 MiB + 15 bytes) plus what one feed brought.
    Raises :class:`FlvError` on malformed data; the reader is then unusable.
    """

    __slots__ = ("_buf", "_skip", "header")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.header: FlvHeader | None = None
        self._skip = 0

    def feed(self, data: bytes) -> list[FlvTag]:
        """Add bytes; return the tags completed by them."""
        buf = self._buf
        buf += data
        tags: list[FlvTag] = []
        pos = 0
        if self.header is None:
            if len(buf) < FLV_HEADER_SIZE:
                return tags
            self.header = FlvHeader.parse(bytes(buf[:FLV_HEADER_SIZE]))
            self._skip = int.from_bytes(buf[5:9], "big") + 4  # to the first tag
        if self._skip:
            if len(buf) < self._skip:
                return tags
            if int.from_bytes(buf[self._skip - 4 : self._skip], "big") != 0:
                raise FlvError("PreviousTagSize0 is not 0")
            pos = self._skip
            self._skip = 0
        while len(buf) - pos >= TAG_HEADER_SIZE:
            _, size, _ = FlvTag.parse_header(bytes(buf[pos : pos + TAG_HEADER_SIZE]))
            end = pos + TAG_HEADER_SIZE + size + 4
            if len(buf) < end:
                break
            tags.append(FlvTag.parse(bytes(buf[pos:end])))
            pos = end
        del buf[:pos]
        return tags


def parse_flv(data: bytes) -> tuple[FlvHeader, list[FlvTag]]:
    """Parse a whole FLV file; raises :class:`FlvError` if malformed or truncated."""
    reader = FlvReader()
    tags = reader.feed(data)
    if reader.header is None or reader._buf or reader._skip:
        raise FlvError("FLV data truncated")
    return reader.header, tags


# -- VIDEODATA / AUDIODATA -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoData:
    """An AVC VIDEODATA body (E.4.3.1 with AVCVIDEOPACKET).

    ``payload`` is an AVCDecoderConfigurationRecord for a sequence header and
    length-prefixed NAL units for NALU packets.  ``composition_time`` is in ms.
    """

    frame_type: int
    avc_packet_type: int
    composition_time: int
    payload: bytes
    codec_id: int = CODEC_AVC

    @property
    def is_keyframe(self) -> bool:
        """FrameType 1 (key frame)."""
        return self.frame_type == FrameType.KEY

    @classmethod
    def parse(cls, data: bytes) -> VideoData:
        """Decode an AVC video tag body.

        Raises :class:`UnsupportedCodec` for Enhanced RTMP (IsExHeader, with the
        FourCC) and for legacy CodecIDs other than 7, :class:`FlvError` otherwise.
        """
        if not data:
            raise FlvError("empty VIDEODATA")
        first = data[0]
        if first & 0x80:
            if len(data) < 5:
                raise FlvError("Enhanced RTMP video header truncated before its FourCC")
            fourcc = bytes(data[1:5]).decode("latin-1")
            raise UnsupportedCodec(
                fourcc,
                f"Enhanced RTMP video with FourCC {fourcc!r} is not supported "
                f"(only legacy AVC, CodecID 7)",
            )
        frame_type = first >> 4
        codec_id = first & 0x0F
        if codec_id != CODEC_AVC:
            name = _LEGACY_VIDEO.get(codec_id, f"CodecID {codec_id}")
            raise UnsupportedCodec(name, f"FLV video codec {name} is not supported (only AVC)")
        if frame_type == 0 or frame_type > 5:
            raise FlvError(f"VIDEODATA FrameType {frame_type} is reserved")
        if len(data) < 5:
            raise FlvError(f"AVC VIDEODATA of {len(data)} bytes, needs 5")
        packet_type = data[1]
        if packet_type > 2:
            raise FlvError(f"AVCPacketType {packet_type} is not 0, 1 or 2")
        cts = int.from_bytes(data[2:5], "big", signed=True)
        return cls(frame_type, packet_type, cts, bytes(data[5:]), codec_id)

    def __bytes__(self) -> bytes:
        if not 0 < self.frame_type <= 5 or not 0 <= self.codec_id <= 15:
            raise FlvError(f"FrameType {self.frame_type} / CodecID {self.codec_id} out of range")
        if not -(1 << 23) <= self.composition_time < 1 << 23:
            raise FlvError(f"CompositionTime {self.composition_time} does not fit 24 bits")
        return (
            bytes(((self.frame_type << 4) | self.codec_id, self.avc_packet_type & 0xFF))
            + self.composition_time.to_bytes(3, "big", signed=True)
            + self.payload
        )


@dataclass(frozen=True, slots=True)
class AudioData:
    """An AUDIODATA body (E.4.2.1); ``aac_packet_type`` is None unless SoundFormat is 10.

    ``sound_rate`` is the 2-bit code (3 = 44 kHz, what AAC always signals),
    ``sound_size`` 1 for 16-bit, ``sound_type`` 1 for stereo.
    """

    sound_format: int
    sound_rate: int
    sound_size: int
    sound_type: int
    aac_packet_type: int | None
    payload: bytes

    @classmethod
    def aac(cls, packet_type: int, payload: bytes, *, stereo: bool = True) -> AudioData:
        """An AAC body as FFmpeg writes it (44 kHz, 16-bit flags)."""
        return cls(SOUND_AAC, 3, 1, 1 if stereo else 0, packet_type, payload)

    @classmethod
    def parse(cls, data: bytes) -> AudioData:
        """Decode an audio tag body; raises :class:`FlvError` (UnsupportedCodec for ExHeader)."""
        if not data:
            raise FlvError("empty AUDIODATA")
        first = data[0]
        sound_format = first >> 4
        if sound_format == 9:
            fourcc = bytes(data[1:5]).decode("latin-1")
            raise UnsupportedCodec(
                fourcc, f"Enhanced RTMP audio with FourCC {fourcc!r} is not supported"
            )
        packet_type: int | None = None
        payload = bytes(data[1:])
        if sound_format == SOUND_AAC:
            if len(data) < 2:
                raise FlvError("AAC AUDIODATA without AACPacketType")
            packet_type = data[1]
            if packet_type > 1:
                raise FlvError(f"AACPacketType {packet_type} is not 0 or 1")
            payload = bytes(data[2:])
        return cls(
            sound_format, (first >> 2) & 3, (first >> 1) & 1, first & 1, packet_type, payload
        )

    def __bytes__(self) -> bytes:
        if not 0 <= self.sound_format <= 15:
            raise FlvError(f"SoundFormat {self.sound_format} out of range")
        first = (
            (self.sound_format << 4)
            | ((self.sound_rate & 3) << 2)
            | ((self.sound_size & 1) << 1)
            | (self.sound_type & 1)
        )
        if self.sound_format == SOUND_AAC:
            if self.aac_packet_type not in (0, 1):
                raise FlvError(f"AACPacketType {self.aac_packet_type} is not 0 or 1")
            return bytes((first, self.aac_packet_type)) + self.payload
        return bytes((first,)) + self.payload


# -- SCRIPTDATA ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptData:
    """A SCRIPTDATA body (E.4.4): a name and one AMF0 value (onMetaData's ECMA array).

    AMF0 itself is :mod:`interlive.rtmp.amf0`; its errors surface as :class:`FlvError`.
    """

    name: str
    value: AmfValue

    @classmethod
    def parse(cls, data: bytes) -> ScriptData:
        """Decode the name and the first value; raises :class:`FlvError`."""
        try:
            values = amf0.decode_all(data)
        except AmfError as exc:
            raise FlvError(f"SCRIPTDATA: {exc}") from exc
        if not values or not isinstance(values[0], str):
            raise FlvError("SCRIPTDATA does not start with an AMF0 string")
        return cls(values[0], values[1] if len(values) > 1 else None)

    def __bytes__(self) -> bytes:
        try:
            return amf0.encode_all(self.name, self.value)
        except AmfError as exc:
            raise FlvError(f"SCRIPTDATA: {exc}") from exc


# -- live muxer ----------------------------------------------------------------------

_NAL_IDR = 5
_NAL_SPS = 7
_NAL_PPS = 8
_NAL_AUD = 9


@dataclass(slots=True)
class FlvMuxerStats:
    """Counters of :class:`FlvMuxer`."""

    video_frames: int = 0
    audio_frames: int = 0
    dropped_before_keyframe: int = 0
    sequence_headers: int = 0


class FlvMuxer:
    """Live HTTP-FLV writer for H.264 (and optionally AAC).

    Call :meth:`write_video` with each access unit (NAL units without start
    codes) and its timestamp in ms, :meth:`write_audio` with raw AAC frames;
    each returns the bytes to send (possibly empty).  Nothing is written
    until an IDR access unit arrives with its SPS and PPS known (in-band or
    from :meth:`set_parameter_sets`); that call returns the FLV header,
    PreviousTagSize0, onMetaData, the sequence header(s) and the first frame.
    A changed SPS/PPS produces a new AVC sequence header before the next IDR.
    Timestamps are made relative to the first frame and clamped so they never
    decrease.  SPS, PPS and access unit delimiters are not repeated in NALU tags.
    """

    __slots__ = (
        "_audio_config",
        "_base",
        "_config",
        "_has_audio",
        "_last_audio_ts",
        "_last_ts",
        "_pps",
        "_sps",
        "_started",
        "stats",
    )

    def __init__(
        self, *, has_audio: bool = False, audio_config: AudioSpecificConfig | None = None
    ) -> None:
        self._has_audio = has_audio or audio_config is not None
        self._audio_config = audio_config
        self._sps: bytes | None = None
        self._pps: bytes | None = None
        self._config: bytes | None = None
        self._started = False
        self._base = 0
        self._last_ts = 0
        self._last_audio_ts = 0
        self.stats = FlvMuxerStats()

    @property
    def started(self) -> bool:
        """Whether the header and the first keyframe have been written."""
        return self._started

    def set_parameter_sets(self, sps: bytes, pps: bytes) -> None:
        """Give the SPS and PPS out of band (e.g. from SDP sprop-parameter-sets)."""
        self._sps = bytes(sps)
        self._pps = bytes(pps)

    def _ts(self, timestamp_ms: int, audio: bool = False) -> int:
        """Relative ms, never below the last timestamp of the same track."""
        last = self._last_audio_ts if audio else self._last_ts
        ts = max(timestamp_ms - self._base, last) & 0xFFFFFFFF
        if audio:
            self._last_audio_ts = ts
        else:
            self._last_ts = ts
        return ts

    def write_video(
        self, nals: Sequence[bytes], timestamp_ms: int, composition_time_ms: int = 0
    ) -> bytes:
        """Mux one access unit; returns the bytes to send.

        Raises :class:`~interlive.media.errors.SpsError` if the stream would start
        with an SPS that does not parse.
        """
        key = False
        body: list[bytes] = []
        for nal in nals:
            if not nal:
                continue
            t = nal[0] & 0x1F
            if t == _NAL_SPS:
                self._sps = bytes(nal)
            elif t == _NAL_PPS:
                self._pps = bytes(nal)
            elif t != _NAL_AUD:
                key = key or t == _NAL_IDR
                body.append(bytes(nal))
        out: list[bytes] = []
        if not self._started:
            if not key or self._sps is None or self._pps is None:
                self.stats.dropped_before_keyframe += 1
                return b""
            out.append(self._start(timestamp_ms))
        ts = self._ts(timestamp_ms)
        if key:
            assert self._sps is not None and self._pps is not None
            config = bytes(AvcDecoderConfiguration.from_parameter_sets([self._sps], [self._pps]))
            if config != self._config:
                self._config = config
                self.stats.sequence_headers += 1
                out.append(
                    self._video_tag(FrameType.KEY, AvcPacketType.SEQUENCE_HEADER, config, ts)
                )
        if body:
            self.stats.video_frames += 1
            payload = nals_to_avcc(body)
            frame = FrameType.KEY if key else FrameType.INTER
            out.append(self._video_tag(frame, AvcPacketType.NALU, payload, ts, composition_time_ms))
        return b"".join(out)

    def write_audio(self, frame: bytes, timestamp_ms: int) -> bytes:
        """Mux one raw AAC frame (dropped before the first video keyframe)."""
        if not self._started or self._audio_config is None:
            self.stats.dropped_before_keyframe += 1
            return b""
        self.stats.audio_frames += 1
        return self._audio_tag(AacPacketType.RAW, frame, self._ts(timestamp_ms, audio=True))

    def end_of_stream(self) -> bytes:
        """The AVC end-of-sequence tag (empty if nothing was started)."""
        if not self._started:
            return b""
        return self._video_tag(FrameType.KEY, AvcPacketType.END_OF_SEQUENCE, b"", self._last_ts)

    def _start(self, timestamp_ms: int) -> bytes:
        assert self._sps is not None
        sps = Sps.parse(self._sps)
        self._started = True
        self._base = timestamp_ms
        self._last_ts = 0
        meta = EcmaArray(
            {
                "width": float(sps.width),
                "height": float(sps.height),
                "videocodecid": float(CODEC_AVC),
            }
        )
        asc = self._audio_config
        if asc is not None:
            meta["audiocodecid"] = float(SOUND_AAC)
            meta["audiosamplerate"] = float(asc.sampling_frequency)
            meta["stereo"] = asc.channel_configuration >= 2
        meta["encoder"] = "interlive"
        parts = [
            bytes(FlvHeader(has_audio=self._has_audio, has_video=True)),
            b"\x00\x00\x00\x00",
            bytes(FlvTag(TagType.SCRIPT, 0, bytes(ScriptData("onMetaData", meta)))),
        ]
        if asc is not None:
            parts.append(self._audio_tag(AacPacketType.SEQUENCE_HEADER, bytes(asc), 0))
        return b"".join(parts)

    @staticmethod
    def _video_tag(
        frame: FrameType, packet: AvcPacketType, payload: bytes, ts: int, cts: int = 0
    ) -> bytes:
        return bytes(FlvTag(TagType.VIDEO, ts, bytes(VideoData(frame, packet, cts, payload))))

    def _audio_tag(self, packet: AacPacketType, payload: bytes, ts: int) -> bytes:
        asc = self._audio_config
        stereo = asc is None or asc.channel_configuration != 1
        return bytes(
            FlvTag(TagType.AUDIO, ts, bytes(AudioData.aac(packet, payload, stereo=stereo)))
        )
