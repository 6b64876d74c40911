"""A publish session always ends, whatever failed inside it (stream/publisher.py).

A real StreamHub, the real FLV demuxer and segmenter; the executor is a one-thread pool that the
test can hold, so a batch is being cut exactly when the publisher disconnects.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mediatools import ClipMaker

from mediagw.errors import MediaError
from mediagw.stream.hub import Stream, StreamHub
from mediagw.stream.publisher import Publisher
from segmenter import Segment, read_flv_file

VIDEO, AUDIO = 9, 8
Tag = tuple[int, int, bytes]  # an FLV tag: type, timestamp ms, body
VIDEO_INFO = b"\x57"  # FLV video info/command frame: demuxed to nothing
SORENSON = b"\x22" + bytes(40)  # UnsupportedCodec
HUGE_NAL = b"\x27\x01\x00\x00\x00\xff\xff\xff\xff" + bytes(20)  # MalformedMedia: NAL 4294967295


class HeldExecutor:
    """One worker thread; ``hold()`` parks it so the next jobs queue up until ``release()``."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1)
        self._gate = threading.Event()

    def hold(self) -> None:
        self._gate.clear()
        self.pool.submit(self._gate.wait, 10)

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
def executor() -> Iterator[HeldExecutor]:
    ex = HeldExecutor()
    yield ex
    ex.release()
    ex.pool.shutdown(wait=True)


async def _close_within(publisher: Publisher, seconds: float = 5.0) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(publisher.close(None)), seconds)
    except TimeoutError:
        raise AssertionError("close() never returned: the stream is stuck live") from None


@pytest.mark.parametrize("bad", [SORENSON, HUGE_NAL], ids=["unsupported-codec", "malformed"])
async def test_bad_last_media_then_disconnect_still_ends_the_stream(
    executor: HeldExecutor, bad: bytes
) -> None:
    hub = StreamHub(max_sessions=1)
    stream = hub.begin_publish("s")
    publisher = Publisher(hub, stream, executor.pool)
    executor.hold()
    await publisher.unit(VIDEO, 0, VIDEO_INFO)
    await asyncio.sleep(0.05)  # the worker took that batch: it waits behind the held thread
    await publisher.unit(VIDEO, 33, bad)  # the last data is bad media ...
    closer = asyncio.create_task(publisher.close(None))  # ... and the publisher is gone at once
    await asyncio.sleep(0.05)
    executor.release()
    try:
        await asyncio.wait_for(asyncio.shield(closer), 5)
    except TimeoutError:
        raise AssertionError("close() never returned: the stream is stuck live") from None
    assert not stream.live and publisher.ended
    assert any(word in str(stream.last_error) for word in ("UnsupportedCodec", "MalformedMedia"))
    # the name is free again and the session slot is back: a clean publisher gets in
    assert hub.begin_publish("other").live
    closer.cancel()


async def test_an_internal_error_ends_the_session_and_refuses_more_media() -> None:
    def broken(batch: object, final: bool) -> list[tuple[Segment, float | None]]:
        raise RuntimeError("bug in the cutting code")

    hub = StreamHub()
    stream = hub.begin_publish("s")
    publisher = Publisher(hub, stream)
    publisher._process = broken  # type: ignore[method-assign,assignment]
    await publisher.unit(VIDEO, 0, VIDEO_INFO)
    await asyncio.sleep(0.05)
    with pytest.raises(MediaError):
        await publisher.unit(VIDEO, 33, VIDEO_INFO)
    await _close_within(publisher)
    assert not stream.live and "internal error" in str(stream.last_error)


async def test_a_cancelled_worker_refuses_media_and_close_still_ends() -> None:
    hub = StreamHub()
    stream = hub.begin_publish("s")
    publisher = Publisher(hub, stream)
    publisher._worker.cancel()
    await asyncio.gather(publisher._worker, return_exceptions=True)
    with pytest.raises(MediaError):
        for i in range(10_000):  # would pile up in memory for ever with nobody to cut it
            await publisher.unit(VIDEO, i, VIDEO_INFO)
    await _close_within(publisher)
    assert not stream.live


async def test_a_closer_cancelled_while_waiting_leaves_the_end_to_the_next(
    executor: HeldExecutor,
) -> None:
    hub = StreamHub()
    stream = hub.begin_publish("s")
    publisher = Publisher(hub, stream, executor.pool)
    executor.hold()
    await publisher.unit(VIDEO, 0, VIDEO_INFO)
    first = asyncio.create_task(publisher.close(None))
    await asyncio.sleep(0.05)
    first.cancel()  # e.g. the RTMP connection's task, at a server shutdown
    executor.release()
    await _close_within(publisher)
    assert not stream.live and publisher.ended


async def test_progress_stream_reaches_subscribers_in_cut_order(tmp_path: Path) -> None:
    """A stream whose segmenter has a progress consumer: SegmentStart, the media as it is muxed,
    then the very segment the hub lists (with its PDT), for a subscriber and a listener alike;
    a segment already open when the consumer came has no progress stream."""
    from mediatools import need_tool

    from segmenter import SegmentProgress, SegmentStart, read_flv_file

    ffmpeg = need_tool("ffmpeg")
    path = tmp_path / "in.flv"
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast",
        "-g", "30", "-bf", "0", "-c:a", "aac", "-f", "flv", str(path),
    )  # fmt: skip
    assert await proc.wait() == 0
    hub = StreamHub(max_sessions=1, segment_duration=1.0)
    heard: list[object] = []
    listed: list[Segment] = []
    stream = hub.begin_publish("s")
    publisher = Publisher(hub, stream)
    tags = list(read_flv_file(path))
    for tag in tags[:5]:
        await publisher.unit(*tag)
    await asyncio.sleep(0.2)  # the first segment is open before anyone asks for progress
    hub.add_progress_listener(lambda _s, item: heard.append(item))
    sub = stream.subscribe_progress(ts=True)
    whole = stream.subscribe_progress(ts=True, whole=True)
    segments = stream.subscribe(maxsize=100)
    for tag in tags[5:]:
        await publisher.unit(*tag)
    await _close_within(publisher)
    segments.unsubscribe()
    listed = segments.drain()
    got = sub.drain()
    assert got == heard  # the listener and the subscriber see the same stream
    assert listed[0].seq not in {e.seq for e in got}  # opened before: no progress stream
    assert whole.drain() == [listed[0], *got]  # ... but ``whole`` has it, as a bare segment
    starts = [e for e in got if isinstance(e, SegmentStart)]
    ends = [e for e in got if isinstance(e, Segment)]
    assert [s.seq for s in starts] == [s.seq for s in ends] == [s.seq for s in listed[1:]]
    for start, end in zip(starts, ends, strict=True):
        assert end in listed  # the listed object, PDT included
        assert start.meta["pdt"] == end.meta["pdt"]
        assert 0 < start.meta["arrival"] <= time.monotonic()  # its keyframe's ingest unit
        data = b"".join(e.data for e in got if isinstance(e, SegmentProgress) and e.seq == end.seq)
        assert data == end.data


class CountingExecutor(ThreadPoolExecutor):
    """A one-thread pool that counts the batches handed to it, and their sizes."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0
        self.sizes: list[int] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.calls += 1
        self.sizes.append(len(args[0]) if args else 0)
        return super().submit(fn, *args, **kwargs)


async def _settle(publisher: Publisher) -> None:
    for _ in range(50):  # the worker takes what is due and the executor answers
        await asyncio.sleep(0.001)


async def test_rtmp_media_goes_to_the_segmenter_thread_in_batches(make_clip: ClipMaker) -> None:
    """A keyframe (it may cut), ``BATCH_SECONDS`` of arrival time, or a progress consumer hand
    the batch over; the frames between keyframes wait for it instead of a thread hand-off
    each."""
    video = [t for t in read_flv_file(str(make_clip(seconds=2, audio=False))) if t[0] == VIDEO]
    config, key, inter = video[0], video[1], video[2:25]
    assert key[2][0] >> 4 == 1 and all(t[2][0] >> 4 == 2 for t in inter)
    now = [100.0]
    pool = CountingExecutor()
    hub = StreamHub()
    stream = hub.begin_publish("batched")
    pub = Publisher(hub, stream, pool, monotonic=lambda: now[0])
    await pub.media(*config)  # before any video frame: due (it could be audio-only)
    await pub.media(*key)  # a keyframe: due
    await _settle(pub)
    base = pool.calls
    step = Publisher.BATCH_SECONDS / 25
    for tag in inter[:19]:  # inter frames within one batch's time: nothing handed over
        now[0] += step
        await pub.media(*tag)
    await _settle(pub)
    assert pool.calls == base
    now[0] += 10 * step  # the batch now spans BATCH_SECONDS or more: handed over at this frame
    await pub.media(*inter[19])
    await _settle(pub)
    assert pool.calls == base + 1
    stream.segmenter.enable_progress()  # a consumer of packets: every frame goes at once
    for tag in inter[20:23]:
        await pub.media(*tag)
        await _settle(pub)
    assert pool.calls == base + 4
    await _close_within(pub)
    assert stream.stats.video_frames == 24  # nothing held back is lost at the end
    pool.shutdown(wait=True)


async def _clocked(
    make_clip: ClipMaker, name: str
) -> tuple[Publisher, Stream, CountingExecutor, list[float], tuple[Tag, Tag]]:
    """A publisher on a clock the test moves (``now[0]``), its video config sent: with the
    stream, the executor counting its batches, and a keyframe and an inter frame of a clip."""
    video = [t for t in read_flv_file(str(make_clip(seconds=2, audio=False))) if t[0] == VIDEO]
    now = [100.0]
    pool = CountingExecutor()
    hub = StreamHub()
    stream = hub.begin_publish(name)
    pub = Publisher(hub, stream, pool, monotonic=lambda: now[0])
    await pub.media(*video[0])
    return pub, stream, pool, now, (video[1], video[2])


async def test_the_batch_before_an_expected_keyframe_goes_ahead_so_the_cut_is_small(
    make_clip: ClipMaker,
) -> None:
    """Keyframes 2 s apart: from the third GOP on, what waits goes ``KEY_LEAD`` before the
    next keyframe is due, and the keyframe's own batch (the one that cuts) holds only the
    frames of that lead, not of the whole batch time."""
    from mediagw.stream.publisher import KEY_LEAD

    pub, stream, pool, now, (key, inter) = await _clocked(make_clip, "ahead")
    step = 1 / 30
    for n in range(3 * 60 + 1):  # three 2 s GOPs and the next keyframe, one frame each step
        frame = key if n % 60 == 0 else inter
        calls = pool.calls
        await pub.media(VIDEO, round(n * step * 1000), frame[2])
        for _ in range(3):
            await asyncio.sleep(0)  # the worker takes a batch that became due
        if pool.calls != calls:
            await _settle(pub)  # and the segmenter's thread is done with it
        now[0] += step
    # the last GOP's batches: the age bound (BATCH_SECONDS), then ahead of the keyframe
    # (its frames from 4.0 + 2.0 - KEY_LEAD on), then the keyframe with the frames before it
    lead = round(KEY_LEAD / step)
    assert pool.sizes[-1] <= lead + 2, pool.sizes
    assert pool.sizes[-2] >= 60 - round(Publisher.BATCH_SECONDS / step) - lead - 2, pool.sizes
    await _close_within(pub)
    assert stream.stats.video_frames == 3 * 60 + 1
    pool.shutdown(wait=True)


async def test_reads_may_wait_between_keyframes_never_shortly_before_one(
    make_clip: ClipMaker,
) -> None:
    """``hold_reads()`` (RTMP read moderation): no before the GOP is known; then yes after a
    keyframe, no from ``HOLD_LEAD`` before the next is due until it comes, and never while a
    consumer reads the progress stream."""
    from mediagw.stream.publisher import HOLD_LEAD

    pub, stream, pool, now, (key, inter) = await _clocked(make_clip, "held")
    await pub.media(VIDEO, 0, key[2])
    now[0] += 0.1
    await pub.media(VIDEO, 100, inter[2])
    assert not pub.hold_reads()  # one keyframe: the GOP is not known
    now[0] = 102.0
    await pub.media(VIDEO, 2000, key[2])  # the second, 2 s later: the next is due at 104
    assert pub.hold_reads()
    now[0] = 104.0 - HOLD_LEAD - 0.01
    assert pub.hold_reads()
    now[0] = 104.0 - HOLD_LEAD + 0.01
    assert not pub.hold_reads()
    now[0] = 104.5  # late: read at once until it comes
    assert not pub.hold_reads()
    await pub.media(VIDEO, 4500, key[2])
    assert pub.hold_reads()
    stream.segmenter.enable_progress()  # packets leave as they come: no read waits
    assert not pub.hold_reads()
    await _close_within(pub)
    pool.shutdown(wait=True)
