"""Server side of the RTMP simple handshake (RTMP 1.0 spec, §5.2).

Theory of operation
-------------------
::

    client                          server
    C0 (1 byte: version 3)   --->
    C1 (1536 bytes)          --->
                             <---   S0 (version 3) + S1 (1536) + S2 (echo of C1)
    C2 (1536 bytes)          --->
                                    handshake done; chunk stream starts

The server answers as soon as C0 and C1 are complete, without waiting for C2
(clients send C2 only after reading S1).  S1 is ``time (4) | zero (4) |
random (1528)``; the zero version field tells clients such as ffmpeg and
librtmp that this server does not do the digest ("complex") handshake, so they
neither send nor check digests.  S2 echoes C1's time and random bytes with the
time C1 was read in the second field, as §5.2.4 describes.  C2 is read but not
compared with S1: Flash-era clients put a digest there instead of an echo.

Bytes received after C2 belong to the chunk stream and are returned to the
caller by :meth:`ServerHandshake.receive_data`.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable
from typing import Final

from .errors import HandshakeError, LocalProtocolError

__all__ = ["HANDSHAKE_SIZE", "RTMP_VERSION", "HandshakeState", "ServerHandshake"]

RTMP_VERSION: Final = 3
HANDSHAKE_SIZE: Final = 1536
_TIMES = struct.Struct("!II")


class HandshakeState(enum.Enum):
    AWAIT_C0C1 = "await C0+C1"
    AWAIT_C2 = "await C2"
    DONE = "done"


class ServerHandshake:
    """Sans-IO server handshake: feed received bytes, drain bytes to send.

    ``random_bytes`` and ``now_ms`` are injectable so tests are deterministic.
    """

    def __init__(
        self,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        epoch_ms: int = 0,
    ) -> None:
        self.state = HandshakeState.AWAIT_C0C1
        self._random = random_bytes
        self._epoch = epoch_ms & 0xFFFFFFFF
        self._buffer = bytearray()
        self._out = bytearray()
        self.client_c1: bytes | None = None
        self.client_c2: bytes | None = None
        self.s1: bytes | None = None

    def receive_data(self, data: bytes, now_ms: int = 0) -> bytes:
        """Consume handshake bytes; return any bytes that follow C2.

        Raises :class:`HandshakeError` for a version other than 3.
        """
        if self.state is HandshakeState.DONE:
            return bytes(data)
        self._buffer += data
        if self.state is HandshakeState.AWAIT_C0C1:
            if self._buffer and self._buffer[0] != RTMP_VERSION:
                raise HandshakeError(
                    f"unsupported RTMP version {self._buffer[0]} in C0 (only 3 is supported"
                    + (
                        "; RTMPE/encrypted handshakes are not)"
                        if self._buffer[0] in (6, 8, 9)
                        else ")"
                    )
                )
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            self.client_c1 = c1
            random = self._random(HANDSHAKE_SIZE - 8)
            if len(random) != HANDSHAKE_SIZE - 8:
                raise LocalProtocolError("random_bytes returned the wrong length")
            self.s1 = _TIMES.pack(self._epoch, 0) + random
            (c1_time,) = struct.unpack_from("!I", c1)
            s2 = _TIMES.pack(c1_time, now_ms & 0xFFFFFFFF) + c1[8:]
            self._out += bytes([RTMP_VERSION]) + self.s1 + s2
            self.state = HandshakeState.AWAIT_C2
        if self.state is HandshakeState.AWAIT_C2:
            if len(self._buffer) < HANDSHAKE_SIZE:
                return b""
            self.client_c2 = bytes(self._buffer[:HANDSHAKE_SIZE])
            rest = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer.clear()
            self.state = HandshakeState.DONE
            return rest
        return b""  # pragma: no cover - every state is handled above

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def c2_echoes_s1(self) -> bool:
        """Whether C2 was a plain echo of S1 (simple handshake clients do this)."""
        return (
            self.client_c2 is not None and self.s1 is not None and self.client_c2[8:] == self.s1[8:]
        )
