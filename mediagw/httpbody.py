"""Reading an HTTP body with a hard size limit (any peer we do not control).

Never ``StreamReader.read(n)`` for a whole body: it returns what has arrived so far, so a body
that comes in two TCP segments is cut short. ``read_prefix`` reads on until ``n`` bytes or EOF.
"""

from __future__ import annotations

import aiohttp

__all__ = ["BodyTooLarge", "read_limited", "read_prefix"]

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is over ``limit`` bytes; the caller turns this into its own error."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.declared = declared  # the Content-Length, when that alone gave it away


async def read_prefix(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to ``limit`` bytes (all of it when shorter). Callers that must refuse a
    larger body ask for ``limit + 1`` and check the length."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = await stream.read(limit - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


async def read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing a declared or streamed size over ``limit`` without reading on."""
    length = resp.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(limit, length)
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(limit)
    return bytes(buf)
