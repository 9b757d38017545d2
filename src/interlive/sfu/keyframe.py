"""Keyframe request throttle, one per published video track.

Every subscriber that joins, switches layer or loses a reference wants a
keyframe; the publisher should see one request, not a storm. A request is sent
at once if none went out within ``interval``; otherwise it waits, and goes out
when the interval ends only if no keyframe arrived meanwhile.
"""

from __future__ import annotations


class KeyframeRequester:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last_sent: float | None = None
        self._pending = False
        self.requests_sent = 0
        self.requests_coalesced = 0

    def request(self, now: float) -> bool:
        """Someone wants a keyframe; True means send a PLI now."""
        if self._last_sent is None or now - self._last_sent >= self.interval:
            self._last_sent = now
            self._pending = False
            self.requests_sent += 1
            return True
        self._pending = True
        self.requests_coalesced += 1
        return False

    def on_keyframe(self) -> None:
        self._pending = False

    def get_timer(self) -> float | None:
        if self._pending and self._last_sent is not None:
            return self._last_sent + self.interval
        return None

    def poll(self, now: float) -> bool:
        """True when a deferred request is due and no keyframe has come since."""
        due = self.get_timer()
        if due is not None and now >= due:
            self._last_sent = now
            self._pending = False
            self.requests_sent += 1
            return True
        return False
