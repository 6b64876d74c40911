"""LL-HLS on demand: hub streams are packaged as LL-HLS only once a player asks for one.

Packaging every stream's packets into fMP4 parts as they are cut costs a few objects per packet,
and it makes the publisher hand media to its thread frame by frame instead of in batches; most
streams are never played as LL-HLS. So the hub's streams reach ``LLHLSPublisher`` through this
gate:

- until a player asks (``demand``, called by ``LLHLSPublisher.wait``), a stream's progress
  stream stays off and the gate keeps references to its last listed segments (the bytes are the
  HLS store's: no copy);
- at the first request, those segments are demuxed (``TsDemuxer``, in the executor) and replayed
  into the publisher as start, packets and end, then the stream's progress stream is turned on
  (``want_progress``) and parts come live from its next segment; a segment listed meanwhile
  without a progress stream (the one open at that moment, HTTP push) is replayed the same way;
- everything for a stream reaches the publisher in listing order: live items that arrive while
  a replay is under way wait behind it.

A stream that ended before anyone asked is replayed with its end, so its LL-HLS playlist ends
as it would have. Replayed parts are cut by the same rules from the same video access units and
timestamps (the TS holds exactly what the segmenter muxed), so the playlist is the one made
live, part for part. Audio differs by rounding only: the muxer puts several AAC frames in one
PES, and the demuxer times them by sample count from its PTS (within a millisecond of the RTMP
timestamps they had live), so an audio frame can fall on the other side of a part boundary.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from segmenter import Progress, Segment, SegmenterError, SegmentStart
from segmenter.packet import SegmentProgress
from segmenter.tsdemux import TsDemuxer

from ..stream.hub import Stream
from .llhls import LLHLSPublisher

log = logging.getLogger("mediagw.llhls")

__all__ = ["LLOnDemand"]

# ("seg", session, whole segment) | ("item", session, progress item) | ("end", session, None)
_Entry = tuple[str, int, Progress | None]


@dataclass(eq=False)
class _Gate:
    demanded: bool = False
    recent: deque[_Entry] = field(default_factory=deque)  # before demand: listed segments, ends
    backlog: deque[_Entry] = field(default_factory=deque)  # after: waiting for the publisher
    draining: bool = False
    started: int | None = None  # seq of the last SegmentStart of the live progress stream


def replay_items(segment: Segment) -> list[Progress]:
    """A listed segment as its progress stream: start, its packets (demuxed), the segment.
    Runs in an executor (Python TS demux: a few ms per segment)."""
    demux = TsDemuxer()
    # the TS holds each PID's units in order; live, they came interleaved by decode time
    packets = sorted(demux.feed(segment.data) + demux.flush(), key=lambda p: p.dts)
    meta = {"pdt": segment.meta["pdt"]} if "pdt" in segment.meta else {}
    start = SegmentStart(
        segment.seq, segment.start_pts, segment.discontinuity, segment.video, segment.audio, meta
    )
    return [start, SegmentProgress(segment.seq, b"", tuple(packets)), segment]


class LLOnDemand:
    """The hub's listener and progress listener in front of ``llhls`` (see the module doc)."""

    def __init__(
        self,
        llhls: LLHLSPublisher,
        want_progress: Callable[[str], None],
        *,
        keep: int,
    ) -> None:
        self.llhls = llhls
        self._want_progress = want_progress
        self._keep = keep
        self._gates: dict[str, _Gate] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.replayed = 0  # segments replayed (tests, metrics)

    # -- the hub ---------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        self._gates.setdefault(stream.id, _Gate())
        self.llhls.on_stream_start(stream)

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        gate = self._gates.get(stream.id)
        if gate is None:
            return
        session = stream.stats.sessions
        if not gate.demanded:
            gate.recent.append(("seg", session, segment))
            if sum(1 for e in gate.recent if e[0] == "seg") > self._keep:
                while gate.recent and gate.recent.popleft()[0] != "seg":
                    pass
        elif segment.seq != gate.started:  # listed without a progress stream: replay it
            self._enqueue(stream.id, gate, ("seg", session, segment))

    def on_progress(self, stream: Stream, item: Progress) -> None:
        gate = self._gates.get(stream.id)
        if gate is None:
            gate = self._gates[stream.id] = _Gate(demanded=True)  # progress on before us
        gate.demanded = True
        if isinstance(item, SegmentStart):
            gate.started = item.seq
        if gate.draining or gate.backlog:
            self._enqueue(stream.id, gate, ("item", stream.stats.sessions, item))
        else:
            self.llhls.feed(stream.id, item, session=stream.stats.sessions)

    def on_stream_end(self, stream: Stream) -> None:
        gate = self._gates.get(stream.id)
        session = stream.stats.sessions
        if gate is not None and not gate.demanded:
            gate.recent.append(("end", session, None))
        elif gate is not None and (gate.draining or gate.backlog):
            self._enqueue(stream.id, gate, ("end", session, None))
        else:
            self.llhls.on_stream_end(stream)

    def on_stream_removed(self, stream: Stream) -> None:
        self._gates.pop(stream.id, None)
        self.llhls.on_stream_removed(stream)

    # -- a player asked ----------------------------------------------------------------------
    def demand(self, stream_id: str) -> None:
        gate = self._gates.get(stream_id)
        if gate is None or gate.demanded:
            return
        gate.demanded = True
        recent, gate.recent = gate.recent, deque()
        for entry in recent:
            self._enqueue(stream_id, gate, entry)
        self._want_progress(stream_id)
        log.info("LL-HLS on for a stream", extra={"stream": stream_id, "replay": len(recent)})

    def _enqueue(self, stream_id: str, gate: _Gate, entry: _Entry) -> None:
        gate.backlog.append(entry)
        if not gate.draining:
            gate.draining = True
            task = asyncio.get_running_loop().create_task(self._drain(stream_id, gate))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, stream_id: str, gate: _Gate) -> None:
        loop = asyncio.get_running_loop()
        try:
            while gate.backlog and self._gates.get(stream_id) is gate:
                kind, session, item = gate.backlog.popleft()
                try:
                    if kind == "end":
                        self.llhls.end(stream_id, session=session)
                    elif kind == "item":
                        assert item is not None
                        self.llhls.feed(stream_id, item, session=session)
                    else:
                        assert isinstance(item, Segment)
                        items = await loop.run_in_executor(None, replay_items, item)
                        self.replayed += 1
                        for one in items:
                            self.llhls.feed(stream_id, one, session=session)
                except SegmenterError as exc:  # a segment we cannot demux: the rest goes on
                    log.warning("LL-HLS replay of a segment failed",
                                extra={"stream": stream_id, "error": str(exc)})  # fmt: skip
                except Exception:  # never let one item stall the stream's LL-HLS
                    log.exception("LL-HLS item failed", extra={"stream": stream_id})
        finally:
            gate.draining = False
