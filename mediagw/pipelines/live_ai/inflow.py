"""The input of a live session: its segments, handed over whole or while they are being cut.

An ``InputSegment`` holds one segment's MPEG-TS bytes as they arrive: a stream's segments come
progressively (``begin`` at the first keyframe, ``add`` per packet muxed, ``finish`` at the
cut: the segmenter's progress stream), bare bytes or a ``Segment`` come whole. ``body()``
yields its bytes from the start, whatever the moment it is asked: what is held at once (a
queued segment goes out in a burst, a segment re-sent to the next orchestrator after a swap
starts over), then the rest as it arrives, until the cut. A segment the source gave up on
(``abandon``: its progress was lost, or the segmenter abandoned it for its size) stops its
``body()`` with ``SegmentAbandoned``: its upload is dropped, never completed with other bytes.

``InputQueue`` holds them in order for the session's pump (session.py): at most ``max_queue``
(the oldest not being published is dropped, counted), plus the segments whose POST failed on
the current orchestrator (``held``): dropped for good once it publishes the next one, sent to
the next orchestrator if it is left. A segment is in flight for the health rules (slow O) from
its cut until it is published or given up.

Memory: one segment's bytes at most per item (the segmenter bounds a segment's size).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segmenter import Segment, SegmentProgress, SegmentStart

from ...usage import media_pixels
from .config import LiveConfig
from .stats import SessionCounters

if TYPE_CHECKING:
    from .attachment import Attachment

__all__ = ["PIECE", "InputQueue", "InputSegment", "SegmentAbandoned"]

log = logging.getLogger("mediagw.live_ai.session")

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


class InputQueue:
    """The input segments of a session, in order, for its pump (see the module docstring)."""

    def __init__(
        self,
        config: LiveConfig,
        counters: SessionCounters,
        clock: Callable[[], float],
        current: Callable[[], Attachment | None],
        notify: Callable[[], None],
    ) -> None:
        self.config = config
        self.counters = counters
        self.clock = clock
        self._current = current  # the attached orchestrator (counts segments in flight)
        self._notify = notify  # wakes the pump
        self.items: deque[InputSegment] = deque()
        self.publishing: InputSegment | None = None
        self.held: list[InputSegment] = []  # POST failed on ``failed_on``: its fate decides
        self.failed_on: Attachment | None = None
        self._open: InputSegment | None = None  # the segment being cut
        self._lost_seq = -1  # a segment whose progress was lost: skipped, whole or not

    # -- from the source ---------------------------------------------------------------------

    def push(self, segment: Any, cut_at: float | None = None) -> None:
        """A whole segment (``bytes`` or anything with ``data``)."""
        data: bytes = segment if isinstance(segment, bytes) else segment.data
        duration = 0.0 if isinstance(segment, bytes) else float(getattr(segment, "duration", 0))
        arrived = self.clock() if cut_at is None else cut_at
        item = InputSegment(arrived, duration=duration, pixels=media_pixels(segment))
        item.chunks.append(data)
        item.size = len(data)
        self._enqueue(item)

    def begin(self, start: SegmentStart) -> None:
        """A segment opened at its first keyframe: queued now, its bytes follow. An open one
        that never completed (the segmenter abandoned it for its size) is dropped."""
        self.end()
        if start.seq == self._lost_seq:
            return  # its progress was lost: skipped (counted by ``lose``)
        item = InputSegment(self.clock(), start.seq, start.meta.get("arrival"), complete=False)
        self._open = item
        self._enqueue(item)

    def extend(self, progress: SegmentProgress) -> None:
        item = self._open
        if item is not None and item.seq == progress.seq:
            item.add(progress.data)

    def complete(self, segment: Segment) -> None:
        """The open segment is complete; one that had no progress (opened before it was asked
        for, or not cut by this gateway) is pushed whole."""
        item = self._open
        if item is None or item.seq != segment.seq:
            if segment.seq != self._lost_seq:
                self.push(segment)
            return
        self._open = None
        if item.size == 0:  # opened before the TS bytes were asked for: whole
            item.add(segment.data)
        elif item.size != len(segment.data):  # never: progress bytes are the segment's
            log.warning("input segment differs from its progress", extra={"seq": segment.seq})
            self._skip(item)
            return
        item.finish(segment.duration, media_pixels(segment))
        self._count(item)

    def lose(self, seq: int) -> None:
        """A progress item of segment ``seq`` was lost on its way: that segment is skipped."""
        item = self._open
        if item is not None and item.seq == seq:
            self.end()
        elif seq != self._lost_seq:
            self.counters.segments_skipped += 1
        self._lost_seq = seq

    def end(self) -> None:
        """No more bytes for the open segment: it was never cut, so it is dropped."""
        item, self._open = self._open, None
        if item is not None and not item.complete:
            self._skip(item)

    # -- for the pump ------------------------------------------------------------------------

    def done(self, item: InputSegment) -> None:
        """``item`` was published."""
        if self.items and self.items[0] is item:
            self.items.popleft()

    def failed(self, item: InputSegment, att: Attachment) -> None:
        """``item`` was not published on ``att``, which goes on: its POST failed (what went
        out of it was deleted), or its source gave it up."""
        self.done(item)
        if not item.abandoned:
            self.failed_on = att
            self.held.append(item)

    def requeue_held(self) -> None:
        """Their orchestrator was left: the next one gets them first, whole."""
        held, self.held, self.failed_on = self.held, [], None
        self.items.extendleft(reversed(held))

    def fail_held(self) -> None:
        """Their orchestrator goes on: dropped for good (the next segment went intact; a
        re-send would come too late to be live)."""
        held, self.held, self.failed_on = self.held, [], None
        for item in held:
            self.counters.segments_failed += 1
            self._settle(item)

    # -- internals ---------------------------------------------------------------------------

    def _skip(self, item: InputSegment) -> None:
        if not item.abandoned:
            item.abandon()
            self.counters.segments_skipped += 1
            self._settle(item)
            self._notify()

    def _enqueue(self, item: InputSegment) -> None:
        self.counters.segments_in += 1
        if item.complete:
            self._count(item)
        if len(self.items) >= max(2, self.config.max_queue):  # oldest not being published
            index = 1 if self.items[0] is self.publishing else 0
            dropped = self.items[index]
            if dropped is self._open:  # (max_queue 2) the rest of it is ignored
                self._open, self._lost_seq = None, dropped.seq
                dropped.abandon()
            self._settle(dropped)
            del self.items[index]
            self.counters.segments_dropped += 1
        self.items.append(item)
        self._notify()

    def _count(self, item: InputSegment) -> None:
        """A cut segment waits to be published: in flight for the health rules (slow O)."""
        att = self._current()
        if att is not None and not att.lost.is_set():
            item.counted = att
            reason = att.monitor.input_begun(self.clock())
            if reason is not None:
                att.fail(reason, f"{att.monitor.in_flight} input segments in flight")

    def _settle(self, item: InputSegment) -> None:
        """``item`` will not be published: no longer in flight."""
        att, item.counted = item.counted, None
        if att is not None:
            att.monitor.input_done()
