"""The transcode pipeline of one stream: source segments in, ABR renditions out to HLS.

Segments are taken from the stream's bounded subscription and handed to a ``SegmentTranscoder``
(the Livepeer network, or anything else that turns one segment into renditions). Up to
``concurrency`` segments are in flight; their renditions are published strictly in sequence
order through a reorder buffer, so every rendition playlist grows in step with the source.

A segment that fails on every attempt is skipped in the rendition playlists (counted and logged);
the source rendition always has it. A slow network never stalls ingest: the subscription drops
the oldest waiting segments when more than ``backlog`` pile up (counted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from segmenter import Segment
from segmenter.probe import h264_codecs_tag

from ..livepeer.profiles import Profile
from ..publish.hls import HLSPublisher
from ..stream.hub import Stream

log = logging.getLogger("mediagw.transcode")

__all__ = [
    "RenditionData",
    "SegmentTranscoder",
    "TranscodeJob",
    "TranscodeOutcome",
    "TranscodePipeline",
    "TranscodeStats",
]


@dataclass(frozen=True, slots=True)
class TranscodeJob:
    stream_id: str
    seq: int
    data: bytes
    duration: float  # seconds
    profiles: tuple[Profile, ...]
    regions: tuple[str, ...] = ()
    http_push: bool = False  # HTTP push ingest: SegmentSlicing capability, as go-livepeer
    timeout_multiplier: float = 1.0


@dataclass(frozen=True, slots=True)
class RenditionData:
    profile: Profile
    data: bytes
    pixels: int


@dataclass(frozen=True, slots=True)
class TranscodeOutcome:
    renditions: tuple[RenditionData, ...] = ()
    error: str | None = None
    orchestrator: str = ""
    attempts: int = 0
    pixels: int = 0  # encoded pixels reported by the orchestrator (what it charged for)
    tickets: int = 0  # tickets sent for this segment, over every attempt
    ev_wei: Fraction = Fraction(0)  # their expected value
    retry_same: bool = False  # the attempt failed for a reason that fresh params fix

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.renditions)


class SegmentTranscoder(Protocol):
    async def transcode(self, job: TranscodeJob) -> TranscodeOutcome: ...

    async def end_stream(self, stream_id: str) -> None: ...


@dataclass(slots=True)
class TranscodeStats:
    submitted: int = 0
    transcoded: int = 0
    failed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)


def rendition_codecs(ts: bytes, audio: bool) -> str:
    """CODECS for a rendition: its real H.264 profile/level, plus AAC when the source has audio."""
    video = h264_codecs_tag(ts) or ""
    return ",".join(c for c in (video, "mp4a.40.2" if audio else "") if c)


class TranscodePipeline:
    def __init__(
        self,
        stream: Stream,
        hls: HLSPublisher,
        transcoder: SegmentTranscoder,
        profiles: Sequence[Profile],
        *,
        concurrency: int = 3,
        backlog: int = 8,
        regions: Sequence[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.hls = hls
        self.transcoder = transcoder
        self.profiles = tuple(profiles)
        self.regions = tuple(regions)
        self.stats = TranscodeStats()
        self._monotonic = monotonic
        self._slots = asyncio.Semaphore(concurrency)
        self._subscription = stream.subscribe(maxsize=backlog, name="transcode")
        self._done: dict[int, tuple[Segment, TranscodeOutcome]] = {}
        self._order: list[int] = []  # seqs in arrival order, published from the front
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(), name=f"transcode:{stream.id}"
        )

    async def _run(self) -> None:
        try:
            async for segment in self._subscription:
                await self._slots.acquire()
                self._order.append(segment.seq)
                task = asyncio.get_running_loop().create_task(self._one(segment))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.stats.dropped = self._subscription.dropped

    async def _one(self, segment: Segment) -> None:
        started = self._monotonic()
        job = TranscodeJob(
            self.stream.id,
            segment.seq,
            segment.data,
            segment.duration,
            self.profiles,
            self.regions,
        )
        self.stats.submitted += 1
        try:
            outcome = await self.transcoder.transcode(job)
        except Exception as exc:  # one segment's bug never ends the pipeline
            log.exception("transcode crashed", extra={"stream": self.stream.id, "seq": segment.seq})
            outcome = TranscodeOutcome(error=f"internal error: {exc}")
        finally:
            self._slots.release()
        usage = self.stream.stats
        usage.transcode_pixels += outcome.pixels
        usage.tickets_sent += outcome.tickets
        usage.ev_sent_wei += outcome.ev_wei
        if outcome.ok:
            self.stats.transcoded += 1
            self.stats.latencies.append(self._monotonic() - started)
        else:
            self.stats.failed += 1
            log.warning(
                "segment not transcoded; renditions skip it",
                extra={
                    "stream": self.stream.id,
                    "seq": segment.seq,
                    "attempts": outcome.attempts,
                    "error": outcome.error,
                },
            )
        self._done[segment.seq] = (segment, outcome)
        self._publish_ready()

    def _publish_ready(self) -> None:
        while self._order and self._order[0] in self._done:
            seq = self._order.pop(0)
            segment, outcome = self._done.pop(seq)
            if not outcome.ok:
                continue
            pdt = segment.meta.get("pdt", 0.0)
            for rendition in outcome.renditions:
                p = rendition.profile
                self.hls.publish(
                    self.stream.id,
                    p.name,
                    seq,
                    rendition.data,
                    segment.duration,
                    pdt=pdt,
                    discontinuity=segment.discontinuity,
                    resolution=(p.width, p.height),
                    codecs=rendition_codecs(rendition.data, segment.audio is not None),
                )

    async def close(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for in-flight segments, then tell the transcoder the stream ended."""
        self._subscription.unsubscribe()
        try:
            await asyncio.wait_for(asyncio.shield(self._runner), timeout)
        except TimeoutError:
            self._runner.cancel()
            for task in self._tasks:
                task.cancel()
        await self.transcoder.end_stream(self.stream.id)

    @property
    def finished(self) -> bool:
        return self._runner.done()
