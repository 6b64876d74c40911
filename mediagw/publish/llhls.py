"""In-memory LL-HLS: per stream, per rendition, fMP4 parts cut from the segmenter's progress
stream as it comes, an LL-HLS media playlist (``llplaylist.py``) and held requests.

    ll = LLHLSPublisher(part_target=0.2)
    gate = LLOnDemand(ll, hub.want_progress, keep=ll.window + ll.grace)
    ll.set_demand(gate.demand)                    # a player waits: package that stream
    hub.add_progress_listener(gate.on_progress)   # the hub's streams, through the gate
    hub.add_listener(gate)                        # starts, ends and removals
    ll.feed("abc-out", item, session=n)           # any other stream (the live AI output)
    ll.end("abc-out", session=n)

The hub's streams come through ``llondemand.LLOnDemand``, which packages a stream only once a
player asks for it (``wait`` calls ``demand``) and forwards its starts, ends and removals.

Parts: a part closes when the next video frame would take it past the part target (declared a
millisecond longer than configured: RTMP's millisecond timestamps jitter by one), when a
keyframe comes after half a target (it then starts a new ``INDEPENDENT`` part), and at the end
of its segment.
A part is cut when the frame after it arrives (its duration is then exact), never later.
Timing: the boundaries of a segment's parts are its first video frame's pts, then each part's
first frame's dts shifted by that frame's reorder delay (``start_pts - first dts``), then the
segment's end, so a segment's parts add up to its ``EXTINF`` exactly; audio-only segments cut
on audio pts. The msn and boundaries of a segment are the TS playlist's (``seq``, ``start_pts``,
``duration_ticks``): both playlists describe one timeline. A segment that ends without its
``Segment`` (aborted for its size, superseded by the next ``SegmentStart``, or the end of the
publish) is completed from the parts it has: what players already fetched stays valid.

Why 200 ms parts by default: ``PART-HOLD-BACK`` (three part targets) is the latency a player
aims at behind the live edge, so the part target sets it: 200 ms parts put hls.js about 1.0-1.2 s
behind glass on the live AI output (``mediagw bench live``), 333 ms parts about 1.4-1.5 s, which
is too close to the 1.5 s the product promises. The price: about five requests a second per
viewer (a held playlist reload and a preload-hinted part per part) and six frames at 30 fps per
fragment (``moof`` overhead about 3 %). ``-llhlsPartTarget 0.333`` trades the other way.

Memory per rendition: the playlist window of whole segments (+ ``grace``), the parts of the
segments that still list them (+ one), and the init segments they name. Sessions follow
``hls.py``: items after their session ended are refused, a newer session reopens with a
discontinuity; a stream continued from another node (``Stream.resume``, ``continue_stream``)
goes on from its msn and discontinuity sequence, as in ``hls.py``. Everything here runs on the
event loop and is O(packets) per item.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from segmenter import CLOCK, MalformedMedia, MediaPacket, Progress, Segment, SegmentStart
from segmenter.fmp4 import Fmp4Writer

from ..clock import SYSTEM
from ..stream.hub import Stream
from .hls import SOURCE
from .llplaylist import LLPlaylist, LLSegment, Part

log = logging.getLogger("mediagw.llhls")

__all__ = ["LLHLSPublisher", "LLRendition", "TooManyWaiters"]


class TooManyWaiters(Exception):
    """A stream holds as many requests as it may: answer 503 and let the player retry."""


@dataclass(eq=False)
class LLRendition:
    name: str
    playlist: LLPlaylist
    keep: int  # whole segments kept (window + grace)
    inits: dict[int, bytes] = field(default_factory=dict)
    parts: dict[tuple[int, int], bytes] = field(default_factory=dict)
    segments: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    codecs: str = ""
    resolution: tuple[int, int] | None = None
    peak_bps: int = 0
    # the segment being cut
    writer: Fmp4Writer | None = None
    init_id: int = -1
    msn: int | None = None
    start: int = 0  # its start_pts
    delay: int | None = None  # start_pts - its first video dts
    part_start: int = 0  # the open part's start, on the boundary clock
    pending: list[MediaPacket] = field(default_factory=list)
    pending_cut: bool = False  # pending holds a sample of the kind parts are cut on
    cut_video: bool = True
    audio_frame: int = 1920  # ticks of one AAC frame (1024 samples)
    seg_parts: list[bytes] = field(default_factory=list)
    changed: asyncio.Future[None] | None = None
    gone: bool = False

    def notify(self) -> None:
        if self.changed is not None and not self.changed.done():
            self.changed.set_result(None)
        self.changed = None

    def duration_of(self, msn: int, index: int | None) -> float:
        for seg in self.playlist.segments:
            if seg.msn == msn:
                if index is None:
                    return seg.duration
                return next((p.duration for p in seg.parts if p.index == index), 0.0)
        return 0.0


@dataclass(eq=False)
class _StreamLL:
    renditions: dict[str, LLRendition] = field(default_factory=dict)
    waiters: int = 0
    # (next_seq, discontinuity): another node's numbering, which every rendition continues
    continued: tuple[int, int] | None = None


class LLHLSPublisher:
    """Progress items in, LL-HLS out. ``max_waiters``: held requests per stream."""

    def __init__(
        self,
        part_target: float = 0.2,
        *,
        target_duration: float = 2.0,
        window: int = 6,
        grace: int = 2,
        max_waiters: int = 512,
        hold: float | None = None,
        wall: Callable[[], float] = SYSTEM.wall,
    ) -> None:
        if not 0.1 <= part_target <= 2.0:
            raise ValueError(f"an LL-HLS part target must be 0.1 to 2 seconds, got {part_target}")
        # PART-TARGET as declared: a ms over the target, the jitter a part may have (below)
        self.part_target = math.ceil(part_target * 1000 + 1) / 1000
        self.hold = hold
        self.target_duration = max(target_duration, part_target)
        self.window = window
        self.grace = grace
        self.max_waiters = max_waiters
        self._wall = wall
        self._part_ticks = round(self.part_target * CLOCK)
        self._streams: dict[str, _StreamLL] = {}
        self._demand: Callable[[str], None] | None = None

    def set_demand(self, demand: Callable[[str], None]) -> None:
        """``demand(stream_id)`` is called when a player waits for a stream that has no
        rendition yet (``llondemand.LLOnDemand``: LL-HLS on demand)."""
        self._demand = demand

    # -- the hub -----------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        if stream.resume is not None:
            self.continue_stream(stream.id, stream.resume.next_seq, stream.resume.discontinuity)
        self._streams.setdefault(stream.id, _StreamLL())

    def continue_stream(self, stream_id: str, next_seq: int, discontinuity: int) -> None:
        """A stream unknown here goes on from another node's numbering (``hls.py``'s)."""
        self._streams.setdefault(stream_id, _StreamLL(continued=(next_seq, discontinuity)))

    def on_stream_end(self, stream: Stream) -> None:
        self.end(stream.id, session=stream.stats.sessions)

    def on_stream_removed(self, stream: Stream) -> None:
        self.remove(stream.id)

    def remove(self, stream_id: str) -> None:
        """Forget a stream (its held requests answer 404); the hub's removal does it for its
        streams, whoever feeds another stream (the live AI output) calls it."""
        ll = self._streams.pop(stream_id, None)
        for rend in ll.renditions.values() if ll else ():
            rend.gone = True
            rend.notify()

    # -- writing ----------------------------------------------------------------------------
    def feed(
        self, stream_id: str, item: Progress, *, session: int = 0, rendition: str = SOURCE
    ) -> None:
        """One item of a stream's progress stream, in cut order (``segmenter.Progress``)."""
        ll = self._streams.setdefault(stream_id, _StreamLL())
        rend = ll.renditions.get(rendition)
        if rend is None:
            playlist = LLPlaylist(
                self.target_duration, self.part_target, self.window, f"{rendition}/"
            )
            if ll.continued is not None:
                playlist.continue_from(*ll.continued)
            rend = ll.renditions[rendition] = LLRendition(
                rendition, playlist, keep=self.window + self.grace
            )
        try:
            if isinstance(item, SegmentStart):
                self._start(rend, item, session)
            elif isinstance(item, Segment):
                if item.seq == rend.msn:
                    self._finish(rend, item.start_pts + item.duration_ticks)
            elif item.seq == rend.msn:
                self._packets(rend, item.packets)
        except (ValueError, MalformedMedia) as exc:  # refused, or media we cannot package
            log.warning(
                "LL-HLS item dropped",
                extra={"stream": stream_id, "rendition": rendition, "error": str(exc)},
            )
            rend.pending, rend.pending_cut = [], False  # the segment goes on without them

    def end(
        self, stream_id: str, *, session: int | None = None, rendition: str | None = None
    ) -> None:
        """EXT-X-ENDLIST on a stream's renditions (``rendition``: that one) for publish
        ``session``; a segment still being cut is completed from its parts first."""
        ll = self._streams.get(stream_id)
        for name, rend in list(ll.renditions.items()) if ll else ():
            if rendition is not None and name != rendition:
                continue
            if session is None or session >= rend.playlist.session:
                if rend.msn is not None:
                    self._finish(rend, None)
                rend.playlist.end(session)
            rend.notify()

    def _start(self, rend: LLRendition, item: SegmentStart, session: int) -> None:
        if rend.msn is not None:  # superseded: complete it from what it has
            self._finish(rend, None)
        configs = (item.video, item.audio)
        new_init = rend.writer is None or (rend.writer.video, rend.writer.audio) != configs
        if new_init:
            writer = Fmp4Writer(item.video, item.audio)
            init_id = rend.init_id + 1
        seg = LLSegment(
            item.seq,
            init_id if new_init else rend.init_id,
            item.meta.get("pdt") or self._wall(),
            item.discontinuity or (new_init and rend.writer is not None),
        )
        rend.playlist.open_segment(seg, session)  # raises for a late one: nothing changed yet
        if new_init:
            rend.writer, rend.init_id = writer, init_id
            rend.inits[init_id] = writer.init
            tags = [c.codecs_tag for c in configs if c is not None]
            rend.codecs = ",".join(tags)
            if item.video is not None:
                rend.resolution = (item.video.width, item.video.height)
        rend.msn = item.seq
        rend.start = rend.part_start = item.start_pts
        rend.delay = None if item.video is not None else 0
        rend.cut_video = item.video is not None
        if item.audio is not None:
            rend.audio_frame = max(1, round(1024 * CLOCK / max(item.audio.sample_rate, 1)))
        rend.pending, rend.pending_cut, rend.seg_parts = [], False, []
        rend.notify()

    def _packets(self, rend: LLRendition, packets: tuple[MediaPacket, ...]) -> None:
        target = self._part_ticks
        writer = rend.writer
        assert writer is not None
        for p in packets:
            if (p.kind == "video") == rend.cut_video:
                if rend.delay is None:
                    rend.delay = max(0, rend.start - p.dts)
                t = (p.dts + rend.delay) if rend.cut_video else p.pts
                if rend.pending_cut:
                    elapsed = t - rend.part_start
                    frame = writer.frame_duration if rend.cut_video else rend.audio_frame
                    if elapsed + frame > target or (
                        p.keyframe and rend.cut_video and 2 * elapsed >= target
                    ):
                        self._cut(rend, t)
                rend.pending_cut = True
            rend.pending.append(p)

    def _cut(self, rend: LLRendition, end: int) -> None:
        """The pending packets become the next part, ending at ``end`` (boundary clock)."""
        assert rend.writer is not None and rend.delay is not None
        pending = rend.pending
        video_end = end - rend.delay if rend.cut_video else None
        data = rend.writer.fragment(pending, video_end=video_end)
        first = next((p for p in pending if p.kind == "video"), pending[0])
        independent = first.keyframe if rend.cut_video else True
        index = len(rend.seg_parts)
        assert rend.msn is not None
        rend.playlist.add_part(Part(index, (end - rend.part_start) / CLOCK, independent))
        rend.parts[(rend.msn, index)] = data
        rend.seg_parts.append(data)
        rend.part_start = end
        rend.pending, rend.pending_cut = [], False
        rend.notify()  # held requests look again: only when a part or segment is listed

    def _finish(self, rend: LLRendition, end: int | None) -> None:
        """Close the segment being cut at ``end`` (None: where its media ends)."""
        msn = rend.msn
        if msn is None:
            return
        if end is None:
            end = self._media_end(rend)
        if rend.pending:
            if rend.delay is None:  # no video came: its audio keeps its own times
                rend.delay = 0
            self._cut(rend, max(end, rend.part_start + 1))
        rend.msn = None
        rend.notify()
        if not rend.seg_parts:  # nothing was muxed in it: never listed
            rend.playlist.cancel()
            return
        data = b"".join(rend.seg_parts)
        rend.seg_parts = []
        duration = max(end - rend.start, 0) / CLOCK
        rend.playlist.complete(duration)
        rend.segments[msn] = data
        while len(rend.segments) > rend.keep:
            rend.segments.popitem(last=False)
        if duration > 0:
            rend.peak_bps = max(rend.peak_bps, int(len(data) * 8 / duration))
        self._prune(rend)

    @staticmethod
    def _media_end(rend: LLRendition) -> int:
        """Where the media of an unfinished segment ends: its last frame's time + a frame."""
        if rend.cut_video:
            frame = rend.writer.frame_duration if rend.writer else 0
            times = [p.dts + (rend.delay or 0) for p in rend.pending if p.kind == "video"]
        else:
            frame = rend.audio_frame
            times = [p.pts for p in rend.pending]
        return max(times) + frame if times else rend.part_start

    def _prune(self, rend: LLRendition) -> None:
        oldest = rend.playlist.parts_from() - 1  # one more segment's parts for late readers
        for key in [k for k in rend.parts if k[0] < oldest]:
            del rend.parts[key]
        used = {s.init for s in rend.playlist.segments} | {rend.init_id}
        for init_id in [i for i in rend.inits if i not in used]:
            del rend.inits[init_id]

    # -- reading ----------------------------------------------------------------------------
    def rendition(self, stream_id: str, name: str) -> LLRendition | None:
        ll = self._streams.get(stream_id)
        return ll.renditions.get(name) if ll else None

    def has_stream(self, stream_id: str) -> bool:
        return stream_id in self._streams

    async def wait(
        self, stream_id: str, name: str, ready: Callable[[LLRendition], bool], timeout: float
    ) -> LLRendition | None:
        """Hold until ``ready(rendition)`` (True: the rendition) or ``timeout`` seconds, the
        stream's removal or its rendition never showing up (None). Raises TooManyWaiters."""
        ll = self._streams.get(stream_id)
        if ll is None:
            return None
        rend = ll.renditions.get(name)
        if rend is not None and ready(rend):
            return rend
        if rend is None and self._demand is not None:
            self._demand(stream_id)  # its first player: parts from the stream's next segment
        if ll.waiters >= self.max_waiters:
            raise TooManyWaiters(f"{ll.waiters} requests are held for stream {stream_id!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        ll.waiters += 1
        try:
            while True:
                rend = ll.renditions.get(name)
                if rend is not None and (rend.gone or ready(rend)):
                    return None if rend.gone else rend
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                if rend is None:  # not there yet: poll at the part rate
                    await asyncio.sleep(min(remaining, self.part_target))
                    continue
                if rend.changed is None:
                    rend.changed = loop.create_future()
                try:
                    await asyncio.wait_for(asyncio.shield(rend.changed), remaining)
                except TimeoutError:
                    return rend if ready(rend) else None
        finally:
            ll.waiters -= 1

    def multivariant_info(
        self, stream_id: str, name: str
    ) -> tuple[int, str, tuple[int, int] | None]:
        rend = self.rendition(stream_id, name)
        if rend is None:
            return 0, "", None
        return rend.peak_bps, rend.codecs, rend.resolution

    def hold_timeout(self, rend: LLRendition) -> float:
        """How long a blocked request is held: three target durations (the spec's 503)
        unless ``hold`` was given."""
        return self.hold if self.hold is not None else 3.0 * rend.playlist.target_duration

    @staticmethod
    def part_ahead(rend: LLRendition, msn: int, index: int) -> bool:
        """Whether part (msn, index) may still come soon enough to hold a request for it: in
        the segment being cut or the next one, at most three parts past the last listed."""
        last = rend.playlist.last_part()
        nxt = rend.playlist.next_part()
        if rend.playlist.ended or (msn, index) < nxt:
            return False
        if last is None or msn > nxt[0]:
            return msn <= nxt[0] + 1 and index < 3
        return index - nxt[1] < 3 if msn == nxt[0] else index < 3
