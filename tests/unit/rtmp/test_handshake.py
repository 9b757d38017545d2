"""Server side of the simple handshake (RTMP spec §5.2)."""

from __future__ import annotations

import struct

import pytest

from interlive.rtmp.errors import HandshakeError
from interlive.rtmp.handshake import HANDSHAKE_SIZE, HandshakeState, ServerHandshake

C1 = struct.pack("!II", 1234, 0) + bytes(range(256)) * 6
C1 = C1[:HANDSHAKE_SIZE]


def _server() -> ServerHandshake:
    return ServerHandshake(random_bytes=lambda n: b"\xab" * n, epoch_ms=99)


def test_simple_handshake_split_anywhere() -> None:
    hs = _server()
    wire = b"\x03" + C1
    for i in range(0, len(wire), 100):
        assert hs.receive_data(wire[i : i + 100], now_ms=7) == b""
    out = hs.data_to_send()
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE
    assert out[0] == 3
    s1, s2 = out[1 : 1 + HANDSHAKE_SIZE], out[1 + HANDSHAKE_SIZE :]
    assert s1 == struct.pack("!II", 99, 0) + b"\xab" * (HANDSHAKE_SIZE - 8)
    assert s2 == struct.pack("!II", 1234, 7) + C1[8:]
    assert hs.state is HandshakeState.AWAIT_C2
    # C2 echoes S1, followed directly by the first chunk.
    assert hs.receive_data(s1 + b"\x03rest") == b"\x03rest"
    assert hs.state.value == HandshakeState.DONE.value
    assert hs.c2_echoes_s1
    assert hs.receive_data(b"more") == b"more"


def test_all_at_once() -> None:
    hs = _server()
    assert hs.receive_data(b"\x03" + C1 + bytes(HANDSHAKE_SIZE) + b"x") == b"x"
    assert hs.state is HandshakeState.DONE
    assert not hs.c2_echoes_s1


@pytest.mark.parametrize("version", [0, 6, 0x16, 0x47])
def test_wrong_version(version: int) -> None:
    with pytest.raises(HandshakeError, match=f"unsupported RTMP version {version}"):
        _server().receive_data(bytes([version]) + C1)
