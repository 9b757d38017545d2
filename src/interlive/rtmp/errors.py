"""Errors raised by the RTMP protocol core.

Modelled on h11's split between the two sides of a conversation:

* :class:`RemoteProtocolError` — the peer sent bytes that break the protocol
  (malformed handshake, chunk or AMF data, an oversized message, a command out
  of order).  :class:`RtmpServerConnection` turns these into a
  :class:`~interlive.rtmp.events.ProtocolError` event and closes; the parsers
  raise them directly.
* :class:`LocalProtocolError` — the application called the API at the wrong
  time (``accept_publish()`` before any ``publish``), a bug on our side.

All are :class:`ValueError` subclasses so an adapter can count and drop a bad
connection with one ``except``.
"""

from __future__ import annotations

__all__ = [
    "AmfError",
    "ChunkError",
    "HandshakeError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RtmpError",
]


class RtmpError(ValueError):
    """Base class of every error raised by :mod:`interlive.rtmp`."""


class RemoteProtocolError(RtmpError):
    """The peer violated the protocol."""


class LocalProtocolError(RtmpError):
    """The local application used the API in a state that does not allow it."""


class AmfError(RemoteProtocolError):
    """Malformed or unsupported AMF0 data, or a value AMF0 cannot encode."""


class HandshakeError(RemoteProtocolError):
    """A malformed RTMP handshake (RTMP spec §5.2)."""


class ChunkError(RemoteProtocolError):
    """A malformed chunk stream (RTMP spec §5.3) or an oversized message."""
