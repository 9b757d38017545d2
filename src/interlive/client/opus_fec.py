"""Opus in-band FEC in the SDK: interlive's Opus cores put in place of aiortc's.

aiortc 1.16 encodes Opus through PyAV with in-band FEC never switched on, and
decodes it through PyAV, which has no way to ask libopus for LBRR.  Its audio
jitter buffer (capacity 16, prefetch 4) also stops at a gap until 16 later
packets have piled up, then throws away the frames queued before it: one lost
packet also costs the four received frames held before it, and leaves the
output 200 ms later than before.  This module swaps both ends, per
sender and receiver instance, for the sans-IO cores of
:mod:`interlive.media.opus`, and only for Opus (the SDK restricts the audio
m-line to Opus when it does this).

Publisher (:class:`PublisherFec`): the sender encodes with an
:class:`~interlive.media.opus.OpusFecEncoder` (48 kHz stereo, 32 kbit/s,
``voip``); every RTCP receiver report block about the sender's SSRC (the
server's reception of this stream) goes through a
:class:`~interlive.media.opus.LossHintFilter`, and the resulting percentage
becomes the encoder's packet loss hint, which switches FEC on at 1 % and off
at 0 %.  Only if the server's answer carries ``useinbandfec=1`` (RFC 7587 §6.1);
otherwise the hint stays 0.

Subscriber (:class:`SubscriberFec`): each Opus RTP packet, after aiortc's
statistics and RTX handling, is decoded at once by an
:class:`~interlive.media.opus.OpusFecDecoder` on the event loop (a 20 ms frame
takes tens of microseconds) and the frames are queued on the receiver's track
exactly where aiortc's decoder thread would have put them: packed ``s16``
stereo at 48 kHz, ``pts`` in samples from the first frame.  A lost frame is
rebuilt from the next packet's LBRR, or concealed with PLC.

PINNED to aiortc 1.16 (``aiortc>=1.16,<1.17``).  The private members used,
all in this module (re-check them before moving the pin):

* ``RTCRtpSender._RTCRtpSender__encoder``: ``None`` until the first frame, when
  ``_next_encoded_frame`` calls ``get_encoder(codec)`` only if it is still
  ``None``; set before the sender starts.  aiortc's ``Encoder`` interface is
  ``encode(frame, force_keyframe) -> (payloads, timestamp)`` and ``pack``; it
  runs ``encode`` in the default executor, so the loss hint is handed over as
  a plain attribute and applied by the encoding thread.
* ``RTCRtpSender._handle_rtcp_packet(packet)``: the coroutine
  ``RTCDtlsTransport`` awaits for every RTCP packet routed to the sender (RR
  and SR packets with a report block for its SSRC); shadowed on the instance.
  ``RTCRtpSender._ssrc`` is the SSRC those blocks name.
* ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``: its ``add(packet)`` is
  called by ``_handle_rtp_packet`` with each depayloaded packet and returns
  ``(pli_flag, frame or None)``; replaced by a sink that decodes and returns
  no frame, so aiortc's decoder thread stays idle.
* ``RemoteStreamTrack._queue``: the ``asyncio.Queue`` the track's ``recv()``
  reads, where the decoder thread would put frames.
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import av
import numpy as np
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtp import RtcpRrPacket, RtcpSrPacket, RtpPacket
from av.frame import Frame
from av.packet import Packet

from interlive.media.opus import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    DecodedFrame,
    LossHintFilter,
    OpusDecoderStats,
    OpusFecDecoder,
    OpusFecEncoder,
)
from interlive.sdp.errors import SdpError
from interlive.sdp.parse import parse_session

__all__ = [
    "DEFAULT_BITRATE",
    "OpusFecState",
    "PublisherFec",
    "SubscriberFec",
    "answer_accepts_inband_fec",
    "offer_with_inband_fec",
    "opus_codec_preferences",
]

logger = logging.getLogger(__name__)

DEFAULT_BITRATE: Final = 32000
_CHANNELS: Final = 2  # aiortc's Opus is opus/48000/2 and its decoder gives stereo
_TIME_BASE: Final = fractions.Fraction(1, SAMPLE_RATE)
_ENCODER_ATTR: Final = "_RTCRtpSender__encoder"
_RTCP_HOOK: Final = "_handle_rtcp_packet"
_JITTER_ATTR: Final = "_RTCRtpReceiver__jitter_buffer"
_MISSING: Final = object()


def _pinned(what: str) -> RuntimeError:
    return RuntimeError(
        f"{what} not found: this aiortc is not the 1.16 line interlive.client.opus_fec "
        "was written for"
    )


# --- negotiation ---------------------------------------------------------------------


def opus_codec_preferences() -> list[RTCRtpCodecCapability]:
    """aiortc's audio capabilities restricted to Opus (for ``setCodecPreferences``)."""
    capabilities = RTCRtpSender.getCapabilities("audio")
    return [c for c in capabilities.codecs if c.name.lower() == "opus"]


def offer_with_inband_fec(sdp: str) -> str:
    """``sdp`` with ``useinbandfec=1`` in the fmtp of every audio Opus payload type.

    aiortc writes no fmtp for Opus; RFC 7587 §6.1 has the receiver announce
    that it can use in-band FEC this way.  Only the text changes: aiortc's own
    state is untouched (it reads only the answer).
    """
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    out: list[str] = []
    audio = False
    opus: set[str] = set()
    has_fmtp: set[str] = set()
    for line in lines:
        if line.startswith("m="):
            audio = line.startswith("m=audio ")
        elif audio and line.startswith("a=fmtp:"):
            pt, _, params = line[len("a=fmtp:") :].partition(" ")
            if pt in opus:
                has_fmtp.add(pt)
                if "useinbandfec" not in params.lower():
                    line = f"a=fmtp:{pt} {params};useinbandfec=1" if params else line
        out.append(line)
        if audio and line.startswith("a=rtpmap:"):
            pt, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            if encoding.lower().startswith("opus/"):
                opus.add(pt)
    # Opus payload types without any fmtp line get one right after their rtpmap.
    missing = opus - has_fmtp
    if not missing:
        return newline.join(out)
    result: list[str] = []
    for line in out:
        result.append(line)
        if line.startswith("a=rtpmap:"):
            pt = line[len("a=rtpmap:") :].partition(" ")[0]
            if pt in missing:
                result.append(f"a=fmtp:{pt} useinbandfec=1")
                missing.discard(pt)
    return newline.join(result)


def answer_accepts_inband_fec(sdp: str, mid: str | None) -> bool:
    """True when the answer's audio section ``mid`` gives Opus ``useinbandfec=1``.

    With ``mid`` None the first audio section is used.  An unparsable answer
    counts as no.
    """
    try:
        session = parse_session(sdp)
    except SdpError:
        return False
    for media in session.media:
        if media.kind != "audio" or (mid is not None and media.mid != mid):
            continue
        return any(
            codec.name.lower() == "opus" and codec.fmtp.get("useinbandfec") == "1"
            for codec in media.codecs
        )
    return False


# --- publisher -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpusFecState:
    """What a publisher's Opus encoder does about FEC.

    ``negotiated``: the answer had ``useinbandfec=1``.  ``loss_hint``: the
    percentage derived from the ``reports`` receiver report blocks so far
    (the last one said ``fraction_lost``/256).  ``inband_fec`` and
    ``packet_loss_perc`` are read back from libopus by the encoding thread
    after it applied the hint, so they trail ``loss_hint`` by up to one frame.
    """

    negotiated: bool
    reports: int
    fraction_lost: int | None
    loss_hint: int
    inband_fec: bool
    packet_loss_perc: int
    frames_encoded: int


class _FecEncoder(Encoder):
    """aiortc's ``Encoder`` interface over :class:`OpusFecEncoder` (20 ms, 48 kHz stereo)."""

    def __init__(self, bitrate: int) -> None:
        self._core = OpusFecEncoder(_CHANNELS, bitrate=bitrate)
        self._resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
        )
        self._first_pts: int | None = None
        self._samples = 0
        #: Set by the event loop, applied by the encoding thread (plain int: atomic).
        self.wanted_loss = 0
        self._applied_loss = 0
        self.inband_fec = False
        self.packet_loss_perc = 0
        self.frames_encoded = 0

    def _apply_hint(self) -> None:
        wanted = self.wanted_loss
        if wanted != self._applied_loss:
            self._core.set_packet_loss(wanted)
            self._applied_loss = wanted
            self.inband_fec = self._core.inband_fec
            self.packet_loss_perc = self._core.packet_loss_perc

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        # The timestamp is that of the first payload (aiortc's convention); with
        # no payload (the resampler buffering) the sender ignores it.
        assert isinstance(frame, av.AudioFrame)
        self._apply_hint()
        payloads: list[bytes] = []
        timestamp = 0
        for chunk in self._resampler.resample(frame):
            pts = chunk.pts if chunk.pts is not None else self._samples
            if self._first_pts is None:
                self._first_pts = pts
            if not payloads:
                timestamp = pts - self._first_pts
            payloads.append(self._core.encode(chunk.to_ndarray().tobytes()))
            self._samples += chunk.samples
            self.frames_encoded += 1
        return payloads, timestamp

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        # A track that yields already-encoded Opus packets: passed through as aiortc does.
        assert packet.pts is not None and packet.time_base is not None
        return [bytes(packet)], convert_timebase(packet.pts, packet.time_base, _TIME_BASE)


class PublisherFec:
    """FEC for one audio ``RTCRtpSender``: attach before negotiation, see module doc."""

    def __init__(self, sender: RTCRtpSender, *, bitrate: int = DEFAULT_BITRATE) -> None:
        if getattr(sender, _ENCODER_ATTR, _MISSING) is not None:
            raise _pinned(f"RTCRtpSender.{_ENCODER_ATTR} (None before the first frame)")
        original = getattr(sender, _RTCP_HOOK, None)
        if original is None or not callable(original):
            raise _pinned(f"RTCRtpSender.{_RTCP_HOOK}")
        self._sender = sender
        self._encoder = _FecEncoder(bitrate)
        self._filter = LossHintFilter()
        self._fraction_lost: int | None = None
        self.negotiated = False
        setattr(sender, _ENCODER_ATTR, self._encoder)
        setattr(sender, _RTCP_HOOK, self._make_hook(original))

    def _make_hook(
        self, original: Callable[[Any], Coroutine[Any, Any, None]]
    ) -> Callable[[Any], Coroutine[Any, Any, None]]:
        async def hooked(packet: Any) -> None:
            try:
                self.on_rtcp(packet)
            except Exception:
                logger.exception("Opus FEC: receiver report handling failed")
            await original(packet)

        return hooked

    def on_rtcp(self, packet: object) -> None:
        """Feed one RTCP packet; report blocks about this sender move the loss hint."""
        if not isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            return
        ssrc = self._sender._ssrc
        for report in packet.reports:
            if report.ssrc == ssrc:
                self._fraction_lost = report.fraction_lost
                hint = self._filter.update(report.fraction_lost)
                self._encoder.wanted_loss = hint if self.negotiated else 0

    def state(self) -> OpusFecState:
        encoder = self._encoder
        return OpusFecState(
            negotiated=self.negotiated,
            reports=self._filter.reports,
            fraction_lost=self._fraction_lost,
            loss_hint=encoder.wanted_loss,
            inband_fec=encoder.inband_fec,
            packet_loss_perc=encoder.packet_loss_perc,
            frames_encoded=encoder.frames_encoded,
        )


# --- subscriber ------------------------------------------------------------------------


class _DecodingSink:
    """Stands in for aiortc's audio ``JitterBuffer``: decodes on ``add``, returns no frame."""

    def __init__(self, owner: SubscriberFec) -> None:
        self._owner = owner

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        try:
            self._owner.on_packet(packet)
        except Exception:
            logger.exception("Opus FEC: decoding a packet failed")
        return False, None


class SubscriberFec:
    """FEC-aware Opus decoding for one audio ``RTCRtpReceiver`` (see module doc)."""

    def __init__(self, receiver: RTCRtpReceiver, *, max_conceal_frames: int = 5) -> None:
        if getattr(receiver, _JITTER_ATTR, None) is None:
            raise _pinned(f"RTCRtpReceiver.{_JITTER_ATTR}")
        self._receiver = receiver
        self._decoder = OpusFecDecoder(_CHANNELS, max_conceal_frames=max_conceal_frames)
        self._ssrc: int | None = None
        self._pts_offset: int | None = None
        self._next_pts = 0
        self.frames_dropped = 0  # decoded before the track existed
        setattr(receiver, _JITTER_ATTR, _DecodingSink(self))

    def stats(self) -> OpusDecoderStats:
        """A copy of the decoder's counters."""
        return dataclasses.replace(self._decoder.stats)

    def on_packet(self, packet: RtpPacket) -> None:
        """Decode one Opus RTP packet and queue the frames it yields on the track."""
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                self._decoder.reset()
                self._pts_offset = None  # the new stream continues from the last pts
            self._ssrc = packet.ssrc
        frames = self._decoder.receive(packet.sequence_number, packet.timestamp, packet.payload)
        track = self._receiver.track
        queue = getattr(track, "_queue", None)
        for decoded in frames:
            frame = self._to_av(decoded)
            if queue is None:
                self.frames_dropped += 1
            else:
                queue.put_nowait(frame)

    def _to_av(self, decoded: DecodedFrame) -> av.AudioFrame:
        if self._pts_offset is None:
            self._pts_offset = self._next_pts - decoded.timestamp
        pcm = np.frombuffer(decoded.pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = decoded.timestamp + self._pts_offset
        frame.time_base = _TIME_BASE
        self._next_pts = frame.pts + decoded.samples
        return frame
