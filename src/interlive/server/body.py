"""Reading a request body whole, up to a limit.

aiohttp's ``StreamReader.read(n)`` returns what is buffered when it is called
(at least one byte, at most ``n``), not ``n`` bytes or the rest of the body.
A body that crosses more than one TCP segment (3 kB of SDP over a 1500-byte
MTU, a segment delayed or lost on the way) would be cut at the first one.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["read_body"]


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or its first ``limit + 1`` bytes when it is longer than ``limit``."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:  # end of the body
            break
        body += chunk
    return bytes(body)
