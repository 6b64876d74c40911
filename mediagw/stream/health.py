"""Ingest health per stream, for the operator dashboard: bitrate, frame rate, keyframe spacing
and segment timing over the last few segments.

A hub listener, so it works once per segment (never per packet) on what the segment already
carries: its size, duration, frame count, and the wall time it was listed at. Each stream keeps
at most ``WINDOW`` samples; a stream's samples go when the hub forgets the stream.

Segments start on keyframes (the segmenter cuts there), so the spacing of segment starts is
the spacing of the keyframes the stream is cut on: the GOP when the GOP is at least the target
segment duration, a multiple of it otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from segmenter import Segment, VideoConfig

from ..clock import SYSTEM
from .hub import Stream

__all__ = ["WINDOW", "StreamHealth"]

WINDOW = 30  # segments per stream the figures are taken over


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float  # wall seconds when the segment was listed
    duration: float  # media seconds
    size: int  # bytes
    frames: int  # video frames


class StreamHealth:
    """Hub listener: the last ``WINDOW`` segments of each stream, and figures from them."""

    def __init__(self, *, clock: Callable[[], float] = SYSTEM.wall, window: int = WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._samples: dict[str, deque[_Sample]] = {}
        self._video: dict[str, VideoConfig | None] = {}  # the last segment's

    # -- hub listener ------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        self._samples[stream.id] = deque(maxlen=self._window)  # a new session starts afresh

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        samples = self._samples.setdefault(stream.id, deque(maxlen=self._window))
        samples.append(
            _Sample(self._clock(), segment.duration, len(segment.data), segment.video_frames)
        )
        self._video[stream.id] = segment.video

    def on_stream_end(self, stream: Stream) -> None:
        pass

    def on_stream_removed(self, stream: Stream) -> None:
        self._samples.pop(stream.id, None)
        self._video.pop(stream.id, None)

    # -- figures -----------------------------------------------------------------------------
    def of(self, stream: Stream) -> dict[str, Any]:
        """The stream's ingest health (None where no segment tells yet)."""
        samples = list(self._samples.get(stream.id, ()))
        media = sum(s.duration for s in samples)
        video = self._video.get(stream.id)
        out: dict[str, Any] = {
            "window_segments": len(samples),
            "bitrate_bps": round(sum(s.size for s in samples) * 8 / media) if media else None,
            "fps": round(sum(s.frames for s in samples) / media, 2) if media else None,
            "keyframe_interval_s": _r(median(s.duration for s in samples)) if samples else None,
            "segment_duration_min_s": _r(min(s.duration for s in samples)) if samples else None,
            "segment_duration_max_s": _r(max(s.duration for s in samples)) if samples else None,
            # wall time between segments listed: ~ the media duration when ingest keeps pace
            "segment_interval_s": None,
            "last_segment_age_s": _r(self._clock() - samples[-1].at) if samples else None,
            "ingest_latency_p50_s": None,
            "width": video.width if video else None,
            "height": video.height if video else None,
            "codec": video.codec if video else None,
        }
        if len(samples) >= 2:
            out["segment_interval_s"] = _r((samples[-1].at - samples[0].at) / (len(samples) - 1))
        latency = list(stream.stats.ingest_latency)[-self._window :]
        if latency:
            out["ingest_latency_p50_s"] = _r(median(latency))
        return out


def _r(value: float) -> float:
    return round(value, 3)
