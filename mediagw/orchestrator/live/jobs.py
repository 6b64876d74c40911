"""An input segment on its way from the live session's input reader to its worker, chunk by
chunk: the worker can start (pass-through: write the output) before the input has ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

__all__ = ["Broken", "InputJob"]


class Broken(Exception):
    """The input segment of a job broke off mid-way."""


_END = b""


class InputJob:
    """One input segment on its way to the worker: its chunks as they arrive."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()  # bounded by the segment limit
        self.broken = False

    def put(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.put_nowait(chunk)

    def end(self, *, broken: bool = False) -> None:
        self.broken = broken
        self._chunks.put_nowait(_END)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each chunk as it arrives; raises ``Broken`` if the input broke off."""
        while True:
            chunk = await self._chunks.get()
            if not chunk:  # _END (put never queues an empty chunk)
                if self.broken:
                    raise Broken
                return
            yield chunk

    async def whole(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])
