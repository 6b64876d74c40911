"""Reading an HTTP body with a hard size limit (any peer we do not control).

Never ``StreamReader.read(n)`` for a whole body: it returns what has arrived so far, so a body
that comes in two TCP segments is cut short. ``read_prefix`` reads on until ``n`` bytes or EOF.
"""

from __future__ import annotations

import re

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["BodyTooLarge", "describe_http_error", "read_limited", "read_prefix"]

_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9 ,()-]*")


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
    """The whole body, refusing a declared or streamed size over ``limit`` without reading on.

    Takes the chunks as they arrived (``readany``, no re-slicing) and joins them once: one copy
    of the body, where re-chunking into a growing bytearray and converting it cost three."""
    length = resp.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(limit, length)
    content = resp.content
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def describe_http_error(exc: HttpProcessingError) -> str:
    """What aiohttp's HTTP parser found wrong, in its own words but without the bytes it
    quotes (a request line may hold a stream key): ``"Bad status line"``."""
    match = _WORDS.match(str(exc.message).strip())
    return match.group(0).strip() if match else type(exc).__name__
