"""In-memory HLS: per stream, per rendition, a sliding media playlist and a bounded segment store.

``HLSPublisher`` listens to the stream hub for the ``source`` rendition; later pipelines (the
transcoder, HTTP push, live AI) publish other renditions through ``publish()`` / ``publish_gap()``.
Everything here is synchronous and O(1) per segment, so it runs on the event loop; HTTP readers
only ever read from it, so a slow reader cannot stall ingest.

Whoever publishes a rendition ends it, once its last segment is in: the hub's end of a stream
ends ``source`` here; a pipeline ends its renditions with ``end()`` when its last segment is done.
Each publish names its publish session (``Stream.stats.sessions``): a late segment after the end
of its session is refused (logged), a segment of a newer session reopens the playlist.

A stream continued from another node (``Stream.resume``, or ``continue_stream()`` for a stream
the hub does not know: the live AI output) has every rendition's playlist go on from there
(``MediaPlaylist.continue_from``): the source's seq and discontinuity sequence, which the
renditions of a pipeline share, so players switching variants stay aligned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from segmenter import Segment

from ..stream.hub import Stream
from .playlist import GAP_VERSION, MediaPlaylist, PlaylistEntry, Variant, render_multivariant

log = logging.getLogger("mediagw.hls")

__all__ = ["SOURCE", "HLSPublisher", "Rendition"]

SOURCE = "source"


@dataclass(eq=False)
class Rendition:
    name: str
    playlist: MediaPlaylist
    keep: int  # segments kept in memory (window + grace for late readers)
    segments: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    resolution: tuple[int, int] | None = None
    codecs: str = ""
    peak_bps: int = 0
    bytes_total: int = 0
    seconds_total: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, entry: PlaylistEntry, data: bytes, session: int = 0) -> None:
        self.playlist.add(entry, session)
        if entry.gap:
            return  # nothing to serve: its URI answers 404, as players expect
        self.segments[entry.seq] = data
        while len(self.segments) > self.keep:
            self.segments.popitem(last=False)
        if entry.duration > 0:
            self.peak_bps = max(self.peak_bps, int(len(data) * 8 / entry.duration))
        self.bytes_total += len(data)
        self.seconds_total += entry.duration
        self.ready.set()

    @property
    def average_bps(self) -> int:
        return int(self.bytes_total * 8 / self.seconds_total) if self.seconds_total else 0


@dataclass(eq=False)
class StreamHLS:
    stream_id: str
    renditions: dict[str, Rendition] = field(default_factory=dict)
    # (next_seq, discontinuity): another node's numbering, which every rendition continues
    continued: tuple[int, int] | None = None


class HLSPublisher:
    """Hub listener + store. ``grace`` extra segments stay fetchable after leaving the window."""

    def __init__(self, target_duration: float = 2.0, window: int = 6, grace: int = 4) -> None:
        self.target_duration = target_duration
        self.window = window
        self.grace = grace
        self._streams: dict[str, StreamHLS] = {}

    # -- StreamListener ---------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        if stream.resume is not None:
            self.continue_stream(stream.id, stream.resume.next_seq, stream.resume.discontinuity)
        self._streams.setdefault(stream.id, StreamHLS(stream.id))

    def continue_stream(self, stream_id: str, next_seq: int, discontinuity: int) -> None:
        """The playlists of ``stream_id``, unknown here, go on from another node's, whose last
        segment had seq ``next_seq - 1`` and discontinuity number ``discontinuity``
        (``MediaPlaylist.continue_from``); a stream known here goes on as it is."""
        self._streams.setdefault(
            stream_id, StreamHLS(stream_id, continued=(next_seq, discontinuity))
        )

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        resolution = (segment.video.width, segment.video.height) if segment.video else None
        codecs = ",".join(c.codecs_tag for c in (segment.video, segment.audio) if c is not None)
        self.publish(
            stream.id,
            SOURCE,
            segment.seq,
            segment.data,
            segment.duration,
            pdt=segment.meta.get("pdt", 0.0),
            discontinuity=segment.discontinuity,
            resolution=resolution,
            codecs=codecs,
            session=stream.stats.sessions,
        )

    def on_stream_end(self, stream: Stream) -> None:
        # Only the source: the other renditions end when their pipeline has published its last.
        self.end(stream.id, (SOURCE,), stream.stats.sessions)

    def end(
        self, stream_id: str, renditions: Iterable[str] | None = None, session: int | None = None
    ) -> None:
        """EXT-X-ENDLIST on these renditions of a stream (None: all of them) for publish
        ``session`` (None: the current one). Call it once their last segment is in."""
        hls = self._streams.get(stream_id)
        if hls is None:
            return
        names = hls.renditions.keys() if renditions is None else renditions
        for name in names:
            rendition = hls.renditions.get(name)
            if rendition is not None:
                rendition.playlist.end(session)

    def on_stream_removed(self, stream: Stream) -> None:
        self._streams.pop(stream.id, None)

    # -- writing ----------------------------------------------------------------------------
    def publish(
        self,
        stream_id: str,
        rendition: str,
        seq: int,
        data: bytes,
        duration: float,
        *,
        pdt: float = 0.0,
        discontinuity: bool = False,
        resolution: tuple[int, int] | None = None,
        codecs: str = "",
        session: int = 0,
    ) -> bool:
        """List segment ``seq`` of a rendition; False (logged) if its playlist refuses it."""
        entry = PlaylistEntry(seq, duration, f"{rendition}/{seq}.ts", pdt, discontinuity)
        rend = self._add(stream_id, rendition, entry, data, session)
        if rend is None:
            return False
        if resolution:
            rend.resolution = resolution
        if codecs:
            rend.codecs = codecs
        return True

    def publish_gap(
        self,
        stream_id: str,
        rendition: str,
        seq: int,
        duration: float,
        *,
        pdt: float = 0.0,
        discontinuity: bool = False,
        session: int = 0,
    ) -> bool:
        """List segment ``seq`` of a rendition as an ``EXT-X-GAP``: it could not be produced;
        its slot keeps the rendition's media sequence numbers those of the source."""
        entry = PlaylistEntry(seq, duration, f"{rendition}/{seq}.ts", pdt, discontinuity, gap=True)
        return self._add(stream_id, rendition, entry, b"", session) is not None

    def _add(
        self, stream_id: str, name: str, entry: PlaylistEntry, data: bytes, session: int
    ) -> Rendition | None:
        hls = self._streams.setdefault(stream_id, StreamHLS(stream_id))
        rend = hls.renditions.get(name)
        if rend is None:
            rend = hls.renditions[name] = self._new_rendition(name, hls.continued)
        try:
            rend.add(entry, data, session)
        except ValueError as exc:  # a late or stale publish: the playlist stays as it is
            log.warning(
                "segment not listed",
                extra={"stream": stream_id, "rendition": name, "error": str(exc)},
            )
            return None
        return rend

    def _new_rendition(self, name: str, continued: tuple[int, int] | None) -> Rendition:
        # Only the renditions of a pipeline can have gaps; the source never has.
        version = 3 if name == SOURCE else GAP_VERSION
        playlist = MediaPlaylist(self.target_duration, self.window, version=version)
        if continued is not None:
            playlist.continue_from(*continued)
        return Rendition(name, playlist, keep=self.window + self.grace)

    # -- reading ----------------------------------------------------------------------------
    def rendition(self, stream_id: str, name: str) -> Rendition | None:
        hls = self._streams.get(stream_id)
        return hls.renditions.get(name) if hls else None

    def has_stream(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def next_seq(self, stream_id: str, name: str) -> int:
        """The seq a rendition's next segment may have: after its last one, else where the
        stream continues from (``continue_stream``), else 0."""
        hls = self._streams.get(stream_id)
        rend = hls.renditions.get(name) if hls else None
        if rend is not None:
            return rend.playlist.next_seq
        return hls.continued[0] if hls is not None and hls.continued is not None else 0

    async def wait_ready(self, stream_id: str, name: str, timeout: float) -> Rendition | None:
        """Wait up to ``timeout`` for a known stream's rendition to list its first segment."""
        hls = self._streams.get(stream_id)
        if hls is None:
            return None
        rend = hls.renditions.get(name)
        if rend is not None and rend.segments:
            return rend
        if name != SOURCE and rend is None:
            return None
        if rend is None:
            rend = hls.renditions[name] = self._new_rendition(name, hls.continued)
        try:
            await asyncio.wait_for(rend.ready.wait(), timeout)
        except TimeoutError:
            return None
        return rend

    def media_playlist(self, stream_id: str, name: str) -> str | None:
        rend = self.rendition(stream_id, name)
        if rend is None or not rend.segments:
            return None
        return rend.playlist.render()

    def segment(self, stream_id: str, name: str, seq: int) -> bytes | None:
        rend = self.rendition(stream_id, name)
        return rend.segments.get(seq) if rend else None

    def segment_duration(self, stream_id: str, name: str, seq: int) -> float:
        """The duration of a listed segment (the target duration once it left the list)."""
        rend = self.rendition(stream_id, name)
        if rend is not None:
            for entry in reversed(rend.playlist.entries):
                if entry.seq == seq:
                    return entry.duration
        return self.target_duration

    def multivariant(self, stream_id: str, *, uri_prefix: str | None = None) -> str | None:
        """The multivariant playlist; a variant's URI is ``{uri_prefix}{rendition}.m3u8``, by
        default ``{stream_id}/``: relative to ``/stream/{stream_id}.m3u8``."""
        prefix = f"{stream_id}/" if uri_prefix is None else uri_prefix
        hls = self._streams.get(stream_id)
        if hls is None:
            return None
        ready = [r for r in hls.renditions.values() if r.segments]
        if not ready:
            return None
        # Highest resolution first; players start with the first variant listed.
        ready.sort(key=lambda r: -(r.resolution[0] * r.resolution[1] if r.resolution else 0))
        variants = [
            Variant(
                uri=f"{prefix}{r.name}.m3u8",
                bandwidth=max(r.peak_bps, 1),
                average_bandwidth=r.average_bps,
                resolution=r.resolution,
                codecs=r.codecs,
            )
            for r in ready
        ]
        return render_multivariant(variants)

    def stream_ids(self) -> list[str]:
        return list(self._streams)
