"""Replay a publish recorded from Debian's ffmpeg 5.1 through RtmpServerConnection.

``tests/fixtures/rtmp/ffmpeg_publish.bin`` holds every byte ffmpeg sent (handshake
included) to a throwaway capture server built on this core, for::

    ffmpeg -re -f lavfi -i testsrc2=size=320x240:rate=15 -f lavfi -i sine -t 2 \\
        -c:v libx264 -g 15 -b:v 200k -c:a aac -b:a 32k \\
        -f flv 'rtmp://127.0.0.1:19351/live/room/alice?token=abc'

ffmpeg splits that URL at the *last* slash: ``connect`` carries app
``live/room`` and tcUrl ``rtmp://127.0.0.1:19351/live/room`` (no query), and
``releaseStream``/``FCPublish``/``publish`` carry ``alice?token=abc`` (the query
stays on the stream key).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from interlive.rtmp import amf0
from interlive.rtmp.events import (
    ConnectRequested,
    MediaKind,
    MediaMessage,
    PublishRequested,
    RtmpEvent,
    StreamDeleted,
)
from interlive.rtmp.server import ConnectionState, RtmpServerConnection, split_stream_name

FIXTURE = Path(__file__).parents[2] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"


def _replay(seed: int) -> tuple[list[RtmpEvent], RtmpServerConnection]:
    data = FIXTURE.read_bytes()
    rng = random.Random(seed)
    server = RtmpServerConnection(random_bytes=bytes)
    events: list[RtmpEvent] = []
    pos = 0
    while pos < len(data):
        size = rng.choice([1, 7, 100, 1460, 4096, 65536])
        server.receive_data(data[pos : pos + size])
        pos += size
        while (event := server.next_event()) is not None:
            events.append(event)
            if isinstance(event, ConnectRequested):
                server.accept_connect()
            elif isinstance(event, PublishRequested):
                server.accept_publish()
        server.data_to_send()
    return events, server


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_ffmpeg_publish(seed: int) -> None:
    events, server = _replay(seed)
    connect, publish, *media, deleted = events
    assert isinstance(connect, ConnectRequested)
    assert connect.app == "live/room"
    assert connect.tc_url == "rtmp://127.0.0.1:19351/live/room"
    assert connect.flash_ver is not None and connect.flash_ver.startswith("FMLE/3.0")
    assert publish == PublishRequested("alice?token=abc", "live", 1)
    assert split_stream_name(publish.stream_key) == ("alice", {"token": "abc"})
    assert deleted == StreamDeleted(1)
    assert server.state is ConnectionState.CONNECTED

    assert all(isinstance(e, MediaMessage) for e in media)
    messages = [e for e in media if isinstance(e, MediaMessage)]
    meta = messages[0]
    assert meta.kind is MediaKind.DATA
    name, body = amf0.decode_all(meta.payload)
    assert name == "onMetaData"
    assert isinstance(body, dict)
    assert (body["width"], body["height"], body["framerate"]) == (320.0, 240.0, 15.0)
    assert body["videocodecid"] == 7.0 and body["audiocodecid"] == 10.0

    video = [m for m in messages if m.kind is MediaKind.VIDEO]
    audio = [m for m in messages if m.kind is MediaKind.AUDIO]
    # First video message: AVC (codec 7) keyframe (1), AVCPacketType 0 = sequence header.
    assert video[0].payload[0] == 0x17 and video[0].payload[1] == 0
    assert video[0].payload[5] == 1  # AVCDecoderConfigurationRecord version
    # First audio message: AAC (sound format 10), AACPacketType 0 = AudioSpecificConfig.
    assert audio[0].payload[0] >> 4 == 10 and audio[0].payload[1] == 0
    assert all(m.payload[1] == 1 for m in video[1:-1])  # NALUs; the last is end of sequence
    assert video[-1].payload[1] == 2
    assert len(video) == 32 and len(audio) == 89
    for stream in (video, audio):
        stamps = [m.timestamp for m in stream]
        assert stamps == sorted(stamps)
        assert stamps[-1] > 1800  # about two seconds of media
    assert sum(1 for m in video if m.payload[0] >> 4 == 1) >= 2  # keyframes every 15 frames


def test_server_answers_are_stable() -> None:
    # The bytes we send back depend only on the input (deterministic random).
    _, first = _replay(1)
    _, second = _replay(2)
    assert first.bytes_sent == second.bytes_sent
