"""Decoded Opus to AAC-LC for FLV players: 20 ms frames in, 1024-sample AAC frames out.

FLV (and so RTMP and HTTP-FLV players, WeChat's ``live-player`` among them)
carries AAC, WebRTC carries Opus, so FLV playback transcodes the audio (the
video passes through).  :class:`OpusToAac` is the second half of that: it is
fed PCM already decoded by :class:`~interlive.media.opus.OpusFecDecoder`
(48 kHz, interleaved ``s16``, 960 samples per frame, with the extended RTP
timestamp of the first sample), and returns AAC-LC frames (ISO/IEC 14496-3,
raw access units, as an FLV AACPacketType 1 tag carries them) with their
presentation time on the same 48 kHz RTP clock.  The AudioSpecificConfig for
the FLV sequence header is :attr:`OpusToAac.config` (AAC LC, 48 kHz, stereo).

The encoder is FFmpeg's native ``aac`` through PyAV, fed planar float.

Theory of operation (framing)
-----------------------------
Opus frames hold 960 samples, AAC frames 1024, so samples go through a FIFO
whose time line is kept in RTP units: the first frame opens it at its
timestamp, later frames continue it sample-exactly while their timestamps
agree within :data:`RESYNC_SAMPLES`; a jump (a gap the decoder did not fill,
a new source after a switch) drops the partial AAC frame and restarts the
time line at the new timestamp, so the audio never drifts from the RTP clock
the video is aligned to.  Every 1024 samples in the FIFO become one AAC
frame; the encoder's packets carry the presentation time FFmpeg gives them
(its 1024-sample priming delay already taken off, so the first packet comes
out 1024 samples before the first input sample).
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Final

import av
import numpy as np

from .avc import AudioSpecificConfig
from .timed_fifo import TimedFifo

__all__ = ["AAC_FRAME_SAMPLES", "AAC_RATE", "RESYNC_SAMPLES", "AacFrame", "OpusToAac"]

AAC_RATE: Final = 48_000
AAC_FRAME_SAMPLES: Final = 1024
CHANNELS: Final = 2
#: a frame this far (in samples, 100 ms) from the running time line restarts it
RESYNC_SAMPLES: Final = 4800
_TIME_BASE: Final = fractions.Fraction(1, AAC_RATE)


@dataclass(frozen=True, slots=True)
class AacFrame:
    """One raw AAC access unit and its presentation time in 48 kHz RTP units."""

    payload: bytes
    pts: int


@dataclass(slots=True)
class OpusToAacStats:
    pcm_frames: int = 0
    aac_frames: int = 0
    resyncs: int = 0


class OpusToAac:
    """PCM frames (48 kHz stereo ``s16``) in, AAC-LC frames out (see the module doc)."""

    def __init__(self, *, bitrate: int = 128_000) -> None:
        self.bitrate = bitrate
        self.stats = OpusToAacStats()
        self.config = AudioSpecificConfig.for_rate(AAC_RATE, CHANNELS)
        self._encoder = self._open_encoder()
        self._fifo = TimedFifo(AAC_RATE, AAC_FRAME_SAMPLES, RESYNC_SAMPLES)

    def _open_encoder(self) -> av.AudioCodecContext:
        encoder = av.CodecContext.create("aac", "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.sample_rate = AAC_RATE
        encoder.layout = "stereo"
        encoder.format = "fltp"
        encoder.bit_rate = self.bitrate
        encoder.time_base = _TIME_BASE
        encoder.open()
        return encoder

    def push(self, pcm: bytes, timestamp: int) -> list[AacFrame]:
        """One decoded frame (interleaved stereo ``s16``) whose first sample is at ``timestamp``.

        Returns the AAC frames it completes, in order (none, one or two).
        """
        samples = len(pcm) // (2 * CHANNELS)
        if samples == 0:
            return []
        self.stats.pcm_frames += 1
        interleaved = np.frombuffer(pcm, dtype="<i2" if np.little_endian else ">i2")
        planar = (interleaved[: samples * CHANNELS].reshape(samples, CHANNELS).T / 32768.0).astype(
            np.float32
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar), format="fltp", layout="stereo"
        )
        frame.sample_rate = AAC_RATE
        self._fifo.write(frame, timestamp)
        self.stats.resyncs = self._fifo.resyncs
        out: list[AacFrame] = []
        for chunk_pts, chunk in self._fifo.chunks():
            for packet in self._encoder.encode(chunk):
                pts = packet.pts if packet.pts is not None else chunk_pts
                out.append(AacFrame(bytes(packet), int(pts)))
                self.stats.aac_frames += 1
        return out
