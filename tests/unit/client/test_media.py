"""Test sources: the frame code through real codecs, and aiortc's timing conventions."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from interlive.client import (
    FileSource,
    FrameSourceTrack,
    MediaFrame,
    TestPatternVideoTrack,
    ToneAudioTrack,
    decode_frame_index,
    render_test_pattern,
    render_tone,
)
from interlive.client.media import INDEX_MODULUS, encode_frame_code

# Indexes that cross the 24-bit wrap, so every bit of the code flips at least once.
FIRST_INDEX = INDEX_MODULUS - 20


def _encode_decode(
    encoder: str, decoder: str, options: dict[str, str], bit_rate: int, n: int
) -> tuple[list[int | None], int]:
    """Encode n pattern frames at 640x360 / 30 fps; decoded indexes and total bytes."""
    enc = av.CodecContext.create(encoder, "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = 640, 360, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.framerate = fractions.Fraction(30)
    enc.bit_rate = bit_rate
    enc.options = options
    dec = av.CodecContext.create(decoder, "r")
    assert isinstance(dec, av.VideoCodecContext)
    indexes: list[int | None] = []
    size = 0
    for i in range(n + 1):
        if i < n:
            frame = render_test_pattern(FIRST_INDEX + i, 640, 360)
            frame.pts = i
            packets = enc.encode(frame)
        else:
            packets = enc.encode(None)
        for packet in packets:
            size += packet.size
            for decoded in dec.decode(packet):
                assert isinstance(decoded, av.VideoFrame)
                indexes.append(decode_frame_index(decoded))
    return indexes, size


@pytest.mark.parametrize(
    ("encoder", "decoder", "options"),
    [
        ("libvpx", "vp8", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}),
        ("libx264", "h264", {"preset": "ultrafast", "tune": "zerolatency"}),
    ],
)
def test_index_survives_lossy_coding(encoder: str, decoder: str, options: dict[str, str]) -> None:
    n = 45
    indexes, size = _encode_decode(encoder, decoder, options, 300_000, n)
    assert indexes == [(FIRST_INDEX + i) % INDEX_MODULUS for i in range(n)]
    # modest bitrate really was used: well under 1 Mbit/s over 1.5 s
    assert size * 8 / (n / 30) < 1_000_000


def test_index_reads_back_from_raw_scaled_and_rgb_frames() -> None:
    frame = render_test_pattern(0xABCDEF, 640, 360)
    assert decode_frame_index(frame) == 0xABCDEF
    assert decode_frame_index(frame.reformat(format="rgb24")) == 0xABCDEF
    assert decode_frame_index(frame.reformat(width=320, height=180)) == 0xABCDEF
    assert decode_frame_index(render_test_pattern(77, 1280, 720)) == 77
    assert decode_frame_index(render_test_pattern(5, 360, 200)) == 5  # width not a multiple


@pytest.mark.parametrize("luma", [0, 16, 128, 235, 255])
def test_flat_pictures_carry_no_index(luma: int) -> None:
    flat = np.full((540, 640), luma, dtype=np.uint8)
    assert decode_frame_index(av.VideoFrame.from_ndarray(flat, format="yuv420p")) is None


def test_a_flipped_block_is_detected_not_misread() -> None:
    frame = render_test_pattern(1234, 640, 360)
    luma = frame.to_ndarray()
    word = encode_frame_code(1234)
    for bit in range(32):
        damaged = luma.copy()
        x = bit * 20
        value = (word >> (31 - bit)) & 1
        damaged[:20, x : x + 20] = 16 if value else 235
        result = decode_frame_index(av.VideoFrame.from_ndarray(damaged, format="yuv420p"))
        assert result is None, f"bit {bit}"


def test_pattern_moves_between_frames() -> None:
    first = render_test_pattern(0, 320, 180).to_ndarray()[20:180]
    second = render_test_pattern(1, 320, 180).to_ndarray()[20:180]
    assert np.mean(np.abs(first.astype(int) - second.astype(int))) > 5


def test_pattern_rejects_unusable_dimensions() -> None:
    with pytest.raises(ValueError):
        render_test_pattern(0, 100, 100)
    with pytest.raises(ValueError):
        TestPatternVideoTrack(641, 360)


async def test_video_track_timestamps_follow_the_90khz_clock() -> None:
    track = TestPatternVideoTrack(320, 180, fps=30, start_index=10, realtime=False)
    frames = [await track.recv() for _ in range(4)]
    assert [f.pts for f in frames] == [0, 3000, 6000, 9000]
    assert all(f.time_base == fractions.Fraction(1, 90000) for f in frames)
    assert [decode_frame_index(f) for f in frames] == [10, 11, 12, 13]
    assert track.frames_sent == 4
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_video_track_paces_in_realtime() -> None:
    track = TestPatternVideoTrack(320, 180, fps=50)
    loop = asyncio.get_running_loop()
    await track.recv()
    start = loop.time()
    for _ in range(3):
        await track.recv()
    assert loop.time() - start >= 3 / 50 - 0.005


@pytest.mark.parametrize(("sample_rate", "channels"), [(48000, 1), (48000, 2), (16000, 1)])
async def test_tone_frames_have_aiortc_timing_fields(sample_rate: int, channels: int) -> None:
    track = ToneAudioTrack(440, sample_rate, channels=channels, realtime=False)
    frames = [await track.recv() for _ in range(3)]
    samples = sample_rate // 50
    for i, frame in enumerate(frames):
        assert frame.format.name == "s16"
        assert frame.layout.name == ("stereo" if channels == 2 else "mono")
        assert frame.samples == samples
        assert frame.sample_rate == sample_rate
        assert frame.pts == i * samples
        assert frame.time_base == fractions.Fraction(1, sample_rate)
    assert track.samples_sent == 3 * samples


async def test_tone_is_continuous_across_frames() -> None:
    track = ToneAudioTrack(1000, 48000, channels=2, amplitude=0.5, realtime=False)
    parts = [(await track.recv()).to_ndarray().reshape(-1, 2) for _ in range(2)]
    joined = np.concatenate(parts)
    assert np.array_equal(joined[:, 0], joined[:, 1])
    whole = render_tone(0, 1920, frequency=1000, sample_rate=48000, amplitude=0.5)
    assert np.array_equal(joined[:, 0], whole.to_ndarray().reshape(-1))
    assert abs(int(np.max(joined)) - round(0.5 * 32767)) <= 1


def test_tone_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ToneAudioTrack(440, 44100 + 1)
    with pytest.raises(ValueError):
        ToneAudioTrack(440, channels=3)


async def test_frame_source_stamps_unstamped_frames_and_ends_on_none() -> None:
    queue: asyncio.Queue[MediaFrame | None] = asyncio.Queue()
    for i in range(3):
        queue.put_nowait(render_test_pattern(i, 320, 180))
    queue.put_nowait(None)
    track = FrameSourceTrack("video", queue, fps=25, pace=False)
    frames = [await track.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, 3600, 7200]
    assert all(f.time_base == fractions.Fraction(1, 90000) for f in frames)
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"


async def test_frame_source_keeps_stamps_and_paces_from_an_async_iterator() -> None:
    async def tone() -> AsyncIterator[MediaFrame]:
        for i in range(3):
            yield render_tone(1000 + i * 960, 960)

    loop = asyncio.get_running_loop()
    track = FrameSourceTrack("audio", tone())
    start = loop.time()
    frames = [await track.recv() for _ in range(3)]
    assert loop.time() - start >= 0.040 - 0.005
    assert [f.pts for f in frames] == [1000, 1960, 2920]
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_frame_source_rejects_a_frame_of_the_other_kind() -> None:
    queue: asyncio.Queue[MediaFrame | None] = asyncio.Queue()
    queue.put_nowait(render_tone(0, 960))
    with pytest.raises(TypeError):
        await FrameSourceTrack("video", queue, pace=False).recv()


async def test_file_source_plays_a_file(tmp_path: Path) -> None:
    path = tmp_path / "pattern.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(10):
            frame = render_test_pattern(500 + i, 320, 180)
            frame.pts = i
            frame.time_base = fractions.Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    source = FileSource(str(path))
    assert source.audio is None
    video = source.video
    assert video is not None
    try:
        async with asyncio.timeout(5):
            frames = [await video.recv() for _ in range(3)]
    finally:
        source.close()
    indexes = [decode_frame_index(f) for f in frames if isinstance(f, av.VideoFrame)]
    assert indexes == [500, 501, 502]
