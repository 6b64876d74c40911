"""Reading an HTTP response body with a hard size limit (any peer we do not control)."""

from __future__ import annotations

import aiohttp

__all__ = ["BodyTooLarge", "read_limited"]

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is over ``limit`` bytes; the caller turns this into its own error."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.declared = declared  # the Content-Length, when that alone gave it away


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
