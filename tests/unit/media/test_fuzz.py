"""Every media parser, on any bytes, returns a value or raises its own MediaFormatError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.media.avc import AudioSpecificConfig, AvcDecoderConfiguration, Sps
from interlive.media.errors import MediaFormatError
from interlive.media.flv import (
    AudioData,
    FlvHeader,
    FlvMuxer,
    FlvReader,
    FlvTag,
    ScriptData,
    VideoData,
    parse_flv,
)
from interlive.media.h264_rtp import H264Depacketizer, annexb_to_nals, avcc_to_nals

from .conftest import real_access_units
from .test_avc import FFMPEG_RECORD, X264_SPS


def _mutate(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with a few bytes overwritten, then possibly truncated or extended."""

    def apply(edits: list[tuple[int, int]], cut: int, tail: bytes) -> bytes:
        data = bytearray(seed)
        for pos, value in edits:
            data[pos % len(data)] = value
        return bytes(data[: max(cut, 0)]) + tail

    return st.builds(
        apply,
        st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4),
        st.integers(0, len(seed) + 1),
        st.binary(max_size=8),
    )


def _small_flv() -> bytes:
    muxer = FlvMuxer()
    aus = real_access_units()
    return muxer.write_video(aus[0], 0) + muxer.write_video(aus[1], 66)[:300]


SEEDS: dict[str, bytes] = {
    "sps": X264_SPS,
    "record": FFMPEG_RECORD,
    "asc": bytes.fromhex("118856e500"),
    "video": bytes.fromhex("1701000000000000044141414141"),
    "audio": bytes.fromhex("af001190"),
    "tag": bytes(FlvTag(9, 66, bytes.fromhex("2701000000"))),
    "script": bytes(ScriptData("onMetaData", {"width": 320.0, "a": [True, None, "x"]})),
}

PARSERS: list[tuple[Callable[[bytes], object], str]] = [
    (Sps.parse, "sps"),
    (AvcDecoderConfiguration.parse, "record"),
    (AudioSpecificConfig.parse, "asc"),
    (FlvHeader.parse, "tag"),
    (FlvTag.parse, "tag"),
    (VideoData.parse, "video"),
    (AudioData.parse, "audio"),
    (ScriptData.parse, "script"),
    (parse_flv, "tag"),
    (annexb_to_nals, "sps"),
    (avcc_to_nals, "video"),
]


@pytest.mark.parametrize(("parse", "seed"), PARSERS, ids=[p.__qualname__ for p, _ in PARSERS])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_parser_total(parse: Callable[[bytes], object], seed: str, data: st.DataObject) -> None:
    payload = data.draw(st.binary(max_size=64) | _mutate(SEEDS[seed]))
    with contextlib.suppress(MediaFormatError):
        parse(payload)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_flv_reader_total(data: st.DataObject) -> None:
    stream = data.draw(_mutate(_small_flv()))
    step = data.draw(st.integers(1, 64))
    reader = FlvReader()
    try:
        for i in range(0, len(stream), step):
            for tag in reader.feed(stream[i : i + step]):
                if tag.tag_type == 9:
                    VideoData.parse(tag.data)
    except MediaFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 3), st.booleans(), st.binary(max_size=40)),
        max_size=30,
    )
)
def test_depacketizer_never_raises(packets: list[tuple[int, int, bool, bytes]]) -> None:
    depacketizer = H264Depacketizer()
    for seq, ts, marker, payload in packets:
        for unit in depacketizer.push(seq, ts, marker, payload):
            assert unit.nals and all(unit.nals)


# -- round trips of the builders --


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3),
    st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=3),
    st.sampled_from([0, 1, 3]),
    st.none() | st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 7)),
)
def test_record_round_trip(
    profile: int,
    compat: int,
    level: int,
    sps: list[bytes],
    pps: list[bytes],
    length_size_minus_one: int,
    ext: tuple[int, int, int] | None,
) -> None:
    if profile in (66, 77, 88):
        ext = None
    record = AvcDecoderConfiguration(
        profile,
        compat,
        level,
        tuple(sps),
        tuple(pps),
        length_size_minus_one,
        chroma_format=None if ext is None else ext[0],
        bit_depth_luma_minus8=None if ext is None else ext[1],
        bit_depth_chroma_minus8=None if ext is None else ext[2],
    )
    assert AvcDecoderConfiguration.parse(bytes(record)) == record


@given(
    st.integers(1, 95).filter(lambda t: t != 31),  # 31 is the escape value
    st.sampled_from([*range(13), 15]),
    st.integers(0, 15),
    st.integers(1, (1 << 24) - 1),
)
def test_asc_round_trip(object_type: int, index: int, channels: int, freq: int) -> None:
    asc = AudioSpecificConfig(object_type, index, channels, freq if index == 15 else None)
    assert AudioSpecificConfig.parse(bytes(asc)) == asc


@given(
    st.integers(1, 5),
    st.integers(0, 2),
    st.integers(-(1 << 23), (1 << 23) - 1),
    st.binary(max_size=20),
    st.integers(0, 0xFFFFFFFF),
)
def test_video_tag_round_trip(
    frame_type: int, packet_type: int, cts: int, payload: bytes, timestamp: int
) -> None:
    video = VideoData(frame_type, packet_type, cts, payload)
    assert VideoData.parse(bytes(video)) == video
    tag = FlvTag(9, timestamp, bytes(video))
    assert FlvTag.parse(bytes(tag)) == tag


@given(st.integers(0, 15).filter(lambda f: f != 9), st.integers(0, 15), st.binary(max_size=20))
def test_audio_round_trip(sound_format: int, flags: int, payload: bytes) -> None:
    packet_type = 1 if sound_format == 10 else None
    audio = AudioData(sound_format, flags >> 2, (flags >> 1) & 1, flags & 1, packet_type, payload)
    assert AudioData.parse(bytes(audio)) == audio
