"""The progress stream: what live AI sends and LL-HLS packages while a segment is being cut."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av

from segmenter import (
    FlvDemuxer,
    MediaPacket,
    Segment,
    Segmenter,
    SegmentProgress,
    SegmentStart,
    read_flv_file,
)
from segmenter.packet import Progress

MakeFlv = Callable[..., Path]


def _run(path: Path, seg: Segmenter) -> tuple[list[Segment], list[Progress]]:
    """Feed the file one tag at a time, taking the progress after each push, like the
    publisher does."""
    demux = FlvDemuxer()
    segments: list[Segment] = []
    events: list[Progress] = []
    for tag_type, ts, payload in read_flv_file(path):
        for item in demux.feed(tag_type, ts, payload):
            segments += seg.push(item)
            events += seg.take_progress()
    segments += seg.flush()
    events += seg.take_progress()
    return segments, events


def test_progress_bytes_join_to_the_segment_and_arrive_before_the_cut(make_flv: MakeFlv) -> None:
    path = make_flv(seconds=5.0, gop=30, bframes=0)
    seg = Segmenter(1.0)
    seg.enable_progress(ts=True)
    segments, events = _run(path, seg)
    assert len(segments) >= 4
    by_seq: dict[int, list[Progress]] = {}
    for e in events:
        by_seq.setdefault(e.seq, []).append(e)
    assert sorted(by_seq) == [s.seq for s in segments]
    for s in segments:
        items = by_seq[s.seq]
        start, *middle, end = items
        assert isinstance(start, SegmentStart) and start.start_pts == s.start_pts
        assert start.video == s.video and start.audio == s.audio
        assert end is s  # the very segment the hub lists
        progress = [m for m in middle if isinstance(m, SegmentProgress)]
        assert len(progress) == len(middle)
        assert b"".join(p.data for p in progress) == s.data
        # bytes went out packet by packet: most of the segment before its last frame was muxed
        assert len(progress) > 10
        assert sum(len(p.data) for p in progress[:-1]) > len(s.data) // 2
        packets = [pkt for p in progress for pkt in p.packets]
        assert sum(1 for p in packets if p.kind == "video") == s.video_frames
        assert sum(1 for p in packets if p.kind == "audio") == s.audio_frames
        assert packets[0].kind == "video" and packets[0].keyframe
        assert packets[0].pts == s.start_pts
    # the order is the cut order: seq N's Segment comes before seq N+1's start
    kinds = [(type(e).__name__, e.seq) for e in events]
    for s in segments[1:]:
        assert kinds.index(("Segment", s.seq - 1)) < kinds.index(("SegmentStart", s.seq))


def test_progressive_ts_is_decodable_frame_by_frame(make_flv: MakeFlv) -> None:
    """Every video PES carries its length: PyAV's demuxer hands out each frame of a prefix
    that ends right after it (it does not wait for the next frame to start)."""
    path = make_flv(seconds=2.0, gop=30, bframes=0, audio=False)
    seg = Segmenter(1.0)
    seg.enable_progress(ts=True)
    segments, events = _run(path, seg)
    first = segments[0]
    prefix = b""
    complete = 0
    for e in events:
        if isinstance(e, SegmentProgress) and e.seq == first.seq:
            prefix += e.data
            complete += sum(1 for p in e.packets if p.kind == "video")
            if complete >= 5:
                break
    with av.open(io.BytesIO(prefix), "r", format="mpegts") as container:
        frames = sum(1 for p in container.demux(video=0) if p.size)
    assert frames == complete


def test_packets_only_and_off_by_default(make_flv: MakeFlv) -> None:
    path = make_flv(seconds=3.0, gop=30, bframes=0)
    off = Segmenter(1.0)
    segments, events = _run(path, off)
    assert segments and events == []
    on = Segmenter(1.0)
    on.enable_progress()
    segments2, events2 = _run(path, on)
    assert [s.data for s in segments2] == [s.data for s in segments]  # same TS as without
    progress = [e for e in events2 if isinstance(e, SegmentProgress)]
    assert progress and all(p.data == b"" for p in progress)
    assert all(isinstance(p, MediaPacket) for e in progress for p in e.packets)
