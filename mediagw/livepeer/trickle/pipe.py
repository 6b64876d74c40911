"""A bounded hand-off of body chunks from a segment writer to aiohttp's request body writer.

``BodyPipe`` holds at most ``maxsize`` chunks: a writer faster than the network waits in
``put`` (backpressure), never buffers without bound. ``PipePayload`` is the aiohttp body that
drains the pipe; it flushes the request headers before the first chunk so a preconnected POST
reaches the server (and the server sets up the segment) before any byte is written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

__all__ = ["BodyPipe", "PipeAborted", "PipePayload"]

Chunk = bytes | memoryview


class PipeAborted(Exception):
    """The request this pipe feeds has ended; no more bytes can go through it."""


class BodyPipe:
    def __init__(self, maxsize: int = 8) -> None:
        self._queue: deque[Chunk] = deque()
        self._maxsize = maxsize
        self._eof = False
        self.aborted = False
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        self.sent = 0  # bytes handed to the connection
        self.body_done = False  # the payload writer reached the end of the body
        self._drained: asyncio.Future[None] | None = None

    async def put(self, chunk: Chunk) -> None:
        while len(self._queue) >= self._maxsize and not self.aborted:
            self._putter = asyncio.get_running_loop().create_future()
            await self._putter
        if self.aborted:
            raise PipeAborted
        self._queue.append(chunk)
        self._wake_getter()

    def finish(self) -> None:
        """No more chunks: the body ends after the queued ones."""
        self._eof = True
        self._wake_getter()

    def abort(self) -> None:
        self.aborted = True
        self._queue.clear()
        self._wake_getter()
        self._wake_putter()

    async def get(self) -> Chunk | None:
        while not self._queue and not self._eof and not self.aborted:
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
        if self.aborted:
            return None
        if self._queue:
            chunk = self._queue.popleft()
            self._wake_putter()
            return chunk
        self.body_done = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        return None

    def drained(self) -> asyncio.Future[None]:
        """Done when the whole body has been handed to the connection."""
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
            if self.body_done:
                self._drained.set_result(None)
        return self._drained

    def _wake_getter(self) -> None:
        getter, self._getter = self._getter, None
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _wake_putter(self) -> None:
        putter, self._putter = self._putter, None
        if putter is not None and not putter.done():
            putter.set_result(None)


class PipePayload(Payload):
    """A chunked request body read from a ``BodyPipe``."""

    def __init__(self, pipe: BodyPipe, content_type: str, **kwargs: Any) -> None:
        super().__init__(pipe, content_type=content_type or None, **kwargs)
        self._pipe = pipe

    @property
    def size(self) -> int | None:
        return None  # unknown: chunked transfer encoding

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed trickle body cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        writer.send_headers()  # the request reaches the server before the first byte exists
        await writer.drain()
        pipe = self._pipe
        while True:
            chunk = await pipe.get()
            if chunk is None:
                if pipe.aborted:  # no end-of-body marker: aiohttp drops the connection instead
                    raise PipeAborted
                return
            await writer.write(chunk)
            pipe.sent += len(chunk)
