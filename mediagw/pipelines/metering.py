"""Usage of the gateway's own work: ingest, delivery and recording, as usage events.

- ``SourceMeter`` (a hub listener): one ``source`` event per ingested segment (its duration
  and pixels).
- ``DeliveryMeter``: HLS segments served and WebRTC playback are counted in memory per stream
  (a dict add per request); ``flush`` (every few seconds, and at stop) turns the counts into one
  ``delivery_hls`` / ``delivery_whep`` event per stream. Viewer time is approximated by the
  durations of the segments served: a player fetching each segment once counts its watch time.
- ``recorded``: one ``recording`` event per segment written to a recording.

Emitting never blocks (the sink is the gateway's ``UsageQueue``).
"""

from __future__ import annotations

from dataclasses import dataclass

from segmenter import Segment

from ..stream.hub import Stream, StreamHub
from ..usage import (
    DELIVERY_HLS,
    DELIVERY_WHEP,
    RECORDING,
    SOURCE,
    UsageEvent,
    UsageSink,
    media_pixels,
)

__all__ = ["DeliveryMeter", "SourceMeter"]


def _event(
    stream: Stream, kind: str, quantity: int, unit: str, ms: int, pixels: int = 0
) -> UsageEvent:
    return UsageEvent(
        stream.id,
        stream.stats.sessions,
        stream.request.principal,
        "",
        kind,
        quantity,
        unit,
        ms=ms,
        pixels=pixels,
    )


class SourceMeter:
    """A hub listener: the ingest (source) seconds and pixels of every segment."""

    def __init__(self, sink: UsageSink) -> None:
        self.sink = sink

    def on_stream_start(self, stream: Stream) -> None:
        pass

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        ms = round(segment.duration * 1000)
        if ms > 0:
            self.sink.emit(_event(stream, SOURCE, ms, "ms", ms, media_pixels(segment)))

    def on_stream_end(self, stream: Stream) -> None:
        pass

    def on_stream_removed(self, stream: Stream) -> None:
        pass


@dataclass(slots=True)
class _Served:
    hls_bytes: int = 0
    hls_ms: int = 0
    whep_ms: int = 0


class DeliveryMeter:
    """Counts playback in memory; ``flush`` emits it as usage events (one per stream and kind)."""

    def __init__(self, sink: UsageSink, hub: StreamHub, *, max_streams: int = 100_000) -> None:
        self.sink = sink
        self.hub = hub
        self.max_streams = max_streams
        self._served: dict[str, _Served] = {}

    def _of(self, stream_id: str) -> _Served | None:
        served = self._served.get(stream_id)
        if served is None:
            if len(self._served) >= self.max_streams:
                return None  # bounded: counted at the next flush
            served = self._served[stream_id] = _Served()
        return served

    def hls_served(self, stream_id: str, nbytes: int, seconds: float) -> None:
        """One HLS segment served (from the request handler: a dict add, no I/O)."""
        served = self._of(stream_id)
        if served is not None:
            served.hls_bytes += nbytes
            served.hls_ms += round(seconds * 1000)

    def whep_played(self, stream_id: str, seconds: float) -> None:
        """``seconds`` of media forwarded to one WebRTC viewer."""
        served = self._of(stream_id)
        if served is not None:
            served.whep_ms += round(seconds * 1000)

    def recorded(self, stream_id: str, seconds: float) -> None:
        """One segment written to a recording (emitted at once: one event per segment)."""
        stream = self.hub.get(stream_id)
        ms = round(seconds * 1000)
        if stream is not None and ms > 0:
            self.sink.emit(_event(stream, RECORDING, ms, "ms", ms))

    def flush(self) -> None:
        """Emit what was counted since the last flush; streams the hub forgot are dropped."""
        served, self._served = self._served, {}
        for stream_id, counts in served.items():
            stream = self.hub.get(stream_id)
            if stream is None:
                continue
            if counts.hls_bytes or counts.hls_ms:
                ev = _event(stream, DELIVERY_HLS, counts.hls_bytes, "byte", counts.hls_ms)
                self.sink.emit(ev)
            if counts.whep_ms:
                ev = _event(stream, DELIVERY_WHEP, counts.whep_ms, "ms", counts.whep_ms)
                self.sink.emit(ev)
