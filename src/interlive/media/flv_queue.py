"""One FLV player's bounded queue: where it starts, what a slow player loses, when it is cut off.

A live FLV stream (HTTP-FLV or RTMP play) fans out to many players; each gets
a :class:`PlayerQueue` between the shared tag source and its socket.  The
queue is sans-IO: the adapter :meth:`~PlayerQueue.offer`\\ s every tag, the
player's writer :meth:`~PlayerQueue.take`\\ s batches and reports them
:meth:`~PlayerQueue.delivered` once the socket took them.

Theory of operation
-------------------
*Start.*  A player starts at a keyframe: tags before the first video
keyframe are refused (``WAITING``); at the keyframe the queue takes the
stream's configuration tags (onMetaData, AAC and AVC sequence headers) and
then the keyframe, all rebased so the player's time line starts at 0.

*Positions.*  ``edge_ms`` is the newest tag offered, ``position_ms`` the newest
tag the socket took.  Their difference, the *lag*, is how far the player is
behind the live edge, counting what sits in this queue and what its writer
is still trying to write.

*GOP drop* (SRS's and nginx-rtmp's answer to a slow player).  When the queue
holds more than ``gop_drop_ms`` of media or ``gop_drop_bytes``, everything
before the newest keyframe in the queue is dropped; with no later keyframe
queued, all media is dropped and the queue skips until the next keyframe
arrives (``skipping``: the adapter asks the publisher for one).  Sequence
headers are never dropped, so a configuration change survives a drop.  The
player sees a jump in time and no broken picture.

*Disconnect.*  A player whose lag passes ``disconnect_ms`` (its socket has
not taken a tag for that much media: it is stuck, or slower than the stream
even after dropping), or whose queue passes ``max_bytes``, gets
``DISCONNECT``: the adapter closes it.  Memory per player is therefore
bounded by about ``gop_drop_bytes`` plus one frame, and by ``max_bytes`` in
any case.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from .flv import FlvTag, TagType
from .rtp_flv import is_sequence_header, is_video_keyframe

__all__ = ["PlayerQueue", "QueueLimits", "QueueStats", "Verdict"]


@dataclass(frozen=True, slots=True)
class QueueLimits:
    #: queued media (ms, newest minus oldest) beyond which the queue drops to a keyframe
    gop_drop_ms: int = 1000
    #: queued bytes beyond which the queue drops to a keyframe
    gop_drop_bytes: int = 1 << 20
    #: lag (ms of media the socket has not taken) beyond which the player is cut off
    disconnect_ms: int = 5000
    #: queued bytes beyond which the player is cut off at once
    max_bytes: int = 8 << 20


class Verdict(enum.Enum):
    """What :meth:`PlayerQueue.offer` did with a tag."""

    QUEUED = "queued"
    #: not started yet (no keyframe): the tag was not taken
    WAITING = "waiting"
    #: a tag or the queue's older media was dropped (GOP drop or skipping to a keyframe)
    DROPPED = "dropped"
    #: the player is too far behind: close it
    DISCONNECT = "disconnect"


@dataclass(slots=True)
class QueueStats:
    gop_drops: int = 0
    tags_dropped: int = 0
    bytes_dropped: int = 0
    tags_taken: int = 0
    bytes_taken: int = 0


def _size(tag: FlvTag) -> int:
    return len(tag.data) + 15  # tag header and PreviousTagSize


class PlayerQueue:
    """The queue and the slow-player policy of one player (see the module doc)."""

    __slots__ = (
        "_base",
        "_bytes",
        "_in_flight",
        "_queue",
        "edge_ms",
        "limits",
        "position_ms",
        "skipping",
        "started",
        "stats",
    )

    def __init__(self, limits: QueueLimits | None = None) -> None:
        self.limits = limits or QueueLimits()
        self._queue: deque[FlvTag] = deque()
        self._bytes = 0
        self._base = 0
        self._in_flight: int | None = None
        self.started = False
        self.skipping = False
        self.edge_ms = 0
        self.position_ms = 0
        self.stats = QueueStats()

    # --- state ----------------------------------------------------------------------------
    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def queued_tags(self) -> int:
        return len(self._queue)

    @property
    def lag_ms(self) -> int:
        """How far behind the live edge the socket is (ms of media)."""
        return self.edge_ms - self.position_ms

    def _span_ms(self) -> int:
        """Media queued: the live edge minus the oldest queued media tag (headers skipped)."""
        for tag in self._queue:
            if not is_sequence_header(tag):
                return self.edge_ms - tag.timestamp
        return 0

    # --- input ----------------------------------------------------------------------------
    def offer(self, tag: FlvTag, config: Sequence[FlvTag] = ()) -> Verdict:
        """A tag of the shared stream; ``config`` are the tags a player starts with.

        Returns what happened; on ``DISCONNECT`` the queue keeps its state and
        the adapter closes the player.
        """
        if not self.started:
            if not is_video_keyframe(tag):
                return Verdict.WAITING
            self.started = True
            self._base = tag.timestamp
            for c in config:
                self._append(FlvTag(c.tag_type, 0, c.data))
            self._append(FlvTag(tag.tag_type, 0, tag.data))
            return Verdict.QUEUED
        ts = tag.timestamp - self._base
        header = is_sequence_header(tag)
        if ts < 0:
            if tag.tag_type == TagType.AUDIO and not header:
                return Verdict.WAITING  # sampled before this player's first picture
            ts = 0
        rebased = FlvTag(tag.tag_type, ts, tag.data)
        verdict = Verdict.QUEUED
        if header:
            self._append(rebased)
        elif self.skipping and not is_video_keyframe(tag):
            self._dropped(rebased)
            verdict = Verdict.DROPPED
        else:
            self.skipping = False
            self._append(rebased)
        self.edge_ms = max(self.edge_ms, ts)
        limits = self.limits
        if self.lag_ms > limits.disconnect_ms or self._bytes > limits.max_bytes:
            return Verdict.DISCONNECT
        if self._bytes > limits.gop_drop_bytes or self._span_ms() > limits.gop_drop_ms:
            self._gop_drop()
            return Verdict.DROPPED
        return verdict

    def _append(self, tag: FlvTag) -> None:
        self._queue.append(tag)
        self._bytes += _size(tag)

    def _dropped(self, tag: FlvTag) -> None:
        self.stats.tags_dropped += 1
        self.stats.bytes_dropped += _size(tag)

    def _gop_drop(self) -> None:
        """Drop the media before the newest queued keyframe, or all of it and skip to the next."""
        self.stats.gop_drops += 1
        queue = list(self._queue)
        media = [i for i, t in enumerate(queue) if not is_sequence_header(t)]
        keyframes = [i for i in media if is_video_keyframe(queue[i])]
        cut = keyframes[-1] if keyframes and keyframes[-1] != media[0] else None
        kept: deque[FlvTag] = deque()
        self._bytes = 0
        for i, tag in enumerate(queue):
            if is_sequence_header(tag) or (cut is not None and i >= cut):
                kept.append(tag)
                self._bytes += _size(tag)
            else:
                self._dropped(tag)
        self._queue = kept
        self.skipping = cut is None

    # --- output ---------------------------------------------------------------------------
    def take(self, max_bytes: int = 256 * 1024) -> list[FlvTag]:
        """Tags to write now (at least one if any is queued, then up to ``max_bytes``)."""
        out: list[FlvTag] = []
        size = 0
        queue = self._queue
        while queue and (not out or size + _size(queue[0]) <= max_bytes):
            tag = queue.popleft()
            tag_size = _size(tag)
            size += tag_size
            self._bytes -= tag_size
            out.append(tag)
        if out:
            self.stats.tags_taken += len(out)
            self.stats.bytes_taken += size
            newest = max(t.timestamp for t in out)
            self._in_flight = newest if self._in_flight is None else max(self._in_flight, newest)
        return out

    def delivered(self) -> None:
        """The socket took everything handed out by :meth:`take` so far."""
        if self._in_flight is not None:
            self.position_ms = max(self.position_ms, self._in_flight)
            self._in_flight = None
