"""A WHIP offer that reaches the server in two TCP reads is read whole.

aiohttp's ``StreamReader.read(n)`` returns what is buffered (at least one byte),
not ``n`` bytes: a body split across segments (MTU 1500, a delayed or lost
segment) was cut at the first one and refused as ``bad_sdp``.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.server.fakes import running_app, token

OFFER = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "a=x-filler:0123456789\r\n" * 200


@pytest.mark.parametrize("split", [1, 900, len(OFFER) - 1])
async def test_offer_sent_in_two_pieces_is_read_whole(split: int) -> None:
    async with running_app() as app:
        server = app.client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        body = OFFER.encode()
        head = (
            "POST /whip/r HTTP/1.1\r\n"
            f"Host: {server.host}\r\n"
            f"Authorization: Bearer {token('r', 'co1', 'cohost')}\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head + body[:split])
        await writer.drain()
        await asyncio.sleep(0.05)  # the handler runs and reads what has come so far
        writer.write(body[split:])
        await writer.drain()
        status = await reader.readline()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        assert status.startswith(b"HTTP/1.1 201"), status
        [(_, args)] = app.pool.ops("create_session")
        assert args["offer"] == OFFER
