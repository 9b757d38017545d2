"""A scripted RTMP client for tests: handshake bytes, command messages, reply decoding."""

from __future__ import annotations

from interlive.rtmp import amf0
from interlive.rtmp.amf0 import AmfValue
from interlive.rtmp.chunk import ChunkReader, ChunkWriter, Message, MessageType
from interlive.rtmp.events import RtmpEvent
from interlive.rtmp.handshake import HANDSHAKE_SIZE
from interlive.rtmp.server import RtmpServerConnection

C0C1 = b"\x03" + bytes(HANDSHAKE_SIZE)
C2 = bytes(HANDSHAKE_SIZE)


class ScriptedClient:
    def __init__(self, server: RtmpServerConnection | None = None) -> None:
        self.server = server or RtmpServerConnection(random_bytes=bytes)
        self.writer = ChunkWriter()
        self.reader = ChunkReader()
        self._skip = 1 + 2 * HANDSHAKE_SIZE

    def handshake(self) -> None:
        self.server.receive_data(C0C1)
        self.server.receive_data(C2)

    def send(self, data: bytes) -> None:
        self.server.receive_data(data)

    def command(self, name: str, txn: float, *args: AmfValue, stream_id: int = 0) -> None:
        payload = amf0.encode_all(name, txn, *args)
        self.send(self.writer.write(3, MessageType.COMMAND_AMF0, stream_id, 0, payload))

    def media(self, type_id: int, timestamp: int, payload: bytes, stream_id: int = 1) -> None:
        self.send(self.writer.write(6, type_id, stream_id, timestamp, payload))

    def events(self) -> list[RtmpEvent]:
        out = []
        while (event := self.server.next_event()) is not None:
            out.append(event)
        return out

    def replies(self) -> list[Message]:
        data = self.server.data_to_send()
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            data = data[cut:]
        return self.reader.receive_data(data)

    def commands(self) -> list[list[AmfValue]]:
        return [
            amf0.decode_all(m.payload)
            for m in self.replies()
            if m.type_id in (MessageType.COMMAND_AMF0, MessageType.DATA_AMF0)
        ]
