"""Pinned slots: a subscription whose every slot carries one chosen track, or nothing.

A WHEP :class:`~interlive.sfu.room.Subscription` lets any free slot take the next
track of its kind.  A participant's single peer connection (signaling ``/ws``)
instead has one m-line per stage track, announced in SDP with that track's
identity (``a=msid``), so each slot must carry exactly the track it was
negotiated for: :class:`PinnedSubscription` maps slots to tracks.  The room
drives it like any subscription (``fill`` on every publish, release, subscribe);
a pinned track that ends or is held leaves its slot empty (the room sends RTCP
BYE) until renegotiation pins the slot to another track or makes it inactive.
"""

from __future__ import annotations

from interlive.sfu.room import Subscription
from interlive.sfu.tracks import DownTrack, UpTrack

__all__ = ["PinnedSubscription"]


class PinnedSubscription(Subscription):
    """Slots bound to tracks: ``pins[slot]`` is the one track ``slot`` may carry."""

    def __init__(self, identity: str) -> None:
        super().__init__(identity, [])
        self.pins: dict[DownTrack, UpTrack | None] = {}

    def add_slot(self, slot: DownTrack) -> None:
        if slot not in self.pins:
            self.slots.append(slot)
            self.pins[slot] = None

    def pin(self, slot: DownTrack, up: UpTrack | None) -> bool:
        """Bind ``slot`` to ``up`` (``None``: to nothing); True if its source was dropped.

        A slot carrying another track is detached at once; the caller then says
        goodbye on it (RTCP BYE) and lets the room fill it again.
        """
        self.pins[slot] = up
        if slot.source is not None and slot.source is not up:
            slot.detach()
            return True
        return False

    def fill(self, tracks: list[UpTrack], now: float) -> None:
        """Give every empty slot its pinned track, if that track is in ``tracks``."""
        available: set[UpTrack] | None = None
        for slot, up in self.pins.items():
            if up is None or slot.source is not None or up.closed:
                continue
            if available is None:
                available = set(tracks)
            if up in available and self.wants(up) and slot.accepts(up):
                slot.attach(up, now)
