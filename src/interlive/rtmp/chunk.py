"""RTMP chunk stream: reader, writer and protocol control messages.

Implements RTMP 1.0 (Adobe, December 2012) §5.3 (chunking), §5.4 (protocol
control messages 1, 2, 3, 5 and 6) and §6.2 / §7.1.7 (User Control messages).

Theory of operation
-------------------
A chunk is ``basic header | message header | [extended timestamp] | data``.

* Basic header (§5.3.1.1): 2-bit ``fmt`` and a chunk stream id (csid) in one
  byte (csid 2-63), two bytes (64-319) or three bytes (64-65599).
* Message header (§5.3.1.2): type 0 carries an absolute timestamp, length,
  type id and message stream id; type 1 a timestamp delta, length and type id;
  type 2 only a delta; type 3 nothing.  Missing fields come from the previous
  header on the same chunk stream, which is why both sides keep per-csid state.
* Extended timestamp (§5.3.1.3): a 24-bit field of ``0xFFFFFF`` means the real
  value follows in 4 bytes.

**Type 3 starting a new message** reuses the previous timestamp *field*: the
new timestamp is the previous one plus the last field read on that chunk
stream (the delta, or after a type 0 header the absolute value).  That is what
ffmpeg and SRS do and is how their streams interoperate; :class:`ChunkWriter`
only emits such headers after a type 1/2 header with the same delta, where
every reading agrees.

**Extended timestamp on continuation chunks**: ffmpeg, OBS and Flash repeat
the 4-byte extended timestamp after the type 3 header of every continuation
chunk; some encoders do not.  The reader therefore consumes those 4 bytes only
if they equal the value from the message's first chunk (as SRS does), and the
writer always repeats them.

Nothing is committed until a whole chunk (header and data) is buffered, so
input may be split anywhere.  Memory is bounded by ``max_message_size`` (a
message header announcing more is a :class:`ChunkError` before any data is
buffered), by ``max_partial_bytes`` across the chunk streams with an unfinished
message, and by ``max_chunk_streams``.

Set Chunk Size and Abort change how the following bytes are parsed, so the
reader applies them itself as soon as they complete (and still returns them).
The other control messages are returned for the connection to act on;
:class:`AckWindow` does the acknowledgement accounting of §5.4.3/§5.4.4.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from .errors import ChunkError, LocalProtocolError

__all__ = [
    "CONTROL_CHUNK_STREAM",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_CHUNK_SIZE",
    "AckWindow",
    "ChunkReader",
    "ChunkWriter",
    "Message",
    "MessageType",
    "PeerBandwidthLimit",
    "UserControlEvent",
    "encode_acknowledgement",
    "encode_set_chunk_size",
    "encode_set_peer_bandwidth",
    "encode_user_control",
    "encode_window_ack_size",
    "parse_u32",
]

DEFAULT_CHUNK_SIZE: Final = 128
MAX_CHUNK_SIZE: Final = 0x7FFFFFFF
MAX_CHUNK_STREAM_ID: Final = 65599
CONTROL_CHUNK_STREAM: Final = 2
DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
MAX_MESSAGE_LENGTH: Final = 0xFFFFFF  # the 3-byte length field
_EXTENDED: Final = 0xFFFFFF
_MASK32: Final = 0xFFFFFFFF
_HEADER_SIZES: Final = (11, 7, 3, 0)
_U32 = struct.Struct("!I")
_LE32 = struct.Struct("<I")


class MessageType(enum.IntEnum):
    """RTMP message type ids (§5.4, §6.2, §7.1)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControlEvent(enum.IntEnum):
    """User Control event types (§7.1.7)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(enum.IntEnum):
    """Limit type of Set Peer Bandwidth (§5.4.5)."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


@dataclass(frozen=True, slots=True)
class Message:
    """One reassembled RTMP message."""

    chunk_stream_id: int
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


# ------------------------------------------------------------ control messages


def parse_u32(payload: bytes, what: str) -> int:
    """The 4-byte big-endian value of a control message (§5.4)."""
    if len(payload) < 4:
        raise ChunkError(f"{what} message of {len(payload)} bytes, need 4")
    value: int = _U32.unpack_from(payload)[0]
    return value


def encode_set_chunk_size(size: int) -> bytes:
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise LocalProtocolError(f"chunk size {size} outside 1..{MAX_CHUNK_SIZE}")
    return _U32.pack(size)


def encode_acknowledgement(sequence_number: int) -> bytes:
    return _U32.pack(sequence_number & _MASK32)


def encode_window_ack_size(size: int) -> bytes:
    return _U32.pack(size)


def encode_set_peer_bandwidth(size: int, limit: PeerBandwidthLimit) -> bytes:
    return _U32.pack(size) + bytes([limit])


def encode_user_control(event: UserControlEvent, *values: int) -> bytes:
    return struct.pack(f"!H{len(values)}I", event, *values)


def _parse_chunk_size(payload: bytes) -> int:
    value = parse_u32(payload, "Set Chunk Size")
    if value & 0x80000000:
        raise ChunkError(f"Set Chunk Size with the reserved top bit set (0x{value:08x})")
    if value == 0:
        raise ChunkError("Set Chunk Size of 0")
    return value


class AckWindow:
    """Acknowledgement accounting for received bytes (§5.4.3, §5.4.4).

    Once the peer announces a window with Window Acknowledgement Size, the
    receiver must send an Acknowledgement carrying the total byte count (mod
    2**32) each time that many bytes have arrived since the last one.
    """

    __slots__ = ("_last_ack", "received", "window")

    def __init__(self) -> None:
        self.window = 0
        self.received = 0
        self._last_ack = 0

    def on_bytes(self, count: int) -> int | None:
        """Count received bytes; return a sequence number to acknowledge, if due."""
        self.received += count
        if self.window and self.received - self._last_ack >= self.window:
            self._last_ack = self.received
            return self.received & _MASK32
        return None


# ---------------------------------------------------------------------- reader


class _InStream:
    __slots__ = (
        "buffer",
        "extended",
        "length",
        "stream_id",
        "timestamp",
        "ts_field",
        "type_id",
    )

    def __init__(self) -> None:
        self.timestamp = 0
        self.ts_field = 0
        self.extended = False
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.buffer: bytearray | None = None


class ChunkReader:
    """Reassembles messages from a received chunk stream.

    Feed bytes with :meth:`receive_data`; it returns the messages completed by
    them and raises :class:`ChunkError` on malformed input (after which the
    reader must be discarded).
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_partial_bytes: int | None = None,
        max_chunk_streams: int = 64,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_partial_bytes = (
            max_partial_bytes if max_partial_bytes is not None else 2 * max_message_size
        )
        self.max_chunk_streams = max_chunk_streams
        self.bytes_received = 0
        self._buf = bytearray()
        self._streams: dict[int, _InStream] = {}
        self._partial = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held: unparsed input plus unfinished messages."""
        return len(self._buf) + self._partial

    def receive_data(self, data: bytes) -> list[Message]:
        self.bytes_received += len(data)
        self._buf += data
        messages: list[Message] = []
        pos = 0
        try:
            while True:
                consumed = self._read_chunk(pos, messages)
                if consumed == 0:
                    break
                pos += consumed
        finally:
            del self._buf[:pos]
        return messages

    def _read_chunk(self, start: int, messages: list[Message]) -> int:
        """Parse one chunk at *start*; return its size, or 0 if incomplete."""
        buf = self._buf
        avail = len(buf) - start
        if avail < 1:
            return 0
        first = buf[start]
        fmt = first >> 6
        csid = first & 0x3F
        pos = start + 1
        if csid == 0:
            if avail < 2:
                return 0
            csid = 64 + buf[pos]
            pos += 1
        elif csid == 1:
            if avail < 3:
                return 0
            csid = 64 + buf[pos] + (buf[pos + 1] << 8)
            pos += 2

        state = self._streams.get(csid)
        if state is None:
            if fmt != 0:
                raise ChunkError(f"chunk stream {csid} starts with a type {fmt} header")
            if len(self._streams) >= self.max_chunk_streams:
                raise ChunkError(f"more than {self.max_chunk_streams} chunk streams in use")
        in_progress = state is not None and state.buffer is not None
        if in_progress and fmt != 3:
            raise ChunkError(
                f"type {fmt} header on chunk stream {csid} while a message is incomplete"
            )

        header_size = _HEADER_SIZES[fmt]
        if len(buf) - pos < header_size:
            return 0
        if fmt == 3:
            assert state is not None
            extended = state.extended
            field = state.ts_field
            length = state.length
            type_id = state.type_id
            stream_id = state.stream_id
        else:
            field = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if fmt <= 1:
                length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
                type_id = buf[pos + 6]
            else:
                assert state is not None
                length = state.length
                type_id = state.type_id
            if fmt == 0:
                stream_id = _LE32.unpack_from(buf, pos + 7)[0]
            else:
                assert state is not None
                stream_id = state.stream_id
            extended = field == _EXTENDED
        pos += header_size

        if extended:
            if len(buf) - pos < 4:
                return 0
            ext_value = _U32.unpack_from(buf, pos)[0]
            if fmt != 3 or not in_progress:
                field = ext_value
                pos += 4
            elif ext_value == field:
                pos += 4  # repeated on a continuation chunk (see module docstring)

        if in_progress:
            assert state is not None and state.buffer is not None
            have = len(state.buffer)
            timestamp = state.timestamp
        else:
            have = 0
            if length > self.max_message_size:
                raise ChunkError(
                    f"message of {length} bytes on chunk stream {csid} exceeds the "
                    f"maximum of {self.max_message_size}"
                )
            if fmt == 0:
                timestamp = field
            else:
                assert state is not None
                timestamp = (state.timestamp + field) & _MASK32

        size = min(self.chunk_size, length - have)
        if len(buf) - pos < size:
            return 0

        # The whole chunk is here: commit.
        if state is None:
            state = self._streams[csid] = _InStream()
        if not in_progress:
            state.timestamp = timestamp
            state.ts_field = field
            state.extended = extended
            state.length = length
            state.type_id = type_id
            state.stream_id = stream_id
            if length > size:
                state.buffer = bytearray()
        if state.buffer is None:  # single-chunk message
            payload = bytes(buf[pos : pos + size])
        else:
            state.buffer += buf[pos : pos + size]
            self._partial += size
            if self._partial > self.max_partial_bytes:
                raise ChunkError(
                    f"{self._partial} bytes of unfinished messages exceed the maximum of "
                    f"{self.max_partial_bytes}"
                )
            if len(state.buffer) < length:
                return pos + size - start
            payload = bytes(state.buffer)
            self._partial -= length
            state.buffer = None
        message = Message(csid, type_id, stream_id, timestamp, payload)
        self._apply_control(message)
        messages.append(message)
        return pos + size - start

    def _apply_control(self, message: Message) -> None:
        if message.type_id == MessageType.SET_CHUNK_SIZE:
            self.chunk_size = _parse_chunk_size(message.payload)
        elif message.type_id == MessageType.ABORT:
            csid = parse_u32(message.payload, "Abort")
            target = self._streams.get(csid)
            if target is not None and target.buffer is not None:
                self._partial -= len(target.buffer)
                target.buffer = None


# ---------------------------------------------------------------------- writer


class _OutStream:
    __slots__ = ("fmt", "length", "stream_id", "timestamp", "ts_field", "type_id")

    def __init__(self) -> None:
        self.fmt = 0
        self.timestamp = 0
        self.ts_field = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes([(fmt << 6) | csid])
    if 64 <= csid <= 319:
        return bytes([fmt << 6, csid - 64])
    if 320 <= csid <= MAX_CHUNK_STREAM_ID:
        rest = csid - 64
        return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])
    raise LocalProtocolError(f"chunk stream id {csid} outside 2..{MAX_CHUNK_STREAM_ID}")


class ChunkWriter:
    """Splits messages into chunks, compressing headers per chunk stream."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise LocalProtocolError(f"chunk size {chunk_size} outside 1..{MAX_CHUNK_SIZE}")
        self.chunk_size = chunk_size
        self._streams: dict[int, _OutStream] = {}

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message; chunks written afterwards use *size*."""
        data = self.write(
            CONTROL_CHUNK_STREAM, MessageType.SET_CHUNK_SIZE, 0, 0, encode_set_chunk_size(size)
        )
        self.chunk_size = size
        return data

    def write_control(self, type_id: MessageType, payload: bytes) -> bytes:
        """A protocol control or user control message on chunk stream 2, stream 0."""
        return self.write(CONTROL_CHUNK_STREAM, type_id, 0, 0, payload)

    def write(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes
    ) -> bytes:
        length = len(payload)
        if length > MAX_MESSAGE_LENGTH:
            raise LocalProtocolError(f"message of {length} bytes exceeds 2**24-1")
        if not 0 <= type_id <= 0xFF or not 0 <= stream_id <= _MASK32:
            raise LocalProtocolError("type id or message stream id out of range")
        timestamp &= _MASK32
        state = self._streams.get(csid)
        delta = 0
        if state is not None:
            delta = (timestamp - state.timestamp) & _MASK32
        if state is None or stream_id != state.stream_id or delta >= 0x80000000:
            fmt, field = 0, timestamp
        elif length != state.length or type_id != state.type_id:
            fmt, field = 1, delta
        elif state.fmt != 0 and delta == state.ts_field:
            fmt, field = 3, delta
        else:
            fmt, field = 2, delta
        header = _basic_header(fmt, csid)
        short = min(field, _EXTENDED)
        ext = _U32.pack(field) if field >= _EXTENDED else b""
        out = bytearray(header)
        if fmt <= 2:
            out += short.to_bytes(3, "big")
            if fmt <= 1:
                out += length.to_bytes(3, "big")
                out.append(type_id)
                if fmt == 0:
                    out += _LE32.pack(stream_id)
        out += ext
        size = self.chunk_size
        out += payload[:size]
        if length > size:
            continuation = _basic_header(3, csid) + ext
            for offset in range(size, length, size):
                out += continuation
                out += payload[offset : offset + size]

        if state is None:
            state = self._streams[csid] = _OutStream()
        state.fmt = fmt
        state.timestamp = timestamp
        state.ts_field = field
        state.length = length
        state.type_id = type_id
        state.stream_id = stream_id
        return bytes(out)
