"""Starts a transcode pipeline for every live stream and ends it with the stream.

The rendition ladder of a stream comes from, first to last: the auth webhook's ``profiles`` /
``presets`` (the stream request's ``ladder``), else the gateway's ``-transcodingOptions``.
Streams pushed over HTTP are transcoded by the push handler itself and skipped here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from segmenter import Segment

from ...clock import SYSTEM, Clock
from ...errors import ConfigError
from ...livepeer.profiles import PRESETS, Profile, parse_profiles_json
from ...metrics import NULL_METRICS, Metrics
from ...publish.hls import HLSPublisher
from ...request import INGEST_HTTP_PUSH, Ladder
from ...stream.hub import Stream
from ...usage import UsageSink
from .pipeline import SegmentTranscoder, TranscodePipeline, TranscodeTotals

log = logging.getLogger("mediagw.transcode")

__all__ = ["TranscodeManager", "ladder_for"]


def ladder_for(ladder: Ladder, default: Sequence[Profile]) -> tuple[Profile, ...]:
    """The ladder: the webhook's presets + profiles (concatenated, as go-livepeer), or default."""
    out: list[Profile] = []
    for name in ladder.presets:
        if name not in PRESETS:
            raise ConfigError(f"auth webhook preset {name!r} is unknown")
        out.append(PRESETS[name])
    if ladder.profiles is not None:
        out.extend(parse_profiles_json([dict(p) for p in ladder.profiles]))
    return tuple(out) if out else tuple(default)


class TranscodeManager:
    """A hub listener owning one ``TranscodePipeline`` per live stream."""

    def __init__(
        self,
        hls: HLSPublisher,
        transcoder: SegmentTranscoder,
        default_ladder: Sequence[Profile],
        *,
        regions: Sequence[str] = (),
        concurrency: int = 3,
        usage: UsageSink | None = None,
        metrics: Metrics = NULL_METRICS,
        clock: Clock = SYSTEM,
    ) -> None:
        self.usage = usage
        self.metrics = metrics
        self.clock = clock
        self.hls = hls
        self.transcoder = transcoder
        self.default_ladder = tuple(default_ladder)
        self.regions = tuple(regions)
        self.concurrency = concurrency
        self.pipelines: dict[str, TranscodePipeline] = {}
        self.ending: dict[str, TranscodePipeline] = {}  # ended streams' pipelines, finishing
        self.totals: dict[str, TranscodeTotals] = {}  # per stream, until it leaves the hub
        self._closing: set[asyncio.Task[None]] = set()

    def on_stream_start(self, stream: Stream) -> None:
        request = stream.request
        if request.ingest == INGEST_HTTP_PUSH or request.pipeline:
            return  # HTTP push transcodes itself; a pipeline stream goes to live AI
        try:
            ladder = ladder_for(request.ladder, self.default_ladder)
        except ConfigError as exc:
            log.error("no transcoding for stream", extra={"stream": stream.id, "error": str(exc)})
            return
        if not ladder:
            return
        regions = request.regions or self.regions
        self.pipelines[stream.id] = TranscodePipeline(
            stream, self.hls, self.transcoder, ladder,
            concurrency=self.concurrency, regions=regions,
            previous=self.ending.get(stream.id),  # a reconnect: it lists its last ones first
            usage=self.usage,
            metrics=self.metrics,
            totals=self.totals.setdefault(stream.id, TranscodeTotals()),
            monotonic=self.clock.monotonic,
        )  # fmt: skip

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        pass

    def on_stream_end(self, stream: Stream) -> None:
        pipeline = self.pipelines.pop(stream.id, None)
        if pipeline is not None:
            pipeline.end_input()
            self.ending[stream.id] = pipeline
            task = asyncio.get_running_loop().create_task(self._close(pipeline))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close(self, pipeline: TranscodePipeline, timeout: float = 30.0) -> None:
        try:
            await pipeline.close(timeout)
        finally:
            if self.ending.get(pipeline.stream.id) is pipeline:
                del self.ending[pipeline.stream.id]

    def on_stream_removed(self, stream: Stream) -> None:
        self.totals.pop(stream.id, None)

    def transcoded(self, stream_id: str) -> tuple[int, float, int]:
        """A stream's transcoded (segments, seconds, bytes) since it joined the hub."""
        totals = self.totals.get(stream_id) or TranscodeTotals()
        return totals.segments, totals.seconds, totals.bytes

    async def close(self) -> None:
        for stream_id in list(self.pipelines):
            pipeline = self.pipelines.pop(stream_id)
            self._closing.add(asyncio.get_running_loop().create_task(self._close(pipeline, 5.0)))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
