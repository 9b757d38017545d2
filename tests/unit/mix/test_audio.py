from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from interlive.mix.audio import (
    INT16_CEILING,
    AudioMixer,
    Limiter,
    LimiterConfig,
    MixerConfig,
    to_float32,
    to_int16,
)

RATE = 48_000
F32 = npt.NDArray[np.float32]


def sine(freq: float, amplitude: float, n: int, phase: float = 0.0) -> F32:
    t = np.arange(n) / RATE
    return (amplitude * np.sin(2 * math.pi * freq * t + phase)).astype(np.float32)


def stereo(mono: F32) -> F32:
    return np.stack([mono, mono])


def push_chunks(mixer: AudioMixer, input_id: str, signal: F32, sizes: list[int]) -> None:
    """Push ``signal`` (channels, n) in chunks cycling through ``sizes``, stamped by position."""
    pos, k = 0, 0
    while pos < signal.shape[1]:
        size = sizes[k % len(sizes)]
        mixer.push(input_id, signal[:, pos : pos + size], pos)
        pos += size
        k += 1


def mix_all(mixer: AudioMixer, total: int, frame: int = 1024) -> F32:
    frames = [mixer.mix(pts, frame) for pts in range(0, total, frame)]
    return np.concatenate(frames, axis=1)[:, :total]


# -- conversions ----------------------------------------------------------------------


def test_to_float32_formats() -> None:
    pcm = np.array([[-32768, 0, 16384, 32767]], dtype=np.int16)
    assert to_float32(pcm, 1).tolist() == [[-1.0, 0.0, 0.5, 32767 / 32768]]
    mono = np.array([0.25, -0.5], dtype=np.float64)
    assert to_float32(mono, 2).tolist() == [[0.25, -0.5], [0.25, -0.5]]
    both = np.array([[0.5, 1.0], [0.25, 0.0]], dtype=np.float32)
    assert to_float32(both, 1).tolist() == [[0.375, 0.5]]
    assert to_float32(both, 2).dtype == np.float32
    with pytest.raises(ValueError, match="int16 or float"):
        to_float32(np.zeros(4, dtype=np.int32), 2)
    with pytest.raises(ValueError, match="1 or 2 channels"):
        to_float32(np.zeros((3, 4), dtype=np.float32), 2)


def test_to_int16_rounds_and_only_saturates_beyond_the_ceiling() -> None:
    x = np.array([[0.5, -0.5, INT16_CEILING, -1.0, 1.0 / 65536]], dtype=np.float32)
    assert to_int16(x).tolist() == [[16384, -16384, 32767, -32768, 0]]


# -- limiter --------------------------------------------------------------------------


def test_limiter_latency_is_constant_for_any_chunk_sizes() -> None:
    limiter = Limiter(LimiterConfig(), channels=1)
    assert limiter.latency == (5 + 2) * 48  # 5 ms look-ahead + 2 blocks
    ramp = (np.arange(5000, dtype=np.float32) / np.float32(10000))[np.newaxis, :]  # < threshold
    out, pos = [], 0
    for size in [1, 7, 1024, 960, 3, 48, 2000, 957]:
        out.append(limiter.process(ramp[:, pos : pos + size]))
        assert out[-1].shape == (1, min(size, 5000 - pos))
        pos += size
    got = np.concatenate(out, axis=1)[0]
    assert np.array_equal(got[: limiter.latency], np.zeros(limiter.latency, dtype=np.float32))
    assert np.array_equal(got[limiter.latency :], ramp[0, : 5000 - limiter.latency])


def test_limiter_never_exceeds_threshold_on_loud_noise() -> None:
    rng = np.random.default_rng(5)
    config = LimiterConfig()
    limiter = Limiter(config, channels=2)
    loud = (rng.standard_normal((2, 48000)) * 1.5).astype(np.float32)  # peaks near 6
    out, pos = [], 0
    while pos < loud.shape[1]:
        size = int(rng.integers(1, 2000))
        out.append(limiter.process(loud[:, pos : pos + size]))
        pos += size
    got = np.concatenate(out, axis=1)
    assert np.abs(loud).max() > 5
    assert np.abs(got).max() <= config.threshold * (1 + 1e-6)
    assert np.abs(got).max() > 0.8 * config.threshold  # it limits, it does not mute
    assert np.abs(to_int16(got)).max() < 32767


def test_limiter_gain_is_continuous() -> None:
    """A sudden peak is met by a ramp, not a jump: the gain moves < 25 % per sample block."""
    limiter = Limiter(LimiterConfig(), channels=1)
    dc = np.full((1, 9600), 0.1, dtype=np.float32)
    dc[0, 4800:5280] = 0.9 * 4  # 10 ms burst at 4x the threshold
    got = np.concatenate([limiter.process(dc[:, k : k + 960]) for k in range(0, 9600, 960)], 1)
    gain = got[0, limiter.latency :] / dc[0, : 9600 - limiter.latency]
    assert gain.min() == pytest.approx(LimiterConfig().threshold / 3.6, rel=1e-5)
    assert np.abs(np.diff(gain)).max() < 0.03


# -- mixer ----------------------------------------------------------------------------


def test_silence_in_is_silence_out() -> None:
    mixer = AudioMixer()
    assert np.array_equal(mixer.mix(0, 1024), np.zeros((2, 1024), dtype=np.float32))
    mixer.push("a", np.zeros((2, 960), dtype=np.int16), 1024)
    mixer.push("b", np.zeros(960, dtype=np.float32), 1024)
    out = np.concatenate([mixer.mix(pts, 1024) for pts in range(1024, 5 * 1024, 1024)], axis=1)
    assert out.shape == (2, 4096)
    assert not out.any()


def test_below_threshold_the_mix_is_the_exact_sum() -> None:
    n = RATE // 2
    a = stereo(sine(440, 0.3, n))
    b = stereo(sine(660, 0.3, n, phase=1.0))
    mixer = AudioMixer()
    push_chunks(mixer, "a", a, [960])
    push_chunks(mixer, "b", b, [480, 2880])
    out = mix_all(mixer, n - 2048)
    np.testing.assert_allclose(out, (a + b)[:, : n - 2048], atol=1e-6)
    assert mixer.limiter.gain == 1.0


def test_two_full_scale_sines_do_not_clip() -> None:
    n = RATE
    a = stereo(sine(1000, 1.0, n))
    b = stereo(sine(1500, 1.0, n, phase=0.3))
    mixer = AudioMixer()
    mixer.push("a", (a * 32767).astype(np.int16), 0)
    mixer.push("b", b, 0)
    out = mix_all(mixer, n - 2048)
    threshold = LimiterConfig().threshold
    assert np.abs(a + b).max() > 1.9
    assert np.abs(out).max() <= threshold * (1 + 1e-6)
    pcm = to_int16(out)
    assert np.abs(pcm.astype(np.int32)).max() <= round(threshold * 32768)
    assert np.sqrt(np.mean(out**2)) > 0.4  # still loud: gain reduced, not muted


def test_gain_is_applied_with_a_ramp_on_change() -> None:
    n = 8 * 1024
    x = stereo(sine(300, 0.4, n))
    mixer = AudioMixer()
    mixer.add_input("a", gain=0.5)
    mixer.push("a", x, 0)
    first = mixer.mix(0, 1024)
    np.testing.assert_allclose(first, 0.5 * x[:, :1024], atol=1e-6)
    mixer.set_gain("a", 0.0)
    # Inputs are read `latency` ahead, so the change ramps over [1024 + L, 2048 + L).
    latency = mixer.limiter.latency
    out = np.concatenate([mixer.mix(pts, 1024) for pts in (1024, 2048, 3072)], axis=1)
    gain = np.concatenate(
        [np.full(latency, 0.5), 0.5 - 0.5 * np.arange(1024) / 1024, np.zeros(2048 - latency)]
    )
    np.testing.assert_allclose(out, x[:, 1024:4096] * gain, atol=1e-6)
    assert not out[:, 1024 + latency :].any()  # muted
    with pytest.raises(ValueError):
        mixer.set_gain("a", -1.0)


def test_missing_input_is_silence_and_counted() -> None:
    n = 4096
    a = stereo(sine(500, 0.2, n))
    b = stereo(sine(700, 0.2, n))
    mixer = AudioMixer()
    mixer.push("a", a, 0)
    mixer.push("b", b[:, :1024], 0)  # b stops after 1024 samples
    out = mix_all(mixer, n)
    np.testing.assert_allclose(out[:, :1024], (a + b)[:, :1024], atol=1e-6)
    np.testing.assert_allclose(out[:, 1024:], a[:, 1024:], atol=1e-6)
    # Inputs were read for [0, n + latency): a ran out for the last `latency` samples.
    latency = mixer.limiter.latency
    assert mixer.stats("b").missing == n + latency - 1024
    assert mixer.stats("a").missing == latency


def test_small_pts_jitter_is_contiguous_large_gap_is_silence() -> None:
    x = stereo(sine(400, 0.3, 3 * 960))
    mixer = AudioMixer(MixerConfig(tolerance=240))
    mixer.push("a", x[:, :960], 0)
    mixer.push("a", x[:, 960:1920], 963)  # 3 samples off: treated as contiguous
    mixer.push("a", x[:, 1920:], 1920 + 1000)  # 1000 samples later: a gap of silence
    out = mix_all(mixer, 5 * 1024)
    np.testing.assert_allclose(out[:, :1920], x[:, :1920], atol=1e-6)
    assert not out[:, 1920:2920].any()
    np.testing.assert_allclose(out[:, 2920:3880], x[:, 1920:], atol=1e-6)


def test_overlap_drops_the_new_head() -> None:
    x = stereo(sine(400, 0.3, 1920))
    y = stereo(sine(900, 0.3, 960))
    mixer = AudioMixer(MixerConfig(tolerance=10))
    mixer.push("a", x, 0)
    mixer.push("a", y, 1920 - 500)  # overlaps the last 500 samples
    out = mix_all(mixer, 3 * 1024)
    np.testing.assert_allclose(out[:, :1920], x, atol=1e-6)
    np.testing.assert_allclose(out[:, 1920:2380], y[:, 500:], atol=1e-6)
    assert mixer.stats("a").dropped_overlap == 500


def test_late_samples_are_dropped() -> None:
    mixer = AudioMixer()
    mixer.mix(0, 1024)
    mixer.mix(1024, 1024)
    # Mixed so far: output [0, 2048) read inputs up to 2048 + latency.
    read = 2048 + mixer.limiter.latency
    x = stereo(sine(400, 0.3, 960))
    mixer.push("a", x, read - 100)
    assert mixer.stats("a").late == 100
    out = mixer.mix(2048, 1024)  # output time = input time: x[100:] lands at 2048 + latency
    latency = mixer.limiter.latency
    assert not out[:, :latency].any()
    np.testing.assert_allclose(out[:, latency:], x[:, 100 : 100 + 1024 - latency], atol=1e-6)
    rest = mixer.mix(3072, 1024)
    np.testing.assert_allclose(rest[:, : 860 - 1024 + latency], x[:, 1124 - latency :], atol=1e-6)
    assert not rest[:, 860 - 1024 + latency :].any()


def test_overflow_beyond_max_ahead_is_dropped() -> None:
    mixer = AudioMixer(MixerConfig(max_ahead=0.05))  # 2400 samples
    mixer.mix(0, 1024)
    read = 1024 + mixer.limiter.latency
    mixer.push("a", np.full((2, 3000), 0.1, dtype=np.float32), read)
    assert mixer.stats("a").overflow == 600


def test_limiter_recovers_with_the_configured_release() -> None:
    """After a burst the gain returns as 1 - (1 - g0) * exp(-t / release)."""
    release = 0.1
    mixer = AudioMixer(MixerConfig(channels=1, limiter=LimiterConfig(release=release)))
    burst = 2400  # 50 ms at 1.8: gain settles at threshold / 1.8
    signal = np.full((1, RATE), 0.1, dtype=np.float32)
    signal[0, :burst] = 1.8
    mixer.push("a", signal, 0)
    out = mix_all(mixer, RATE - 2048)[0]
    g0 = LimiterConfig().threshold / 1.8
    r = math.exp(-48 / (release * RATE))  # per 1 ms block
    for ms in (0, 10, 100, 300):
        # At the start of block 50 + j the gain is that of block 49 + j.
        expected = 1 - (1 - g0) * r**ms
        assert out[burst + 48 * ms] / 0.1 == pytest.approx(expected, rel=1e-5), ms
    assert out[burst + 48 * 100] / 0.1 == pytest.approx(1 - (1 - g0) / math.e, rel=1e-5)
    assert out[burst + 48 * 700] / 0.1 > 0.9995  # 1 - 0.505 * exp(-7)


def test_bad_configs() -> None:
    with pytest.raises(ValueError):
        LimiterConfig(threshold=1.0)
    with pytest.raises(ValueError):
        MixerConfig(channels=3)
    with pytest.raises(ValueError):
        AudioMixer().add_input("a", gain=math.inf)
