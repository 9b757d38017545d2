"""Events produced by :class:`interlive.rtmp.server.RtmpServerConnection`.

Frozen, slotted dataclasses in the h11 style: the connection appends them in
the order the peer's messages arrive and :meth:`next_event` hands them out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from .amf0 import AmfValue

__all__ = [
    "ConnectRequested",
    "MediaKind",
    "MediaMessage",
    "PlayRequested",
    "ProtocolError",
    "PublishRequested",
    "RtmpEvent",
    "StreamDeleted",
]


class MediaKind(enum.Enum):
    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """The client sent ``connect``; answer with ``accept_connect()`` or ``reject()``.

    ``app`` and ``tc_url`` are taken verbatim from the command object (ffmpeg
    puts only the first path segment in ``app``; see the package docstring).
    """

    app: str
    tc_url: str | None
    flash_ver: str | None = None
    object_encoding: int = 0
    properties: Mapping[str, AmfValue] = field(default_factory=dict)
    transaction_id: float = 1.0


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """``publish(stream_key, publish_type)``; answer ``accept_publish()`` or ``reject()``.

    ``stream_key`` is the publishing name verbatim, query string included.
    """

    stream_key: str
    publish_type: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class PlayRequested:
    """``play(stream_name, ...)``; answer ``accept_play()`` or ``reject()``."""

    stream_name: str
    stream_id: int
    start: float = -2.0
    duration: float = -1.0
    reset: bool = True


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """An audio, video or data message from a publisher.

    ``payload`` is the RTMP message body, i.e. an FLV tag body.  For data
    messages an ``@setDataFrame`` prefix is removed, so ``payload`` holds
    ``"onMetaData", {...}`` exactly as an FLV script tag stores it.
    """

    kind: MediaKind
    timestamp: int
    payload: bytes
    stream_id: int = 1


@dataclass(frozen=True, slots=True)
class StreamDeleted:
    """The client sent ``deleteStream``/``closeStream``: publishing or playing ended."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke the protocol; the connection is closed and sends nothing more."""

    reason: str


RtmpEvent = (
    ConnectRequested
    | PublishRequested
    | PlayRequested
    | MediaMessage
    | StreamDeleted
    | ProtocolError
)
