"""The AI output as it arrives: each output segment's chunks are demuxed on the fly.

``OutputStream`` is what a ``LiveSession`` tells about an output segment while it is being
read (``begin`` / ``chunk`` / ``broken``); the manager finishes it (``finish``, then
``complete`` once the whole segment is listed in HLS). Every H.264 access unit goes to the
WHEP ``UnitFeed`` the moment its last byte arrived (no decode, no re-encode, one demux for all
viewers), and the whole output is described to ``hook`` as a progress stream (the out stream
id is ``{id}-out``)::

    SegmentStart(seq)            at the segment's first access unit (configs from the TS)
    SegmentProgress(seq, b"", packets)   per chunk that completed access units
    Segment(seq, ...)            once the whole segment is listed in HLS (same seq, same bytes)

``seq`` is the segment's media sequence number in ``/stream/{id}-out.m3u8``. A segment that
breaks off (orchestrator lost, POST died) or is dropped as late is never listed and gets no
``Segment``: the next ``SegmentStart`` supersedes it, and may carry the same ``seq`` (the
number was not used). Consumers must therefore treat any ``SegmentStart`` as "forget the open
segment". The demuxer costs about 0.1 ms per 720p frame, so it runs on the event loop.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from segmenter import (
    AudioConfig,
    MediaPacket,
    Progress,
    Segment,
    SegmenterError,
    SegmentProgress,
    SegmentStart,
    VideoConfig,
)
from segmenter.tsdemux import TsDemuxer
from webrtc import VideoAccessUnit

from ..unit_play import UnitFeed

__all__ = ["OutputStats", "OutputStream", "ProgressHook"]

log = logging.getLogger("mediagw.live_ai.output")

ProgressHook = Callable[[str, Progress], None]
TRACE = 512  # (event, seq, monotonic) entries kept for tests and latency measurements


@dataclass
class OutputStats:
    segments: int = 0  # output segments begun
    completed: int = 0  # ... listed whole
    broken: int = 0  # ... ended broken or late (no Segment)
    units: int = 0  # video access units demuxed
    unplayable: int = 0  # segments the demuxer gave up on (their later units are not played)


class OutputStream:
    def __init__(
        self,
        out_id: str,
        *,
        feed: UnitFeed | None,
        hook: Callable[[], ProgressHook],
        seq_base: Callable[[], int],
        clock: Callable[[], float],
    ) -> None:
        self.out_id = out_id
        self.feed = feed
        self._hook = hook  # read at each call: it may be connected after the run started
        self._seq_base = seq_base
        self._clock = clock
        self.stats = OutputStats()
        self.trace: deque[tuple[str, int, float]] = deque(maxlen=TRACE)
        self._demux: TsDemuxer | None = None
        self._seq = -1  # the open segment's seq in HLS, -1: none open
        self._started = False
        self._first = True  # no segment completed yet: the first one is a discontinuity
        self._start_pts: int | None = None
        self._video_frames = 0
        self._audio_frames = 0
        self._configs: tuple[VideoConfig | None, AudioConfig | None] = (None, None)  # last seen
        self._announced: tuple[VideoConfig | None, AudioConfig | None] = (None, None)
        self._held: list[MediaPacket] = []  # demuxed, not yet in the progress stream
        self._fed = False  # the open segment's first access unit went to WHEP

    @property
    def open(self) -> bool:
        return self._seq >= 0

    def _emit(self, item: Progress) -> None:
        try:
            self._hook()(self.out_id, item)
        except Exception:  # the consumer's bug must not stop the output
            log.exception("output progress hook failed", extra={"stream": self.out_id})

    # -- LiveSession side --------------------------------------------------------------------

    def begin(self, seq: int) -> None:
        """Output segment ``seq`` (the session's numbering) starts; supersedes an open one."""
        if self.open:
            self.stats.broken += 1
        self._seq = seq + self._seq_base()
        self._demux = TsDemuxer()
        self._started = False
        self._fed = False
        self._held = []
        self._start_pts = None
        self._video_frames = self._audio_frames = 0
        self.stats.segments += 1
        self.trace.append(("begin", self._seq, self._clock()))

    def chunk(self, data: bytes) -> None:
        demux = self._demux
        if demux is None:
            return
        try:
            packets = demux.feed(data)
        except SegmenterError as exc:
            self._unplayable(exc)
            return
        self._take(packets)

    def broken(self) -> None:
        """The open segment broke off: nothing more of it is played or announced."""
        if self.open:
            self.stats.broken += 1
            self.trace.append(("broken", self._seq, self._clock()))
        self._seq = -1
        self._demux = None

    # -- manager side ------------------------------------------------------------------------

    def finish(self) -> None:
        """The open segment's bytes are all in: release its last access unit."""
        demux = self._demux
        if demux is None:
            return
        self._demux = None
        try:
            packets = demux.flush()
        except SegmenterError as exc:
            self._unplayable(exc)
            return
        self._take(packets, demux)  # with what was held back, if anything

    def complete(self, seq: int, data: bytes, duration_ticks: int) -> None:
        """The segment was listed in HLS as ``seq``: announce it whole."""
        announced = seq == self._seq and self._started
        self._seq = -1
        self._demux = None
        if not announced:
            return  # no SegmentStart went out for it: nothing to close
        self.stats.completed += 1
        segment = Segment(
            seq=seq,
            data=data,
            start_pts=self._start_pts or 0,
            duration_ticks=duration_ticks,
            discontinuity=self._first,
            video=self._announced[0],
            audio=self._announced[1],
            video_frames=self._video_frames,
            audio_frames=self._audio_frames,
        )
        self._first = False
        self.trace.append(("complete", seq, self._clock()))
        self._emit(segment)

    @property
    def codecs(self) -> str:
        """RFC 6381 codecs of the output as last seen (for the playlist's CODECS)."""
        return ",".join(c.codecs_tag for c in self._configs if c is not None)

    # -- internals ---------------------------------------------------------------------------

    def _unplayable(self, exc: SegmenterError) -> None:
        self.stats.unplayable += 1
        log.warning("AI output not demuxable", extra={"stream": self.out_id, "error": str(exc)})
        self._demux = None

    def _take(self, packets: list[MediaPacket], demux: TsDemuxer | None = None) -> None:
        """Access units out: to WHEP at once; to the progress stream once the segment's configs
        are known (``demux`` given: the segment's bytes are all in, announce what there is)."""
        final = demux is not None
        demux = demux or self._demux
        if not self.open or demux is None:
            return
        feed = self.feed
        for packet in packets:
            if packet.kind == "video":
                if not self._fed:
                    self._fed = True
                    self.trace.append(("first_unit", self._seq, self._clock()))
                self._video_frames += 1
                self.stats.units += 1
                if feed is not None:
                    feed.offer(VideoAccessUnit(packet.data, packet.pts, packet.dts,
                                               packet.keyframe))  # fmt: skip
            else:
                self._audio_frames += 1
        self._held.extend(packets)
        if not self._held:
            return
        # a config not in this segment's bytes yet is the last one seen (the same output): a
        # segment may start with an audio frame (the one overlapping its keyframe), or with the
        # keyframe before any audio
        video, audio = demux.video or self._configs[0], demux.audio or self._configs[1]
        if not demux.has_audio:
            audio = None
        if not demux.has_video:
            video = None
        self._configs = (video, audio)
        if not self._started:
            unknown = (demux.has_audio and audio is None) or (demux.has_video and video is None)
            if unknown and not final:
                return  # the very first configs are a few ms away: the init needs them
            self._started = True
            self._start_pts = self._held[0].pts
            self._announced = (video, audio)
            self._emit(SegmentStart(self._seq, self._start_pts, self._first, video, audio))
        held, self._held = self._held, []
        self._emit(SegmentProgress(self._seq, b"", tuple(held)))
