"""FLV v10.1 Annex E: header, tags, AVC/AAC bodies, Enhanced RTMP refusal, the live muxer."""

from __future__ import annotations

import fractions
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from interlive.media.avc import AudioSpecificConfig, AvcDecoderConfiguration, Sps
from interlive.media.errors import FlvError, UnsupportedCodec
from interlive.media.flv import (
    AacPacketType,
    AudioData,
    AvcPacketType,
    FlvHeader,
    FlvMuxer,
    FlvReader,
    FlvTag,
    FrameType,
    ScriptData,
    TagType,
    VideoData,
    parse_flv,
)
from interlive.media.h264_rtp import H264Depacketizer, H264Packetizer, avcc_to_nals
from interlive.rtmp.amf0 import EcmaArray


def _require_ffmpeg() -> None:
    # a missing tool is a broken set-up, not a reason to skip: `make test` installs it
    for tool in ("ffmpeg", "ffprobe"):
        assert shutil.which(tool), f"{tool} is missing: `make test` installs Debian's ffmpeg"


needs_ffmpeg = pytest.mark.usefixtures("ffmpeg_tools")


@pytest.fixture
def ffmpeg_tools() -> None:
    _require_ffmpeg()


# -- exact vectors --


def test_header_vector() -> None:
    assert bytes(FlvHeader(has_audio=True, has_video=True)) == b"FLV\x01\x05\x00\x00\x00\x09"
    assert bytes(FlvHeader(has_audio=False, has_video=True)) == b"FLV\x01\x01\x00\x00\x00\x09"
    assert FlvHeader.parse(b"FLV\x01\x04\x00\x00\x00\x09") == FlvHeader(True, False)


def test_tag_vector() -> None:
    tag = FlvTag(TagType.VIDEO, 0x01234567, b"\xaa\xbb")
    wire = bytes.fromhex("09 000002 234567 01 000000 aabb 0000000d")
    assert bytes(tag) == wire
    assert FlvTag.parse(wire) == tag


def test_video_data_vectors() -> None:
    seq = VideoData(FrameType.KEY, AvcPacketType.SEQUENCE_HEADER, 0, b"\x01")
    assert bytes(seq) == bytes.fromhex("170000000001")
    nalu = VideoData(FrameType.INTER, AvcPacketType.NALU, -33, b"\x00")
    assert bytes(nalu) == bytes.fromhex("2701ffffdf00")
    assert VideoData.parse(bytes(nalu)) == nalu
    assert VideoData.parse(bytes(seq)).is_keyframe
    eos = VideoData.parse(bytes.fromhex("1702000000"))
    assert eos.avc_packet_type == AvcPacketType.END_OF_SEQUENCE


def test_audio_data_vectors() -> None:
    seq = AudioData.aac(AacPacketType.SEQUENCE_HEADER, bytes.fromhex("1190"))
    assert bytes(seq) == bytes.fromhex("af001190")
    assert AudioData.parse(bytes.fromhex("af001190")) == seq
    raw = AudioData.parse(bytes.fromhex("ae01abcd"))  # mono
    assert (raw.sound_type, raw.aac_packet_type, raw.payload) == (0, 1, b"\xab\xcd")
    mp3 = AudioData.parse(bytes.fromhex("2fff"))
    assert (mp3.sound_format, mp3.aac_packet_type, mp3.payload) == (2, None, b"\xff")
    assert bytes(mp3) == bytes.fromhex("2fff")


@pytest.mark.parametrize("fourcc", ["hvc1", "av01", "vp09", "avc1"])
@pytest.mark.parametrize("packet_type", [0, 1, 3])
def test_enhanced_rtmp_refused(fourcc: str, packet_type: int) -> None:
    # IsExHeader | FrameType 1 (key) << 4 | VideoPacketType, then the FourCC.
    body = bytes((0x80 | 0x10 | packet_type,)) + fourcc.encode() + b"\x00\x00\x00\x01"
    with pytest.raises(UnsupportedCodec) as info:
        VideoData.parse(body)
    assert info.value.codec == fourcc
    assert fourcc in str(info.value)
    assert isinstance(info.value, FlvError) and isinstance(info.value, ValueError)


def test_enhanced_rtmp_audio_refused() -> None:
    with pytest.raises(UnsupportedCodec) as info:
        AudioData.parse(b"\x90Opus")
    assert info.value.codec == "Opus"


@pytest.mark.parametrize(("codec_id", "name"), [(2, "Sorenson"), (12, "HEVC"), (4, "VP6")])
def test_legacy_codecs_refused(codec_id: int, name: str) -> None:
    with pytest.raises(UnsupportedCodec, match=name):
        VideoData.parse(bytes((0x10 | codec_id, 0, 0, 0, 0)))


@pytest.mark.parametrize(
    "body",
    [b"", b"\x17\x01\x00\x00", b"\x07\x01\x00\x00\x00", b"\x17\x03\x00\x00\x00", b"\x90av"],
)
def test_bad_video_data(body: bytes) -> None:
    with pytest.raises(FlvError):
        VideoData.parse(body)


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        bytes.fromhex("0900000200000000000000aa0000000d"),  # body one byte short
        bytes.fromhex("0900000200000000000000aabb0000000c"),  # wrong PreviousTagSize
        bytes.fromhex("2900000200000000000000aabb0000000d"),  # Filter bit
        bytes.fromhex("0700000200000000000000aabb0000000d"),  # TagType 7
    ],
)
def test_bad_tag(wire: bytes) -> None:
    with pytest.raises(FlvError):
        FlvTag.parse(wire)


def test_bad_header() -> None:
    for data in (b"FLV\x01", b"FLX\x01\x05\x00\x00\x00\x09", b"FLV\x01\x05\x00\x00\x00\x08"):
        with pytest.raises(FlvError):
            FlvHeader.parse(data)
    with pytest.raises(FlvError):
        parse_flv(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x09\x00")  # truncated


def test_script_data_round_trip() -> None:
    meta = ScriptData(
        "onMetaData", EcmaArray({"width": 320.0, "stereo": True, "encoder": "x", "n": None})
    )
    wire = bytes(meta)
    assert wire.startswith(b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x04")
    assert wire.endswith(b"\x00\x00\x09")
    assert ScriptData.parse(wire) == meta
    assert isinstance(ScriptData.parse(wire).value, EcmaArray)
    nested = ScriptData("x", {"a": [1.0, "b", {"c": False}]})
    assert ScriptData.parse(bytes(nested)) == nested


# -- what Debian's ffmpeg writes --


@pytest.fixture(scope="module")
def ffmpeg_flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    _require_ffmpeg()
    out = tmp_path_factory.mktemp("flv") / "out.flv"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "1", "-c:v", "libx264", "-c:a", "aac", "-f", "flv", str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def test_parse_ffmpeg_flv(ffmpeg_flv: bytes) -> None:
    header, tags = parse_flv(ffmpeg_flv)
    assert header == FlvHeader(has_audio=True, has_video=True)
    assert tags[0].tag_type == TagType.SCRIPT
    meta = ScriptData.parse(tags[0].data)
    assert meta.name == "onMetaData"
    assert isinstance(meta.value, dict)
    assert (meta.value["width"], meta.value["height"], meta.value["videocodecid"]) == (
        320.0,
        240.0,
        7.0,
    )
    video = [VideoData.parse(t.data) for t in tags if t.tag_type == TagType.VIDEO]
    audio = [AudioData.parse(t.data) for t in tags if t.tag_type == TagType.AUDIO]
    # The sequence header equals the record built from its own SPS/PPS.
    seq = video[0]
    assert seq.avc_packet_type == AvcPacketType.SEQUENCE_HEADER and seq.is_keyframe
    record = AvcDecoderConfiguration.parse(seq.payload)
    rebuilt = AvcDecoderConfiguration.from_parameter_sets(record.sps, record.pps)
    assert bytes(rebuilt) == seq.payload
    sps = Sps.parse(record.sps[0])
    assert (sps.width, sps.height) == (320, 240)
    frames = [v for v in video if v.avc_packet_type == AvcPacketType.NALU]
    assert len(frames) == 15
    assert frames[0].is_keyframe
    for frame in frames:
        nals = avcc_to_nals(frame.payload, record.nal_length_size)
        assert all(n[0] & 0x1F in (1, 5, 6) for n in nals)
    assert any(v.composition_time > 0 for v in frames)  # B-frames
    assert video[-1].avc_packet_type == AvcPacketType.END_OF_SEQUENCE
    assert audio[0].aac_packet_type == AacPacketType.SEQUENCE_HEADER
    asc = AudioSpecificConfig.parse(audio[0].payload)
    assert (asc.object_type, asc.sampling_frequency, asc.channel_configuration) == (2, 48000, 1)
    assert all(a.aac_packet_type == AacPacketType.RAW for a in audio[1:])
    # Tags re-serialise byte for byte.
    assert b"".join(bytes(t) for t in tags) == ffmpeg_flv[13:]


def test_reader_is_incremental(ffmpeg_flv: bytes) -> None:
    _, tags = parse_flv(ffmpeg_flv)
    reader = FlvReader()
    got: list[FlvTag] = []
    for i in range(0, len(ffmpeg_flv), 7):
        got += reader.feed(ffmpeg_flv[i : i + 7])
    assert got == tags


# -- the muxer --


def _ffprobe(path: Path) -> dict[str, list[dict[str, object]]]:
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_frames", "-show_entries",
            "stream=codec_name,width,height,nb_read_frames,sample_rate,channels",
            "-of", "json", str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert result.stderr == b"", result.stderr.decode()
    parsed: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return parsed


@needs_ffmpeg
def test_muxer_output_plays_in_ffprobe(x264_aus: list[list[bytes]], tmp_path: Path) -> None:
    muxer = FlvMuxer()
    out = bytearray()
    # Start mid-GOP: everything before the IDR of frame 10 is dropped.
    for i, au in enumerate(x264_aus[3:], start=3):
        out += muxer.write_video(au, 5000 + i * 66)
    out += muxer.end_of_stream()
    assert muxer.stats.dropped_before_keyframe == 7
    header, tags = parse_flv(bytes(out))
    assert header == FlvHeader(has_audio=False, has_video=True)
    meta = ScriptData.parse(tags[0].data)
    assert isinstance(meta.value, dict)
    assert (meta.value["width"], meta.value["height"]) == (320.0, 240.0)
    seq = VideoData.parse(tags[1].data)
    sps = next(n for n in x264_aus[0] if n[0] & 0x1F == 7)
    pps = next(n for n in x264_aus[0] if n[0] & 0x1F == 8)
    assert seq.payload == bytes(AvcDecoderConfiguration.from_parameter_sets([sps], [pps]))
    first = VideoData.parse(tags[2].data)
    assert first.is_keyframe and tags[2].timestamp == 0
    assert [t.timestamp for t in tags[2:5]] == [0, 66, 132]
    path = tmp_path / "mux.flv"
    path.write_bytes(out)
    (stream,) = _ffprobe(path)["streams"]
    assert stream["codec_name"] == "h264"
    assert (stream["width"], stream["height"]) == (320, 240)
    assert stream["nb_read_frames"] == str(len(x264_aus) - 10)


def _aac_frames(seconds: float) -> tuple[bytes, list[bytes]]:
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "fltp"
    codec.time_base = fractions.Fraction(1, 48000)
    frames: list[bytes] = []
    t = np.arange(1024) / 48000
    for i in range(int(seconds * 48000 / 1024)):
        tone = (0.2 * np.sin(2 * np.pi * 440 * (t + i * 1024 / 48000))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * 1024
        frames += [bytes(p) for p in codec.encode(frame)]
    frames += [bytes(p) for p in codec.encode(None)]
    return bytes(codec.extradata or b""), frames


@needs_ffmpeg
def test_muxer_with_aac(x264_aus: list[list[bytes]], tmp_path: Path) -> None:
    extradata, aac = _aac_frames(3.0)
    asc = AudioSpecificConfig.parse(extradata)
    assert (asc.sampling_frequency, asc.channel_configuration) == (48000, 2)
    muxer = FlvMuxer(audio_config=asc)
    out = bytearray()
    audio_ms = [i * 1024 * 1000 // 48000 for i in range(len(aac))]
    a = 0
    for i, au in enumerate(x264_aus):
        video_ms = i * 1000 // 15
        while a < len(aac) and audio_ms[a] <= video_ms:
            out += muxer.write_audio(aac[a], audio_ms[a])
            a += 1
        out += muxer.write_video(au, video_ms)
    path = tmp_path / "av.flv"
    path.write_bytes(out)
    streams = {s["codec_name"]: s for s in _ffprobe(path)["streams"]}
    assert set(streams) == {"h264", "aac"}
    assert (streams["aac"]["sample_rate"], streams["aac"]["channels"]) == ("48000", 2)
    assert streams["h264"]["nb_read_frames"] == str(len(x264_aus))


@needs_ffmpeg
def test_rtp_with_losses_to_flv(x264_aus: list[list[bytes]], tmp_path: Path) -> None:
    """RTP H.264 with losses → depacketizer → FLV: ffprobe decodes every frame written."""
    packetizer = H264Packetizer()
    depacketizer = H264Depacketizer()
    muxer = FlvMuxer()
    out = bytearray()
    seq = 0
    for i, au in enumerate(x264_aus):
        for payload, marker in packetizer.packetize(au):
            seq += 1
            if seq % 37 == 0:  # lose one packet in 37
                continue
            for unit in depacketizer.push(seq & 0xFFFF, i * 6000, marker, payload):
                out += muxer.write_video(list(unit.nals), unit.timestamp // 90)
    assert depacketizer.stats.lost_packets > 0
    assert 0 < muxer.stats.video_frames < len(x264_aus)
    path = tmp_path / "lossy.flv"
    path.write_bytes(out)
    (stream,) = _ffprobe(path)["streams"]
    assert stream["nb_read_frames"] == str(muxer.stats.video_frames)


def test_muxer_new_sequence_header_on_sps_change(x264_aus: list[list[bytes]]) -> None:
    muxer = FlvMuxer()
    first = muxer.write_video(x264_aus[0], 0)
    assert muxer.stats.sequence_headers == 1
    muxer.write_video(x264_aus[10], 100)  # same SPS/PPS: no new header
    assert muxer.stats.sequence_headers == 1
    from .conftest import encode_h264

    other = encode_h264(176, 144, 1)[0]
    data = muxer.write_video(other, 200)
    assert muxer.stats.sequence_headers == 2
    tags = FlvReader().feed(first + data)
    kinds = [VideoData.parse(t.data).avc_packet_type for t in tags if t.tag_type == 9]
    assert kinds == [0, 1, 0, 1]
    assert [t.timestamp for t in tags if t.tag_type == 9] == [0, 0, 200, 200]


def test_muxer_timestamps_never_decrease(x264_aus: list[list[bytes]]) -> None:
    muxer = FlvMuxer()
    data = muxer.write_video(x264_aus[0], 1000)
    data += muxer.write_video(x264_aus[1], 900)
    data += muxer.write_video(x264_aus[2], 1100)
    tags = FlvReader().feed(data)
    assert [t.timestamp for t in tags if t.tag_type == 9] == [0, 0, 0, 100]
