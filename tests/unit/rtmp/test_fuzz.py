"""Random and mutated RTMP streams: only ProtocolError events, bounded memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.rtmp.events import (
    ConnectRequested,
    PlayRequested,
    ProtocolError,
    PublishRequested,
    RtmpEvent,
)
from interlive.rtmp.server import ConnectionState, RtmpServerConnection

from ._client import C0C1, C2

FIXTURE = Path(__file__).parents[2] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"
MAX_MESSAGE = 64 * 1024


def _drive(data: bytes, rng: random.Random) -> list[RtmpEvent]:
    server = RtmpServerConnection(random_bytes=bytes, max_message_size=MAX_MESSAGE)
    events: list[RtmpEvent] = []
    pos = 0
    while pos < len(data) and server.state is not ConnectionState.CLOSED:
        size = rng.randint(1, 3000)
        server.receive_data(data[pos : pos + size])
        pos += size
        while (event := server.next_event()) is not None:
            events.append(event)
            if isinstance(event, ConnectRequested):
                server.accept_connect()
            elif isinstance(event, PublishRequested):
                server.accept_publish()
            elif isinstance(event, PlayRequested):
                server.accept_play()
        server.data_to_send()
        # input held: at most one chunk in flight plus bounded unfinished messages
        assert server.buffered_bytes <= 6 * MAX_MESSAGE + 3000
    errors = [i for i, e in enumerate(events) if isinstance(e, ProtocolError)]
    if errors:
        assert errors == [len(events) - 1]  # one error, last, then silence
        assert server.state is ConnectionState.CLOSED
    return events


@given(st.binary(min_size=0, max_size=4000))
@settings(max_examples=200)
def test_random_bytes_after_handshake(data: bytes) -> None:
    _drive(C0C1 + C2 + data, random.Random(0))


@given(st.binary(min_size=0, max_size=2000))
@settings(max_examples=100)
def test_random_bytes_from_start(data: bytes) -> None:
    _drive(data, random.Random(0))


@pytest.mark.parametrize("seed", range(40))
def test_mutated_ffmpeg_stream(seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(FIXTURE.read_bytes())
    for _ in range(rng.randint(1, 20)):
        op = rng.random()
        at = rng.randrange(3073, len(data))
        if op < 0.6:
            data[at] = rng.randrange(256)
        elif op < 0.8:
            del data[at : at + rng.randint(1, 50)]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 50))
    _drive(bytes(data), rng)


def test_garbage_header_claiming_huge_message_is_refused_early() -> None:
    server = RtmpServerConnection(random_bytes=bytes, max_message_size=MAX_MESSAGE)
    server.receive_data(C0C1 + C2 + bytes.fromhex("03 000000 ffffff 14 00000000") + bytes(100))
    event = server.next_event()
    assert isinstance(event, ProtocolError) and "exceeds the maximum" in event.reason
