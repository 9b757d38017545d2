"""Active-speaker detection from RFC 6464 client-to-mixer audio levels.

RFC 6464 (section 3) puts a 7-bit level in each audio packet's header extension:
the audio level in -dBov, 0 (loudest, digital full scale) to 127 (silence), and
an optional voice-activity (V) flag.  The SFU reads it per packet, without
decoding, and feeds :meth:`ActiveSpeakerDetector.observe`; the adapter calls
:meth:`ActiveSpeakerDetector.tick` every :attr:`~SpeakerConfig.interval` seconds
and broadcasts any :class:`~interlive.stage.model.ActiveSpeakerChanged` it gets.

Theory of operation
-------------------
1. *Loudness.*  Each packet becomes a loudness sample ``127 - level`` (dB above
   the floor, larger is louder); a packet without the V flag counts as 0, so
   background noise that the sender's VAD rejects does not count.
2. *Smoothing.*  Per participant, an exponential moving average with time
   constant ``tau`` seconds (time-based, so packet rate does not matter).  A
   participant who stops sending (DTX, mute, gone) decays towards 0 after
   ``stale`` seconds without packets.
3. *Speaking, with hysteresis.*  A smoothed loudness at or above ``on`` makes a
   participant a possible speaker (a *challenger*); the current speaker and the
   challenger stay "speaking" down to the lower ``off`` threshold, so the short
   gaps between words do not reset them.
4. *Switching, with dwell.*  The loudest other participant takes over only if it
   is speaking and louder than the current speaker by ``margin`` dB (or the
   current speaker is no longer speaking), continuously for ``dwell`` seconds;
   any interruption, or another participant becoming the loudest, restarts the
   clock.  So brief bursts (a cough, a door, a laugh) never switch.
5. *Silence.*  When the current speaker has not been speaking for ``hold``
   seconds and nobody challenges, the active speaker becomes ``None``.

Everything is a pure function of the observations and the ``now`` values given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interlive.stage.model import ActiveSpeakerChanged

__all__ = ["MAX_LEVEL", "ActiveSpeakerDetector", "SpeakerConfig"]

#: The quietest RFC 6464 level (-127 dBov): silence.
MAX_LEVEL = 127


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """Tuning; the defaults suit conversational speech at 20 ms packets."""

    tau: float = 0.4  # smoothing time constant, seconds
    on: float = 60.0  # loudness (127 - level) to become a speaker, i.e. -67 dBov
    off: float = 40.0  # loudness below which a speaker or challenger is not speaking
    margin: float = 6.0  # dB a challenger must be louder than the current speaker
    dwell: float = 0.5  # seconds a challenger must hold its lead
    hold: float = 1.5  # seconds of silence before the active speaker becomes None
    stale: float = 0.3  # seconds without packets after which loudness decays
    interval: float = 0.1  # how often the adapter should call tick()

    def __post_init__(self) -> None:
        if not (self.tau > 0 and self.dwell >= 0 and self.hold >= 0 and self.interval > 0):
            raise ValueError("tau and interval must be > 0, dwell and hold >= 0")
        if self.off > self.on:
            raise ValueError("off threshold must not exceed on threshold")


class _Level:
    __slots__ = ("last", "value")

    def __init__(self, now: float) -> None:
        self.value = 0.0
        self.last = now


class ActiveSpeakerDetector:
    """The room's dominant speaker from per-packet audio levels.  See the module docstring."""

    def __init__(self, config: SpeakerConfig | None = None) -> None:
        self.config = config or SpeakerConfig()
        self._levels: dict[str, _Level] = {}
        self._current: str | None = None
        self._quiet_since: float | None = None  # when the current speaker stopped speaking
        self._challenger: str | None = None
        self._challenger_since = 0.0

    @property
    def active(self) -> str | None:
        return self._current

    def observe(self, identity: str, level: int, vad: bool, now: float) -> None:
        """One audio packet's RFC 6464 level (0..127 -dBov) and voice-activity flag."""
        if not 0 <= level <= MAX_LEVEL:
            raise ValueError(f"audio level {level} outside 0..{MAX_LEVEL}")
        sample = float(MAX_LEVEL - level) if vad else 0.0
        state = self._levels.get(identity)
        if state is None:
            state = self._levels[identity] = _Level(now)
        dt = max(0.0, now - state.last)
        alpha = 1.0 - math.exp(-dt / self.config.tau)
        state.value += (sample - state.value) * alpha
        state.last = max(state.last, now)

    def loudness(self, identity: str, now: float) -> float:
        """The smoothed loudness of ``identity`` at ``now`` (0 if never heard)."""
        state = self._levels.get(identity)
        if state is None:
            return 0.0
        idle = now - state.last - self.config.stale
        if idle <= 0:
            return state.value
        return state.value * math.exp(-idle / self.config.tau)

    def remove(self, identity: str, now: float) -> ActiveSpeakerChanged | None:
        """Forget ``identity`` (left, demoted, track ended)."""
        self._levels.pop(identity, None)
        if self._challenger == identity:
            self._challenger = None
        if self._current == identity:
            self._current = None
            self._quiet_since = None
            return ActiveSpeakerChanged(None)
        return None

    def tick(self, now: float) -> ActiveSpeakerChanged | None:
        """Re-evaluate at ``now``: a change of active speaker, or ``None`` if it stays."""
        cfg = self.config
        loud = {identity: self.loudness(identity, now) for identity in self._levels}
        current = self._current
        current_level = loud.get(current, 0.0) if current is not None else 0.0
        current_speaking = current is not None and current_level >= cfg.off
        if current_speaking:
            self._quiet_since = None
        elif current is not None and self._quiet_since is None:
            self._quiet_since = now

        # The loudest participant other than the current one.  A new challenger must
        # reach ``on``; one already challenging keeps its clock down to ``off``.
        best: str | None = None
        best_level = 0.0
        for identity, value in loud.items():
            if identity != current and value > best_level:
                best, best_level = identity, value
        floor = cfg.off if best is not None and best == self._challenger else cfg.on
        qualifies = (
            best is not None
            and best_level >= floor
            and (not current_speaking or best_level >= current_level + cfg.margin)
        )
        if not qualifies:
            self._challenger = None
        elif best != self._challenger:
            self._challenger, self._challenger_since = best, now

        if self._challenger is not None and now - self._challenger_since >= cfg.dwell:
            self._current, self._challenger = self._challenger, None
            self._quiet_since = None
            return ActiveSpeakerChanged(self._current)
        if (
            current is not None
            and self._quiet_since is not None
            and self._challenger is None
            and now - self._quiet_since >= cfg.hold
        ):
            self._current = None
            self._quiet_since = None
            return ActiveSpeakerChanged(None)
        return None
