"""Sans-IO RTMP protocol core: AMF0, handshake, chunk stream and server connection.

Layers, each usable alone:

* :mod:`.amf0` — AMF0 values (commands, ``onMetaData``);
* :mod:`.handshake` — server side of the simple handshake (§5.2);
* :mod:`.chunk` — chunk stream reader/writer and control messages (§5.3, §5.4);
* :mod:`.server` — :class:`RtmpServerConnection`, the command state machine
  producing :mod:`.events`.

No sockets, no asyncio, no clock: the asyncio adapter feeds bytes and drains
bytes and events.

What clients send for a URL: ffmpeg (5.1) splits
``rtmp://HOST:PORT/live/room/alice?token=abc`` at the *last* slash, for
publish and play alike: ``connect`` has app ``live/room`` and tcUrl
``rtmp://HOST:PORT/live/room`` (no query), and ``publish``/``play`` get
``alice?token=abc`` (the query stays on the stream name; see
:func:`split_stream_name`).  OBS/librtmp have not been recorded here and may
split differently, so the application should route on ``app + "/" + name``
rather than on either part alone.
"""

from .errors import (
    AmfError,
    ChunkError,
    HandshakeError,
    LocalProtocolError,
    RemoteProtocolError,
    RtmpError,
)
from .events import (
    ConnectRequested,
    MediaKind,
    MediaMessage,
    PlayRequested,
    ProtocolError,
    PublishRequested,
    RtmpEvent,
    StreamDeleted,
)
from .server import ConnectionState, RtmpServerConnection, split_stream_name

__all__ = [
    "AmfError",
    "ChunkError",
    "ConnectRequested",
    "ConnectionState",
    "HandshakeError",
    "LocalProtocolError",
    "MediaKind",
    "MediaMessage",
    "PlayRequested",
    "ProtocolError",
    "PublishRequested",
    "RemoteProtocolError",
    "RtmpError",
    "RtmpEvent",
    "RtmpServerConnection",
    "StreamDeleted",
    "split_stream_name",
]
