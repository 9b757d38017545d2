"""Audio mixing of the stage at 48 kHz: per-input gain, sum, soft limiter, no clipping.

The mixer process decodes each input (Opus, with in-band FEC where present)
and resamples it with PyAV's ``AudioResampler`` to the output format, float
planar (``fltp``: one row per channel), which is also what FFmpeg's AAC
encoder takes.  It pushes every decoded chunk with its output pts
(:meth:`AudioMixer.push`; the pts comes from :mod:`interlive.mix.sync` and
:meth:`interlive.mix.clock.OutputClock.audio_pts_at`) and, when the output
clock says an audio frame is due, asks :meth:`AudioMixer.mix` for exactly that
frame.  Samples are numpy arrays: ``(channels, n)`` or ``(n,)`` for mono,
int16 (read as ``x / 32768``) or float.

Theory of operation
-------------------
*Placement by pts.*  Each input keeps the samples it has been given ahead of
the read position.  A chunk whose pts is within ``tolerance`` samples of
where the previous chunk ended is appended right there (timestamp jitter of
a sample or two, or a small re-mapping, makes no click); a chunk further
ahead leaves a gap of silence; a chunk further behind overlaps what is
buffered and its overlapping head is dropped.  Samples that arrive after
their time was mixed are dropped (``late``); an input with nothing for part
of a frame contributes silence there (``missing``).  So inputs of any chunk
size (Opus 10/20/60 ms, 1024-sample AAC) mix into frames of any size, and a
missing input is just silence.  Buffered samples more than ``max_ahead``
seconds past the read position are dropped (``overflow``).

*Gain.*  Each input's linear gain; a change ramps linearly over one output
frame, so muting or unmuting does not click.

*Sum* in float32, then the limiter.

*Limiter* (:class:`Limiter`).  The output must never exceed ``threshold``
(default -1 dBFS), so conversion to int16 never clips, and it should not
pump audibly.  The signal is cut into blocks of ``block`` samples (1 ms).
Each block's target gain is ``min(1, threshold / peak)``.  The smoothed gain
moves towards the smallest target of the next ``attack`` seconds of blocks
(the look-ahead, so it starts falling before a peak arrives) with time
constant ``attack / 3`` (95 % of the way by the peak), and back up with the
``release`` time constant: ``g += (target - g) * (1 - exp(-block / (tau *
rate)))`` per block.  The gain applied to block ``k`` is
``g_k = min(smoothed_k, target_k)``, and within the block the gain is
interpolated linearly between ``min(g_{k-1}, g_k)`` and ``min(g_k,
g_{k+1})``, both at most ``g_k``: every sample is scaled by at most its own
block's target, hence never above the threshold, and the gain curve is
continuous.  The look-ahead costs a constant delay of ``(lookahead + 2) *
block`` samples; :class:`AudioMixer` reads its inputs that much ahead, so
``mix(pts, n)`` returns exactly the audio for ``[pts, pts + n)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "INT16_CEILING",
    "AudioMixer",
    "InputStats",
    "Limiter",
    "LimiterConfig",
    "MixerConfig",
    "to_float32",
    "to_int16",
]

F32 = npt.NDArray[np.float32]

#: The largest float that converts to int16 without clipping (32767 / 32768).
INT16_CEILING = 32767 / 32768


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    threshold: float = 10 ** (-1 / 20)  # -1 dBFS
    attack: float = 0.005  # seconds: look-ahead and attack time constant
    release: float = 0.1  # seconds: release time constant
    block: int = 48  # samples per gain step (1 ms at 48 kHz)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= INT16_CEILING:
            raise ValueError(f"threshold must be in (0, {INT16_CEILING}], got {self.threshold}")
        if self.attack < 0 or self.release <= 0 or self.block < 1:
            raise ValueError("attack must be >= 0, release > 0 and block >= 1")


@dataclass(frozen=True, slots=True)
class MixerConfig:
    sample_rate: int = 48_000
    channels: int = 2
    tolerance: int = 240  # samples (5 ms) of pts mismatch treated as contiguous
    max_ahead: float = 2.0  # seconds buffered past the read position, at most
    limiter: LimiterConfig = field(default_factory=LimiterConfig)

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {self.channels}")
        if self.sample_rate <= 0 or self.tolerance < 0 or self.max_ahead <= 0:
            raise ValueError("sample rate and max_ahead must be positive, tolerance >= 0")


def to_float32(samples: npt.NDArray[np.generic], channels: int) -> F32:
    """``(channels, n)`` float32 from int16 (``x / 32768``) or float, mono or stereo."""
    if samples.ndim == 1:
        samples = samples[np.newaxis, :]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise ValueError(
            f"expected (channels, n) samples with 1 or 2 channels, got {samples.shape}"
        )
    if samples.dtype == np.int16:
        out = samples.astype(np.float32) / np.float32(32768)
    elif np.issubdtype(samples.dtype, np.floating):
        out = samples.astype(np.float32)
    else:
        raise ValueError(f"samples must be int16 or float, got {samples.dtype}")
    if out.shape[0] == channels:
        return out
    if channels == 2:  # mono to stereo
        return np.repeat(out, 2, axis=0)
    mono: F32 = out.mean(axis=0, keepdims=True, dtype=np.float32)  # stereo to mono
    return mono


def to_int16(samples: F32) -> npt.NDArray[np.int16]:
    """int16 of float samples (``round(x * 32768)``); the limiter keeps this unclipped."""
    scaled = np.rint(samples.astype(np.float64) * 32768)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


class Limiter:
    """Look-ahead peak limiter with a constant delay of :attr:`latency` samples."""

    def __init__(self, config: LimiterConfig, channels: int, sample_rate: int = 48_000) -> None:
        self.config = config
        self.channels = channels
        block = config.block
        self._lookahead = math.ceil(config.attack * sample_rate / block)
        #: Constant delay from input to output, in samples.
        self.latency = (self._lookahead + 2) * block
        # The gain falls with time constant attack / 3: 95 % of the way when the peak arrives.
        self._attack = (
            1.0 - math.exp(-3 * block / (config.attack * sample_rate)) if config.attack > 0 else 1.0
        )
        self._release = 1.0 - math.exp(-block / (config.release * sample_rate))
        self._pending: F32 = np.zeros((channels, 0), dtype=np.float32)  # not yet gain-final
        self._ready: F32 = np.zeros((channels, self.latency), dtype=np.float32)  # to emit
        self._gains: list[float] = []  # final gains of the blocks at the start of _pending
        self._smooth = 1.0
        self._prev_gain = 1.0  # gain of the block just before _pending

    @property
    def gain(self) -> float:
        """The most recent smoothed gain (1.0 when not limiting)."""
        return self._smooth

    def process(self, samples: F32) -> F32:
        """Feed ``(channels, n)`` float32 samples; returns ``n`` samples, :attr:`latency` late."""
        n = samples.shape[1]
        self._pending = np.concatenate((self._pending, samples), axis=1)
        block = self.config.block
        blocks = self._pending.shape[1] // block
        known = len(self._gains)
        if blocks - self._lookahead > known:
            view = np.abs(self._pending[:, : blocks * block]).reshape(self.channels, blocks, block)
            peaks = view.max(axis=(0, 2)).astype(np.float64)
            targets = np.minimum(1.0, self.config.threshold / np.maximum(peaks, 1e-12))
            for k in range(known, blocks - self._lookahead):
                wanted = float(targets[k : k + self._lookahead + 1].min())
                rate = self._attack if wanted < self._smooth else self._release
                self._smooth += (wanted - self._smooth) * rate
                self._gains.append(min(self._smooth, float(targets[k])))
        final = len(self._gains) - 1  # blocks whose next block's gain is known
        if final > 0:
            gains = np.array(self._gains, dtype=np.float64)
            before = np.concatenate(([self._prev_gain], gains[:-1]))
            edges = np.minimum(before, gains)  # gain at the start of each block
            ramp = np.arange(block, dtype=np.float64) / block
            start, end = edges[:final], edges[1 : final + 1]
            envelope = (start[:, np.newaxis] + (end - start)[:, np.newaxis] * ramp).reshape(-1)
            out = (self._pending[:, : final * block] * envelope).astype(np.float32)
            self._ready = np.concatenate((self._ready, out), axis=1)
            self._pending = self._pending[:, final * block :]
            self._prev_gain = self._gains[final - 1]
            del self._gains[:final]
        result = self._ready[:, :n]
        self._ready = self._ready[:, n:]
        return result


@dataclass(slots=True)
class InputStats:
    """Sample counts per input, for the job's status."""

    pushed: int = 0
    late: int = 0  # arrived after their time was mixed
    missing: int = 0  # silence mixed in because nothing was buffered
    dropped_overlap: int = 0  # overlapping what was already buffered
    overflow: int = 0  # beyond max_ahead


class _Input:
    __slots__ = ("buf", "gain", "start", "stats", "target_gain")

    def __init__(self, channels: int, gain: float) -> None:
        self.buf: F32 = np.zeros((channels, 0), dtype=np.float32)
        self.start: int | None = None  # pts of buf[:, 0]
        self.gain = gain
        self.target_gain = gain
        self.stats = InputStats()

    @property
    def end(self) -> int | None:
        return None if self.start is None else self.start + self.buf.shape[1]


class AudioMixer:
    """Mixes the inputs' pts-stamped chunks into output frames; see the module docstring."""

    def __init__(self, config: MixerConfig | None = None) -> None:
        self.config = cfg = config or MixerConfig()
        self.limiter = Limiter(cfg.limiter, cfg.channels, cfg.sample_rate)
        self._inputs: dict[str, _Input] = {}
        self._read: int | None = None  # input pts of the next sample to mix

    @property
    def inputs(self) -> list[str]:
        return list(self._inputs)

    def stats(self, input_id: str) -> InputStats:
        return self._inputs[input_id].stats

    def add_input(self, input_id: str, gain: float = 1.0) -> None:
        if input_id not in self._inputs:
            self._inputs[input_id] = _Input(self.config.channels, self._check_gain(gain))

    def remove_input(self, input_id: str) -> None:
        self._inputs.pop(input_id, None)

    def gain(self, input_id: str) -> float:
        """The input's gain (the target of a ramp under way)."""
        return self._inputs[input_id].target_gain

    def set_gain(self, input_id: str, gain: float) -> None:
        """Linear gain (0 mutes); ramps over the next output frame."""
        self._input(input_id).target_gain = self._check_gain(gain)

    @staticmethod
    def _check_gain(gain: float) -> float:
        if not (math.isfinite(gain) and 0 <= gain <= 16):
            raise ValueError(f"gain must be in [0, 16], got {gain}")
        return gain

    def _input(self, input_id: str) -> _Input:
        state = self._inputs.get(input_id)
        if state is None:
            state = self._inputs[input_id] = _Input(self.config.channels, 1.0)
        return state

    def push(self, input_id: str, samples: npt.NDArray[np.generic], pts: int) -> None:
        """Give ``samples`` of one input presenting at output audio ``pts`` (48 kHz samples)."""
        state = self._input(input_id)
        chunk = to_float32(samples, self.config.channels)
        state.stats.pushed += chunk.shape[1]
        end = state.end
        buffered = state.buf.shape[1] > 0
        ahead = round(self.config.max_ahead * self.config.sample_rate)
        if end is not None and abs(pts - end) <= self.config.tolerance:
            pts = end  # contiguous: absorb timestamp jitter without a click
        elif end is not None and buffered and end < pts <= end + ahead:
            gap = np.zeros((self.config.channels, pts - end), dtype=np.float32)
            state.buf = np.concatenate((state.buf, gap), axis=1)  # silence until this chunk
        elif end is not None and buffered and pts < end:  # overlap: drop the new head
            overlap = min(end - pts, chunk.shape[1])
            state.stats.dropped_overlap += overlap
            chunk = chunk[:, overlap:]
            pts += overlap
        elif buffered:  # far ahead: start again there
            state.stats.overflow += state.buf.shape[1]
            state.buf = state.buf[:, :0]
        if self._read is not None and pts < self._read:  # (partly) too late
            late = min(self._read - pts, chunk.shape[1])
            state.stats.late += late
            chunk = chunk[:, late:]
            pts += late
        if state.start is None or state.buf.shape[1] == 0:
            state.start = pts
            state.buf = chunk
        else:
            state.buf = np.concatenate((state.buf, chunk), axis=1)
        if self._read is not None:
            limit = self._read + round(self.config.max_ahead * self.config.sample_rate)
            assert state.start is not None
            excess = state.start + state.buf.shape[1] - limit
            if excess > 0:
                keep = max(0, state.buf.shape[1] - excess)
                state.stats.overflow += state.buf.shape[1] - keep
                state.buf = state.buf[:, :keep]

    def mix(self, pts: int, n: int) -> F32:
        """The ``(channels, n)`` float32 output for ``[pts, pts + n)``, limited.

        Inputs are read :attr:`Limiter.latency` samples ahead, so the
        limiter's delay is invisible; on the first call the limiter is primed
        with ``[pts, pts + latency)`` first.
        """
        latency = self.limiter.latency
        if self._read is None:
            self.limiter.process(self._sum(pts, latency))
        return self.limiter.process(self._sum(pts + latency, n))

    def _sum(self, read: int, n: int) -> F32:
        total = np.zeros((self.config.channels, n), dtype=np.float32)
        for state in self._inputs.values():
            window = self._take(state, read, n)
            if state.gain == state.target_gain:
                if state.gain != 1.0:
                    window *= np.float32(state.gain)
            else:
                ramp = np.linspace(state.gain, state.target_gain, n, endpoint=False)
                window *= ramp.astype(np.float32)
                state.gain = state.target_gain
            total += window
        self._read = read + n
        return total

    def _take(self, state: _Input, read: int, n: int) -> F32:
        channels = self.config.channels
        out = np.zeros((channels, n), dtype=np.float32)
        start = state.start
        if start is None:
            return out
        have = state.buf.shape[1]
        lo = max(read, start)
        hi = min(read + n, start + have)
        if hi > lo:
            out[:, lo - read : hi - read] = state.buf[:, lo - start : hi - start]
        filled = max(0, hi - lo)
        state.stats.missing += n - filled
        # Drop everything before the end of this window.
        consumed = min(have, max(0, read + n - start))
        state.buf = state.buf[:, consumed:]
        state.start = start + consumed
        return out
