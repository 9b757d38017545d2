"""AAC from RTMP/FLV to Opus for WebRTC: decode, resample to 48 kHz stereo, encode 20 ms frames.

Browsers receive Opus only, so the RTMP ingest transcodes its audio (its video
passes through).  :class:`AacToOpus` is fed what an FLV AUDIODATA tag carries
(FLV spec v10.1 E.4.2.2): the AudioSpecificConfig once (ISO/IEC 14496-3
§1.6.2.1, AACPacketType 0), then raw AAC frames (AACPacketType 1) with their
FLV timestamps in ms.  It returns Opus packets (RFC 6716) with their
presentation time in 48 kHz samples, the RTP clock of Opus (RFC 7587 §4.1).

Everything is in-process FFmpeg through PyAV: the ``aac`` decoder, the
``swresample`` resampler and ``libopus`` with in-band FEC on (``fec=1``,
``packet_loss=10``: libopus codes LBRR redundancy for a 10 % loss estimate, so
a viewer losing a packet rebuilds it from the next; RFC 6716 §2.1.7).

Theory of operation (timing)
----------------------------
Opus needs whole 20 ms frames (960 samples), AAC delivers 1024 samples at its
own rate, so resampled audio goes through a FIFO and leaves it in 960-sample
frames.  The FIFO's time line is kept in 48 kHz samples: the first AAC frame
opens it at ``timestamp_ms * 48``; later frames continue it sample-exactly as
long as their FLV timestamps agree with it within :data:`RESYNC_MS`.  A jump
larger than that (the publisher paused, or its clock restarted) discards the
partial frame in the FIFO and restarts the time line at the new timestamp,
so audio never drifts from the video, whose RTP time comes from the same FLV
clock.  The encoder's look-ahead (6.5 ms) and the resampler's filter delay
are constant offsets, far below what lip sync notices.

The class holds codec state and is not thread-safe; the RTMP edge runs one
per publisher, in an executor thread (libavcodec releases the GIL while it
decodes and encodes).
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Final

import av

from .avc import AudioSpecificConfig
from .errors import AacConfigError, MediaFormatError
from .timed_fifo import TimedFifo

__all__ = [
    "FRAME_SAMPLES",
    "OPUS_RATE",
    "RESYNC_MS",
    "AacToOpus",
    "OpusPacket",
    "TranscodeError",
    "TranscoderStats",
]

OPUS_RATE: Final = 48_000
FRAME_SAMPLES: Final = 960  # 20 ms at 48 kHz
#: a timestamp this far from the running time line restarts it
RESYNC_MS: Final = 100
_SAMPLES_PER_MS: Final = OPUS_RATE // 1000
_TIME_BASE: Final = fractions.Fraction(1, OPUS_RATE)


class TranscodeError(MediaFormatError):
    """AAC the decoder refused, or audio before its AudioSpecificConfig."""


@dataclass(frozen=True, slots=True)
class OpusPacket:
    """One 20 ms Opus packet and its presentation time in 48 kHz samples."""

    payload: bytes
    pts: int


@dataclass(slots=True)
class TranscoderStats:
    aac_frames: int = 0
    decode_errors: int = 0
    opus_packets: int = 0
    resyncs: int = 0


class AacToOpus:
    """AAC frames in, Opus packets out (see the module doc)."""

    def __init__(self, *, bitrate: int = 64_000, packet_loss: int = 10) -> None:
        self.bitrate = bitrate
        self.packet_loss = packet_loss
        self.config: AudioSpecificConfig | None = None
        self.stats = TranscoderStats()
        self._decoder: av.AudioCodecContext | None = None
        self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=OPUS_RATE)
        self._fifo = TimedFifo(OPUS_RATE, FRAME_SAMPLES, RESYNC_MS * _SAMPLES_PER_MS)
        self._encoder = self._open_encoder()

    def _open_encoder(self) -> av.AudioCodecContext:
        encoder = av.CodecContext.create("libopus", "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.sample_rate = OPUS_RATE
        encoder.layout = "stereo"
        encoder.format = "flt"
        encoder.bit_rate = self.bitrate
        encoder.time_base = _TIME_BASE
        encoder.options = {
            "application": "audio",
            "frame_duration": "20",
            "fec": "1",
            "packet_loss": str(self.packet_loss),
        }
        encoder.open()
        return encoder

    def set_config(self, config: bytes) -> None:
        """The AudioSpecificConfig (AACPacketType 0); a new one restarts the decoder.

        Raises :class:`~interlive.media.errors.AacConfigError` if malformed.
        """
        parsed = AudioSpecificConfig.parse(config)
        if parsed.sampling_frequency <= 0 or parsed.channel_configuration > 8:
            raise AacConfigError(
                f"AAC config at {parsed.sampling_frequency} Hz with channel configuration "
                f"{parsed.channel_configuration} is not playable"
            )
        decoder = av.CodecContext.create("aac", "r")
        assert isinstance(decoder, av.AudioCodecContext)
        decoder.extradata = bytes(config)
        try:
            decoder.open()
        except av.FFmpegError as exc:
            raise AacConfigError(f"the AAC decoder refused the config: {exc}") from exc
        self.config = parsed
        self._decoder = decoder
        # the new stream may have another rate or layout: the resampler starts over
        self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=OPUS_RATE)

    def push(self, frame: bytes, timestamp_ms: int) -> list[OpusPacket]:
        """One raw AAC frame (AACPacketType 1) at its FLV time; the Opus packets it completes.

        Raises :class:`TranscodeError` before any config; a frame the decoder
        refuses is counted in ``stats.decode_errors`` and gives nothing.
        """
        decoder = self._decoder
        if decoder is None:
            raise TranscodeError("AAC frame before its AudioSpecificConfig")
        self.stats.aac_frames += 1
        try:
            decoded = decoder.decode(av.Packet(frame))
        except av.FFmpegError:
            self.stats.decode_errors += 1
            return []
        out: list[OpusPacket] = []
        start = timestamp_ms * _SAMPLES_PER_MS
        for pcm in decoded:
            pcm.pts = None  # the FIFO keeps our time line, not the decoder's
            try:
                resampled_frames = self._resampler.resample(pcm)
            except (av.FFmpegError, ValueError):  # the decoder changed format mid-stream
                self.stats.decode_errors += 1
                self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=OPUS_RATE)
                continue
            for resampled in resampled_frames:
                self._fifo.write(resampled, start)
                start += resampled.samples
            self.stats.resyncs = self._fifo.resyncs
            for chunk_pts, chunk in self._fifo.chunks():
                for packet in self._encoder.encode(chunk):
                    pts = packet.pts if packet.pts is not None else chunk_pts
                    out.append(OpusPacket(bytes(packet), int(pts)))
                    self.stats.opus_packets += 1
        return out
