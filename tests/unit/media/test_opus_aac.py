"""Decoded Opus (20 ms frames of 960 samples) to AAC-LC frames of 1024 samples."""

from __future__ import annotations

import math

import av
import numpy as np

from interlive.media.opus_aac import AAC_FRAME_SAMPLES, RESYNC_SAMPLES, OpusToAac


def _pcm(first: int, samples: int = 960, frequency: float = 440.0) -> bytes:
    n = np.arange(first, first + samples)
    tone = (np.sin(2 * math.pi * frequency * n / 48_000) * 10_000).astype("<i2")
    return np.repeat(tone, 2).tobytes()  # interleaved stereo


def _feed(encoder: OpusToAac, start: int, frames: int) -> list[tuple[int, bytes]]:
    out = []
    for k in range(frames):
        ts = start + 960 * k
        out += [(f.pts, f.payload) for f in encoder.push(_pcm(ts), ts)]
    return out


def test_960_sample_frames_become_1024_sample_aac_frames_on_the_rtp_clock() -> None:
    encoder = OpusToAac()
    start = 4_000_000_000  # an extended RTP timestamp beyond 32 bits works the same
    out = _feed(encoder, start, 160)  # 3.2 s
    # 160 * 960 samples make 150 AAC frames; the encoder holds one back (priming)
    assert len(out) == 160 * 960 // AAC_FRAME_SAMPLES - 1
    stamps = [pts for pts, _ in out]
    # FFmpeg takes its 1024-sample priming off: the first packet is stamped one frame early
    assert stamps[0] == start - AAC_FRAME_SAMPLES
    assert np.all(np.diff(stamps) == AAC_FRAME_SAMPLES)
    assert all(payload for _, payload in out)
    assert encoder.stats.resyncs == 0


def test_the_config_is_aac_lc_48k_stereo_and_decodes_the_tone() -> None:
    encoder = OpusToAac()
    assert bytes(encoder.config) == bytes.fromhex("1190")
    out = _feed(encoder, 0, 100)
    decoder = av.CodecContext.create("aac", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    decoder.extradata = bytes(encoder.config)
    decoder.open()
    samples = []
    for _, payload in out:
        for frame in decoder.decode(av.Packet(payload)):
            assert frame.sample_rate == 48_000 and frame.layout.name == "stereo"
            samples.append(frame.to_ndarray()[0])
    signal = np.concatenate(samples)[4096:]
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    assert abs(np.argmax(spectrum) * 48_000 / len(signal) - 440) < 10


def test_a_gap_restarts_the_time_line_small_jitter_does_not() -> None:
    encoder = OpusToAac()
    _feed(encoder, 0, 50)
    # 2 ms early: within the slack, continued sample-exactly
    early = 50 * 960 - 96
    encoder.push(_pcm(early), early)
    assert encoder.stats.resyncs == 0
    # a jump of a second: the partial frame is dropped and the time line restarts there
    later = 51 * 960 + 48_000
    frames = []
    for k in range(10):
        frames += encoder.push(_pcm(later + 960 * k), later + 960 * k)
    assert encoder.stats.resyncs == 1
    assert RESYNC_SAMPLES < 48_000
    # what the encoder still held of the old time line comes out first, then the new one
    # starts exactly at the new timestamp and continues frame by frame
    old = [f.pts for f in frames if f.pts < later]
    new = [f.pts for f in frames if f.pts >= later]
    assert old and max(old) < early + 960
    assert new[0] == later
    assert new == [later + AAC_FRAME_SAMPLES * k for k in range(len(new))]


def test_empty_input_gives_nothing() -> None:
    assert OpusToAac().push(b"", 0) == []
