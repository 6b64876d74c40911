"""Timing helper for the gateway's benchmark: our demuxer + segmenter over a whole FLV file."""

from __future__ import annotations

import time

from .flv import FlvDemuxer, read_flv_file
from .segmenter import Segmenter


def segment_file(path: str, target: float) -> tuple[int, float]:
    """Segment an FLV file in-process; return (segments produced, wall seconds)."""
    t0 = time.perf_counter()
    demux = FlvDemuxer()
    seg = Segmenter(target)
    count = 0
    feed = demux.feed
    push = seg.push
    for tag_type, ts, payload in read_flv_file(path):
        for item in feed(tag_type, ts, payload):
            count += len(push(item))
    count += len(seg.flush())
    return count, time.perf_counter() - t0
