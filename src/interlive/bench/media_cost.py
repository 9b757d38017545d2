"""``interlive bench media``: CPU of the audio conversions and the FLV feed, and Opus FEC quality.

Everything runs in process on real codecs (FFmpeg through PyAV, libopus
through ``opuslib_next``), fed synthetic but realistic input made before the
clock starts:

- ``AAC → Opus``: :class:`~interlive.media.aac_opus.AacToOpus` as the RTMP
  ingest runs it (64 kbit/s, in-band FEC for 10 % loss), fed AAC-LC 44.1 kHz
  stereo at 128 kbit/s from FFmpeg's ``aac`` encoder, as ffmpeg or OBS push it;
- ``Opus → AAC``: :class:`~interlive.media.opus.OpusFecDecoder` then
  :class:`~interlive.media.opus_aac.OpusToAac` (128 kbit/s), the audio half of
  the FLV feed, fed 32 kbit/s Opus as the SDK sends it; ``OpusToAac only`` is
  its AAC encoder fed the decoded PCM;
- ``FLV feed``: :class:`~interlive.media.rtp_flv.RtpFlvSource` fed plain RTP
  as the worker sends it: libx264 H.264 640x360@30 at about 1 Mbit/s (2 s
  GOP, no B-frames) packetized by :class:`~interlive.media.h264_rtp.H264Packetizer`,
  20 ms Opus, and sender reports each second.

The audio is speech-like (:func:`speech_like`): syllables of a harmonic voice
whose pitch glides, noise bursts standing for fricatives, and pauses.  A cost
is CPU seconds (``time.process_time``) per second of media, i.e. the share of
one core the conversion keeps busy; the cases run in interleaved rounds and
the median is reported, since a shared machine drifts.

Opus in-band FEC (RFC 6716 §2.1.7): the SDK's encoder (32 kbit/s stereo,
``voip``) with the loss hint its :class:`~interlive.media.opus.LossHintFilter`
derives from receiver reports at that loss, then seeded random frame loss.
The decoded audio is compared with the clean decode of the same packets, once
decoded with FEC (a lost frame rebuilt from the next packet's LBRR) and once
with concealment only (PLC); :func:`snr_db` gives the signal-to-noise ratio
over the whole signal and over the lost frames alone.
"""

from __future__ import annotations

import argparse
import fractions
import math
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from interlive.bench.system import machine_info
from interlive.media.aac_opus import AacToOpus
from interlive.media.h264_rtp import H264Packetizer, annexb_to_nals
from interlive.media.opus import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    DecodedFrame,
    LossHintFilter,
    OpusFecDecoder,
    OpusFecEncoder,
    OpusPacketInfo,
)
from interlive.media.opus_aac import OpusToAac
from interlive.media.rtp_flv import RtpFlvSource, StreamSpec
from interlive.rtmp.ingest import RtpStreamWriter
from interlive.rtp.ntp import ntp_from_unix
from interlive.rtp.rtcp import serialize_rtcp

__all__ = [
    "SECTION",
    "CpuCase",
    "FecCase",
    "MediaResults",
    "render_run",
    "run",
    "snr_db",
    "speech_like",
]

SECTION: Final = "## Media conversions (`interlive bench media`)"
#: the SDK's Opus bitrate (``client/opus_fec.py``) and the FLV feed's AAC bitrate
SDK_OPUS_BITRATE: Final = 32_000
FLV_AAC_BITRATE: Final = 128_000
#: what an RTMP publisher pushes: AAC-LC 44.1 kHz stereo
RTMP_AAC_RATE: Final = 44_100
RTMP_AAC_BITRATE: Final = 128_000
VIDEO_SIZE: Final = (640, 360)
VIDEO_FPS: Final = 30
VIDEO_BITRATE: Final = 1_000_000
_VIDEO_SSRC, _AUDIO_SSRC, _VIDEO_PT, _AUDIO_PT = 0x1111, 0x2222, 102, 111
_WALL: Final = 1_800_000_000.0  # the publisher's NTP clock, as a Unix time

_INTRO: Final = """\
Audio conversions and the FLV feed of one participant, in process on real
codecs (FFmpeg through PyAV, libopus), fed synthetic speech-like audio
(syllables of a voice whose pitch glides, noise bursts, pauses) and libx264
video made before the clock starts. A cost is CPU seconds per second of media,
i.e. the share of one core one publisher or one FLV participant keeps busy;
cases run in interleaved rounds and the table gives the median.

- AAC → Opus: `AacToOpus` as the RTMP ingest runs it (64 kbit/s, in-band FEC
  for 10 % loss), fed AAC-LC 44.1 kHz stereo at 128 kbit/s.
- Opus → AAC: `OpusFecDecoder` then `OpusToAac` (128 kbit/s), the FLV feed's
  audio, fed the SDK's 32 kbit/s Opus; "OpusToAac only" is the AAC encoder alone.
- FLV feed: `RtpFlvSource` fed plain RTP as the worker sends it: H.264
  640x360@30 at about 1 Mbit/s (libx264, 2 s GOP, no B-frames), 20 ms Opus,
  sender reports each second; it outputs FLV tags.
- Opus FEC: the SDK's encoder (32 kbit/s, FEC on with the loss hint its
  `LossHintFilter` derives at that loss), seeded random frame loss, decoded
  with FEC (`decode_fec` from the next packet's LBRR) and with concealment
  only (PLC). SNR is against the clean decode of the same packets.
"""


# --- pure parts ----------------------------------------------------------------------------


def snr_db(reference: npt.ArrayLike, test: npt.ArrayLike) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` in dB (``inf`` if equal).

    ``10 log10(sum(ref^2) / sum((ref - test)^2))`` over equally long arrays.
    Raises ``ValueError`` for arrays of different lengths or a silent reference.
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    out = np.asarray(test, dtype=np.float64).ravel()
    if ref.shape != out.shape:
        raise ValueError(f"reference has {ref.size} samples, test {out.size}")
    signal = float(np.dot(ref, ref))
    if signal == 0.0:
        raise ValueError("silent reference: SNR undefined")
    diff = ref - out
    noise = float(np.dot(diff, diff))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise)


def speech_like(seconds: float, rate: int = SAMPLE_RATE, *, seed: int = 1) -> npt.NDArray[np.int16]:
    """Mono s16 speech-like audio: voiced syllables, noise bursts, pauses (seeded).

    It opens with a voiced syllable.  A voiced syllable (80-300 ms) is a
    harmonic series up to 4 kHz whose fundamental glides between 90 and
    260 Hz, with a 1/k spectral tilt; a noise burst (40-150 ms) is high-passed
    white noise (a fricative); pauses last 30-250 ms.  Every segment fades
    in and out over 5 ms; peaks are at about -6 dBFS.
    """
    rng = np.random.default_rng(seed)
    total = round(seconds * rate)
    out = np.zeros(total, dtype=np.float64)
    fade = max(1, rate // 200)
    at = 0
    while at < total:
        kind = 0 if at == 0 else rng.choice(3, p=[0.55, 0.2, 0.25])  # speech starts voiced
        if kind == 2:  # pause
            at += int(rng.uniform(0.03, 0.25) * rate)
            continue
        low, high = (0.08, 0.3) if kind == 0 else (0.04, 0.15)
        length = min(int(rng.uniform(low, high) * rate), total - at)
        if length <= 2 * fade:
            break
        if kind == 0:
            f_start, f_end = rng.uniform(90, 260, size=2)
            f0 = np.linspace(f_start, f_end, length)
            phase = 2 * math.pi * np.cumsum(f0) / rate
            segment = np.zeros(length)
            for k in range(1, int(4000 / max(f_start, f_end)) + 1):
                segment += np.sin(k * phase) / k
            segment *= 0.3 * np.hanning(length) ** 0.5
        else:
            noise = rng.standard_normal(length + 1)
            segment = 0.08 * np.diff(noise)  # a first difference: high-passed
        ramp = np.linspace(0.0, 1.0, fade)
        segment[:fade] *= ramp
        segment[-fade:] *= ramp[::-1]
        out[at : at + length] += segment
        at += length
    peak = float(np.max(np.abs(out))) or 1.0
    return np.round(out / peak * 0.5 * 32767).astype(np.int16)


def _stereo(mono: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Interleaved stereo with both channels equal (a microphone)."""
    return np.repeat(mono, 2)


@dataclass(frozen=True, slots=True)
class CpuCase:
    """CPU seconds of each round for ``media_seconds`` of media."""

    name: str
    media_seconds: float
    cpu_seconds: tuple[float, ...]

    @property
    def median_ms_per_s(self) -> float:
        """CPU ms per second of media, median of the rounds (the upper one if even)."""
        values = sorted(self.cpu_seconds)
        return values[len(values) // 2] / self.media_seconds * 1000.0


@dataclass(frozen=True, slots=True)
class FecCase:
    """Opus frame loss at one rate, decoded with and without FEC."""

    loss: float
    hint: int
    frames: int
    lost: int
    recovered_fec: int
    lbrr_packets: int
    snr_fec: float
    snr_plc: float
    snr_fec_lost: float
    snr_plc_lost: float

    @property
    def recovered_share(self) -> float:
        return self.recovered_fec / self.lost if self.lost else 0.0


@dataclass(frozen=True, slots=True)
class MediaResults:
    seconds: float
    rounds: int
    cpu: tuple[CpuCase, ...]
    fec: tuple[FecCase, ...]
    video_kbps: float
    seed: int


def _fmt_db(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "∞" if math.isinf(value) else f"{value:.1f}"


def render_run(
    results: MediaResults,
    *,
    command: str,
    when: datetime,
    machine: str,
    commit: str,
    load: tuple[float, float],
) -> str:
    """The markdown block of one run: command, context, the CPU table, the FEC table."""
    lines = [
        f"### Run of {when:%Y-%m-%d %H:%M} UTC (commit {commit})",
        "",
        f"`{command}`: {results.seconds:g} s of media per case, {results.rounds} interleaved "
        f"rounds; {machine}; load average {load[0]:.2f} before, {load[1]:.2f} after "
        "(a shared machine).",
        "",
        "| case | CPU ms per s of media (median) | share of one core | all rounds (ms per s) |",
        "|---|--:|--:|---|",
    ]
    for case in results.cpu:
        median = case.median_ms_per_s
        rounds = ", ".join(f"{c / case.media_seconds * 1000:.1f}" for c in case.cpu_seconds)
        lines.append(f"| {case.name} | {median:.1f} | {median / 10:.1f} % | {rounds} |")
    lines += [
        "",
        f"Video input: {results.video_kbps:,.0f} kbit/s of H.264.",
        "",
        "| frame loss | loss hint | lost frames | rebuilt from LBRR | packets with LBRR "
        "| SNR with FEC (dB) | SNR with PLC only (dB) | lost frames: FEC / PLC (dB) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for f in results.fec:
        lines.append(
            f"| {f.loss * 100:g} % | {f.hint} % | {f.lost} of {f.frames} "
            f"| {f.recovered_share * 100:.0f} % | {f.lbrr_packets / f.frames * 100:.0f} % "
            f"| {_fmt_db(f.snr_fec)} | {_fmt_db(f.snr_plc)} "
            f"| {_fmt_db(f.snr_fec_lost)} / {_fmt_db(f.snr_plc_lost)} |"
        )
    return "\n".join(lines) + "\n"


# --- inputs (made before the clock starts) ---------------------------------------------------


def _aac_input(seconds: float, seed: int) -> tuple[bytes, list[tuple[bytes, int]]]:
    """The AudioSpecificConfig and (raw AAC frame, FLV ms) of speech-like audio."""
    encoder = av.CodecContext.create("aac", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = RTMP_AAC_RATE
    encoder.layout = "stereo"
    encoder.format = "fltp"
    encoder.bit_rate = RTMP_AAC_BITRATE
    encoder.time_base = fractions.Fraction(1, RTMP_AAC_RATE)
    encoder.open()
    mono = speech_like(seconds, RTMP_AAC_RATE, seed=seed).astype(np.float32) / 32768.0
    size = encoder.frame_size or 1024
    payloads: list[bytes] = []
    for start in range(0, len(mono) - size + 1, size):
        chunk = mono[start : start + size]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate = RTMP_AAC_RATE
        frame.pts = start
        payloads += [bytes(p) for p in encoder.encode(frame)]
    payloads += [bytes(p) for p in encoder.encode(None)]
    config = bytes(encoder.extradata or b"")
    frames = [(p, round(i * size * 1000 / RTMP_AAC_RATE)) for i, p in enumerate(payloads)]
    return config, frames


def _pcm_frames(seconds: float, seed: int) -> list[bytes]:
    """Interleaved stereo s16 frames of 20 ms at 48 kHz."""
    pcm = _stereo(speech_like(seconds, SAMPLE_RATE, seed=seed))
    step = FRAME_SAMPLES * 2
    return [pcm[i : i + step].tobytes() for i in range(0, len(pcm) - step + 1, step)]


def _h264(seconds: float, seed: int) -> list[list[bytes]]:
    """Access units (NAL lists) of a moving, textured 640x360@30 picture at about 1 Mbit/s."""
    width, height = VIDEO_SIZE
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, VIDEO_FPS)
    codec.framerate = fractions.Fraction(VIDEO_FPS)
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = 2 * VIDEO_FPS
    codec.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "x264-params": f"bframes=0:keyint={2 * VIDEO_FPS}:sliced-threads=0",
    }
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    texture = rng.integers(0, 64, (height + 64, width + 64), dtype=np.uint8)
    aus: list[list[bytes]] = []
    for i in range(round(seconds * VIDEO_FPS)):
        # a drifting gradient, a panning texture and a little sensor noise
        dx, dy = (3 * i) % 64, i % 64
        luma = ((xx + 2 * i) % 256 // 2 + texture[dy : dy + height, dx : dx + width]).astype(
            np.int16
        )
        luma += rng.integers(-4, 5, luma.shape, dtype=np.int16)
        img = np.stack([luma, (luma + yy // 3) % 256, (255 - luma + xx // 5) % 256], axis=-1).clip(
            0, 255
        )
        frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
        frame.pts = i
        aus += [annexb_to_nals(bytes(p)) for p in codec.encode(frame)]
    aus += [annexb_to_nals(bytes(p)) for p in codec.encode(None)]
    return aus


@dataclass(frozen=True, slots=True)
class _FlvInput:
    """The datagrams the worker would send, in order, with their arrival times."""

    datagrams: list[tuple[float, bytes]]
    video_frames: int
    video_bits: int


def _flv_input(seconds: float, aus: list[list[bytes]], opus: list[bytes]) -> _FlvInput:
    video = RtpStreamWriter(_VIDEO_SSRC, _VIDEO_PT, 90_000, first_seq=1000, offset=0x1234_5678)
    audio = RtpStreamWriter(_AUDIO_SSRC, _AUDIO_PT, 48_000, first_seq=2000, offset=0x0765_4321)
    packetizer = H264Packetizer(1200)
    events: list[tuple[float, int, bytes]] = []  # (time, order, datagram)
    for i, payload in enumerate(opus):
        events.append((i * 0.02, 1, audio.write(payload, i * FRAME_SAMPLES, i == 0)))
    bits = 0
    for k, au in enumerate(aus[: round(seconds * VIDEO_FPS)]):
        t = k / VIDEO_FPS
        bits += 8 * sum(len(n) for n in au)
        for body, marker in packetizer.packetize(au):
            events.append((t, 0, video.write(body, k * 90_000 // VIDEO_FPS, marker)))
    for second in range(1, math.ceil(seconds)):
        srs = [
            video.sender_report(ntp_from_unix(_WALL + second), second * 90_000),
            audio.sender_report(ntp_from_unix(_WALL + second), second * 48_000),
        ]
        events.append((float(second), 2, serialize_rtcp([s for s in srs if s is not None])))
    events.sort(key=lambda e: (e[0], e[1]))
    frames = min(len(aus), round(seconds * VIDEO_FPS))
    return _FlvInput([(100.0 + t, d) for t, _, d in events], frames, bits)


# --- the cases ----------------------------------------------------------------------------


def _cpu(work: Callable[[], None]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def _aac_to_opus(config: bytes, frames: Sequence[tuple[bytes, int]]) -> float:
    transcoder = AacToOpus()  # the RTMP ingest's defaults
    transcoder.set_config(config)
    out: list[int] = []

    def work() -> None:
        for payload, ms in frames:
            out.append(len(transcoder.push(payload, ms)))

    cpu = _cpu(work)
    expected = len(frames) * 1024 * SAMPLE_RATE // RTMP_AAC_RATE // FRAME_SAMPLES
    if sum(out) < expected - 5 or transcoder.stats.decode_errors:
        raise RuntimeError(f"AacToOpus gave {sum(out)} Opus packets, expected about {expected}")
    return cpu


def _opus_to_aac(opus: Sequence[bytes]) -> float:
    decoder, encoder = OpusFecDecoder(2), OpusToAac(bitrate=FLV_AAC_BITRATE)

    def work() -> None:
        for i, payload in enumerate(opus):
            for frame in decoder.receive(i & 0xFFFF, i * FRAME_SAMPLES, payload):
                encoder.push(frame.pcm, frame.timestamp)

    cpu = _cpu(work)
    _check_aac(encoder, len(opus))
    return cpu


def _aac_encode_only(pcm: Sequence[bytes]) -> float:
    encoder = OpusToAac(bitrate=FLV_AAC_BITRATE)

    def work() -> None:
        for i, frame in enumerate(pcm):
            encoder.push(frame, i * FRAME_SAMPLES)

    cpu = _cpu(work)
    _check_aac(encoder, len(pcm))
    return cpu


def _check_aac(encoder: OpusToAac, frames: int) -> None:
    expected = frames * FRAME_SAMPLES // 1024
    if encoder.stats.aac_frames < expected - 3:
        raise RuntimeError(f"OpusToAac gave {encoder.stats.aac_frames} frames, expected {expected}")


def _flv_feed(feed: _FlvInput) -> float:
    source = RtpFlvSource(
        [
            StreamSpec("video", _VIDEO_SSRC, _VIDEO_PT),
            StreamSpec("audio", _AUDIO_SSRC, _AUDIO_PT),
        ],
        rtcp_ssrc=7,
        cname="bench",
    )
    tags = 0

    def work() -> None:
        nonlocal tags
        for now, datagram in feed.datagrams:
            source.receive(datagram, now)
            timer = source.get_timer()
            if timer is not None and timer <= now:
                source.handle_timer(now)
            tags += len(source.tags())
            source.datagrams_to_send()

    cpu = _cpu(work)
    if source.stats.video_frames != feed.video_frames or source.stats.aac_frames == 0:
        raise RuntimeError(
            f"FLV feed rebuilt {source.stats.video_frames} of {feed.video_frames} video frames, "
            f"{source.stats.aac_frames} AAC frames"
        )
    return cpu


def _decode(
    packets: Sequence[bytes], lost: npt.NDArray[np.bool_], *, fec: bool
) -> tuple[npt.NDArray[np.int16], OpusFecDecoder]:
    """Decode the packets not lost, each frame placed at its timestamp (gaps stay silent)."""
    decoder = OpusFecDecoder(2, fec=fec)
    out = np.zeros(len(packets) * FRAME_SAMPLES * 2, dtype=np.int16)
    for i, payload in enumerate(packets):
        if lost[i]:
            continue
        for frame in decoder.receive(i & 0xFFFF, i * FRAME_SAMPLES, payload):
            at = (int(frame.timestamp) & 0xFFFF_FFFF) * 2  # the stream starts at 0
            pcm = np.frombuffer(frame.pcm, dtype=np.int16)
            out[at : at + pcm.size] = pcm[: out.size - at]
    return out, decoder


def _snr_or_nan(reference: npt.NDArray[np.int16], test: npt.NDArray[np.int16]) -> float:
    """:func:`snr_db`, or NaN where it is undefined (no lost frame, or only silence lost)."""
    if not reference.any():
        return math.nan
    return snr_db(reference, test)


def fec_case(pcm: Sequence[bytes], loss: float, seed: int) -> FecCase:
    """Encode as the SDK does at ``loss``, lose frames at random, decode with FEC and with PLC."""
    hint_filter = LossHintFilter()
    for _ in range(8):  # steady receiver reports at that loss
        hint_filter.update(min(255, round(loss * 256)))
    encoder = OpusFecEncoder(2, bitrate=SDK_OPUS_BITRATE)
    encoder.set_packet_loss(hint_filter.percent)
    packets = [encoder.encode(frame) for frame in pcm]
    lost = np.random.default_rng(seed).random(len(packets)) < loss
    lost[0] = lost[-1] = False  # the stream starts and ends with a packet
    clean, _ = _decode(packets, np.zeros(len(packets), dtype=np.bool_), fec=True)
    with_fec, fec_decoder = _decode(packets, lost, fec=True)
    with_plc, _ = _decode(packets, lost, fec=False)
    lost_samples = np.repeat(lost, FRAME_SAMPLES * 2)
    return FecCase(
        loss=loss,
        hint=hint_filter.percent,
        frames=len(packets),
        lost=int(lost.sum()),
        recovered_fec=fec_decoder.stats.frames_recovered_fec,
        lbrr_packets=sum(OpusPacketInfo.parse(p).lbrr for p in packets),
        snr_fec=_snr_or_nan(clean, with_fec),
        snr_plc=_snr_or_nan(clean, with_plc),
        snr_fec_lost=_snr_or_nan(clean[lost_samples], with_fec[lost_samples]),
        snr_plc_lost=_snr_or_nan(clean[lost_samples], with_plc[lost_samples]),
    )


def run(
    seconds: float, rounds: int, *, seed: int = 1, losses: Sequence[float] = (0.1, 0.2)
) -> MediaResults:
    """Make the inputs, run the CPU cases in interleaved rounds, then the FEC cases."""
    config, aac = _aac_input(seconds, seed)
    pcm = _pcm_frames(seconds, seed)
    sdk = OpusFecEncoder(2, bitrate=SDK_OPUS_BITRATE)  # no loss reported: FEC off
    opus = [sdk.encode(frame) for frame in pcm]
    decoded = [f.pcm for f in _decode_all(opus)]
    feed = _flv_input(seconds, _h264(seconds, seed), opus)
    cases: dict[str, Callable[[], float]] = {
        "AAC → Opus (AacToOpus, RTMP ingest)": lambda: _aac_to_opus(config, aac),
        "Opus → AAC (OpusFecDecoder + OpusToAac)": lambda: _opus_to_aac(opus),
        "OpusToAac only (AAC encode)": lambda: _aac_encode_only(decoded),
        "FLV feed (RtpFlvSource, H.264 + Opus → FLV tags)": lambda: _flv_feed(feed),
    }
    media = {
        "AAC → Opus (AacToOpus, RTMP ingest)": len(aac) * 1024 / RTMP_AAC_RATE,
        "Opus → AAC (OpusFecDecoder + OpusToAac)": len(opus) * FRAME_SAMPLES / SAMPLE_RATE,
        "OpusToAac only (AAC encode)": len(decoded) * FRAME_SAMPLES / SAMPLE_RATE,
        "FLV feed (RtpFlvSource, H.264 + Opus → FLV tags)": len(opus) * FRAME_SAMPLES / SAMPLE_RATE,
    }
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved rounds: drift hits every case alike
        for name, case in cases.items():
            cpu[name].append(case())
    fec = tuple(fec_case(pcm, loss, seed) for loss in losses)
    return MediaResults(
        seconds=seconds,
        rounds=rounds,
        cpu=tuple(CpuCase(name, media[name], tuple(values)) for name, values in cpu.items()),
        fec=fec,
        video_kbps=feed.video_bits / (feed.video_frames / VIDEO_FPS) / 1000,
        seed=seed,
    )


def _decode_all(opus: Sequence[bytes]) -> list[DecodedFrame]:
    decoder = OpusFecDecoder(2)
    return [
        f for i, p in enumerate(opus) for f in decoder.receive(i & 0xFFFF, i * FRAME_SAMPLES, p)
    ]


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip() or "unknown"
    return commit + (", uncommitted changes" if dirty.stdout.strip() else "")


def main(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]
    results = run(args.seconds, args.rounds)
    load_after = os.getloadavg()[0]
    command = f"interlive bench media --seconds {args.seconds:g} --rounds {args.rounds}" + (
        f" --output {args.output}" if args.output else ""
    )
    text = render_run(
        results,
        command=command,
        when=datetime.now(UTC),
        machine=machine_info().describe(),
        commit=_commit(),
        load=(load_before, load_after),
    )
    print(text)
    if args.output:
        path = Path(args.output)
        existing = path.read_text() if path.exists() else ""
        with path.open("a") as f:
            if SECTION not in existing:
                f.write(f"\n{SECTION}\n\n{_INTRO}")
            f.write("\n" + text)
    return 0
