"""Active speaker per room on a media worker, from the RFC 6464 audio levels publishers send.

Each audio packet of a published track carries its level in the
``ssrc-audio-level`` header extension (RFC 6464 §3, when negotiated): the
worker reads it without decoding and feeds the room's
:class:`~interlive.stage.speaker.ActiveSpeakerDetector` (smoothing,
hysteresis and dwell are there).  Tracks held (demoted) or muted by the stage do
not count.  Every :attr:`~interlive.stage.speaker.SpeakerConfig.interval`
seconds each room's detector is ticked and a change becomes the worker event
``active_speaker`` (``{"room", "identity"}``, identity ``None`` for silence),
which the control process broadcasts to the room.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from interlive.rtp import extensions as ext
from interlive.rtp.packet import RtpPacket
from interlive.sfu.room import Room
from interlive.sfu.tracks import UpTrack
from interlive.stage.speaker import ActiveSpeakerDetector, SpeakerConfig
from interlive.worker.channel import Event
from interlive.worker.peer import PeerSession

__all__ = ["Speakers"]


class Speakers:
    """The rooms' active-speaker detectors.  See the module docstring."""

    def __init__(self, emit: Callable[[Event], None], config: SpeakerConfig | None = None) -> None:
        self.config = config or SpeakerConfig()
        self._emit = emit
        self._detectors: dict[str, ActiveSpeakerDetector] = {}
        self._next_tick = 0.0

    def observe(self, session: PeerSession, up: UpTrack, packet: RtpPacket, now: float) -> None:
        """One audio packet of ``up`` (a :attr:`PeerSession.on_audio` callback)."""
        ext_id = up.extensions.get(ext.AUDIO_LEVEL)
        if ext_id is None:
            return
        value = packet.extensions.get(ext_id)
        room = session.room
        if value is None or up.identity in room.barred or (up.identity, "audio") in room.muted:
            return
        try:
            vad, level = ext.parse_audio_level(value)
        except ValueError:
            return
        detector = self._detectors.get(room.name)
        if detector is None:
            detector = self._detectors[room.name] = ActiveSpeakerDetector(self.config)
        detector.observe(up.identity, level, vad, now)

    def tick(
        self, sessions: Mapping[str, PeerSession], rooms: Mapping[str, Room], now: float
    ) -> None:
        """Re-evaluate every room at the detectors' interval; report changes."""
        if now < self._next_tick:
            return
        self._next_tick = now + self.config.interval
        for session in sessions.values():
            if session.on_audio is None:
                session.on_audio = self.observe
        for name in [n for n in self._detectors if n not in rooms]:
            del self._detectors[name]
        for name, detector in self._detectors.items():
            change = detector.tick(now)
            if change is not None:
                self._emit(Event("active_speaker", {"room": name, "identity": change.identity}))
