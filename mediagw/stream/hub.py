"""The stream hub: one ``Stream`` per manifest id, one publisher at a time, segments fanned out.

State of a stream (rules beside the table):

    state    event                 next     rule
    -------  --------------------  -------  ------------------------------------------------
    (none)   begin_publish         live     refused with LimitExceeded past max_sessions
    live     begin_publish         live     refused with StreamBusy: no silent takeover
    live     end_publish           ended    EXT-X-ENDLIST is published, segments stay
    ended    begin_publish         live     same Stream: seq continues, next segment flagged
                                            as a discontinuity by the segmenter; with a
                                            Resume ahead of it (live on another node since):
                                            the old Stream is dropped, a new one resumes
    ended    ttl expires (sweep)   (gone)   playlists and segments dropped

A publish that continues a stream another node owned (``StreamRequest.resume``) starts a new
``Stream`` where that node left off: its first segment gets seq ``next_seq`` and is a
discontinuity, its publish session number is ``session + 1``; ``Stream.resume`` keeps it for the
playlists, which continue their numbering from it. A stream this hub already knows ignores it:
the ordinary reconnect above already continues; so does a resume with a negative number (logged).

Listeners are synchronous and cheap (in-memory HLS, metrics); anything that does I/O subscribes
through a bounded ``Fanout`` and drops when slow, so no consumer can stall ingest.

The progress stream (``segmenter.Progress``: each segment's start, its media as it is muxed,
then the segment itself) reaches consumers that work before the cut: synchronous progress
listeners (LL-HLS) and ``Stream.subscribe_progress`` (live AI: the TS bytes too). A stream's
segmenter emits it only once someone asked for it: a subscriber, or ``want_progress`` (LL-HLS,
at its first player's request). Progress costs a few objects per packet and makes the publisher
hand media over frame by frame, so streams nobody watches that way do without.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from segmenter import Progress, Segment, Segmenter

from ..clock import SYSTEM
from ..errors import LimitExceeded, StreamBusy
from ..request import Resume, StreamRequest
from .fanout import Fanout, Subscription

log = logging.getLogger("mediagw.stream")

__all__ = ["Stream", "StreamHub", "StreamListener", "StreamStats"]


class StreamListener(Protocol):
    def on_stream_start(self, stream: Stream) -> None: ...
    def on_segment(self, stream: Stream, segment: Segment) -> None: ...
    def on_stream_end(self, stream: Stream) -> None: ...
    def on_stream_removed(self, stream: Stream) -> None: ...


@dataclass(slots=True)
class StreamStats:
    sessions: int = 0
    segments: int = 0
    bytes: int = 0
    media_seconds: float = 0.0
    video_frames: int = 0
    audio_frames: int = 0
    # keyframe received -> segment listed, seconds (the most recent ones)
    ingest_latency: deque[float] = field(default_factory=lambda: deque(maxlen=4096))


@dataclass(eq=False)
class Stream:
    """A live (or recently ended) stream. ``id`` is the public manifest/playback id."""

    id: str
    segmenter: Segmenter
    request: StreamRequest  # this publish session's (admission.py); replaced, never mutated
    state: str = "live"
    created_at: float = 0.0  # unix seconds, from the hub's clock
    ended_at: float = 0.0
    last_error: str | None = None
    recording_error: str | None = None  # the last recording write's (None once one succeeds)
    stats: StreamStats = field(default_factory=StreamStats)
    segments: Fanout[Segment] = field(default_factory=Fanout)
    progress: Fanout[Progress] = field(default_factory=Fanout)
    # the progress stream plus, as a bare ``Segment``, each segment that has none
    progress_whole: Fanout[Progress] = field(default_factory=Fanout)
    stop_ingest: Callable[[str], None] | None = None  # set by the live publish session
    resume: Resume | None = None  # where another node left the stream when this one took it

    @property
    def live(self) -> bool:
        return self.state == "live"

    def subscribe(
        self, maxsize: int = 16, name: str = "", on_drop: Callable[[Segment], None] | None = None
    ) -> Subscription[Segment]:
        return self.segments.subscribe(maxsize, name, on_drop)

    def subscribe_progress(
        self,
        maxsize: int = 1024,
        name: str = "",
        on_drop: Callable[[Progress], None] | None = None,
        *,
        ts: bool = False,
        whole: bool = False,
    ) -> Subscription[Progress]:
        """The progress stream from the next segment opened on; ``ts``: with the TS bytes as
        they are muxed. A consumer that drops an item must skip to the next ``SegmentStart``.
        ``whole``: also every segment listed without a progress stream (the one open when
        progress was turned on, or one not cut here: HTTP push), as a bare ``Segment``."""
        self.segmenter.enable_progress(ts=ts)
        fanout = self.progress_whole if whole else self.progress
        return fanout.subscribe(maxsize, name, on_drop)

    def describe(self) -> dict[str, Any]:
        s = self.stats
        return {
            "id": self.id,
            "state": self.state,
            "created_at": round(self.created_at, 3),
            "ended_at": round(self.ended_at, 3) if self.ended_at else None,
            "sessions": s.sessions,
            "segments": s.segments,
            "bytes": s.bytes,
            "media_seconds": round(s.media_seconds, 3),
            "video_frames": s.video_frames,
            "audio_frames": s.audio_frames,
            "last_error": self.last_error,
            "recording_error": self.recording_error,
            "labels": self.request.labels(),
        }


class StreamHub:
    def __init__(
        self,
        *,
        max_sessions: int = 100,
        segment_duration: float = 2.0,
        ended_ttl: float = 300.0,
        clock: Callable[[], float] = SYSTEM.wall,
    ) -> None:
        self.max_sessions = max_sessions
        self.segment_duration = segment_duration
        self.ended_ttl = ended_ttl
        self._clock = clock
        self._streams: dict[str, Stream] = {}
        self._listeners: list[StreamListener] = []
        self._started_hooks: list[Callable[[Stream], None]] = []
        self._progress_listeners: list[Callable[[Stream, Progress], None]] = []

    def add_progress_listener(self, listener: Callable[[Stream, Progress], None]) -> None:
        """The progress stream (packets, no TS bytes) of every stream that has one goes to
        ``listener`` too; ``want_progress`` turns it on for a stream."""
        self._progress_listeners.append(listener)

    def want_progress(self, stream_id: str) -> None:
        """Turn the progress stream on for ``stream_id`` (if it is here), from its next segment
        on, for the progress listeners: LL-HLS calls it when a player asks for the stream."""
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.segmenter.progress:
            stream.segmenter.enable_progress()

    def add_listener(self, listener: StreamListener) -> None:
        self._listeners.append(listener)

    def on_stream_started(self, hook: Callable[[Stream], None]) -> None:
        """Call ``hook`` every time a publish session starts (after listeners)."""
        self._started_hooks.append(hook)

    def get(self, stream_id: str) -> Stream | None:
        return self._streams.get(stream_id)

    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    def live_count(self) -> int:
        return sum(1 for s in self._streams.values() if s.live)

    def begin_publish(self, request: StreamRequest | str) -> Stream:
        """A publish session of ``request`` (an admitted request, or a bare stream id) begins."""
        if isinstance(request, str):
            request = StreamRequest(request)
        stream_id = request.id
        stream = self._streams.get(stream_id)
        if stream is not None and stream.live:
            raise StreamBusy(stream_id)
        if self.live_count() >= self.max_sessions:
            raise LimitExceeded(f"max sessions ({self.max_sessions}) reached")
        resume = request.resume
        if resume is not None and min(resume.next_seq, resume.discontinuity, resume.session) < 0:
            log.warning("stream resume ignored: numbers start afresh",
                        extra={"stream": stream_id, "resume": str(resume)})  # fmt: skip
            request = replace(request, resume=None)
            resume = None
        if (
            stream is not None
            and resume is not None
            and resume.next_seq > stream.segmenter.next_seq
        ):
            # ended here, then live on another node (A -> B -> back to A): the other node's
            # numbering is ahead, so this node's old copy is dropped and the stream continues
            # from the Resume, as on a node that never had it (no seq listed twice)
            self._forget(stream)
            stream = None
        if stream is None:
            segmenter = Segmenter(
                self.segment_duration,
                start_seq=resume.next_seq if resume else 0,
                discontinuity=resume is not None,
            )
            stream = Stream(stream_id, segmenter, request, created_at=self._clock(), resume=resume)
            stream.stats.sessions = resume.session if resume else 0
            self._streams[stream_id] = stream
        else:
            if resume is not None:  # known here and not behind: its numbering goes on as it is
                request = replace(request, resume=None)
            stream.segmenter.restart()
            stream.state = "live"
            stream.ended_at = 0.0
            stream.last_error = None
            stream.request = request
        stream.stats.sessions += 1
        for listener in self._listeners:
            listener.on_stream_start(stream)
        for hook in self._started_hooks:
            hook(stream)
        log.info("stream live", extra={"stream": stream_id, "session": stream.stats.sessions})
        return stream

    def add_progress(self, stream: Stream, item: Progress) -> None:
        for listener in self._progress_listeners:
            listener(stream, item)
        stream.progress.publish(item)
        stream.progress_whole.publish(item)

    def add_segment(self, stream: Stream, segment: Segment, *, progress: bool = False) -> None:
        """List ``segment``; ``progress``: it also ends its progress stream (it was opened
        while progress was on)."""
        s = stream.stats
        s.segments += 1
        s.bytes += len(segment.data)
        s.media_seconds += segment.duration
        s.video_frames += segment.video_frames
        s.audio_frames += segment.audio_frames
        for listener in self._listeners:
            listener.on_segment(stream, segment)
        stream.segments.publish(segment)
        if progress:
            self.add_progress(stream, segment)
        else:
            stream.progress_whole.publish(segment)

    def end_publish(self, stream: Stream, error: str | None = None) -> None:
        if not stream.live:
            return
        stream.state = "ended"
        stream.ended_at = self._clock()
        stream.last_error = error
        for listener in self._listeners:
            listener.on_stream_end(stream)
        extra = {"stream": stream.id, "segments": stream.stats.segments}
        if error:
            extra["error"] = error
        log.info("stream ended", extra=extra)

    def sweep(self) -> list[str]:
        """Forget streams that ended more than ``ended_ttl`` seconds ago; return their ids."""
        now = self._clock()
        gone = [
            s for s in self._streams.values() if not s.live and now - s.ended_at >= self.ended_ttl
        ]
        for stream in gone:
            self._forget(stream)
        return [s.id for s in gone]

    def _forget(self, stream: Stream) -> None:
        del self._streams[stream.id]
        stream.segments.close()
        stream.progress.close()
        stream.progress_whole.close()
        for listener in self._listeners:
            listener.on_stream_removed(stream)

    def close(self) -> None:
        for stream in list(self._streams.values()):
            if stream.live:
                self.end_publish(stream, "gateway shutting down")
            stream.segments.close()
            stream.progress.close()
            stream.progress_whole.close()
