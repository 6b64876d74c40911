"""The transcode pipeline of one stream: source segments in, ABR renditions out to HLS.

Segments are taken from the stream's bounded subscription and handed to a ``SegmentTranscoder``
(the Livepeer network, or anything else that turns one segment into renditions). Up to
``concurrency`` segments are in flight; their renditions are published strictly in sequence
order through a reorder buffer, so every rendition playlist grows in step with the source.

A segment that fails on every attempt is listed as an ``EXT-X-GAP`` in the rendition playlists
(counted and logged), so they keep the source's media sequence numbers; the source always has
it. A slow network never stalls ingest: the subscription drops the oldest waiting segments when
more than ``backlog`` pile up (counted, and listed as gaps too).

A pipeline serves one publish session. Once the stream has ended and its last segment is
listed, it ends its renditions (``EXT-X-ENDLIST``). After a reconnect, the new session's
pipeline lists nothing before the previous one has ended its renditions, so every playlist
goes on in order, the first new segment with a discontinuity.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from segmenter import Segment
from segmenter.probe import h264_codecs_tag

from ...clock import SYSTEM
from ...livepeer.profiles import Profile
from ...metrics import NULL_METRICS, Metrics, error_code
from ...publish.hls import HLSPublisher
from ...stream.hub import Stream
from ...usage import TRANSCODE, NullUsage, StreamMeter, UsageSink

log = logging.getLogger("mediagw.transcode")

__all__ = [
    "RenditionData",
    "SegmentTranscoder",
    "TranscodeJob",
    "TranscodeOutcome",
    "TranscodePipeline",
    "TranscodeStats",
    "TranscodeTotals",
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
    session: int = 0  # the stream's publish session, and who it is for: for usage events
    principal: str = ""


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
class TranscodeTotals:
    """What a stream's pipelines produced, over all its sessions: source segments transcoded,
    their seconds, and the bytes of every rendition (the platform's ``transcoded*`` counters)."""

    segments: int = 0
    seconds: float = 0.0
    bytes: int = 0


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
    """One publish session of one stream: transcodes its segments, lists them in order, and
    ends its renditions (``EXT-X-ENDLIST``) once the last one is listed."""

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
        previous: TranscodePipeline | None = None,
        usage: UsageSink | None = None,
        totals: TranscodeTotals | None = None,
        metrics: Metrics = NULL_METRICS,
        monotonic: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self.stream = stream
        self.totals = totals if totals is not None else TranscodeTotals()
        self.hls = hls
        self.transcoder = transcoder
        self.profiles = tuple(profiles)
        self.regions = tuple(regions)
        self.session = stream.stats.sessions  # the publish session this pipeline serves
        self.meter = StreamMeter(
            usage or NullUsage(), stream.id, self.session, stream.request.principal
        )
        self.stats = TranscodeStats()
        self.metrics = metrics  # per segment: transcoded or failed, orchestrator swaps
        self._profiles_label = ",".join(p.name for p in self.profiles)
        self._last_orchestrator = ""
        self._monotonic = monotonic
        self._slots = asyncio.Semaphore(concurrency)
        self._previous = previous  # the previous session's pipeline, maybe still finishing
        self._listing = previous is None  # False until the previous one has ended its renditions
        self._ended = False
        self._subscription = stream.subscribe(
            maxsize=backlog, name="transcode", on_drop=self._dropped
        )
        self._order: deque[Segment] = deque()  # in arrival order, listed from the front
        self._done: dict[int, TranscodeOutcome] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(), name=f"transcode:{stream.id}"
        )

    async def _run(self) -> None:
        try:
            if self._previous is not None:  # its last segments are listed before our first
                await asyncio.wait({self._previous._runner})
                self._listing = True
                self._list_ready()
            async for segment in self._subscription:
                self._order.append(segment)
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._one(segment))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.stats.dropped = self._subscription.dropped
            self._end()

    def _meter(self, outcome: TranscodeOutcome, ms: int) -> None:
        """One usage event per rendition: its pixels and the media time it covers."""
        o = outcome.orchestrator
        metered = 0
        for r in outcome.renditions:
            name = r.profile.name
            self.meter.emit(TRANSCODE, r.pixels, "pixel", o, detail=name, ms=ms, pixels=r.pixels)
            metered += r.pixels
        if outcome.pixels > metered:  # charged for more than the renditions show
            rest = outcome.pixels - metered
            self.meter.emit(TRANSCODE, rest, "pixel", o, pixels=rest)

    def _dropped(self, segment: Segment) -> None:
        """The subscription dropped its oldest waiting segment (the network is behind): it is
        newer than every segment taken and older than every one waiting, so it goes in order."""
        log.warning(
            "segment dropped before transcoding; renditions list a gap",
            extra={"stream": self.stream.id, "seq": segment.seq},
        )
        self._order.append(segment)
        self._done[segment.seq] = TranscodeOutcome(error="dropped: transcoding fell behind")
        self._list_ready()

    async def _one(self, segment: Segment) -> None:
        started = self._monotonic()
        job = TranscodeJob(
            self.stream.id,
            segment.seq,
            segment.data,
            segment.duration,
            self.profiles,
            self.regions,
            session=self.session,
            principal=self.stream.request.principal,
        )
        self.stats.submitted += 1
        try:
            outcome = await self.transcoder.transcode(job)
        except Exception as exc:  # one segment's bug never ends the pipeline
            log.exception("transcode crashed", extra={"stream": self.stream.id, "seq": segment.seq})
            outcome = TranscodeOutcome(error=f"internal error: {exc}")
        finally:
            self._slots.release()
        if outcome.pixels:  # what the orchestrator charged for (its payments: the transcoder)
            self._meter(outcome, round(segment.duration * 1000))
        if outcome.ok:
            self.stats.transcoded += 1
            self.totals.segments += 1
            self.totals.seconds += segment.duration
            self.totals.bytes += sum(len(r.data) for r in outcome.renditions)
            self.stats.latencies.append(self._monotonic() - started)
            self.metrics.segment_transcoded(
                self.stream.id, outcome.orchestrator, self._profiles_label, self.stats.latencies[-1]
            )
            if self._last_orchestrator and outcome.orchestrator != self._last_orchestrator:
                self.metrics.orchestrator_swap(self.stream.id)
            self._last_orchestrator = outcome.orchestrator
        else:
            self.stats.failed += 1
            self.metrics.segment_transcode_failed(self.stream.id, error_code(outcome.error))
            log.warning(
                "segment not transcoded; renditions list a gap",
                extra={
                    "stream": self.stream.id,
                    "seq": segment.seq,
                    "attempts": outcome.attempts,
                    "error": outcome.error,
                },
            )
        self._done[segment.seq] = outcome
        self._list_ready()

    def _list_ready(self) -> None:
        if not self._listing:
            return
        while self._order and self._order[0].seq in self._done:
            segment = self._order.popleft()
            self._list(segment, self._done.pop(segment.seq))

    def _list(self, segment: Segment, outcome: TranscodeOutcome | None) -> None:
        """List one segment in every rendition: its transcoded data, else a gap in its slot."""
        pdt = segment.meta.get("pdt", 0.0)
        if outcome is None or not outcome.ok:
            for p in self.profiles:
                self.hls.publish_gap(
                    self.stream.id,
                    p.name,
                    segment.seq,
                    segment.duration,
                    pdt=pdt,
                    discontinuity=segment.discontinuity,
                    session=self.session,
                )
            return
        for rendition in outcome.renditions:
            p = rendition.profile
            self.hls.publish(
                self.stream.id,
                p.name,
                segment.seq,
                rendition.data,
                segment.duration,
                pdt=pdt,
                discontinuity=segment.discontinuity,
                resolution=(p.width, p.height),
                codecs=rendition_codecs(rendition.data, segment.audio is not None),
                session=self.session,
            )

    def _end(self) -> None:
        """List what is done, a gap for anything still waiting (the pipeline was cut short),
        then EXT-X-ENDLIST on every rendition of this session."""
        if self._ended:
            return
        self._listing = True
        self._list_ready()
        left = [*self._order, *self._subscription.drain()]
        self._order.clear()
        self._ended = True
        if left:
            log.warning(
                "pipeline closed before every segment was transcoded; renditions list gaps",
                extra={"stream": self.stream.id, "segments": len(left)},
            )
        for segment in left:
            self._list(segment, None)
        self.hls.end(self.stream.id, [p.name for p in self.profiles], self.session)

    def end_input(self) -> None:
        """The publish session ended: take no segment of a later one (call it synchronously
        from the hub's end of the stream, before a reconnect can add any)."""
        self._subscription.unsubscribe()

    async def close(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for in-flight segments, end the renditions, then tell the transcoder
        the stream ended."""
        self.end_input()
        await asyncio.wait({self._runner}, timeout=timeout)
        if not self._runner.done():
            self._runner.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.wait({self._runner})
        await self.transcoder.end_stream(self.stream.id)

    @property
    def finished(self) -> bool:
        return self._runner.done()
