"""In-process readers and writers of a server channel (what the orchestrator uses for its own
side of ``<mid>`` and ``<mid>-out``). They follow the same rules as remote clients: a reader's
position moves with ``SubscriberPosition``, a writer is a POST without the HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType

from mediagw.livepeer.trickle.errors import (
    TrickleChannelClosed,
    TrickleSegmentBroken,
    TrickleSegmentTooLarge,
    TrickleUsageError,
)
from mediagw.livepeer.trickle.positions import Step, SubscriberPosition
from mediagw.livepeer.trickle.wire import STATUS_UNAVAILABLE

from .config import WriteResult
from .rules import GetOutcome, PostOutcome
from .segment import Segment, SegmentCut, SegmentReader
from .types import ChannelPort

__all__ = ["LocalSegment", "LocalSegmentWriter", "LocalSubscription"]


class LocalSegment:
    """One segment read in process: ``async for chunk in seg`` or ``await seg.read()``."""

    def __init__(self, channel: ChannelPort, reader: SegmentReader, first: bytes) -> None:
        self.seq = reader.segment.seq
        self._channel = channel
        self._reader = reader
        self._first: bytes | None = first
        self._released = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                yield first
            while True:
                try:
                    data = await self._reader.next()
                except SegmentCut:
                    self._release(cut=True)
                    raise TrickleSegmentBroken(
                        "segment cut: it left the window or its publisher failed",
                        self._channel.name,
                        self.seq,
                    ) from None
                if data is None:
                    return
                yield data
        finally:
            self._release()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    def _release(self, *, cut: bool = False) -> None:
        if not self._released:
            self._released = True
            self._channel.leave(self._reader.segment, cut=cut)

    def release(self) -> None:
        """Stop reading this segment (the rest is skipped)."""
        self._release()


class LocalSubscription:
    """Async iterator of ``LocalSegment``; ends when the channel closes."""

    def __init__(self, channel: ChannelPort, start_seq: int = -1) -> None:
        self._channel = channel
        self.position = SubscriberPosition(start_seq)
        self._current: LocalSegment | None = None

    def __aiter__(self) -> LocalSubscription:
        return self

    async def __anext__(self) -> LocalSegment:
        if self._current is not None:
            self._current.release()
            self._current = None
        pos = self.position
        while not pos.ended:
            seg = await self._attempt()
            if seg is not None:
                self._current = seg
                return seg
        raise StopAsyncIteration

    async def _attempt(self) -> LocalSegment | None:
        ch = self._channel
        pos = self.position
        plan = ch.open_get(pos.seq)
        if plan.outcome is GetOutcome.UNAVAILABLE:
            verdict = pos.on_answer(STATUS_UNAVAILABLE, seq=plan.seq, latest=plan.latest)
        elif plan.outcome is GetOutcome.CLOSED or plan.segment is None:
            verdict = pos.on_answer(200, seq=plan.seq, closed=True)
        else:
            seg: Segment = plan.segment
            if not ch.enter(seg):
                verdict = pos.on_error()
            else:
                reader = SegmentReader(seg)
                try:
                    first = await reader.next()
                except SegmentCut:
                    first = None
                except BaseException:
                    ch.leave(seg)
                    raise
                if first is None:
                    ch.leave(seg)
                    verdict = pos.on_answer(200, seq=seg.seq, empty=True, closed=ch.closed)
                else:
                    verdict = pos.on_answer(200, seq=seg.seq)
                    return LocalSegment(ch, reader, first)
        if verdict.step is not Step.END and verdict.delay > 0:
            await asyncio.sleep(verdict.delay)
        return None

    def close(self) -> None:
        if self._current is not None:
            self._current.release()
            self._current = None
        self.position.ended = True


class LocalSegmentWriter:
    """Publishes one segment in process. ``write`` never waits: readers take the bytes at their
    own pace from the shared buffer."""

    def __init__(self, channel: ChannelPort, seq: int = -1, *, reset: bool = False) -> None:
        self._channel = channel
        self._asked = seq
        self._reset = reset
        self._segment: Segment | None = None
        self.seq = seq

    async def __aenter__(self) -> LocalSegmentWriter:
        plan = self._channel.open_post(self._asked, reset=self._reset)
        if plan.outcome is PostOutcome.CLOSED:
            raise TrickleChannelClosed("channel closed", self._channel.name, plan.seq)
        if plan.outcome is PostOutcome.BAD or plan.segment is None:
            raise TrickleUsageError(f"bad seq {self._asked}", self._channel.name, plan.seq)
        self._segment = plan.segment
        self.seq = plan.seq
        return self

    def write(self, data: bytes) -> None:
        seg = self._segment
        if seg is None:
            raise TrickleUsageError("segment writer not entered", self._channel.name, self.seq)
        if not data:
            return
        if self._channel.write(seg, data) is WriteResult.TOO_LARGE:
            raise TrickleSegmentTooLarge(
                self._channel.limits.max_segment_bytes, self._channel.name, self.seq
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seg, self._segment = self._segment, None
        if seg is None:
            return
        if exc_type is None:
            self._channel.end_post(seg)
        elif seg.started:
            seg.break_off()
        else:
            self._channel.end_post(seg)
        self._channel.release_post(seg)
