"""Chunk stream reader and writer (RTMP spec §5.3, §5.4)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.rtmp.chunk import (
    AckWindow,
    ChunkReader,
    ChunkWriter,
    Message,
    MessageType,
    encode_set_chunk_size,
)
from interlive.rtmp.errors import ChunkError


def _feed(reader: ChunkReader, data: bytes, rng: random.Random) -> list[Message]:
    out: list[Message] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 700)
        out += reader.receive_data(data[i : i + n])
        i += n
    return out


def _interleaved(writer: ChunkWriter, messages: list[Message]) -> bytes:
    """Write messages whole, in order (chunk streams alternate message by message)."""
    return b"".join(
        writer.write(m.chunk_stream_id, m.type_id, m.stream_id, m.timestamp, m.payload)
        for m in messages
    )


def _messages(rng: random.Random) -> list[Message]:
    messages = []
    clocks = {3: 0, 6: 0, 7: 0, 64: 0, 320: 0, 65599: 0}
    for _ in range(200):
        csid = rng.choice(list(clocks))
        step = rng.choice([0, 20, 20, 23, 33, 0xFFFFFF, 0x1000000])
        clocks[csid] = (clocks[csid] + step) & 0xFFFFFFFF
        size = rng.choice([0, 1, 5, 127, 128, 129, 4096, 5000, 20000])
        messages.append(
            Message(
                csid,
                rng.choice([8, 9, 18, 20]),
                rng.choice([0, 1, 1, 1]),
                clocks[csid],
                rng.randbytes(size),
            )
        )
    return messages


@pytest.mark.parametrize("chunk_size", [128, 4096, 1])
def test_round_trip_interleaved_extended(chunk_size: int) -> None:
    rng = random.Random(chunk_size)
    messages = _messages(rng)
    writer = ChunkWriter(chunk_size)
    reader = ChunkReader()
    reader.chunk_size = chunk_size
    assert _feed(reader, _interleaved(writer, messages), rng) == messages
    assert reader.buffered_bytes == 0


def test_chunks_of_different_streams_interleave() -> None:
    # Two messages whose chunks alternate on the wire, as §5.3.2.2 allows.
    writer_a, writer_b = ChunkWriter(10), ChunkWriter(10)
    a = writer_a.write(6, 8, 1, 0xFFFFFF + 5, b"A" * 25)  # extended timestamp
    b = writer_b.write(7, 9, 1, 40, b"B" * 25)
    split_a = [a[:26], a[26:41], a[41:]]  # 12-byte header+ext 4... chunk bounds below
    # chunk 1: 1 + 11 + 4 + 10 = 26; continuation: 1 + 4 + 10 = 15; last: 1 + 4 + 5
    split_b = [b[:22], b[22:33], b[33:]]  # 1 + 11 + 10 = 22; then 1 + 10; 1 + 5
    wire = b"".join(x + y for x, y in zip(split_a, split_b, strict=True))
    reader = ChunkReader()
    reader.chunk_size = 10
    got = reader.receive_data(wire)
    assert got == [Message(6, 8, 1, 0xFFFFFF + 5, b"A" * 25), Message(7, 9, 1, 40, b"B" * 25)]


def test_header_compression() -> None:
    writer = ChunkWriter()
    first = writer.write(4, 8, 1, 1000, b"xx")
    assert first[0] >> 6 == 0 and len(first) == 12 + 2
    second = writer.write(4, 8, 1, 1020, b"yy")
    assert second[0] >> 6 == 2 and len(second) == 4 + 2  # same length/type: delta only
    third = writer.write(4, 8, 1, 1040, b"zz")
    assert third[0] >> 6 == 3 and len(third) == 1 + 2  # same delta: nothing
    fourth = writer.write(4, 8, 1, 1060, b"abc")
    assert fourth[0] >> 6 == 1  # new length
    fifth = writer.write(4, 8, 1, 10, b"abc")
    assert fifth[0] >> 6 == 0  # backwards: absolute
    reader = ChunkReader()
    got = reader.receive_data(first + second + third + fourth + fifth)
    assert [m.timestamp for m in got] == [1000, 1020, 1040, 1060, 10]


def test_basic_header_forms() -> None:
    writer = ChunkWriter()
    assert writer.write(63, 8, 0, 0, b"")[:1] == b"\x3f"
    assert writer.write(64, 8, 0, 0, b"")[:2] == b"\x00\x00"
    assert writer.write(319, 8, 0, 0, b"")[:2] == b"\x00\xff"
    assert writer.write(320, 8, 0, 0, b"")[:3] == b"\x01\x00\x01"
    assert writer.write(65599, 8, 0, 0, b"")[:3] == b"\x01\xff\xff"


def test_type3_after_type0_uses_field_as_delta() -> None:
    # ffmpeg/SRS reading: the new timestamp is previous + last timestamp field.
    wire = bytes.fromhex("04 000064 000001 08 01000000") + b"a" + b"\xc4" + b"b"
    got = ChunkReader().receive_data(wire)
    assert [m.timestamp for m in got] == [100, 200]


def test_continuation_without_repeated_extended_timestamp() -> None:
    # Some encoders omit the extended timestamp on type 3 continuation chunks.
    reader = ChunkReader()
    reader.chunk_size = 4
    wire = bytes.fromhex("04 ffffff 000006 08 01000000 01000000") + b"abcd" + b"\xc4" + b"ef"
    # Fewer than 4 bytes follow: the reader cannot tell yet and waits.
    assert reader.receive_data(wire) == []
    assert reader.receive_data(bytes.fromhex("05 000000 000000 08 01000000")) == [
        Message(4, 8, 1, 0x1000000, b"abcdef"),
        Message(5, 8, 1, 0, b""),
    ]


def test_set_chunk_size_and_abort_apply_immediately() -> None:
    writer = ChunkWriter()
    wire = writer.set_chunk_size(4)
    wire += writer.write(5, 9, 1, 0, b"12345678")
    partial = ChunkWriter(4).write(6, 9, 1, 0, b"abcdefgh")[:16]  # first chunk only
    wire += partial
    wire += writer.write_control(MessageType.ABORT, (6).to_bytes(4, "big"))
    wire += ChunkWriter(4).write(6, 9, 1, 0, b"ijkl")
    reader = ChunkReader()
    got = reader.receive_data(wire)
    assert reader.chunk_size == 4
    assert [(m.type_id, m.payload) for m in got] == [
        (1, encode_set_chunk_size(4)),
        (9, b"12345678"),
        (2, b"\x00\x00\x00\x06"),
        (9, b"ijkl"),
    ]
    assert reader.buffered_bytes == 0


def test_max_chunk_size() -> None:
    writer = ChunkWriter()
    wire = writer.set_chunk_size(0x7FFFFFFF) + writer.write(3, 9, 1, 0, b"x" * 100_000)
    reader = ChunkReader()
    got = _feed(reader, wire, random.Random(1))
    assert reader.chunk_size == 0x7FFFFFFF
    assert got[-1].payload == b"x" * 100_000


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (bytes.fromhex("44 000000 000001 08"), "starts with a type 1 header"),
        (bytes.fromhex("02 000000 000004 01 00000000 80000001"), "reserved top bit"),
        (bytes.fromhex("02 000000 000004 01 00000000 00000000"), "Set Chunk Size of 0"),
        (bytes.fromhex("02 000000 000002 01 00000000 0000"), "need 4"),
        (bytes.fromhex("04 000000 ffffff 09 01000000"), "exceeds the maximum"),
        (
            bytes.fromhex("04 000000 000100 09 01000000") + bytes(128) + b"\x84" + bytes(3),
            "while a message is incomplete",
        ),
    ],
)
def test_malformed(wire: bytes, message: str) -> None:
    with pytest.raises(ChunkError, match=message):
        ChunkReader(max_message_size=1 << 20).receive_data(wire)


def test_oversized_message_rejected_before_buffering() -> None:
    reader = ChunkReader(max_message_size=1000)
    with pytest.raises(ChunkError, match="1001 bytes"):
        reader.receive_data(bytes.fromhex("04 000000 0003e9 09 01000000"))


def test_partial_bytes_bounded_across_streams() -> None:
    reader = ChunkReader(max_message_size=1000, max_partial_bytes=1500)
    wire = b"".join(ChunkWriter().write(csid, 9, 1, 0, bytes(1000))[:140] for csid in (3, 4))
    reader.receive_data(wire)  # 2 x 128 bytes of unfinished messages: fine
    with pytest.raises(ChunkError, match="unfinished messages"):
        for csid in range(5, 30):
            reader.receive_data(ChunkWriter().write(csid, 9, 1, 0, bytes(1000))[:140])


def test_ack_window() -> None:
    ack = AckWindow()
    assert ack.on_bytes(5000) is None  # no window announced yet
    ack.window = 1000
    assert ack.on_bytes(1) == 5001  # the total so far, once the window is exceeded
    assert ack.on_bytes(999) is None
    assert ack.on_bytes(1) == 6001
    ack.received = 2**32 - 1
    assert ack.on_bytes(1000) == 999  # sequence numbers wrap at 2**32


@given(st.lists(st.tuples(st.integers(2, 400), st.binary(max_size=300), st.integers(0, 2**32 - 1))))
@settings(max_examples=100)
def test_round_trip_property(items: list[tuple[int, bytes, int]]) -> None:
    writer = ChunkWriter(37)
    reader = ChunkReader()
    reader.chunk_size = 37
    messages = [Message(csid, 9, 1, ts, payload) for csid, payload, ts in items]
    assert reader.receive_data(_interleaved(writer, messages)) == messages
