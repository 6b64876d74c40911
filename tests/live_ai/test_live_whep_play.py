"""WHEP play of the AI output stays live: a backlog is skipped, never kept for the whole stream."""

from __future__ import annotations

import asyncio
import io
from fractions import Fraction

import av

from mediagw.pipelines import whep_play
from mediagw.pipelines.whep_play import PlayStats
from webrtc import VideoAccessUnit


def _frame(number: int) -> av.VideoFrame:
    """A 64x64 grey frame with a bar that moves with ``number``: the same bytes every run (a
    frame left unfilled encodes whatever memory it got, so its size changes from run to run)."""
    frame = av.VideoFrame(64, 64, "yuv420p")
    x0 = (number * 4) % 56
    frame.planes[0].update((b"\x30" * x0 + b"\xd0" * 8 + b"\x30" * (56 - x0)) * 64)
    for plane in frame.planes[1:]:
        plane.update(b"\x80" * plane.buffer_size)
    return frame


def _ts(first_frame: int, frames: int) -> bytes:
    """An MPEG-TS segment of ``frames`` 30 fps frames (one GOP) starting at ``first_frame``."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=30, options={"bf": "0", "g": "1000"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.time_base = Fraction(1, 90000)
        for i in range(frames):
            frame = _frame(first_frame + i)
            frame.pts = (first_frame + i) * 3000
            frame.time_base = Fraction(1, 90000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


class Source:
    def __init__(self) -> None:
        self.units: list[VideoAccessUnit] = []

    def push_video(self, unit: VideoAccessUnit) -> None:
        self.units.append(unit)


async def _play(segments: list[bytes]) -> tuple[PlayStats, Source]:
    stats = PlayStats()
    queue: whep_play.Segments = asyncio.Queue()
    for data in segments:
        queue.put_nowait(data)
    queue.put_nowait(None)
    source = Source()
    await asyncio.wait_for(whep_play.play(source, queue, executor=None, stats=stats), 10)
    return stats, source


async def test_a_backlog_jumps_to_the_newest_segment() -> None:
    long_first = await asyncio.to_thread(_ts, 0, 90)  # 3 s: the viewer would lag by 2.7 s
    second = await asyncio.to_thread(_ts, 90, 6)
    third = await asyncio.to_thread(_ts, 96, 6)
    stats, source = await _play([long_first, second, third])
    assert stats.skips == 1
    pts = [u.pts // 3000 for u in source.units]
    # nothing of the stale segments: straight to the newest one, which starts with a keyframe
    assert pts == list(range(96, 102)), pts
    assert source.units[0].keyframe


async def test_segments_arriving_in_time_are_played_whole() -> None:
    first = await asyncio.to_thread(_ts, 0, 6)
    second = await asyncio.to_thread(_ts, 6, 6)
    stats, source = await _play([first, second])  # 0.2 s each: within the allowed lag
    assert stats.skips == 0
    assert [u.pts // 3000 for u in source.units] == list(range(12))


async def test_a_full_queue_drops_its_oldest_segment_and_never_waits() -> None:
    queue: whep_play.Segments = asyncio.Queue(maxsize=2)
    for data in (b"1", b"2", b"3", None):
        whep_play.offer(queue, data)
    assert [queue.get_nowait() for _ in range(queue.qsize())] == [b"3", None]


async def test_nothing_is_demuxed_for_nobody() -> None:
    stats, source = PlayStats(), Source()
    queue: whep_play.Segments = asyncio.Queue()
    queue.put_nowait(await asyncio.to_thread(_ts, 0, 6))  # never ends: play must stop by itself
    play = whep_play.play(source, queue, executor=None, stats=stats, watched=lambda: False)
    await asyncio.wait_for(play, 10)
    assert stats.demuxed == 0 and source.units == []
