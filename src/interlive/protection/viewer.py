"""The repair tools one viewer gets for one stream, re-chosen as its link is measured.

Theory of operation
-------------------
A down-track owns one :class:`ViewerProtection`.  It is told what the viewer
reports and asks for (sans-IO: numbers and ``now`` in, a decision out):

* every RTCP receiver report: its cumulative loss and extended highest
  sequence number, the RTT measured from our sender reports, and the octets
  sent so far.  Loss and bitrate are measured over windows of at least
  :data:`WINDOW` seconds and the loss smoothed across windows: a browser
  sends a receiver report with every NACK, so the reports' own "fraction
  lost" covers a few packets each and jumps between 0 and 30 % at a steady
  10 % loss (seen with Chromium).  The policy decides on the highest
  smoothed loss of the last :data:`LOSS_HOLD` seconds, so protection goes
  up at once and down slowly: at a steady 20 % the smoothed loss still
  scatters around the 17 % below which RED distance 2 would do, and
  dropping a copy for one lucky window cost 0.8 % of the audio (measured).
  The same window measures the packets and
  frames sent, so the policy knows how many packets a frame really spans
  (a 480 kbit/s, 20 frame/s stream of 950-byte packets has 3-4 per frame,
  not the 2 its bitrate suggests at 30 frames/s of 1200 bytes);
* every NACK: the lost sequence numbers, whose runs estimate the mean burst
  length (consecutive losses defeat consecutive-packet FEC masks and RED; the
  policy then prefers interleaved masks or NACK).  Where retransmissions go
  out on the media SSRC itself (no RTX: Opus), a repaired packet counts as
  received in the viewer's reports (RFC 3550 counts a late packet against the
  loss), so the reports give the loss left after repair, not the link's:
  measured with Chromium at 30 % loss, the reports said ~5 % and RED was
  dropped.  There the loss is also taken from the NACKs: a receiver asks for
  every packet it misses (Chromium's NetEq does, RED-recovered or not), so the
  sequence numbers first asked for in a window, over the packets the window
  expected, are the link's loss; the higher of the two counts.

On each report the :class:`~interlive.protection.policy.ProtectionPolicy`
decides from a :class:`~interlive.protection.policy.LinkStats`; the result is
kept as :attr:`ViewerProtection.decision` and the down-track applies it (RED
distance for Opus, ULPFEC rates and mask for video, whether NACKs are
answered).  The playout deadline is the viewer's patience: a video frame that
waits longer than about 150 ms past its due time counts as a freeze (the W3C
webrtc-stats definition at 30 frames/s), so repair must land within it.
Under ``policy`` the viewer may also be asked to hold its video longer
(:attr:`ViewerProtection.playout_delay`, up to ``max_playout_delay``, sent
as the playout-delay header extension): the patience grows by that much and
more NACK rounds fit, which on a lossy link is preferred to FEC.  Audio
follows by itself: a browser delays a stream's audio to keep it in sync with
its video.  The forced single-tool modes leave the viewer's buffer alone.

The *mode* (``interlive serve --loss-protection``) forces one tool for the
loss benchmark: ``none``, ``nack`` (answer NACKs only), ``fec`` (ULPFEC on
video at the level the policy would pick without NACK), ``red`` (RED on audio
likewise).  ``policy`` lets the policy combine them.  A tool the viewer did not
negotiate (no ``ulpfec``, no ``red``) is never used, whatever the mode.

ULPFEC is also never used on a codec whose receiver cannot skip a lost FEC
packet (:func:`codec_can_skip_fec`): FEC packets take sequence numbers in the
media stream, and a receiver without a picture ID to link frames (H.264, AV1
without the dependency descriptor) releases a delta frame only when every
earlier sequence number has arrived (libwebrtc's packet buffer and its
sequence-number reference finder).  Every lost FEC packet must then be
retransmitted before the video goes on, so FEC adds loss to repair instead of
removing it; with NACK off, each lost FEC packet freezes the picture until
the next keyframe (seen with Chromium: 6 of 360 H.264 frames decoded at 10 %
loss).  libwebrtc's sender applies the same rule
(``PayloadTypeSupportsSkippingFecPackets``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Final, Literal, get_args

from interlive.protection.policy import (
    LinkStats,
    MediaKind,
    PolicyConfig,
    ProtectionDecision,
    ProtectionPolicy,
)

__all__ = [
    "AUDIO_DEADLINE",
    "DEFAULT_MAX_PLAYOUT_DELAY",
    "FEC_SKIPPING_CODECS",
    "LOSS_PROTECTION_CHOICES",
    "VIDEO_DEADLINE",
    "VIEWER_POLICY_CONFIG",
    "LossProtection",
    "ViewerProtection",
    "codec_can_skip_fec",
    "mean_run_length",
]

#: ``policy`` chooses per viewer; the others force one tool everywhere (``none``
#: repairs nothing), which the loss benchmark compares.
LossProtection = Literal["policy", "none", "nack", "fec", "red"]
LOSS_PROTECTION_CHOICES: Final[tuple[str, ...]] = get_args(LossProtection)

#: How late a video packet may land and still avoid a freeze (seconds).
VIDEO_DEADLINE: Final = 0.15
#: Audio's jitter buffer is shallower.  No NACK round fits in it, so RED is sized as if
#: audio NACK did not exist: the viewer's NACKs are answered all the same (``nack`` and
#: ``policy``), and where NetEq holds the audio longer (lip sync with a video asked to
#: wait) the resends repair what the RED copies lost.
AUDIO_DEADLINE: Final = 0.1
#: Shortest span of reports loss and bitrate are measured over (seconds).
WINDOW: Final = 1.0
#: Weight of a new window's loss in the smoothed loss.
LOSS_GAIN: Final = 0.5
#: How long the highest smoothed loss stands for the link (seconds): protection goes up
#: at once and comes down only when the loss stayed lower this long, so a window that
#: happened to lose less does not drop a RED copy the next one needs.
LOSS_HOLD: Final = 5.0
#: Weight of a new NACK's mean run in the smoothed burst length.
BURST_GAIN: Final = 0.2
#: How long a NACKed sequence number is remembered, so a repeated request is not a new loss.
NACK_MEMORY: Final = 2.0
#: RTT assumed until the viewer's reports give one (seconds).
DEFAULT_RTT: Final = 0.05
_ASSUMED_BITRATE: Final = {"audio": 32_000.0, "video": 600_000.0}

#: The longest render delay a viewer is asked to keep by default (seconds).
DEFAULT_MAX_PLAYOUT_DELAY: Final = 1.0

# The SFU cannot turn on a publisher's Opus in-band FEC for one viewer, so the
# viewer-leg policy never counts on it.
#
# Audio aims at 0.1 % left, five times under the product goal (0.5 % at 30 %
# loss): Chromium used the third and later RED copies only in part (measured
# 0.5-1.9 % at 30 % with distance 4, 0.24 % by theory), and an Opus copy is small.
#
# Video aims at 0.01 % of packets late: a frame of 4 packets with one late
# freezes for about a NACK round (~0.3 s), so at 30 frames/s 0.1 % would freeze
# ~1.2 % of the time, missing the 1 % goal (measured: 1.2 % at 20 % loss and
# 100 ms RTT with four rounds).
#
# A browser viewer receives only, so it has no RTT estimate and asks again for
# a lost packet every 100 ms (libwebrtc's default RTT), on a timer that runs
# every 20 ms: a round takes the RTT plus up to 20 ms.
VIEWER_POLICY_CONFIG: Final = PolicyConfig(
    inband_min_loss=1.0,
    target_residual_audio=0.001,
    max_red_distance=6,
    target_residual_video=0.0001,
    processing=0.02,
    min_nack_interval=0.1,
    max_playout_delay=DEFAULT_MAX_PLAYOUT_DELAY,
)


#: Video codecs (lower-case encoding names) whose frames carry a picture ID, so a
#: receiver can release a frame while an ULPFEC packet before it is still missing.
FEC_SKIPPING_CODECS: Final = frozenset({"vp8", "vp9"})


def codec_can_skip_fec(mime: str) -> bool:
    """Whether a receiver of ``mime`` ("video/VP8") can do without a lost ULPFEC packet."""
    return mime.rsplit("/", 1)[-1].lower() in FEC_SKIPPING_CODECS


def mean_run_length(lost: Sequence[int]) -> float:
    """Mean length of the runs of consecutive sequence numbers in ``lost`` (16-bit, any order)."""
    seqs = sorted(set(lost))
    if not seqs:
        return 1.0
    runs = 1
    for prev, cur in pairwise(seqs):
        if cur - prev != 1:
            runs += 1
    # a run across the 16-bit wrap is counted as two: too rare to matter
    return len(seqs) / runs


class ViewerProtection:
    """One viewer's protection for one stream (see module doc)."""

    __slots__ = (
        "_config",
        "_decided",
        "_fec_codec",
        "_fec_negotiated",
        "_hidden_repairs",
        "_nacked",
        "_nacked_new",
        "_recent_loss",
        "_window",
        "bitrate",
        "can_nack",
        "can_red",
        "decision",
        "kind",
        "loss",
        "mean_burst",
        "mode",
        "rtt",
    )

    def __init__(
        self,
        kind: MediaKind,
        mode: LossProtection,
        *,
        can_fec: bool,
        can_red: bool,
        max_playout_delay: float = DEFAULT_MAX_PLAYOUT_DELAY,
        hidden_repairs: bool = False,
        can_nack: bool = True,
    ) -> None:
        """``hidden_repairs``: retransmissions go on the media SSRC (no RTX), so the
        viewer's reports count them as received and the NACKs measure the loss too.
        ``can_nack``: the viewer negotiated generic NACK for this stream."""
        self.kind: MediaKind = kind
        self.mode: LossProtection = mode
        self.can_nack = can_nack
        self._fec_negotiated = can_fec and kind == "video"
        #: whether the codec being sent lets the receiver skip lost FEC (see set_codec)
        self._fec_codec = True
        self._decided = False
        self.can_red = can_red and kind == "audio"
        self.loss = 0.0
        #: (time, smoothed loss) of the last LOSS_HOLD seconds of windows
        self._recent_loss: deque[tuple[float, float]] = deque()
        self.mean_burst = 1.0
        self._hidden_repairs = hidden_repairs
        #: 16-bit sequence number -> when first NACKed (the last NACK_MEMORY seconds)
        self._nacked: dict[int, float] = {}
        #: sequence numbers first NACKed since the current window began
        self._nacked_new = 0
        self.rtt: float | None = None
        self.bitrate = _ASSUMED_BITRATE[kind]
        #: (time, highest sequence, cumulative lost, octets, packets, frames sent) at its start
        self._window: tuple[float, int, int, int, int, int] | None = None
        #: the policy's packetisation assumptions, replaced by what is measured
        self._config = replace(VIEWER_POLICY_CONFIG, max_playout_delay=max_playout_delay)
        self.decision = ProtectionDecision(reason="no report from the viewer yet")

    @property
    def can_fec(self) -> bool:
        """Whether ULPFEC may be sent: negotiated, and the codec can skip lost FEC packets."""
        return self._fec_negotiated and self._fec_codec

    def set_codec(self, mime: str) -> bool:
        """The stream is now sent as ``mime``; returns whether the decision changed."""
        allowed = codec_can_skip_fec(mime)
        if allowed == self._fec_codec:
            return False
        self._fec_codec = allowed
        if not self._decided:
            return False
        before = self.decision
        self.decision = self._decide()
        return self.decision != before

    @property
    def answers_nacks(self) -> bool:
        """Whether the viewer's NACKs are answered with retransmissions (a viewer that
        did not negotiate NACK sends none: its tool is not called NACK)."""
        return self.can_nack and self.mode in ("policy", "nack")

    @property
    def red_distance(self) -> int:
        return self.decision.red_distance if self.can_red else 0

    @property
    def fec_rate(self) -> float:
        return self.decision.fec_rate if self.can_fec else 0.0

    @property
    def fec_rate_keyframe(self) -> float:
        return self.decision.fec_rate_keyframe if self.can_fec else 0.0

    @property
    def playout_delay(self) -> float:
        """The render delay the viewer is asked to keep (seconds, 0: its own choice)."""
        return self.decision.playout_delay if self.kind == "video" else 0.0

    @property
    def tool(self) -> str:
        """The repair in use: ``fec``, ``red``, each with ``+nack``, ``nack`` or ``none``,
        and ``+delay`` when the viewer is asked to hold its pictures longer."""
        if self.fec_rate > 0 or self.fec_rate_keyframe > 0:
            tool = "fec+nack" if self.answers_nacks else "fec"
        elif self.red_distance > 0:
            tool = "red+nack" if self.answers_nacks else "red"
        else:
            tool = "nack" if self.answers_nacks else "none"
        return tool + "+delay" if self.playout_delay > 0 else tool

    def link_stats(self) -> LinkStats:
        loss = min(max((held for _, held in self._recent_loss), default=self.loss), 0.99)
        # a burst can be no shorter than independent loss makes it on average
        floor = 1.0 / (1.0 - loss)
        return LinkStats(
            loss_rate=loss,
            mean_burst_length=max(self.mean_burst, floor),
            rtt=self.rtt if self.rtt is not None else DEFAULT_RTT,
            playout_deadline=VIDEO_DEADLINE if self.kind == "video" else AUDIO_DEADLINE,
            bitrate=self.bitrate,
            kind=self.kind,
        )

    def on_nack(self, lost: Sequence[int], now: float) -> None:
        if not lost:
            return
        self.mean_burst += (mean_run_length(lost) - self.mean_burst) * BURST_GAIN
        nacked = self._nacked
        while nacked:
            seq, when = next(iter(nacked.items()))
            if when >= now - NACK_MEMORY:
                break
            del nacked[seq]
        for seq in lost:
            seq &= 0xFFFF
            if seq not in nacked:
                nacked[seq] = now
                self._nacked_new += 1

    def on_report(
        self, highest_sequence: int, cumulative_lost: int, rtt: float | None,
        octets_sent: int, now: float, *, packets_sent: int = 0, frames_sent: int = 0,
    ) -> bool:  # fmt: skip
        """Take one receiver report; returns whether the decision changed.

        ``highest_sequence`` is the report's extended highest sequence number
        and ``cumulative_lost`` its cumulative number of packets lost;
        ``octets_sent``, ``packets_sent`` and ``frames_sent`` count what was
        sent so far (payload octets; frames by their marker bit).
        """
        if rtt is not None:
            self.rtt = rtt
        window = self._window
        fresh = (now, highest_sequence, cumulative_lost, octets_sent, packets_sent, frames_sent)
        if window is None or highest_sequence < window[1]:  # first, or the stream restarted
            self._window = fresh
            self._nacked_new = 0
            return False
        elapsed = now - window[0]
        if elapsed < WINDOW:
            return False
        expected = highest_sequence - window[1]
        if expected > 0:
            lost = cumulative_lost - window[2]
            if self._hidden_repairs:
                lost = max(lost, self._nacked_new)
            sample = min(1.0, max(0.0, lost / expected))
            self.loss += (sample - self.loss) * LOSS_GAIN
            recent = self._recent_loss
            recent.append((now, self.loss))
            while recent[0][0] < now - LOSS_HOLD:
                recent.popleft()
        self.bitrate = max((octets_sent - window[3]) * 8.0 / elapsed, 1.0)
        packets, frames = packets_sent - window[4], frames_sent - window[5]
        if self.kind == "video" and packets > 0 and frames > 0:
            self._config = replace(
                self._config,
                video_frame_rate=frames / elapsed,
                video_packet_size=max(1, round((octets_sent - window[3]) / packets)),
            )
        self._window = fresh
        self._nacked_new = 0
        before = self.decision
        self.decision = self._decide()
        self._decided = True
        return self.decision != before

    def _decide(self) -> ProtectionDecision:
        mode = self.mode
        if mode == "none":
            return ProtectionDecision(reason="forced: no repair")
        stats = self.link_stats()
        if mode == "policy":
            # without FEC the policy spends latency instead (more NACK rounds)
            config = replace(self._config, fec_allowed=self.can_fec)
            decision = ProtectionPolicy(config).decide(stats)
            if self.kind == "video" and not self.can_fec:
                decision = replace(decision, reason=f"{decision.reason} (no FEC: {self._no_fec()})")
        elif mode == "nack":
            decision = ProtectionPolicy(self._config).decide(replace(stats, loss_rate=0.0))
            decision = replace(decision, reason="forced: NACK only")
        elif (mode == "fec") == (self.kind == "video"):  # fec on video, red on audio
            config = replace(self._config, max_nack_attempts=0)
            decision = ProtectionPolicy(config).decide(stats)
            decision = replace(decision, reason=f"forced: {mode} only; {decision.reason}")
        else:
            return ProtectionDecision(reason=f"forced: {mode} only, which {self.kind} lacks")
        if decision.fec_rate and not self.can_fec:
            decision = replace(
                decision,
                fec_rate=0.0,
                fec_rate_keyframe=0.0,
                reason=f"{decision.reason} ({self._no_fec()})",
            )
        if decision.red_distance and not self.can_red:
            decision = replace(
                decision, red_distance=0, reason=decision.reason + " (no red negotiated)"
            )
        return decision

    def _no_fec(self) -> str:
        if not self._fec_negotiated:
            return "the viewer did not negotiate ulpfec"
        return "this codec cannot skip lost FEC packets"

    def stats(self) -> dict[str, object]:
        """What the viewer's link looks like and what it gets, for the stats endpoint."""
        d = self.decision
        return {
            "mode": self.mode,
            "loss": round(self.loss, 4),
            "mean_burst": round(self.mean_burst, 2),
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "bitrate": round(self.bitrate),
            "frame_rate": round(self._config.video_frame_rate, 1),
            "packet_size": self._config.video_packet_size,
            "nack": self.answers_nacks,
            "fec_rate": self.fec_rate,
            "fec_rate_keyframe": self.fec_rate_keyframe,
            "fec_mask": d.fec_mask,
            "red_distance": self.red_distance,
            "playout_delay_ms": round(self.playout_delay * 1000),
            "reason": d.reason,
        }
