"""SPS fields (H.264 §7.3.2.1.1), AVCDecoderConfigurationRecord (14496-15 §5.3.3.1), AAC ASC."""

from __future__ import annotations

import pytest

from interlive.media.avc import AudioSpecificConfig, AvcDecoderConfiguration, Sps, nal_to_rbsp
from interlive.media.errors import AacConfigError, AvcConfigError, SpsError

from .conftest import encode_h264

# libx264 (core 165, through PyAV), 320x240 yuv420p, High profile level 1.2.
X264_SPS = bytes.fromhex("6764000cacd94141fa10000003001000000301e0f1429960")
X264_PPS = bytes.fromhex("68ebe3cb22c0")
# The sequence header Debian's ffmpeg (Lavf59, x264 core 164) wrote for
# `ffmpeg -f lavfi -i testsrc2=size=320x240:rate=15 -t 1 -c:v libx264 -f flv`:
# version 1, profile 100, compatibility 0, level 12, 0xff (lengthSizeMinusOne 3),
# 0xe1 (1 SPS), SPS, 1 PPS, then the High-profile extension fd f8 f8 00
# (chroma_format 1, 8-bit luma and chroma, no SPS extensions).
FFMPEG_RECORD = bytes.fromhex(
    "0164000cffe100196764000cacd94141fb0110000003001000000301e0f142996001000668ebe3cb22c0fdf8f800"
)


def test_sps_fields_x264() -> None:
    sps = Sps.parse(X264_SPS)
    assert sps == Sps(
        profile_idc=100,
        constraint_flags=0,
        level_idc=12,
        seq_parameter_set_id=0,
        chroma_format_idc=1,
        bit_depth_luma=8,
        bit_depth_chroma=8,
        frame_mbs_only=True,
        width=320,
        height=240,
    )


def test_record_from_parameter_sets_exact() -> None:
    record = AvcDecoderConfiguration.from_parameter_sets([X264_SPS], [X264_PPS])
    assert bytes(record) == bytes.fromhex(
        "0164000cffe10018" + X264_SPS.hex() + "010006" + X264_PPS.hex() + "fdf8f800"
    )
    assert AvcDecoderConfiguration.parse(bytes(record)) == record
    assert record.nal_length_size == 4


def test_ffmpeg_record_vector() -> None:
    record = AvcDecoderConfiguration.parse(FFMPEG_RECORD)
    assert (record.profile_indication, record.profile_compatibility, record.level_indication) == (
        100,
        0,
        12,
    )
    assert record.length_size_minus_one == 3
    assert (record.chroma_format, record.bit_depth_luma_minus8, record.sps_ext) == (1, 0, ())
    assert bytes(record) == FFMPEG_RECORD
    rebuilt = AvcDecoderConfiguration.from_parameter_sets(record.sps, record.pps)
    assert bytes(rebuilt) == FFMPEG_RECORD
    assert (Sps.parse(record.sps[0]).width, Sps.parse(record.sps[0]).height) == (320, 240)


def test_baseline_record_has_no_extension() -> None:
    sps = bytes.fromhex("6742c01fda014016e806d0a135")  # Baseline, from test_h264.py
    record = AvcDecoderConfiguration.from_parameter_sets([sps], [bytes.fromhex("68ce3c80")])
    assert record.chroma_format is None
    assert bytes(record).endswith(bytes.fromhex("68ce3c80"))
    assert AvcDecoderConfiguration.parse(bytes(record)) == record


@pytest.mark.parametrize(
    ("width", "height", "params"),
    [
        (320, 240, ""),
        (328, 200, ""),  # 200 = 12.5 macroblocks: frame cropping
        (176, 144, ""),
        (642, 362, ""),  # cropping in both directions
        (320, 240, "interlaced=1"),  # frame_mbs_only 0: map units are field MB pairs
        (330, 252, "interlaced=1"),  # 4-line cropping unit
    ],
)
def test_sps_size_from_libx264(width: int, height: int, params: str) -> None:
    aus = encode_h264(width, height, 1, x264_params=":".join(filter(None, ["bframes=0", params])))
    sps = next(nal for nal in aus[0] if nal[0] & 0x1F == 7)
    parsed = Sps.parse(sps)
    assert (parsed.width, parsed.height) == (width, height)
    assert parsed.frame_mbs_only is (params == "")


def test_emulation_prevention_removed() -> None:
    assert nal_to_rbsp(b"\x67\x00\x00\x03\x01\x00\x00\x03") == b"\x67\x00\x00\x01\x00\x00"
    assert nal_to_rbsp(b"\x00\x00\x03\x00\x00\x03\x00") == b"\x00\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "nal",
    [b"", b"\x68\x00\x00\x00", b"\x67\x64\x00", b"\x67\x64\x00\x0c", b"\x67\x42\x00\x1f\x00"],
)
def test_bad_sps(nal: bytes) -> None:
    with pytest.raises(SpsError):
        Sps.parse(nal)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("0264000cffe1"),  # version 2
        bytes.fromhex("0164000cffe10019"),  # SPS truncated
        bytes.fromhex("0164000cfee100"),  # lengthSizeMinusOne 2
        FFMPEG_RECORD[:-3],  # extension truncated
    ],
)
def test_bad_record(data: bytes) -> None:
    with pytest.raises(AvcConfigError):
        AvcDecoderConfiguration.parse(data)


def test_record_needs_both_sets() -> None:
    with pytest.raises(AvcConfigError):
        AvcDecoderConfiguration.from_parameter_sets([X264_SPS], [])


def test_aac_vectors() -> None:
    # 0x1190: LC (2), 48 kHz (index 3), stereo; 0x1210: LC, 44.1 kHz, stereo.
    assert bytes(AudioSpecificConfig.for_rate(48000, 2)) == bytes.fromhex("1190")
    assert bytes(AudioSpecificConfig.for_rate(44100, 2)) == bytes.fromhex("1210")
    # ffmpeg's AAC encoder, 48 kHz mono, with the SBR sync extension after it.
    asc = AudioSpecificConfig.parse(bytes.fromhex("118856e500"))
    assert asc == AudioSpecificConfig(2, 3, 1)
    assert asc.sampling_frequency == 48000
    explicit = AudioSpecificConfig.for_rate(50000, 1)
    assert explicit.sampling_frequency_index == 15
    assert AudioSpecificConfig.parse(bytes(explicit)) == explicit
    assert explicit.sampling_frequency == 50000
    escaped = AudioSpecificConfig(42, 4, 2)  # object type 42 needs the 6-bit escape
    assert AudioSpecificConfig.parse(bytes(escaped)) == escaped


@pytest.mark.parametrize("data", [b"", b"\x00\x10", b"\x16\x90", b"\x17\x80\x00"])
def test_bad_aac(data: bytes) -> None:
    with pytest.raises(AacConfigError):
        AudioSpecificConfig.parse(data)


@pytest.mark.parametrize(
    "asc",
    [
        AudioSpecificConfig(31, 3, 2),  # 31 is the escape, not an object type
        AudioSpecificConfig(0, 3, 2),
        AudioSpecificConfig(2, 13, 2),
        AudioSpecificConfig(2, 15, 2),  # explicit frequency missing
        AudioSpecificConfig(2, 3, 16),
    ],
)
def test_bad_aac_build(asc: AudioSpecificConfig) -> None:
    with pytest.raises(AacConfigError):
        bytes(asc)
