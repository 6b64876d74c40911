"""One trickle channel on the server: the sans-IO rules plus the segments' bytes, shared by the
HTTP handlers and by in-process readers/writers (the orchestrator reads ``<mid>`` and writes
``<mid>-out`` without going through HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .config import TrickleLimits, TrickleStats, WriteResult
from .local import LocalSegmentWriter, LocalSubscription
from .rules import ChannelRules, GetPlan, PostPlan
from .segment import Segment

__all__ = ["Channel", "ChannelInfo", "SegmentInfo"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    seq: int
    size: int
    started: bool
    closed: bool
    readers: int
    writers: int


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    name: str
    mime: str
    next_write: int
    closed: bool
    last_write: float
    segments: tuple[SegmentInfo, ...] = field(default=())


class Channel:
    def __init__(
        self,
        name: str,
        mime: str,
        *,
        limits: TrickleLimits,
        stats: TrickleStats,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.mime = mime
        self.limits = limits
        self.stats = stats
        self.clock = clock
        self.rules: ChannelRules[Segment] = ChannelRules(Segment, clock())

    @property
    def closed(self) -> bool:
        return self.rules.closed

    @property
    def next_write(self) -> int:
        return self.rules.next_write

    # --- publishing -------------------------------------------------------------------------

    def open_post(self, seq: int, *, reset: bool = False) -> PostPlan[Segment]:
        plan = self.rules.post(seq, reset=reset)
        if plan.segment is not None:
            plan.segment.writers += 1
        return plan

    def write(self, seg: Segment, data: bytes) -> WriteResult:
        """Append one chunk (non-empty) of the segment being published."""
        if seg.size + len(data) > self.limits.max_segment_bytes:
            if not seg.broken:
                seg.break_off()
                self.stats.rejected_oversize += 1
            return WriteResult.TOO_LARGE
        started = seg.started
        if not self.rules.first_byte(seg, self.clock()):
            return WriteResult.DISCARDED
        if not started:
            self.stats.segments_started += 1
        seg.append(data)
        self.stats.bytes_in += len(data)
        return WriteResult.OK

    def end_post(self, seg: Segment) -> None:
        """The body ended (or the POST was woken empty by a close)."""
        self.rules.end_post(seg, self.clock())

    def abandon_post(self, seg: Segment) -> None:
        """The publisher went away. A started segment is broken off (readers are cut); one that
        never got a byte stays as it is, so a retried POST can take it over."""
        if seg.started and not seg.closed:
            seg.break_off()
            self.stats.publishers_lost += 1

    def release_post(self, seg: Segment) -> None:
        seg.writers -= 1

    # --- subscribing ------------------------------------------------------------------------

    def open_get(self, seq: int) -> GetPlan[Segment]:
        return self.rules.get(seq)

    def enter(self, seg: Segment) -> bool:
        """Count a reader in ``seg``; False (and counted) when the per-segment cap is reached."""
        if seg.readers >= self.limits.max_subscribers_per_segment:
            self.stats.rejected_subscribers += 1
            return False
        seg.readers += 1
        return True

    def leave(self, seg: Segment, *, cut: bool = False) -> None:
        seg.readers -= 1
        if cut:
            self.stats.subscribers_cut += 1

    # --- deletes ----------------------------------------------------------------------------

    def drop(self, seq: int) -> bool:
        return self.rules.drop(seq) is not None

    def close(self) -> None:
        self.rules.close()

    # --- in-process use ---------------------------------------------------------------------

    def subscribe(self, start_seq: int = -1) -> LocalSubscription:
        """Read this channel's segments in process, with the same rules as a remote subscriber
        (``start_seq`` -1: next segment, -2: current one)."""
        return LocalSubscription(self, start_seq)

    def segment_writer(self, seq: int = -1, *, reset: bool = False) -> LocalSegmentWriter:
        """``async with channel.segment_writer() as w: w.write(chunk)`` publishes one segment."""
        return LocalSegmentWriter(self, seq, reset=reset)

    async def write_segment(self, data: bytes, seq: int = -1) -> int:
        """Publish one whole segment in process; returns its seq."""
        async with self.segment_writer(seq) as writer:
            if data:
                writer.write(data)
        return writer.seq

    def info(self) -> ChannelInfo:
        segs = tuple(
            SegmentInfo(s.seq, s.size, s.started, s.closed, s.readers, s.writers)
            for s in self.rules.held()
        )
        r = self.rules
        return ChannelInfo(self.name, self.mime, r.next_write, r.closed, r.last_write, segs)
