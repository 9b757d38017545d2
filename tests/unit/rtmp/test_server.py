"""RtmpServerConnection: command state machine, answers, errors."""

from __future__ import annotations

import pytest

from interlive.rtmp import amf0
from interlive.rtmp.amf0 import UNDEFINED, AmfValue
from interlive.rtmp.chunk import MessageType, UserControlEvent
from interlive.rtmp.errors import LocalProtocolError
from interlive.rtmp.events import (
    ConnectRequested,
    MediaKind,
    MediaMessage,
    PlayRequested,
    ProtocolError,
    PublishRequested,
    StreamDeleted,
)
from interlive.rtmp.server import ConnectionState, RtmpServerConnection, split_stream_name

from ._client import ScriptedClient

CONNECT_OBJ: dict[str, AmfValue] = {"app": "live", "tcUrl": "rtmp://h/live", "flashVer": "FMLE/3.0"}


def _connected() -> ScriptedClient:
    client = ScriptedClient()
    client.handshake()
    client.command("connect", 1, CONNECT_OBJ)
    assert client.events() == [
        ConnectRequested("live", "rtmp://h/live", "FMLE/3.0", 0, CONNECT_OBJ, 1.0)
    ]
    client.server.accept_connect()
    return client


def _publishing() -> ScriptedClient:
    client = _connected()
    client.command("createStream", 2, None)
    client.command("publish", 3, None, "alice", "live", stream_id=1)
    assert client.events() == [PublishRequested("alice", "live", 1)]
    client.server.accept_publish()
    return client


def test_connect_result() -> None:
    client = _connected()
    replies = client.replies()
    controls = [(m.type_id, m.payload) for m in replies[:3]]
    assert controls == [
        (MessageType.WINDOW_ACK_SIZE, (2_500_000).to_bytes(4, "big")),
        (MessageType.SET_PEER_BANDWIDTH, (2_500_000).to_bytes(4, "big") + b"\x02"),
        (MessageType.SET_CHUNK_SIZE, (4096).to_bytes(4, "big")),
    ]
    name, txn, props, info = amf0.decode_all(replies[3].payload)
    assert (name, txn) == ("_result", 1.0)
    assert isinstance(props, dict) and props["fmsVer"] == "FMS/3,0,1,123"
    assert props["capabilities"] == 31.0
    assert isinstance(info, dict) and info["code"] == "NetConnection.Connect.Success"
    assert client.server.state is ConnectionState.CONNECTED


def test_obs_publish_sequence() -> None:
    client = _connected()
    client.replies()
    client.command("releaseStream", 2, None, "key")
    client.command("FCPublish", 3, None, "key")
    client.command("createStream", 4, None)
    assert client.commands() == [
        ["_result", 2.0, None, UNDEFINED],
        ["onFCPublish", 0.0, None, {"code": "NetStream.Publish.Start", "description": "key"}],
        ["_result", 3.0, None, UNDEFINED],
        ["_result", 4.0, None, 1.0],
    ]
    client.command("publish", 5, None, "key", "live", stream_id=1)
    assert client.events() == [PublishRequested("key", "live", 1)]
    client.server.accept_publish()
    replies = client.replies()
    assert replies[0].type_id == MessageType.USER_CONTROL
    assert replies[0].payload == b"\x00\x00\x00\x00\x00\x01"  # StreamBegin 1
    status = amf0.decode_all(replies[1].payload)
    assert status[0] == "onStatus" and replies[1].stream_id == 1
    assert isinstance(status[3], dict) and status[3]["code"] == "NetStream.Publish.Start"

    meta = amf0.encode_all("@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0))
    client.media(MessageType.DATA_AMF0, 0, meta)
    client.media(MessageType.VIDEO, 0, b"\x17\x00\x00\x00\x00")
    client.media(MessageType.AUDIO, 23, b"\xaf\x00\x12\x10")
    assert client.events() == [
        MediaMessage(MediaKind.DATA, 0, meta[16:], 1),
        MediaMessage(MediaKind.VIDEO, 0, b"\x17\x00\x00\x00\x00", 1),
        MediaMessage(MediaKind.AUDIO, 23, b"\xaf\x00\x12\x10", 1),
    ]
    client.command("FCUnpublish", 6, None, "key")
    client.command("deleteStream", 7, None, 1.0)
    assert client.events() == [StreamDeleted(1)]
    assert client.server.state is ConnectionState.CONNECTED


def test_pipelined_commands_are_held_until_accept() -> None:
    client = ScriptedClient()
    client.handshake()
    client.command("connect", 1, CONNECT_OBJ)
    client.command("createStream", 2, None)
    client.command("publish", 3, None, "k", stream_id=1)
    client.media(MessageType.VIDEO, 0, b"\x17\x00")
    assert [type(e) for e in client.events()] == [ConnectRequested]
    client.server.accept_connect()
    assert client.events() == [PublishRequested("k", "live", 1)]
    client.server.accept_publish()
    assert client.events() == [MediaMessage(MediaKind.VIDEO, 0, b"\x17\x00", 1)]
    names = [c[0] for c in client.commands()]
    assert names == ["_result", "_result", "onStatus"]


def test_held_messages_are_bounded() -> None:
    client = ScriptedClient(RtmpServerConnection(random_bytes=bytes, max_held_messages=3))
    client.handshake()
    client.command("connect", 1, CONNECT_OBJ)
    for txn in range(4):
        client.command("getStreamLength", txn, None)
    assert isinstance(client.events()[-1], ProtocolError)
    assert client.server.state is ConnectionState.CLOSED


def test_play() -> None:
    client = _connected()
    client.command("createStream", 2, None)
    client.replies()
    client.command("play", 3, None, "room/bob", -2000, stream_id=1)
    assert client.events() == [PlayRequested("room/bob", 1, -2000.0, -1.0, True)]
    client.server.accept_play()
    codes = [c[3]["code"] for c in client.commands() if c[0] == "onStatus"]  # type: ignore[index,call-overload]
    assert codes == ["NetStream.Play.Reset", "NetStream.Play.Start", "NetStream.Data.Start"]
    client.server.send_media(MediaKind.VIDEO, 0, b"\x17\x00\x00\x00\x00")
    client.server.send_media(MediaKind.AUDIO, 5, b"\xaf\x00")
    got = [(m.type_id, m.stream_id, m.timestamp, m.payload) for m in client.replies()]
    assert got == [(9, 1, 0, b"\x17\x00\x00\x00\x00"), (8, 1, 5, b"\xaf\x00")]
    client.server.close()
    replies = client.replies()
    assert replies[0].payload == b"\x00\x01\x00\x00\x00\x01"  # StreamEOF 1
    assert client.server.state is ConnectionState.CLOSED


@pytest.mark.parametrize(
    ("setup", "code"),
    [("connect", "NetConnection.Connect.Rejected"), ("publish", "NetStream.Publish.BadName")],
)
def test_reject(setup: str, code: str) -> None:
    client = ScriptedClient()
    client.handshake()
    client.command("connect", 1, CONNECT_OBJ)
    if setup == "publish":
        client.server.accept_connect()
        client.command("createStream", 2, None)
        client.command("publish", 3, None, "bad", stream_id=1)
    client.replies()
    client.events()
    client.server.reject("no such key")
    last = client.commands()[-1]
    assert last[0] == ("_error" if setup == "connect" else "onStatus")
    assert isinstance(last[3], dict) and last[3]["code"] == code
    assert last[3]["description"] == "no such key"
    assert client.server.state is ConnectionState.CLOSED
    client.command("createStream", 9, None)  # ignored once closed
    assert client.events() == []


@pytest.mark.parametrize(
    "script",
    [
        [("createStream", 1, None)],
        [("connect", 1, CONNECT_OBJ), ("connect", 2, CONNECT_OBJ)],
        [("connect", 1, CONNECT_OBJ), ("publish", 2, None, "k")],
        [("connect", 1, CONNECT_OBJ), ("createStream", 2, None), ("createStream", 3, None)],
        [("connect", 1, "not an object")],
        [("connect", 1, {"tcUrl": "x"})],
    ],
)
def test_out_of_order_is_protocol_error(script: list[tuple[object, ...]]) -> None:
    client = ScriptedClient()
    client.handshake()
    for name, txn, *args in script:
        client.command(name, txn, *args)  # type: ignore[arg-type]
        if client.server.state is ConnectionState.CONNECT_PENDING:
            client.server.accept_connect()
    events = client.events()
    assert isinstance(events[-1], ProtocolError)
    assert client.server.state is ConnectionState.CLOSED


def test_media_before_publish_is_protocol_error() -> None:
    client = _connected()
    client.media(MessageType.VIDEO, 0, b"\x17")
    (event,) = client.events()
    assert isinstance(event, ProtocolError) and "media message" in event.reason


def test_media_on_wrong_stream() -> None:
    client = _publishing()
    client.media(MessageType.AUDIO, 0, b"\xaf", stream_id=7)
    assert isinstance(client.events()[-1], ProtocolError)


def test_unknown_commands_ignored() -> None:
    client = _connected()
    client.command("_checkbw", 5, None)
    assert client.events() == []
    assert client.server.state is ConnectionState.CONNECTED


def test_local_misuse_raises() -> None:
    client = _connected()
    with pytest.raises(LocalProtocolError):
        client.server.accept_publish()
    with pytest.raises(LocalProtocolError):
        client.server.send_media(MediaKind.AUDIO, 0, b"")
    with pytest.raises(LocalProtocolError):
        client.server.reject("x")


def test_acknowledgements_and_ping() -> None:
    client = _publishing()
    client.replies()
    client.send(client.writer.write_control(MessageType.WINDOW_ACK_SIZE, (5000).to_bytes(4, "big")))
    for ts in range(0, 200, 20):
        client.media(MessageType.VIDEO, ts, bytes(1000))
    acks = [m for m in client.replies() if m.type_id == MessageType.ACKNOWLEDGEMENT]
    assert len(acks) == 2
    ping = (UserControlEvent.PING_REQUEST).to_bytes(2, "big") + (77).to_bytes(4, "big")
    client.send(client.writer.write_control(MessageType.USER_CONTROL, ping))
    (pong,) = client.replies()
    assert pong.payload == b"\x00\x07\x00\x00\x00\x4d"
    client.send(client.writer.write_control(MessageType.ACKNOWLEDGEMENT, (123).to_bytes(4, "big")))
    assert client.server.peer_acknowledged == 123


def test_bad_handshake_is_protocol_error() -> None:
    server = RtmpServerConnection()
    server.receive_data(b"\x06" + bytes(1536))
    event = server.next_event()
    assert isinstance(event, ProtocolError) and "version 6" in event.reason
    assert server.data_to_send() == b""


def test_split_stream_name() -> None:
    assert split_stream_name("alice?token=abc&x=") == ("alice", {"token": "abc", "x": ""})
    assert split_stream_name("alice") == ("alice", {})


def test_abort_while_publishing_sends_an_error_status_then_closes() -> None:
    client = _publishing()
    client.replies()
    client.server.abort("codec hvc1 is not supported")
    (status,) = client.commands()
    assert status[0] == "onStatus"
    info = status[3]
    assert isinstance(info, dict)
    assert (info["level"], info["code"]) == ("error", "NetStream.Failed")
    assert info["description"] == "codec hvc1 is not supported"
    assert client.server.state is ConnectionState.CLOSED
    client.media(MessageType.VIDEO, 0, b"\x17\x01")
    assert client.events() == []


def test_abort_of_a_pending_publish_is_a_rejection() -> None:
    client = _connected()
    client.command("createStream", 2, None)
    client.command("publish", 3, None, "alice", "live", stream_id=1)
    client.events()
    client.replies()
    client.server.abort("bad token")
    (status,) = client.commands()
    assert isinstance(status[3], dict) and status[3]["code"] == "NetStream.Publish.BadName"
    assert client.server.state is ConnectionState.CLOSED
