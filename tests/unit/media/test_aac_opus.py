"""AAC to Opus: 20 ms packets on the FLV clock, the tone survives, in-band FEC is coded."""

from __future__ import annotations

import fractions
import itertools

import av
import numpy as np
import pytest

from interlive.media.aac_opus import FRAME_SAMPLES, AacToOpus, OpusPacket, TranscodeError
from interlive.media.errors import AacConfigError
from interlive.media.opus import OpusPacketInfo


def aac_tone(seconds: float, rate: int, channels: int, start_ms: int = 0) -> tuple[bytes, list]:
    """(AudioSpecificConfig, [(raw AAC frame, FLV ms)]) of a 440 Hz tone from FFmpeg's encoder."""
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate = rate
    encoder.layout = "stereo" if channels == 2 else "mono"
    encoder.format = "fltp"
    encoder.bit_rate = 96_000
    encoder.time_base = fractions.Fraction(1, rate)
    encoder.open()
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frames = []
    for i in range(0, len(pcm) - 1024, 1024):
        block = np.stack([pcm[i : i + 1024]] * channels)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=encoder.layout.name)
        frame.sample_rate, frame.pts = rate, i
        for packet in encoder.encode(frame):
            frames.append((bytes(packet), start_ms + max(0, int(packet.pts * 1000 / rate))))
    return bytes(encoder.extradata), frames


def transcode(config: bytes, frames: list) -> tuple[AacToOpus, list[OpusPacket]]:
    transcoder = AacToOpus()
    transcoder.set_config(config)
    return transcoder, [p for data, ms in frames for p in transcoder.push(data, ms)]


def decode(packets: list[OpusPacket]) -> np.ndarray:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = 48000
    decoder.layout = "stereo"
    out = [
        frame.to_ndarray().reshape(-1, 2)[:, 0]
        for p in packets
        for frame in decoder.decode(av.Packet(p.payload))
    ]
    return np.concatenate(out).astype(np.float64)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 2), (22050, 1)])
def test_packets_are_20ms_on_the_flv_clock_and_carry_the_tone(rate: int, channels: int) -> None:
    config, frames = aac_tone(3.0, rate, channels, start_ms=1000)
    transcoder, packets = transcode(config, frames)
    assert transcoder.config is not None and transcoder.config.sampling_frequency == rate
    seconds = len(frames) * 1024 / rate
    assert abs(len(packets) - seconds / 0.02) <= 3
    steps = {b.pts - a.pts for a, b in itertools.pairwise(packets)}
    assert steps == {FRAME_SAMPLES}
    # the first packet starts at the first AAC frame's time, less libopus's look-ahead
    assert abs(packets[0].pts - 48 * frames[0][1]) <= 48 * 10
    infos = [OpusPacketInfo.parse(p.payload) for p in packets]
    assert {i.samples for i in infos} == {FRAME_SAMPLES} and all(i.stereo for i in infos)
    pcm = decode(packets)[48000:]  # past the codecs' start-up
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    assert abs(np.argmax(spectrum) * 48000 / len(pcm) - 440) < 5
    assert transcoder.stats.decode_errors == 0 and transcoder.stats.resyncs == 0


def test_in_band_fec_is_coded() -> None:
    config, frames = aac_tone(2.0, 48000, 2)
    _, packets = transcode(config, frames)
    infos = [OpusPacketInfo.parse(p.payload) for p in packets]
    # FEC needs SILK: libopus goes hybrid, and codes LBRR while its VAD hears activity
    assert {i.mode for i in infos} <= {"silk", "hybrid"}
    assert sum(i.lbrr for i in infos) >= 10


def test_a_timestamp_jump_restarts_the_time_line() -> None:
    config, frames = aac_tone(1.0, 48000, 2)
    later = [(data, ms + 5000) for data, ms in frames]
    transcoder, packets = transcode(config, frames + later)
    assert transcoder.stats.resyncs == 1
    gaps = [b.pts - a.pts for a, b in itertools.pairwise(packets)]
    assert sorted(gaps)[-2] == FRAME_SAMPLES  # one jump, contiguous elsewhere
    after = next(p for p in packets if p.pts > 48 * 3000)
    assert abs(after.pts - 48 * later[0][1]) <= 48 * 25


def test_garbage_is_counted_and_config_comes_first() -> None:
    config, frames = aac_tone(0.5, 48000, 2)
    transcoder = AacToOpus()
    with pytest.raises(TranscodeError):
        transcoder.push(frames[0][0], 0)
    with pytest.raises(AacConfigError):
        transcoder.set_config(b"\x00")
    transcoder.set_config(config)
    assert transcoder.push(b"\xff\xf1garbage" * 20, 0) == []
    assert transcoder.stats.decode_errors == 1
    assert [p for data, ms in frames for p in transcoder.push(data, ms)]


def test_a_new_config_with_other_channels_keeps_going() -> None:
    stereo, frames2 = aac_tone(0.5, 48000, 2)
    mono, frames1 = aac_tone(0.5, 44100, 1, start_ms=500)
    transcoder, packets = transcode(stereo, frames2)
    transcoder.set_config(mono)
    packets += [p for data, ms in frames1 for p in transcoder.push(data, ms)]
    assert len(packets) >= 45 and transcoder.stats.decode_errors == 0
