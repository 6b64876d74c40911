"""The AI output's progress stream and WHEP feed (``OutputStream``): units as chunks arrive, a
broken segment is superseded by the next SegmentStart (same seq) and never gets a Segment."""

from __future__ import annotations

import asyncio

from live_ai.test_live_whep_play import _ts
from mediatools import ClipMaker

from mediagw.pipelines.live_ai.output import OutputStream
from mediagw.pipelines.unit_play import UnitFeed, UnitStats
from segmenter import Progress, Segment, SegmentProgress, SegmentStart


def stream() -> tuple[OutputStream, list[Progress], UnitFeed]:
    items: list[Progress] = []
    feed = UnitFeed(UnitStats())
    out = OutputStream(
        "s-out",
        feed=feed,
        hook=lambda: lambda out_id, item: items.append(item),
        seq_base=lambda: 10,
        clock=lambda: 0.0,
    )
    return out, items, feed


async def test_units_flow_per_chunk_and_the_segment_closes_the_stream() -> None:
    data = await asyncio.to_thread(_ts, 0, 12)
    out, items, feed = stream()
    out.begin(0)
    for pos in range(0, len(data), 1000):
        out.chunk(data[pos : pos + 1000])
    units_before_end = len(feed)
    out.finish()
    out.complete(10, data, 36_000)
    assert 1 <= units_before_end < 12 and len(feed) == 12  # the last one waited for the end
    assert isinstance(items[0], SegmentStart) and items[0].seq == 10 and items[0].discontinuity
    assert items[0].video is not None and items[0].video.width == 64
    progress = [i for i in items if isinstance(i, SegmentProgress)]
    assert sum(len(p.packets) for p in progress) == 12 and len(progress) > 1
    segment = items[-1]
    assert isinstance(segment, Segment) and segment.seq == 10 and segment.data == data
    assert (
        segment.video_frames == 12 and segment.start_pts == 0 and segment.duration_ticks == 36_000
    )
    assert out.codecs.startswith("avc1.")


async def test_a_broken_segment_is_superseded_and_gets_no_segment() -> None:
    first = await asyncio.to_thread(_ts, 0, 12)
    second = await asyncio.to_thread(_ts, 12, 12)
    out, items, feed = stream()
    out.begin(0)
    out.chunk(first[: len(first) // 2])
    played = len(feed)  # whole units of the broken half: played (each decodes)
    out.broken()  # the orchestrator was lost mid-segment
    out.begin(0)  # the next output takes the same number
    out.chunk(second)
    out.finish()
    out.complete(10, second, 36_000)
    starts = [i for i in items if isinstance(i, SegmentStart)]
    segments = [i for i in items if isinstance(i, Segment)]
    assert [s.seq for s in starts] == [10, 10] and [s.seq for s in segments] == [10]
    assert segments[0].data == second and segments[0].video_frames == 12
    assert out.stats.broken == 1 and out.stats.completed == 1
    assert starts[1].discontinuity and segments[0].discontinuity  # nothing was listed before
    assert played >= 1 and len(feed) == played + 12


async def test_segment_start_waits_for_both_configs_and_they_stay_put(
    make_clip: ClipMaker,
) -> None:
    """An output segment that opens with the audio frame overlapping its keyframe: its start
    is announced once both configs are known (the init of LL-HLS needs both), never with one
    missing; the next segments announce the same configs (no churn, no new init each time);
    WHEP got the keyframe at once all the same."""
    from segmenter import FlvDemuxer, Segmenter, read_flv_file

    clip = make_clip(seconds=3, bframes=0)

    def cut() -> list[Segment]:
        seg, demux, out = Segmenter(1.0), FlvDemuxer(), []
        for tag in read_flv_file(clip):
            for item in demux.feed(*tag):
                out += seg.push(item)
        return out + seg.flush()

    segments = await asyncio.to_thread(cut)
    out, items, feed = stream()
    for n, segment in enumerate(segments[:3]):
        out.begin(n)
        data = segment.data
        for pos in range(0, len(data), 188 * 4):
            out.chunk(data[pos : pos + 188 * 4])
        out.finish()
        out.complete(10 + n, data, segment.duration_ticks)
    starts = [i for i in items if isinstance(i, SegmentStart)]
    assert len(starts) == 3
    assert all(s.video is not None and s.audio is not None for s in starts), starts
    assert len({(s.video, s.audio) for s in starts}) == 1
    assert len(feed) > 0
