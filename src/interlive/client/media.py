"""Media sources for publishers: synthetic test media, files, user frames.

All sources are aiortc ``MediaStreamTrack`` subclasses and follow aiortc's timing
conventions (``aiortc/mediastreams.py``), because aiortc's sender calls ``recv()``
in a tight loop and trusts the track for both pacing and timestamps:

- video: ``pts`` counts the 90 kHz RTP clock (``time_base = 1/90000``); the VP8 and
  H.264 encoders convert ``pts`` from ``time_base`` to the RTP timestamp;
- audio: 20 ms frames of packed ``s16``, mono or stereo, ``pts`` counts samples
  (``time_base = 1/sample_rate``) and ``frame.sample_rate`` is set;
- pacing: the first frame is returned at once, frame ``n`` no earlier than
  ``start + pts_n * time_base`` on the event loop's clock. ``realtime=False``
  skips the sleeps (offline tests, load generators that pace themselves).

Frame code of :class:`TestPatternVideoTrack` (theory of operation)
-----------------------------------------------------------------
The top band of each picture carries a 32-bit word as 32 square luma blocks,
black (Y=16) for 0 and white (Y=235) for 1, most significant bit on the left.
The block side is ``width // 32`` (20 px at 640x360, 40 px at 1280x720), so the
layout scales with the picture and a receiver needs only the decoded frame's
width to find it. The word is ``index (24 bits) << 8 | check``, with
``check = CRC-8(index) ^ 0xA5``: a misread block, a black or white picture, or
a picture from another source fails the check instead of yielding a wrong index.
:func:`decode_frame_index` averages the middle half of every block and refuses
blocks whose mean is near the threshold, so ringing at block edges after lossy
coding does not matter. Indexes wrap at 2**24 (about 6 days at 30 fps).
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import math
from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

import av
import numpy as np
import numpy.typing as npt
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import (
    AUDIO_PTIME,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    MediaStreamError,
    MediaStreamTrack,
)

__all__ = [
    "CODE_BITS",
    "INDEX_MODULUS",
    "FileSource",
    "FrameSourceTrack",
    "MediaFrame",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "decode_frame_index",
    "render_test_pattern",
    "render_tone",
]

MediaFrame = av.VideoFrame | av.AudioFrame

CODE_BITS: Final = 32
INDEX_BITS: Final = 24
INDEX_MODULUS: Final = 1 << INDEX_BITS
_CHECK_XOR: Final = 0xA5
_BLACK: Final = 16
_WHITE: Final = 235
_GRAY: Final = 128
_THRESHOLD: Final = (_BLACK + _WHITE) / 2
_MARGIN: Final = 48.0
_STRIPE_PERIOD: Final = 64
_STRIPE_SPEED: Final = 4  # pixels per frame
_MIN_WIDTH: Final = CODE_BITS * 4
_LUMA_FIRST_FORMATS: Final = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "nv12",
        "nv21",
        "gray",
    }
)

_U8 = npt.NDArray[np.uint8]


# --- frame code -----------------------------------------------------------------


def _crc8(data: bytes) -> int:
    """CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _check_byte(index: int) -> int:
    return _crc8(index.to_bytes(3, "big")) ^ _CHECK_XOR


def encode_frame_code(index: int) -> int:
    """The 32-bit word drawn into frame ``index`` (taken modulo 2**24)."""
    index %= INDEX_MODULUS
    return (index << 8) | _check_byte(index)


def _code_geometry(width: int) -> tuple[int, int]:
    """Block side and left offset of the code band for a picture ``width`` wide."""
    block = width // CODE_BITS
    return block, (width - block * CODE_BITS) // 2


def decode_frame_index(frame: av.VideoFrame) -> int | None:
    """Read back the frame index drawn by :func:`render_test_pattern`.

    Works on any decoded picture of the pattern (VP8/H.264 at modest bitrates,
    limited or full range). Returns ``None`` when the picture carries no valid
    code: a block too close to mid-grey, or a failed check byte.
    """
    block, x0 = _code_geometry(frame.width)
    if block < 2 or frame.height < block:
        return None
    luma = _luma_rows(frame, block)
    inset = block // 4
    band = luma[inset : block - inset, x0 : x0 + block * CODE_BITS].astype(np.float32)
    cells = band.reshape(band.shape[0], CODE_BITS, block)[:, :, inset : block - inset]
    means = cells.mean(axis=(0, 2))
    if bool(np.any(np.abs(means - _THRESHOLD) < _MARGIN)):
        return None
    word = 0
    for bit in means > _THRESHOLD:
        word = (word << 1) | int(bit)
    index, check = word >> 8, word & 0xFF
    if _check_byte(index) != check:
        return None
    return index


def _luma_rows(frame: av.VideoFrame, rows: int) -> _U8:
    """The first ``rows`` rows of the luma plane, without converting the whole frame."""
    if frame.format.name not in _LUMA_FIRST_FORMATS:
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    data = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return data[: rows * plane.line_size].reshape(rows, plane.line_size)[:, : frame.width]


# --- test pattern -----------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _pattern_planes(width: int, height: int) -> tuple[_U8, _U8, _U8]:
    """Precomputed planes: luma stripes one period wider than the picture, chroma."""
    ys, xs = np.mgrid[0:height, 0 : width + _STRIPE_PERIOD]
    phase = 2.0 * math.pi * (xs + ys) / _STRIPE_PERIOD
    ramp = 40.0 * ys / max(height - 1, 1)
    stripes = np.clip(110.0 + 70.0 * np.sin(phase) + ramp, _BLACK, _WHITE).astype(np.uint8)
    cys, cxs = np.mgrid[0 : height // 2, 0 : width // 2]
    u = (64 + 128 * cxs / max(width // 2 - 1, 1)).astype(np.uint8)
    v = (192 - 128 * cys / max(height // 2 - 1, 1)).astype(np.uint8)
    for plane in (stripes, u, v):
        plane.flags.writeable = False
    return stripes, u, v


def _check_dimensions(width: int, height: int) -> None:
    if width < _MIN_WIDTH or width % 2 or height % 2:
        raise ValueError(f"test pattern needs even dimensions, width >= {_MIN_WIDTH}")
    if height < 2 * (width // CODE_BITS):
        raise ValueError("test pattern height must be at least twice the code block side")


def render_test_pattern(index: int, width: int = 640, height: int = 360) -> av.VideoFrame:
    """Draw picture ``index``: diagonal stripes moving right, the code band on top.

    Returns a ``yuv420p`` frame without timestamps (the caller sets ``pts``).
    """
    _check_dimensions(width, height)
    stripes, u, v = _pattern_planes(width, height)
    shift = (index * _STRIPE_SPEED) % _STRIPE_PERIOD
    luma = np.empty((height, width), dtype=np.uint8)
    luma[:] = stripes[:, _STRIPE_PERIOD - shift : _STRIPE_PERIOD - shift + width]

    block, x0 = _code_geometry(width)
    word = encode_frame_code(index)
    bits = np.array([(word >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)])
    levels = np.where(bits == 1, _WHITE, _BLACK).astype(np.uint8)
    luma[:block, :] = _GRAY
    luma[:block, x0 : x0 + block * CODE_BITS] = np.repeat(levels, block)[np.newaxis, :]

    packed = np.concatenate((luma.ravel(), u.ravel(), v.ravel()))
    return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")


# --- tone -------------------------------------------------------------------------


def render_tone(
    first_sample: int,
    samples: int,
    *,
    frequency: float = 440.0,
    sample_rate: int = 48000,
    channels: int = 1,
    amplitude: float = 0.3,
) -> av.AudioFrame:
    """``samples`` of a sine wave starting at absolute sample ``first_sample``.

    The phase is a function of the absolute sample number, so consecutive frames
    join without a click. Packed ``s16``, ``mono`` or ``stereo``; ``pts`` is
    ``first_sample`` in ``1/sample_rate``.
    """
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    n = np.arange(first_sample, first_sample + samples, dtype=np.float64)
    cycles = np.mod(n * (frequency / sample_rate), 1.0)
    wave = np.round(np.sin(2.0 * math.pi * cycles) * (amplitude * 32767.0)).astype(np.int16)
    interleaved = np.repeat(wave, channels) if channels == 2 else wave
    frame = av.AudioFrame.from_ndarray(
        interleaved.reshape(1, -1), format="s16", layout="stereo" if channels == 2 else "mono"
    )
    frame.sample_rate = sample_rate
    frame.pts = first_sample
    frame.time_base = fractions.Fraction(1, sample_rate)
    return frame


# --- tracks -----------------------------------------------------------------------


class _Pacer:
    """Holds frame ``n`` until ``start + offset_n`` on the event loop's clock."""

    def __init__(self, realtime: bool) -> None:
        self._realtime = realtime
        self._start: float | None = None

    async def wait(self, offset: float) -> None:
        if not self._realtime:
            return
        now = asyncio.get_running_loop().time()
        if self._start is None:
            self._start = now - offset
            return
        delay = self._start + offset - now
        if delay > 0:
            await asyncio.sleep(delay)


class TestPatternVideoTrack(MediaStreamTrack):
    """Moving test pattern whose frame index :func:`decode_frame_index` reads back.

    Frame ``n`` (counting from ``start_index``) has ``pts = round(n * 90000 / fps)``.
    ``frames_sent`` counts the frames handed to the sender so far.
    """

    __test__ = False  # not a pytest test class despite the name
    kind = "video"

    def __init__(
        self,
        width: int = 640,
        height: int = 360,
        fps: float = 30.0,
        *,
        start_index: int = 0,
        realtime: bool = True,
    ) -> None:
        super().__init__()
        _check_dimensions(width, height)
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.width = width
        self.height = height
        self.fps = fps
        self.start_index = start_index
        self.frames_sent = 0
        self._pacer = _Pacer(realtime)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = self.frames_sent
        pts = round(n * VIDEO_CLOCK_RATE / self.fps)
        await self._pacer.wait(pts / VIDEO_CLOCK_RATE)
        if self.readyState != "live":
            raise MediaStreamError
        frame = render_test_pattern(self.start_index + n, self.width, self.height)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent = n + 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A continuous sine tone in 20 ms frames of packed ``s16``."""

    kind = "audio"

    def __init__(
        self,
        frequency: float = 440.0,
        sample_rate: int = 48000,
        *,
        channels: int = 1,
        amplitude: float = 0.3,
        realtime: bool = True,
    ) -> None:
        super().__init__()
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        samples = sample_rate * AUDIO_PTIME
        if sample_rate <= 0 or abs(samples - round(samples)) > 1e-9:
            raise ValueError("sample_rate must give a whole number of samples per 20 ms")
        self.frequency = frequency
        self.sample_rate = sample_rate
        self.channels = channels
        self.amplitude = amplitude
        self.samples_per_frame = round(samples)
        self.samples_sent = 0
        self._pacer = _Pacer(realtime)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        first = self.samples_sent
        await self._pacer.wait(first / self.sample_rate)
        if self.readyState != "live":
            raise MediaStreamError
        frame = render_tone(
            first,
            self.samples_per_frame,
            frequency=self.frequency,
            sample_rate=self.sample_rate,
            channels=self.channels,
            amplitude=self.amplitude,
        )
        self.samples_sent = first + self.samples_per_frame
        return frame


class FrameSourceTrack(MediaStreamTrack):
    """A track fed with the caller's own ``av`` frames.

    ``source`` is an async iterable of frames, or an ``asyncio.Queue`` where
    ``None`` marks the end. Frames that carry ``pts`` and ``time_base`` keep them;
    frames without are stamped in aiortc's convention (video: 90 kHz at ``fps``,
    audio: sample count). With ``pace=True`` each frame is held until its
    presentation time relative to the first frame, so a source that decodes
    faster than realtime still plays at the right speed. The end of the source
    ends the track (``recv`` raises ``MediaStreamError``).
    """

    def __init__(
        self,
        kind: str,
        source: AsyncIterable[MediaFrame] | asyncio.Queue[MediaFrame | None],
        *,
        fps: float = 30.0,
        pace: bool = True,
    ) -> None:
        super().__init__()
        if kind not in ("audio", "video"):
            raise ValueError('kind must be "audio" or "video"')
        self.kind = kind
        self.fps = fps
        self._queue: asyncio.Queue[MediaFrame | None] | None = None
        self._iterator: AsyncIterator[MediaFrame] | None = None
        if isinstance(source, asyncio.Queue):
            self._queue = source
        else:
            self._iterator = aiter(source)
        self._pacer = _Pacer(pace)
        self._count = 0
        self._next_sample = 0
        self._first_time: fractions.Fraction | None = None

    async def _next(self) -> MediaFrame | None:
        if self._queue is not None:
            return await self._queue.get()
        assert self._iterator is not None
        try:
            return await anext(self._iterator)
        except StopAsyncIteration:
            return None

    async def recv(self) -> MediaFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._next()
        if frame is None:
            self.stop()
            raise MediaStreamError
        self._check_kind(frame)
        self._stamp(frame)
        assert frame.pts is not None and frame.time_base is not None
        time = fractions.Fraction(frame.pts) * fractions.Fraction(
            frame.time_base.numerator, frame.time_base.denominator
        )
        if self._first_time is None:
            self._first_time = time
        await self._pacer.wait(float(time - self._first_time))
        self._count += 1
        return frame

    def _check_kind(self, frame: MediaFrame) -> None:
        expected = av.VideoFrame if self.kind == "video" else av.AudioFrame
        if not isinstance(frame, expected):
            raise TypeError(f"{self.kind} track got a {type(frame).__name__}")

    def _stamp(self, frame: MediaFrame) -> None:
        if isinstance(frame, av.AudioFrame):
            if frame.pts is None or frame.time_base is None:
                frame.pts = self._next_sample
                frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._next_sample = frame.pts + frame.samples
        elif frame.pts is None or frame.time_base is None:
            frame.pts = round(self._count * VIDEO_CLOCK_RATE / self.fps)
            frame.time_base = VIDEO_TIME_BASE


class FileSource:
    """Audio and video tracks read from a file, URL or device by aiortc's MediaPlayer.

    ``audio`` / ``video`` are ``None`` when the input has no such stream. The
    player paces file playback itself. ``close()`` stops both tracks, which ends
    the reader thread and closes the input.
    """

    def __init__(
        self,
        path: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        loop: bool = False,
        decode: bool = True,
    ) -> None:
        self._player = MediaPlayer(
            path, format=format, options=options or {}, loop=loop, decode=decode
        )

    @property
    def audio(self) -> MediaStreamTrack | None:
        return self._player.audio

    @property
    def video(self) -> MediaStreamTrack | None:
        return self._player.video

    def close(self) -> None:
        for track in (self.audio, self.video):
            if track is not None:
                track.stop()
