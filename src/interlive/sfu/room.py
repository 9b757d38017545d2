"""A room on a media worker: its published tracks and who receives them.

The room knows tracks and subscriptions, not packets. A Subscription is a set
of down-track slots (a WHEP session's m-lines, later a participant's
transceivers) and a filter (one identity, or the whole stage). When a track is
published it fills a free slot of its kind; when it ends, the slot takes the
next unassigned track, through a source switch, so the subscriber's stream
continues without renegotiation.
"""

from __future__ import annotations

from interlive.sfu.tracks import DownTrack, UpTrack


class Subscription:
    def __init__(self, identity: str, slots: list[DownTrack], only: str | None = None) -> None:
        self.identity = identity
        self.slots = slots
        self.only = only

    def wants(self, up: UpTrack) -> bool:
        if up.identity == self.identity:
            return False  # never echo a participant's own media
        return self.only is None or up.identity == self.only

    def carried(self) -> set[UpTrack]:
        return {s.source for s in self.slots if s.source is not None}

    def fill(self, tracks: list[UpTrack], now: float) -> None:
        """Give every free slot the first wanted, not yet carried track it can take."""
        carried = self.carried()
        for slot in self.slots:
            if slot.source is not None:
                continue
            for up in tracks:
                if up not in carried and not up.closed and self.wants(up) and slot.accepts(up):
                    slot.attach(up, now)
                    carried.add(up)
                    break


class Room:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tracks: list[UpTrack] = []
        self.subscriptions: list[Subscription] = []

    def publish(self, up: UpTrack, now: float) -> None:
        self.tracks.append(up)
        for sub in self.subscriptions:
            sub.fill(self.tracks, now)

    def unpublish(self, up: UpTrack, now: float) -> None:
        """The track ended: its slots switch to another track, or say goodbye (RTCP BYE)."""
        if up in self.tracks:
            self.tracks.remove(up)
        orphaned = list(up.downtracks)
        up.close()
        for sub in self.subscriptions:
            sub.fill(self.tracks, now)
        for down in orphaned:
            if down.source is None:
                down.say_goodbye()

    def subscribe(self, sub: Subscription, now: float) -> None:
        self.subscriptions.append(sub)
        sub.fill(self.tracks, now)

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        for slot in sub.slots:
            slot.detach()

    @property
    def empty(self) -> bool:
        return not self.tracks and not self.subscriptions
