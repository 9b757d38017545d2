"""Opus in-band FEC (LBRR): an encoder that sends it when loss is measured, a decoder that uses it.

Opus can carry, inside packet ``n + 1``, a low-bitrate redundant copy (LBRR) of
the SILK layer of frame ``n`` (RFC 6716 §2.1.7, §4.2.4-§4.2.5).  A receiver
that lost packet ``n`` and already holds ``n + 1`` decodes frame ``n`` from it
with ``opus_decode(..., decode_fec=1)`` instead of extrapolating it with packet
loss concealment (PLC).  RFC 7587 §6.1 signals the receiver's ability with the
fmtp parameter ``useinbandfec=1``.  Everything here is sans-IO around libopus
(through ``opuslib_next``): PCM and payloads in, payloads and PCM out.

Encoder
-------
:class:`OpusFecEncoder` encodes 20 ms frames at 48 kHz.  LBRR costs bits that
the primary encoding then lacks, so it is off until loss is measured:
:meth:`OpusFecEncoder.set_packet_loss` with ``percent >= 1`` sets
``OPUS_SET_INBAND_FEC(1)`` and ``OPUS_SET_PACKET_LOSS_PERC(percent)``, ``0``
turns both off.  libopus itself then decides per frame whether LBRR fits the
bitrate (``decide_fec`` in ``opus_encoder.c``) and codes it only for frames its
VAD finds active (a steady tone stops carrying LBRR after about a second).
:class:`LossHintFilter` turns the ``fraction lost`` of successive RTCP receiver
reports (RFC 3550 §6.4.1) into that percentage.

Decoder (theory of operation)
-----------------------------
:class:`OpusFecDecoder` is fed ``(sequence number, timestamp, payload)`` of each
RTP packet in arrival order and returns the decoded frames in playout order.
It holds nothing back, so it adds no latency; the price is that a packet
arriving after its successor is handled as lost (and repaired from the
successor's LBRR), and then ignored as late.

1. Sequence numbers are unwrapped (:class:`~interlive.rtp.seq.SequenceUnwrapper`);
   ``expected`` is one past the last packet consumed.
2. A packet before ``expected`` is a duplicate (it was consumed) or late (its
   slot was already repaired); either is counted and ignored.  One more than
   ``RESYNC_DISTANCE`` behind means the sender restarted its numbering: the
   decoder resets and starts over from that packet.
3. A packet ``m`` ahead of ``expected`` closes a gap of ``m`` lost frames, all
   assumed as long as the packet that closes it.  The last of them is decoded
   from the packet's LBRR if :func:`OpusPacketInfo.parse` finds an LBRR flag
   set, and concealed with PLC otherwise; the ones before it are concealed
   with PLC, the earliest ``max_conceal_frames`` of them only (PLC fades to
   silence anyway; the rest are counted as skipped and not emitted, so an
   outage does not become seconds of synthetic audio in one call).
4. The packet itself is then decoded.  A payload that is not a valid Opus
   packet (RFC 6716 §3.4), or that libopus refuses, is concealed in its slot
   and counted in ``decode_errors``; nothing is raised.

Whether a packet carries LBRR is read from the first bits of its first SILK
frame (RFC 6716 §4.2.3-§4.2.4: the VAD flags and the LBRR flag are coded with
probability 1/2 each, so they are the top bits of the range coder's first
byte), as libopus 1.5's ``opus_packet_has_lbrr`` does; libopus 1.3 lacks that
function.  Without LBRR, ``decode_fec`` gives exactly the PLC output (the unit
tests check this), so the flag decides only which counter is honest.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

import opuslib_next  # type: ignore[import-untyped]

from interlive.media.errors import MediaFormatError
from interlive.rtp.seq import SequenceUnwrapper, TimestampUnwrapper
from interlive.rtp.types import ExtSeq, ExtTimestamp

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "DecodedFrame",
    "FrameSource",
    "LossHintFilter",
    "OpusDecoderStats",
    "OpusFecDecoder",
    "OpusFecEncoder",
    "OpusPacketError",
    "OpusPacketInfo",
]

SAMPLE_RATE: Final = 48000
#: Samples per channel in one 20 ms frame at 48 kHz.
FRAME_SAMPLES: Final = 960
#: The longest Opus packet, 120 ms (RFC 6716 §3.2.5, R5).
MAX_PACKET_SAMPLES: Final = 5760
_MAX_FRAME_BYTES: Final = 1275  # RFC 6716 §3.2.1, R2
#: A packet this far behind the expected one restarts the decoder (a new sender).
RESYNC_DISTANCE: Final = 100
#: How many recent sequence numbers are remembered to tell duplicates from late packets.
_RECENT: Final = 128

Application = Literal["voip", "audio", "restricted_lowdelay"]
FrameSource = Literal["packet", "fec", "plc"]


class OpusPacketError(MediaFormatError):
    """A payload that is not a valid Opus packet (RFC 6716 §3.4, requirements R1-R7)."""


# --- packet structure ---------------------------------------------------------------

# RFC 6716 §3.1, Table 2: samples per frame at 48 kHz by TOC configuration number.
_SILK_SAMPLES: Final = (480, 960, 1920, 2880)  # 10, 20, 40, 60 ms
_HYBRID_SAMPLES: Final = (480, 960)  # 10, 20 ms
_CELT_SAMPLES: Final = (120, 240, 480, 960)  # 2.5, 5, 10, 20 ms


def _frame_samples(config: int) -> int:
    if config < 12:
        return _SILK_SAMPLES[config & 3]
    if config < 16:
        return _HYBRID_SAMPLES[config & 1]
    return _CELT_SAMPLES[config & 3]


def _frame_length(packet: bytes, at: int) -> tuple[int, int]:
    """A one- or two-byte frame length at ``at`` (RFC 6716 §3.2.1): (length, bytes used)."""
    if at >= len(packet):
        raise OpusPacketError("packet ends inside a frame length")
    first = packet[at]
    if first < 252:
        return first, 1
    if at + 1 >= len(packet):
        raise OpusPacketError("packet ends inside a two-byte frame length")
    return first + 4 * packet[at + 1], 2


@dataclass(frozen=True, slots=True)
class OpusPacketInfo:
    """What the TOC byte and framing of one Opus packet say (RFC 6716 §3.1-§3.2).

    ``frame_samples`` is per frame at 48 kHz; ``lbrr`` is True when the first
    frame carries an LBRR flag for the previous packet (SILK or hybrid mode
    only: CELT has no LBRR).
    """

    config: int
    stereo: bool
    frame_count: int
    frame_samples: int
    lbrr: bool

    @property
    def mode(self) -> Literal["silk", "hybrid", "celt"]:
        if self.config < 12:
            return "silk"
        return "hybrid" if self.config < 16 else "celt"

    @property
    def samples(self) -> int:
        """Duration of the whole packet in samples per channel at 48 kHz."""
        return self.frame_count * self.frame_samples

    @classmethod
    def parse(cls, packet: bytes) -> OpusPacketInfo:
        """Check the framing against RFC 6716 §3.4 and read the LBRR flag.

        Raises :class:`OpusPacketError` for an empty or malformed packet.
        """
        if not packet:
            raise OpusPacketError("empty Opus packet")  # R1
        toc = packet[0]
        config, stereo, code = toc >> 3, bool(toc & 0x04), toc & 0x03
        frame_samples = _frame_samples(config)
        size = len(packet)
        if code == 0:
            count, first_at, first_len = 1, 1, size - 1
        elif code == 1:
            if (size - 1) % 2:
                raise OpusPacketError("code 1 packet with an odd payload length")  # R3
            count, first_at, first_len = 2, 1, (size - 1) // 2
        elif code == 2:
            first_len, used = _frame_length(packet, 1)
            first_at = 1 + used
            if first_len > size - first_at:
                raise OpusPacketError("code 2 packet shorter than its first frame")  # R4
            count = 2
        else:
            count, first_at, first_len = cls._parse_code3(packet, frame_samples)
        if first_len > _MAX_FRAME_BYTES:
            raise OpusPacketError(f"frame of {first_len} bytes exceeds {_MAX_FRAME_BYTES}")
        lbrr = False
        if config < 16 and first_len > 0:
            # One VAD flag per 20 ms SILK frame, then the LBRR flag; stereo repeats
            # both for the side channel (RFC 6716 §4.2.3-§4.2.4).
            silk_frames = max(1, frame_samples // FRAME_SAMPLES)
            first = packet[first_at]
            lbrr = bool((first >> (7 - silk_frames)) & 1)
            if stereo:
                lbrr = lbrr or bool((first >> (6 - 2 * silk_frames)) & 1)
        return cls(config, stereo, count, frame_samples, lbrr)

    @staticmethod
    def _parse_code3(packet: bytes, frame_samples: int) -> tuple[int, int, int]:
        """Frame count, first frame offset and length of a code 3 packet (§3.2.5)."""
        size = len(packet)
        if size < 2:
            raise OpusPacketError("code 3 packet without a frame count byte")  # R6/R7
        vbr, padded, count = bool(packet[1] & 0x80), bool(packet[1] & 0x40), packet[1] & 0x3F
        if count == 0 or count * frame_samples > MAX_PACKET_SAMPLES:
            raise OpusPacketError(f"code 3 packet with {count} frames")  # R5
        at = 2
        padding = 0
        while padded:
            if at >= size:
                raise OpusPacketError("packet ends inside the padding length")
            step = packet[at]
            at += 1
            padding += 254 if step == 255 else step
            padded = step == 255
        if vbr:
            lengths = []
            for _ in range(count - 1):
                length, used = _frame_length(packet, at)
                at += used
                lengths.append(length)
            last = size - at - padding - sum(lengths)
            if last < 0:
                raise OpusPacketError("VBR code 3 packet shorter than its frames")  # R7
            first_len = lengths[0] if lengths else last
        else:
            data = size - at - padding
            if data < 0 or data % count:
                raise OpusPacketError("CBR code 3 packet not a whole number of frames")  # R6
            first_len = data // count
        return count, at, first_len


# --- encoder ------------------------------------------------------------------------


class OpusFecEncoder:
    """20 ms Opus frames at 48 kHz, with in-band FEC following a loss hint.

    ``encode`` takes exactly :data:`FRAME_SAMPLES` samples per channel of
    interleaved native-endian signed 16-bit PCM and returns one Opus packet.
    FEC starts off (``inband_fec`` False, ``packet_loss_perc`` 0).  Not
    thread-safe: call everything from one thread at a time.
    """

    def __init__(
        self, channels: int = 2, *, bitrate: int = 32000, application: Application = "voip"
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self.channels = channels
        self._encoder = opuslib_next.Encoder(SAMPLE_RATE, channels, application)
        self.bitrate = bitrate
        self.set_packet_loss(0)

    @property
    def bitrate(self) -> int:
        """Target bitrate in bits/s (``OPUS_GET_BITRATE``)."""
        return int(self._encoder.bitrate)

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        if not 500 <= value <= 512_000:
            raise ValueError(f"bitrate must be 500..512000 bits/s, got {value}")
        self._encoder.bitrate = value

    @property
    def inband_fec(self) -> bool:
        """Whether LBRR may be coded (``OPUS_GET_INBAND_FEC``)."""
        return bool(self._encoder.inband_fec)

    @property
    def packet_loss_perc(self) -> int:
        """The expected loss libopus plans for (``OPUS_GET_PACKET_LOSS_PERC``)."""
        return int(self._encoder.packet_loss_perc)

    def set_packet_loss(self, percent: int) -> None:
        """Expect ``percent`` (0..100) loss: FEC on at 1 or more, off at 0."""
        if not 0 <= percent <= 100:
            raise ValueError(f"packet loss must be 0..100 %, got {percent}")
        self._encoder.inband_fec = 1 if percent else 0
        self._encoder.packet_loss_perc = percent

    def encode(self, pcm: bytes) -> bytes:
        """One 20 ms frame of PCM to one Opus packet."""
        expected = FRAME_SAMPLES * self.channels * 2
        if len(pcm) != expected:
            raise ValueError(f"expected {expected} bytes of s16 PCM (20 ms), got {len(pcm)}")
        return bytes(self._encoder.encode(pcm, FRAME_SAMPLES))


class LossHintFilter:
    """RTCP ``fraction lost`` values to the loss percentage an encoder should plan for.

    Each receiver report's fraction (0..255, in 1/256, RFC 3550 §6.4.1) is
    averaged exponentially with weight ``weight``, so one clean report after
    lossy ones does not switch FEC off at once: at the default 0.5 a steady
    15 % falls below 1 % after four clean reports.  The result is rounded to a
    whole percent.
    """

    __slots__ = ("_smoothed", "reports", "weight")

    def __init__(self, weight: float = 0.5) -> None:
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight must be in (0, 1], got {weight}")
        self.weight = weight
        self.reports = 0
        self._smoothed: float | None = None

    @property
    def percent(self) -> int:
        """The current hint; 0 before any report."""
        if self._smoothed is None:
            return 0
        return min(100, math.floor(self._smoothed * 100.0 + 0.5))

    def update(self, fraction_lost: int) -> int:
        """Take one report's fraction lost (0..255); return the new hint in percent."""
        if not 0 <= fraction_lost <= 255:
            raise ValueError(f"fraction lost must be 0..255, got {fraction_lost}")
        fraction = fraction_lost / 256.0
        if self._smoothed is None:
            self._smoothed = fraction
        else:
            self._smoothed += (fraction - self._smoothed) * self.weight
        self.reports += 1
        return self.percent


# --- decoder ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame: interleaved native-endian s16 PCM, ``samples`` per channel.

    ``timestamp`` is the extended RTP timestamp of its first sample (inferred
    for frames that were lost); ``sequence_number`` the extended sequence
    number of the packet it stands for; ``source`` says how it was made.
    """

    sequence_number: ExtSeq
    timestamp: ExtTimestamp
    samples: int
    pcm: bytes
    source: FrameSource


@dataclass(slots=True)
class OpusDecoderStats:
    """Counters of :class:`OpusFecDecoder`.

    Every lost frame ends up in exactly one of ``frames_recovered_fec``,
    ``frames_concealed`` or ``frames_skipped``; ``frames_concealed`` also
    counts the slots of packets that failed to decode (``decode_errors``).
    """

    packets: int = 0
    frames_decoded: int = 0
    frames_recovered_fec: int = 0
    frames_concealed: int = 0
    frames_skipped: int = 0
    packets_late: int = 0
    packets_duplicate: int = 0
    decode_errors: int = 0
    resyncs: int = 0

    @property
    def frames_lost(self) -> int:
        """Frames whose packet never arrived in time (repaired, concealed or skipped)."""
        return (
            self.frames_recovered_fec
            + self.frames_concealed
            + self.frames_skipped
            - self.decode_errors
        )


class OpusFecDecoder:
    """RTP-level Opus decoding that repairs a lost frame from the next packet's LBRR.

    See the module docstring for the algorithm.  ``fec=False`` conceals every
    lost frame with PLC (for comparison, or for a sender known to send no
    LBRR).  ``channels`` is the output's channel count; Opus decodes mono and
    stereo streams to either.
    """

    def __init__(self, channels: int = 2, *, fec: bool = True, max_conceal_frames: int = 5) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if max_conceal_frames < 0:
            raise ValueError("max_conceal_frames must be >= 0")
        self.channels = channels
        self.fec = fec
        self.max_conceal_frames = max_conceal_frames
        self.stats = OpusDecoderStats()
        self._decoder = opuslib_next.Decoder(SAMPLE_RATE, channels)
        self._seq = SequenceUnwrapper()
        self._ts = TimestampUnwrapper()
        self._expected: int | None = None
        self._last_samples = FRAME_SAMPLES
        self._recent: deque[int] = deque(maxlen=_RECENT)

    def reset(self) -> None:
        """Forget the stream (a new SSRC): the next packet starts over; counters stay."""
        self._decoder.reset_state()
        self._seq = SequenceUnwrapper()
        self._ts = TimestampUnwrapper()
        self._expected = None
        self._last_samples = FRAME_SAMPLES
        self._recent.clear()

    def receive(self, sequence_number: int, timestamp: int, payload: bytes) -> list[DecodedFrame]:
        """Take one RTP packet's facts; return the frames now ready, in playout order."""
        stats = self.stats
        stats.packets += 1
        ext = int(self._seq.unwrap(sequence_number))
        expected = self._expected
        if expected is not None and ext < expected:
            if expected - ext <= RESYNC_DISTANCE:
                if ext in self._recent:
                    stats.packets_duplicate += 1
                else:
                    stats.packets_late += 1
                return []
            stats.resyncs += 1
            self.reset()
            ext = int(self._seq.unwrap(sequence_number))
            expected = None
        ext_ts = int(self._ts.unwrap(timestamp))
        try:
            info: OpusPacketInfo | None = OpusPacketInfo.parse(payload)
        except OpusPacketError:
            info = None
        samples = info.samples if info is not None else self._last_samples
        frames: list[DecodedFrame] = []
        if expected is not None and ext > expected:
            frames += self._repair(ext - expected, ext, ext_ts, samples, payload, info)
        frames.append(self._decode(ext, ext_ts, samples, payload, info))
        self._expected = ext + 1
        self._last_samples = samples
        self._recent.append(ext)
        return frames

    def _repair(
        self,
        missing: int,
        ext: int,
        ext_ts: int,
        samples: int,
        payload: bytes,
        info: OpusPacketInfo | None,
    ) -> list[DecodedFrame]:
        """Frames for the ``missing`` slots before packet ``ext`` (step 3 of the module doc)."""
        stats = self.stats
        use_fec = self.fec and info is not None and info.lbrr
        plc_slots = missing - 1 if use_fec else missing
        conceal = min(plc_slots, self.max_conceal_frames)
        stats.frames_skipped += plc_slots - conceal
        frames = []
        first = ext - missing
        for k in range(conceal):
            slot = first + k
            frames.append(self._conceal(slot, ext_ts - (ext - slot) * samples, samples))
        if use_fec:
            pcm = self._run(payload, samples, fec=True)
            if pcm is None:
                frames.append(self._conceal(ext - 1, ext_ts - samples, samples))
            else:
                stats.frames_recovered_fec += 1
                frames.append(self._frame(ext - 1, ext_ts - samples, pcm, "fec"))
        return frames

    def _decode(
        self, ext: int, ext_ts: int, samples: int, payload: bytes, info: OpusPacketInfo | None
    ) -> DecodedFrame:
        pcm = None if info is None else self._run(payload, samples, fec=False)
        if pcm is None:
            self.stats.decode_errors += 1
            return self._conceal(ext, ext_ts, samples)
        self.stats.frames_decoded += 1
        return self._frame(ext, ext_ts, pcm, "packet")

    def _conceal(self, ext: int, ext_ts: int, samples: int) -> DecodedFrame:
        self.stats.frames_concealed += 1
        pcm = self._run(b"", samples, fec=False)
        if pcm is None:  # libopus refuses PLC only for a bad size; output silence then
            pcm = bytes(samples * self.channels * 2)
        return self._frame(ext, ext_ts, pcm, "plc")

    def _run(self, payload: bytes, samples: int, *, fec: bool) -> bytes | None:
        """libopus decode of ``samples`` per channel; None when it refuses the input."""
        try:
            pcm = self._decoder.decode(payload, samples, fec)
        except opuslib_next.OpusError:
            return None
        return bytes(pcm)

    def _frame(self, ext: int, ext_ts: int, pcm: bytes, source: FrameSource) -> DecodedFrame:
        samples = len(pcm) // (2 * self.channels)
        return DecodedFrame(ExtSeq(ext), ExtTimestamp(ext_ts), samples, pcm, source)
