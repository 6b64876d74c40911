"""The input segments of a live session, handed over whole or while they are being cut.

An ``InputSegment`` holds one segment's MPEG-TS bytes as they arrive: a stream's segments come
progressively (``begin`` at the first keyframe, ``add`` per packet muxed, ``finish`` at the
cut: the segmenter's progress stream), bare bytes or a ``Segment`` come whole. ``body()``
yields its bytes from the start, whatever the moment it is asked: what is held at once (a
queued segment goes out in a burst, a segment re-sent to the next orchestrator after a swap
starts over), then the rest as it arrives, until the cut. A segment the source gave up on
(``abandon``: its progress was lost, or the segmenter abandoned it for its size) stops its
``body()`` with ``SegmentAbandoned``: its upload is dropped, never completed with other bytes.

Memory: one segment's bytes at most per item (the segmenter bounds a segment's size), and at
most ``max_queue`` items (session.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .attachment import Attachment

__all__ = ["PIECE", "InputSegment", "SegmentAbandoned"]

PIECE = 256 << 10  # bytes held whole go out in pieces of this size (memoryview, no copy)


class SegmentAbandoned(Exception):
    """The source gave up on an input segment before it was complete: drop its upload."""


@dataclass(slots=True, eq=False)
class InputSegment:
    arrived: float  # session clock: handed over (progressive: its first keyframe was cut)
    seq: int = -1  # the segmenter's seq (-1: handed over whole as bare bytes)
    captured: float | None = None  # monotonic: its opening ingest unit reached the Publisher
    counted: Attachment | None = None  # the attachment whose health monitor counted it in flight
    duration: float = 0.0  # seconds of media (0: unknown, or not complete yet)
    pixels: int = 0  # input pixels (frames x width x height; 0: unknown)
    complete: bool = True
    abandoned: bool = False
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    _grew: asyncio.Event | None = None

    def add(self, data: bytes) -> None:
        """More bytes of the segment (progressive)."""
        if data and not self.complete and not self.abandoned:
            self.chunks.append(data)
            self.size += len(data)
            self._wake()

    def finish(self, duration: float, pixels: int) -> None:
        """The segment was cut: its bytes are all here."""
        self.complete = True
        self.duration, self.pixels = duration, pixels
        self._wake()

    def abandon(self) -> None:
        self.abandoned = True
        self._wake()

    def _wake(self) -> None:
        grew, self._grew = self._grew, None
        if grew is not None:
            grew.set()

    async def body(self) -> AsyncIterator[bytes | memoryview]:
        """Its bytes from the first: held ones at once, then each as it arrives, to the cut;
        raises ``SegmentAbandoned`` when the source gives up on it."""
        sent = 0
        while True:
            while sent < len(self.chunks):
                if self.abandoned:
                    break
                chunk = self.chunks[sent]
                sent += 1
                if len(chunk) <= PIECE:
                    yield chunk
                    continue
                view = memoryview(chunk)
                for start in range(0, len(view), PIECE):
                    yield view[start : start + PIECE]
            if self.abandoned:
                raise SegmentAbandoned(f"input segment {self.seq} abandoned by its source")
            if self.complete:
                return
            if self._grew is None:
                self._grew = asyncio.Event()
            await self._grew.wait()
