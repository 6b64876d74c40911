"""Timing helper for the gateway's benchmark: our demuxer + segmenter over a whole FLV file."""

from __future__ import annotations

import time
from pathlib import Path

from .flv import FlvDemuxer, read_flv_file
from .packet import Segment
from .segmenter import Segmenter


def segment_file(
    path: str, target: float, *, out_dir: str | None = None, loops: int = 1
) -> tuple[int, float]:
    """Segment an FLV file in-process; return (segments produced, wall seconds).

    ``loops`` plays the file that many times as one stream (like ``ffmpeg -stream_loop``);
    with ``out_dir`` every segment is written to a file, as ``ffmpeg -f segment`` does.
    """
    t0 = time.perf_counter()
    seg = Segmenter(target)
    out = Path(out_dir) if out_dir else None
    count = 0

    def emit(segments: list[Segment]) -> None:
        nonlocal count
        for s in segments:
            if out is not None:
                (out / f"seg{s.seq:05d}.ts").write_bytes(s.data)
            count += 1

    tags = list(read_flv_file(path)) if loops > 1 else read_flv_file(path)
    for i in range(loops):
        if i:
            seg.restart()
        demux = FlvDemuxer()
        feed = demux.feed
        push = seg.push
        for tag_type, ts, payload in tags:
            for item in feed(tag_type, ts, payload):
                emit(push(item))
    emit(seg.flush())
    return count, time.perf_counter() - t0
