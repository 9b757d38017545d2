"""Sans-IO RTMP server connection (RTMP 1.0 spec §5, §7; Flash Media Server commands).

Driven like aioquic's ``QuicConnection``: the adapter passes received bytes to
:meth:`RtmpServerConnection.receive_data`, drains :meth:`data_to_send` to the
socket and handles every :meth:`next_event`; the application answers requests
with :meth:`accept_connect`, :meth:`accept_publish`, :meth:`accept_play` or
:meth:`reject`, feeds players with :meth:`send_media`, and ends a running
stream with an error status by :meth:`abort`.

Theory of operation
-------------------
::

    HANDSHAKE --C2--> AWAIT_CONNECT --connect--> CONNECT_PENDING
        --accept_connect()--> CONNECTED --createStream--> STREAM_CREATED
        --publish--> PUBLISH_PENDING --accept_publish()--> PUBLISHING
        --play-----> PLAY_PENDING ----accept_play()-----> PLAYING
    PUBLISHING/PLAYING/STREAM_CREATED --deleteStream--> CONNECTED
    any --protocol error, reject(), close()--> CLOSED

Which command is valid in which state is the table ``_COMMANDS``; a known
command in any other state is a protocol error (a :class:`ProtocolError` event,
then CLOSED).  Unknown commands (``_checkbw``, ``receiveVideo``...) are
ignored.  Media messages are valid only while PUBLISHING, on the published
stream.

While the application decides on a request (the ``*_PENDING`` states) further
messages are held, up to ``max_held_messages``/``max_held_bytes``, and replayed
once it answers: clients that pipeline ``createStream``/``publish`` behind
``connect`` or send media right behind ``publish`` then see their answers in
order.  Protocol control messages are handled at once in every state:
Set Chunk Size/Abort by :class:`ChunkReader`, Window Acknowledgement Size by
starting acknowledgements (:class:`AckWindow`), Acknowledgement by recording
how much the peer has read (:attr:`unacknowledged_bytes`, for backpressure),
and a User Control ping by a ping response.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl

from . import amf0
from .amf0 import UNDEFINED, AmfValue
from .chunk import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AckWindow,
    ChunkReader,
    ChunkWriter,
    Message,
    MessageType,
    PeerBandwidthLimit,
    UserControlEvent,
    encode_acknowledgement,
    encode_set_peer_bandwidth,
    encode_user_control,
    encode_window_ack_size,
    parse_u32,
)
from .errors import LocalProtocolError, RemoteProtocolError
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
from .handshake import HandshakeState, ServerHandshake

__all__ = ["ConnectionState", "RtmpServerConnection", "split_stream_name"]

CSID_COMMAND: Final = 3
CSID_STATUS: Final = 5
CSID_AUDIO: Final = 6
CSID_VIDEO: Final = 7
FMS_VERSION: Final = "FMS/3,0,1,123"
_SET_DATA_FRAME: Final = amf0.encode("@setDataFrame")
_CLEAR_DATA_FRAME: Final = amf0.encode("@clearDataFrame")


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "await connect"
    CONNECT_PENDING = "connect pending"
    CONNECTED = "connected"
    STREAM_CREATED = "stream created"
    PUBLISH_PENDING = "publish pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play pending"
    PLAYING = "playing"
    CLOSED = "closed"


_S = ConnectionState
_PENDING: Final = frozenset({_S.CONNECT_PENDING, _S.PUBLISH_PENDING, _S.PLAY_PENDING})
_AFTER_CONNECT: Final = frozenset({_S.CONNECTED, _S.STREAM_CREATED, _S.PUBLISHING, _S.PLAYING})

# command name -> states in which it is valid (everything else: ProtocolError)
_COMMANDS: Final[dict[str, frozenset[ConnectionState]]] = {
    "connect": frozenset({_S.AWAIT_CONNECT}),
    "releaseStream": frozenset({_S.CONNECTED, _S.STREAM_CREATED}),
    "FCPublish": frozenset({_S.CONNECTED, _S.STREAM_CREATED}),
    "FCSubscribe": frozenset({_S.CONNECTED, _S.STREAM_CREATED}),
    "createStream": frozenset({_S.CONNECTED}),
    "getStreamLength": _AFTER_CONNECT,
    "publish": frozenset({_S.STREAM_CREATED}),
    "play": frozenset({_S.STREAM_CREATED}),
    "FCUnpublish": _AFTER_CONNECT,
    "deleteStream": _AFTER_CONNECT,
    "closeStream": _AFTER_CONNECT,
}

_MEDIA_KINDS: Final = {
    MessageType.AUDIO: MediaKind.AUDIO,
    MessageType.VIDEO: MediaKind.VIDEO,
    MessageType.DATA_AMF0: MediaKind.DATA,
    MessageType.DATA_AMF3: MediaKind.DATA,
}
_KIND_OUT: Final = {
    MediaKind.AUDIO: (CSID_AUDIO, MessageType.AUDIO),
    MediaKind.VIDEO: (CSID_VIDEO, MessageType.VIDEO),
    MediaKind.DATA: (CSID_STATUS, MessageType.DATA_AMF0),
}


def split_stream_name(name: str) -> tuple[str, dict[str, str]]:
    """Split ``"room/alice?token=abc"`` into ``("room/alice", {"token": "abc"})``."""
    path, _, query = name.partition("?")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def _status(level: str, code: str, description: str, **extra: AmfValue) -> dict[str, AmfValue]:
    info: dict[str, AmfValue] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


class RtmpServerConnection:
    """One RTMP connection, server side, without I/O."""

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        chunk_size: int = 4096,
        window_ack_size: int = 2_500_000,
        max_held_messages: int = 256,
        max_held_bytes: int | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        epoch_ms: int = 0,
    ) -> None:
        self.state = ConnectionState.HANDSHAKE
        self._handshake = ServerHandshake(random_bytes=random_bytes, epoch_ms=epoch_ms)
        self._reader = ChunkReader(max_message_size=max_message_size)
        self._writer = ChunkWriter()
        self._out_chunk_size = chunk_size
        self._window_ack_size = window_ack_size
        self._ack = AckWindow()
        self._out = bytearray()
        self._events: deque[RtmpEvent] = deque()
        self._held: deque[Message] = deque()
        self._held_bytes = 0
        self._max_held_messages = max_held_messages
        self._max_held_bytes = (
            max_held_bytes if max_held_bytes is not None else 2 * max_message_size
        )
        self._pending_txn = 0.0
        self._next_stream_id = 1
        self.stream_id = 0
        self.stream_name: str | None = None
        self.app: str | None = None
        self.bytes_sent = 0
        self.peer_acknowledged = 0
        self.peer_window_ack_size = 0
        self.peer_bandwidth = 0

    # ----------------------------------------------------------- adapter API

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer."""
        if self.state is _S.CLOSED or not data:
            return
        try:
            if self.state is _S.HANDSHAKE:
                data = self._handshake.receive_data(data)
                self._out += self._handshake.data_to_send()
                if self._handshake.state is not HandshakeState.DONE:
                    return
                self.state = _S.AWAIT_CONNECT
                if not data:
                    return
            sequence = self._ack.on_bytes(len(data))
            if sequence is not None:
                self._send_control(MessageType.ACKNOWLEDGEMENT, encode_acknowledgement(sequence))
            for message in self._reader.receive_data(data):
                self._handle(message)
                if self.state is _S.CLOSED:
                    return
        except RemoteProtocolError as exc:
            self._fail(str(exc))

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket (possibly empty)."""
        out = bytes(self._out)
        self._out.clear()
        self.bytes_sent += len(out)
        return out

    def next_event(self) -> RtmpEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def unacknowledged_bytes(self) -> int:
        """Bytes sent that the peer has not acknowledged (meaningful once it acks)."""
        return (self.bytes_sent - self.peer_acknowledged) & 0xFFFFFFFF

    @property
    def buffered_bytes(self) -> int:
        """Memory held for this connection's input (reader plus held messages)."""
        return self._reader.buffered_bytes + self._held_bytes

    # ------------------------------------------------------- application API

    def accept_connect(self) -> None:
        self._require(_S.CONNECT_PENDING, "accept_connect")
        self._send_control(
            MessageType.WINDOW_ACK_SIZE, encode_window_ack_size(self._window_ack_size)
        )
        self._send_control(
            MessageType.SET_PEER_BANDWIDTH,
            encode_set_peer_bandwidth(self._window_ack_size, PeerBandwidthLimit.DYNAMIC),
        )
        self._out += self._writer.set_chunk_size(self._out_chunk_size)
        self._send_command(
            "_result",
            self._pending_txn,
            {"fmsVer": FMS_VERSION, "capabilities": 31, "mode": 1},
            _status(
                "status",
                "NetConnection.Connect.Success",
                "Connection succeeded.",
                objectEncoding=0,
            ),
        )
        self.state = _S.CONNECTED
        self._replay_held()

    def accept_publish(self) -> None:
        self._require(_S.PUBLISH_PENDING, "accept_publish")
        self._send_stream_begin()
        self._send_status(
            "status",
            "NetStream.Publish.Start",
            f"{self.stream_name} is now published.",
            details=self.stream_name,
        )
        self.state = _S.PUBLISHING
        self._replay_held()

    def accept_play(self) -> None:
        self._require(_S.PLAY_PENDING, "accept_play")
        self._send_stream_begin()
        name = self.stream_name
        self._send_status("status", "NetStream.Play.Reset", f"Playing and resetting {name}.")
        self._send_status("status", "NetStream.Play.Start", f"Started playing {name}.")
        self._send_data(amf0.encode_all("|RtmpSampleAccess", False, False))
        self._send_status("status", "NetStream.Data.Start", "Data start.")
        self.state = _S.PLAYING
        self._replay_held()

    def reject(self, reason: str) -> None:
        """Refuse the pending connect, publish or play, then close."""
        if self.state is _S.CONNECT_PENDING:
            self._send_command(
                "_error",
                self._pending_txn,
                None,
                _status("error", "NetConnection.Connect.Rejected", reason),
            )
        elif self.state is _S.PUBLISH_PENDING:
            self._send_status("error", "NetStream.Publish.BadName", reason)
        elif self.state is _S.PLAY_PENDING:
            self._send_status("error", "NetStream.Play.StreamNotFound", reason)
        else:
            raise LocalProtocolError(f"reject() with nothing pending (state {self.state.value})")
        self._close()

    def send_media(self, kind: MediaKind, timestamp: int, payload: bytes) -> None:
        """Send an audio/video/data message to a player (an FLV tag body)."""
        self._require(_S.PLAYING, "send_media")
        csid, type_id = _KIND_OUT[kind]
        self._out += self._writer.write(csid, type_id, self.stream_id, timestamp, payload)

    def abort(self, reason: str, code: str = "NetStream.Failed") -> None:
        """End the session with an error the client reports (e.g. an unsupported codec).

        A pending request is rejected (:meth:`reject`); on a created, publishing or
        playing stream an ``onStatus`` of level ``error`` with ``code`` and
        ``reason`` goes out first (ffmpeg prints it as ``Server error: reason``);
        otherwise the connection just closes.
        """
        if self.state in _PENDING:
            self.reject(reason)
            return
        if self.state in (_S.STREAM_CREATED, _S.PUBLISHING, _S.PLAYING):
            self._send_status("error", code, reason)
        self._close()

    def close(self) -> None:
        """End the session; a player is told the stream stopped first."""
        if self.state is _S.PLAYING:
            self._send_control(
                MessageType.USER_CONTROL,
                encode_user_control(UserControlEvent.STREAM_EOF, self.stream_id),
            )
            self._send_status(
                "status", "NetStream.Play.Stop", f"Stopped playing {self.stream_name}."
            )
        self._close()

    # -------------------------------------------------------------- internals

    def _require(self, state: ConnectionState, call: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"{call}() in state {self.state.value}")

    def _close(self) -> None:
        self.state = _S.CLOSED
        self._held.clear()
        self._held_bytes = 0

    def _fail(self, reason: str) -> None:
        self._events.append(ProtocolError(reason))
        self._close()

    def _send_control(self, type_id: MessageType, payload: bytes) -> None:
        self._out += self._writer.write_control(type_id, payload)

    def _send_command(self, name: str, txn: float, *args: AmfValue) -> None:
        payload = amf0.encode_all(name, txn, *args)
        self._out += self._writer.write(CSID_COMMAND, MessageType.COMMAND_AMF0, 0, 0, payload)

    def _send_status(self, level: str, code: str, description: str, **extra: AmfValue) -> None:
        payload = amf0.encode_all("onStatus", 0, None, _status(level, code, description, **extra))
        self._out += self._writer.write(
            CSID_STATUS, MessageType.COMMAND_AMF0, self.stream_id, 0, payload
        )

    def _send_data(self, payload: bytes) -> None:
        self._out += self._writer.write(
            CSID_STATUS, MessageType.DATA_AMF0, self.stream_id, 0, payload
        )

    def _send_stream_begin(self) -> None:
        self._send_control(
            MessageType.USER_CONTROL,
            encode_user_control(UserControlEvent.STREAM_BEGIN, self.stream_id),
        )

    def _replay_held(self) -> None:
        while self._held and self.state not in _PENDING and self.state is not _S.CLOSED:
            message = self._held.popleft()
            self._held_bytes -= len(message.payload)
            try:
                self._handle(message)
            except RemoteProtocolError as exc:  # the peer's fault, found on replay
                self._fail(str(exc))

    def _handle(self, message: Message) -> None:
        type_id = message.type_id
        if type_id <= MessageType.SET_PEER_BANDWIDTH:
            self._handle_control(message)
            return
        if self.state in _PENDING:
            self._held.append(message)
            self._held_bytes += len(message.payload)
            if len(self._held) > self._max_held_messages or self._held_bytes > self._max_held_bytes:
                raise RemoteProtocolError(
                    f"too many messages while {self.state.value} "
                    f"({len(self._held)} messages, {self._held_bytes} bytes)"
                )
            return
        if type_id == MessageType.COMMAND_AMF0:
            self._handle_command(message.payload, message.stream_id)
        elif type_id == MessageType.COMMAND_AMF3:
            # AMF3 command messages start with a format byte; 0 means AMF0 follows.
            if not message.payload or message.payload[0] != 0:
                raise RemoteProtocolError("AMF3-encoded command messages are not supported")
            self._handle_command(message.payload[1:], message.stream_id)
        elif type_id in _MEDIA_KINDS:
            self._handle_media(message)
        # Shared objects, aggregates and unknown types are ignored.

    def _handle_control(self, message: Message) -> None:
        type_id = message.type_id
        if type_id == MessageType.ACKNOWLEDGEMENT:
            self.peer_acknowledged = parse_u32(message.payload, "Acknowledgement")
        elif type_id == MessageType.WINDOW_ACK_SIZE:
            self.peer_window_ack_size = parse_u32(message.payload, "Window Acknowledgement Size")
            self._ack.window = self.peer_window_ack_size
        elif type_id == MessageType.SET_PEER_BANDWIDTH:
            self.peer_bandwidth = parse_u32(message.payload, "Set Peer Bandwidth")
        elif type_id == MessageType.USER_CONTROL:
            payload = message.payload
            if len(payload) < 2:
                raise RemoteProtocolError(f"User Control message of {len(payload)} bytes")
            event = int.from_bytes(payload[:2], "big")
            if event == UserControlEvent.PING_REQUEST:
                stamp = parse_u32(payload[2:], "Ping Request")
                self._send_control(
                    MessageType.USER_CONTROL,
                    encode_user_control(UserControlEvent.PING_RESPONSE, stamp),
                )
        # Set Chunk Size and Abort were applied by the reader.

    def _handle_command(self, payload: bytes, stream_id: int) -> None:
        values = amf0.decode_all(payload)
        if len(values) < 2 or not isinstance(values[0], str):
            raise RemoteProtocolError("command message without a name and transaction id")
        name, txn = values[0], values[1]
        if not amf0.is_finite_integer(txn):
            raise RemoteProtocolError(f"{name}: transaction id {txn!r} is not a number")
        assert isinstance(txn, int | float)
        allowed = _COMMANDS.get(name)
        if allowed is None:
            return  # unknown command: ignored
        if self.state not in allowed:
            raise RemoteProtocolError(f"{name} not allowed in state {self.state.value}")
        args = values[3:] if len(values) > 2 else []
        handler = getattr(self, "_cmd_" + name)
        handler(float(txn), values[2] if len(values) > 2 else None, args, stream_id)

    # --------------------------------------------------------------- commands

    def _cmd_connect(
        self, txn: float, command_object: AmfValue, args: list[AmfValue], stream_id: int
    ) -> None:
        if not isinstance(command_object, dict):
            raise RemoteProtocolError("connect without a command object")
        app = command_object.get("app")
        if not isinstance(app, str):
            raise RemoteProtocolError("connect without an app name")
        tc_url = command_object.get("tcUrl")
        flash_ver = command_object.get("flashVer")
        encoding = command_object.get("objectEncoding", 0)
        self.app = app
        self._pending_txn = txn
        self.state = _S.CONNECT_PENDING
        self._events.append(
            ConnectRequested(
                app=app,
                tc_url=tc_url if isinstance(tc_url, str) else None,
                flash_ver=flash_ver if isinstance(flash_ver, str) else None,
                object_encoding=(
                    int(encoding)
                    if isinstance(encoding, int | float) and amf0.is_finite_integer(encoding)
                    else 0
                ),
                properties=dict(command_object),
                transaction_id=txn,
            )
        )

    def _answer(self, txn: float, *args: AmfValue) -> None:
        if txn:
            self._send_command("_result", txn, *args)

    def _cmd_releaseStream(
        self, txn: float, _obj: AmfValue, args: list[AmfValue], stream_id: int
    ) -> None:
        self._answer(txn, None, UNDEFINED)

    def _cmd_FCPublish(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        name = args[0] if args and isinstance(args[0], str) else ""
        self._send_command(
            "onFCPublish", 0, None, {"code": "NetStream.Publish.Start", "description": name}
        )
        self._answer(txn, None, UNDEFINED)

    def _cmd_FCUnpublish(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        name = args[0] if args and isinstance(args[0], str) else ""
        self._send_command(
            "onFCUnpublish", 0, None, {"code": "NetStream.Unpublish.Success", "description": name}
        )
        self._answer(txn, None, UNDEFINED)

    def _cmd_FCSubscribe(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        name = args[0] if args and isinstance(args[0], str) else ""
        self._send_command(
            "onFCSubscribe", 0, None, {"code": "NetStream.Play.Start", "description": name}
        )

    def _cmd_getStreamLength(
        self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int
    ) -> None:
        self._answer(txn, None, 0)

    def _cmd_createStream(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        self.stream_id = self._next_stream_id
        self._next_stream_id += 1
        self._send_command("_result", txn, None, self.stream_id)
        self.state = _S.STREAM_CREATED

    def _stream_name(self, command: str, args: list[AmfValue], stream_id: int) -> str:
        if stream_id != self.stream_id:
            raise RemoteProtocolError(
                f"{command} on message stream {stream_id}, created stream is {self.stream_id}"
            )
        if not args or not isinstance(args[0], str):
            raise RemoteProtocolError(f"{command} without a stream name")
        return args[0]

    def _cmd_publish(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        name = self._stream_name("publish", args, sid)
        kind = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
        self.stream_name = name
        self.state = _S.PUBLISH_PENDING
        self._events.append(PublishRequested(name, kind, self.stream_id))

    def _cmd_play(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        name = self._stream_name("play", args, sid)

        def number(index: int, default: float) -> float:
            if len(args) > index and amf0.is_finite_integer(args[index]):
                value = args[index]
                assert isinstance(value, int | float)
                return float(value)
            return default

        reset = args[3] if len(args) > 3 and isinstance(args[3], bool) else True
        self.stream_name = name
        self.state = _S.PLAY_PENDING
        self._events.append(
            PlayRequested(name, self.stream_id, number(1, -2.0), number(2, -1.0), reset)
        )

    def _cmd_deleteStream(self, txn: float, _obj: AmfValue, args: list[AmfValue], sid: int) -> None:
        if self.state in (_S.STREAM_CREATED, _S.PUBLISHING, _S.PLAYING):
            self._events.append(StreamDeleted(self.stream_id))
            self.state = _S.CONNECTED
            self.stream_name = None

    _cmd_closeStream = _cmd_deleteStream

    # ------------------------------------------------------------------ media

    def _handle_media(self, message: Message) -> None:
        if self.state is not _S.PUBLISHING:
            raise RemoteProtocolError(
                f"media message (type {message.type_id}) in state {self.state.value}"
            )
        if message.stream_id != self.stream_id:
            raise RemoteProtocolError(
                f"media on message stream {message.stream_id}, published stream is {self.stream_id}"
            )
        kind = _MEDIA_KINDS[MessageType(message.type_id)]
        payload = message.payload
        if kind is MediaKind.DATA:
            if message.type_id == MessageType.DATA_AMF3:
                if not payload or payload[0] != 0:
                    raise RemoteProtocolError("AMF3-encoded data messages are not supported")
                payload = payload[1:]
            if payload.startswith(_CLEAR_DATA_FRAME):
                return
            if payload.startswith(_SET_DATA_FRAME):
                payload = payload[len(_SET_DATA_FRAME) :]
            values = amf0.decode_all(payload)  # validate; AmfError closes
            if not values or not isinstance(values[0], str):
                raise RemoteProtocolError("data message without a handler name")
        self._events.append(MediaMessage(kind, message.timestamp, payload, message.stream_id))
