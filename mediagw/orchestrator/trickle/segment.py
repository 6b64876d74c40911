"""The bytes of one held segment and the cursors that read them (the asyncio side of a record).

A segment keeps the chunks its publisher sent, as they came (no copy, no per-byte work). Every
reader has its own cursor into that one list, so a slow reader costs no extra memory and never
holds up the publisher or the other readers. Memory per channel is therefore bounded by the
window: 5 segments of at most the segment size limit.

A segment that leaves the window (evicted) drops its chunks at once. A reader still inside it is
**cut**: its stream stops where it is (the HTTP layer aborts the connection, so the client sees an
incomplete body, not a short segment) and it is counted. The same happens to readers of a
**broken** segment (its publisher vanished mid-body or went over the size limit). A reader is
therefore at most 5 segments (about 10 s of video) behind the live edge, else it is cut and its
client jumps to the live edge.
"""

from __future__ import annotations

import asyncio

from .rules import SegmentRecord

__all__ = ["PeerGone", "Segment", "SegmentCut", "SegmentReader", "wait_any"]

DEFAULT_BATCH = 256 << 10


class SegmentCut(Exception):
    """The segment left the window or broke while a reader was inside it."""


class PeerGone(Exception):
    """The remote end of an HTTP exchange went away."""


async def wait_any(*futures: asyncio.Future[None]) -> None:
    """Wait until one of ``futures`` is done without cancelling any of them (they are shared)."""
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


class Segment(SegmentRecord):
    __slots__ = ("_chunks", "_waiter", "broken", "readers", "size", "writers")

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self._chunks: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self.size = 0
        self.readers = 0  # HTTP or local readers inside it now
        self.writers = 0  # POSTs attached to it now
        self.broken = False

    @property
    def cut(self) -> bool:
        return self.evicted or self.broken

    def append(self, data: bytes) -> None:
        self._chunks.append(data)
        self.size += len(data)
        self._wake()

    def close(self) -> bool:
        first = super().close()
        if first:
            self._wake()
        return first

    def evict(self) -> bool:
        first = super().evict()
        self._chunks = []
        self._wake()
        return first

    def break_off(self) -> None:
        """The publisher vanished mid-body or went over the limit: cut the readers."""
        self.broken = True
        self.close()
        self._wake()

    def changed(self) -> asyncio.Future[None]:
        """A future shared by all waiters, done at the next append/close/evict."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def chunk_count(self) -> int:
        return len(self._chunks)

    def content(self) -> bytes:
        """All bytes held so far (tests and small JSON segments)."""
        return b"".join(self._chunks)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class SegmentReader:
    """A cursor over one segment. ``next`` returns the next bytes (several chunks joined up to
    ``batch`` bytes), ``None`` at the end, or raises ``SegmentCut`` / ``PeerGone``."""

    __slots__ = ("_index", "batch", "delivered", "segment")

    def __init__(self, segment: Segment, batch: int = DEFAULT_BATCH) -> None:
        self.segment = segment
        self.batch = batch
        self._index = 0
        self.delivered = 0

    def take(self) -> bytes | None:
        """What is there now: bytes, ``b""`` when nothing yet, ``None`` at the end."""
        seg = self.segment
        if seg.cut:
            raise SegmentCut
        chunks = seg._chunks
        start = self._index
        end = len(chunks)
        if start >= end:
            return None if seg.closed else b""
        stop = start + 1
        total = len(chunks[start])
        while stop < end and total < self.batch:
            total += len(chunks[stop])
            stop += 1
        self._index = stop
        self.delivered += total
        return chunks[start] if stop == start + 1 else b"".join(chunks[start:stop])

    async def next(self, gone: asyncio.Future[None] | None = None) -> bytes | None:
        while True:
            data = self.take()
            if data != b"":
                return data
            if gone is None:
                await wait_any(self.segment.changed())
            else:
                await wait_any(self.segment.changed(), gone)
                if gone.done():
                    raise PeerGone
