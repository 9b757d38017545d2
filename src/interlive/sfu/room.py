"""A room on a media worker: its published tracks and who receives them.

The room knows tracks and subscriptions, not packets. A Subscription is a set
of down-track slots (a WHEP session's m-lines, later a participant's
transceivers) and a filter (one identity, or the whole stage). When a track is
published it fills a free slot of its kind; when it ends, the slot takes the
next unassigned track, through a source switch, so the subscriber's stream
continues without renegotiation.

The stage's decisions reach the SFU here, keyed by identity (the control
process decides, the room applies):

- *Held* (demoted): an identity in :attr:`Room.barred` has its tracks taken out
  of the fan-out and kept aside in :attr:`Room.held`. Its session still
  receives them (RTCP, NACK and statistics go on, so the publisher stays
  healthy) but nothing is forwarded, and tracks it starts later are held too.
  Viewers' slots switch to another track or get an RTCP BYE, exactly as when a
  publisher leaves. :meth:`Room.release` (promoted again) puts them back.
- *Muted*: for an ``(identity, kind)`` in :attr:`Room.muted`, every slot
  carrying such a track has its forwarder paused: the slot stays assigned and
  its numbering stays contiguous, packets are dropped (``paused``), and on
  unmute video restarts at the next keyframe (requested at once).
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
        #: identities that may not publish now (demoted): their tracks are held
        self.barred: set[str] = set()
        #: tracks of barred identities: received by their session, forwarded to nobody
        self.held: list[UpTrack] = []
        #: (identity, kind) whose tracks reach no one (muted by the stage)
        self.muted: set[tuple[str, str]] = set()
        #: slots this room paused for a mute (and so may resume)
        self._mute_paused: set[DownTrack] = set()

    def publish(self, up: UpTrack, now: float) -> None:
        if up.identity in self.barred:
            self.held.append(up)
            return
        self.tracks.append(up)
        self._fill(now)

    def unpublish(self, up: UpTrack, now: float) -> None:
        """The track ended: its slots switch to another track, or say goodbye (RTCP BYE)."""
        if up in self.held:
            self.held.remove(up)
            up.close()
            return
        if up in self.tracks:
            self.tracks.remove(up)
        orphaned = list(up.downtracks)
        up.close()
        self._fill(now)
        self._goodbye(orphaned)

    def subscribe(self, sub: Subscription, now: float) -> None:
        self.subscriptions.append(sub)
        sub.fill(self.tracks, now)
        self._sync_mute(sub.slots)

    def refill(self, sub: Subscription, now: float) -> None:
        """Fill ``sub``'s empty slots again: its slots, or what they may carry, changed."""
        sub.fill(self.tracks, now)
        self._sync_mute(sub.slots)

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        for slot in sub.slots:
            slot.detach()
            self._mute_paused.discard(slot)

    @property
    def empty(self) -> bool:
        return not self.tracks and not self.held and not self.subscriptions

    # --- the stage's decisions ---------------------------------------------------
    def hold(self, identity: str, now: float) -> int:
        """Stop forwarding ``identity``'s tracks, now and later; returns how many stopped."""
        self.barred.add(identity)
        moving = [up for up in self.tracks if up.identity == identity]
        orphaned: list[DownTrack] = []
        for up in moving:
            self.tracks.remove(up)
            orphaned += up.downtracks
            for down in list(up.downtracks):
                down.detach()
            self.held.append(up)
        if moving:
            self._fill(now)
            self._goodbye(orphaned)
        return len(moving)

    def release(self, identity: str, now: float) -> int:
        """Forward ``identity``'s held tracks again; returns how many came back."""
        self.barred.discard(identity)
        back = [up for up in self.held if up.identity == identity]
        for up in back:
            self.held.remove(up)
            self.tracks.append(up)
        if back:
            self._fill(now)
        return len(back)

    def set_muted(self, identity: str, kind: str, muted: bool, now: float) -> int:
        """Mute or unmute ``identity``'s tracks of ``kind``; returns the tracks affected."""
        key = (identity, kind)
        if muted:
            self.muted.add(key)
        else:
            self.muted.discard(key)
        affected = [up for up in self.tracks if up.identity == identity and up.kind == kind]
        for up in affected:
            self._sync_mute(up.downtracks)
            if not muted and up.downtracks:
                up.request_keyframe(now)  # viewers restart on a keyframe
        return len(affected)

    def forget(self, identity: str, now: float) -> None:
        """``identity`` left the stage's room: drop whatever the stage had decided for it."""
        for kind in [k for i, k in self.muted if i == identity]:
            self.set_muted(identity, kind, False, now)
        self.release(identity, now)

    # --- helpers -------------------------------------------------------------------
    def _fill(self, now: float) -> None:
        for sub in self.subscriptions:
            sub.fill(self.tracks, now)
            self._sync_mute(sub.slots)

    def _sync_mute(self, slots: list[DownTrack]) -> None:
        """Pause the slots whose source is muted; resume those it paused and are not."""
        muted, paused = self.muted, self._mute_paused
        if not muted and not paused:
            return
        for slot in slots:
            source = slot.source
            if source is not None and (source.identity, source.kind) in muted:
                if slot not in paused:
                    paused.add(slot)
                    slot.forwarder.pause()
            elif slot in paused:
                paused.discard(slot)
                slot.forwarder.resume()

    @staticmethod
    def _goodbye(orphaned: list[DownTrack]) -> None:
        for down in orphaned:
            if down.source is None:
                down.say_goodbye()
