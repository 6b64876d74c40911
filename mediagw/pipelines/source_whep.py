"""WHEP playback of every live stream's source rendition: ``POST /webrtc/{stream}``.

Livepeer Studio's playback info lists a ``"WebRTC (H264)"`` source at ``/webrtc/{playbackId}``;
here the playback id is the hub's stream id. The source H.264 is passed through, never decoded nor
encoded: the stream's keyframe-aligned MPEG-TS segments (as the hub hands them to its listeners)
are demuxed into access units and paced out by ``whep_play``, exactly as the live AI output is.
Video only: the segments carry AAC, which WebRTC does not (Opus would mean transcoding audio).
WebRTC has no decode-order timestamps, so a source with B-frames cannot be passed through: its
feed ends at its first segment (the viewers' tracks end) and further offers get 422 until the
stream is published again (Studio, too, plays such streams over HLS only).

On demand: a stream is fed only while at least one WHEP viewer watches it. An offer starts its
feed; the first segment cut while nobody watches any more ends it, before anything is demuxed.
A viewer starts at the next keyframe (each segment starts with one); a slow viewer drops to a
keyframe (``webrtc.Subscription``); the hub hands segments over without waiting (a queue that
drops the oldest). When the stream ends, what is queued plays out (bounded), then the viewers'
tracks end. An offer for a stream that is not live is refused with 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from aiohttp import web

from segmenter import Segment
from webrtc import (
    CapacityError,
    EncodedSource,
    NotFoundError,
    UnsupportedMediaError,
    VideoAccessUnit,
    WhepEgress,
    add_whep_routes,
)
from webrtc.routes import Authorize

from ..stream.hub import Stream, StreamHub
from . import whep_play
from .whep_play import PlayStats

log = logging.getLogger("mediagw.source_whep")

__all__ = ["SourceWhep"]

NAME_PREFIX = "source:"  # the WhepEgress source of stream ID is "source:ID" (apart from "-out")
QUEUE = 4  # segments waiting to be played; the oldest goes when a feed falls behind
PLAYOUT_TIMEOUT = 10.0  # seconds the viewers of an ended stream get to see its last segments
B_FRAMES = (
    "has B-frames, which WebRTC cannot carry without re-encoding: play it over HLS, or publish "
    "H.264 without B-frames (ffmpeg -bf 0; OBS: x264 option bframes=0) to play it over WebRTC"
)


@dataclass(eq=False)
class _Feed:
    stream_id: str
    source: EncodedSource
    segments: whep_play.Segments
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return NAME_PREFIX + self.stream_id

    def watched(self) -> bool:
        return self.source.viewers > 0


class SourceWhep:
    """A hub listener that feeds ``whep`` with the source video of the streams being watched."""

    def __init__(
        self,
        hub: StreamHub,
        whep: WhepEgress,
        *,
        executor: Executor | None = None,
        queue: int = QUEUE,
        on_played: Callable[[str, float], None] | None = None,
    ) -> None:
        self.hub = hub
        self.on_played = on_played  # (stream id, viewer-seconds) per segment fed: usage
        self.whep = whep
        self.executor = executor
        self.queue = queue
        self.stats = PlayStats()  # ``demuxed`` stays 0 while nobody watches
        self.feeds_started = 0
        self._feeds: dict[str, _Feed] = {}  # live streams with a feed
        self._ending: dict[str, _Feed] = {}  # ended streams whose last segments play out
        self.refused: set[str] = set()  # live streams with B-frames (until published again)

    def routes(
        self,
        app: web.Application,
        prefix: str = "/webrtc/{stream}",
        *,
        authorize: Authorize | None = None,
        cors_origin: str | None = "*",
    ) -> None:
        """Mount WHEP at ``prefix`` (the session resource, DELETE, CORS and Link headers of
        ``add_whep_routes``). ``authorize`` runs before the offer is read (playback access
        control: raise an ``aiohttp.web`` HTTP exception to refuse)."""
        add_whep_routes(
            app,
            prefix,
            self.whep,
            stream_of=self._watch,
            authorize=authorize,
            cors_origin=cors_origin,
        )

    @property
    def feeds(self) -> int:
        return len(self._feeds) + len(self._ending)

    def _watch(self, request: web.Request) -> str:
        """The WhepEgress source an offer plays: the stream's feed, started if needed."""
        stream_id = request.match_info["stream"]
        stream = self.hub.get(stream_id)
        if stream is None or not stream.live:
            raise NotFoundError(
                f"stream {stream_id!r} is not live: publish it first (RTMP or WHIP), "
                "then play it over WebRTC"
            )
        if stream_id in self.refused:
            raise UnsupportedMediaError(f"stream {stream_id!r} {B_FRAMES}")
        if stream_id in self._ending:
            raise CapacityError(
                f"stream {stream_id!r} was published again a moment ago and its previous "
                "session is still ending: retry in a few seconds"
            )
        feed = self._feeds.get(stream_id) or self._start(stream_id)
        return feed.name

    def _start(self, stream_id: str) -> _Feed:
        name = NAME_PREFIX + stream_id
        feed = _Feed(stream_id, self.whep.add_source(name), asyncio.Queue(self.queue))
        feed.task = asyncio.get_running_loop().create_task(self._run(feed), name=f"whep:{name}")
        self._feeds[stream_id] = feed
        self.feeds_started += 1
        return feed

    async def _run(self, feed: _Feed) -> None:
        try:
            await whep_play.play(
                feed.source,
                feed.segments,
                executor=self.executor,
                stats=self.stats,
                watched=feed.watched,
                accept=lambda units: self._accept(feed, units),
            )
        finally:
            # forgotten and removed before anything else runs: a new offer starts a new feed
            if self._feeds.get(feed.stream_id) is feed:
                del self._feeds[feed.stream_id]
            if self._ending.get(feed.stream_id) is feed:
                del self._ending[feed.stream_id]
            await self.whep.remove_source(feed.name)  # the viewers' tracks end

    def _accept(self, feed: _Feed, units: list[VideoAccessUnit]) -> bool:
        """False (and later offers refused) if the source has B-frames (decode order != pts)."""
        if all(unit.pts == unit.dts for unit in units):
            return True
        if feed.stream_id in self._feeds:  # still live
            self.refused.add(feed.stream_id)
        log.warning("no WebRTC playback", extra={"stream": feed.stream_id, "error": B_FRAMES})
        return False

    # -- StreamListener ------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        self.refused.discard(stream.id)
        ending = self._ending.get(stream.id)
        if ending is not None and ending.task is not None:  # a new session: stop the play-out
            ending.task.cancel()

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        feed = self._feeds.get(stream.id)
        if feed is not None:
            whep_play.offer(feed.segments, segment.data)
            if self.on_played is not None and feed.watched():  # approximate: viewers now
                self.on_played(stream.id, segment.duration * feed.source.viewers)

    def on_stream_end(self, stream: Stream) -> None:
        self.refused.discard(stream.id)
        feed = self._feeds.pop(stream.id, None)
        if feed is not None and feed.task is not None:
            self._ending[stream.id] = feed
            whep_play.offer(feed.segments, None)
            asyncio.get_running_loop().call_later(PLAYOUT_TIMEOUT, feed.task.cancel)

    def on_stream_removed(self, stream: Stream) -> None:
        self.refused.discard(stream.id)

    async def close(self) -> None:
        tasks = [f.task for f in (*self._feeds.values(), *self._ending.values()) if f.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
