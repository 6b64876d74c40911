"""The stream hub's state rules and the in-memory HLS store, with hand-made segments."""

from __future__ import annotations

import asyncio

import pytest

from mediagw.clock import ManualClock
from mediagw.errors import LimitExceeded, StreamBusy
from mediagw.publish.hls import SOURCE, HLSPublisher
from mediagw.stream.hub import StreamHub
from segmenter import CLOCK, Segment, VideoConfig

VIDEO = VideoConfig("h264", 640, 360, (b"\x67\x64\x00\x1f\xac",), (b"\x68",))


def seg(seq: int, disc: bool = False, size: int = 1000) -> Segment:
    return Segment(seq, b"\x47" * size, seq * 2 * CLOCK, 2 * CLOCK, disc, VIDEO, None, 60, 0)


def test_state_rules() -> None:
    clock = ManualClock()
    hub = StreamHub(max_sessions=2, ended_ttl=60, clock=clock)
    a = hub.begin_publish("a")
    with pytest.raises(StreamBusy):
        hub.begin_publish("a")
    hub.begin_publish("b")
    with pytest.raises(LimitExceeded):
        hub.begin_publish("c")
    hub.end_publish(a)
    assert not a.live and a.ended_at == 1000.0
    again = hub.begin_publish("a")  # same stream object comes back to life
    assert again is a and a.live and a.stats.sessions == 2
    hub.end_publish(a)
    clock.now += 59
    assert hub.sweep() == []
    clock.now += 1
    assert hub.sweep() == ["a"] and hub.get("a") is None
    assert hub.get("b") is not None  # live streams are never swept


def test_hls_store_window_and_bounded_memory() -> None:
    hub = StreamHub()
    hls = HLSPublisher(2.0, window=3, grace=2)
    hub.add_listener(hls)
    stream = hub.begin_publish("s")
    for i in range(10):
        hub.add_segment(stream, seg(i))
    text = hls.media_playlist("s", SOURCE)
    assert text is not None and "#EXT-X-MEDIA-SEQUENCE:7" in text
    assert hls.segment("s", SOURCE, 4) is None  # beyond window + grace: freed
    assert hls.segment("s", SOURCE, 5) is not None  # still there for a late reader
    rendition = hls.rendition("s", SOURCE)
    assert rendition is not None and len(rendition.segments) == 5
    master = hls.multivariant("s")
    assert master is not None and "RESOLUTION=640x360" in master and "BANDWIDTH=4000" in master
    hub.end_publish(stream)
    assert hls.media_playlist("s", SOURCE).endswith("#EXT-X-ENDLIST\n")  # type: ignore[union-attr]
    stream = hub.begin_publish("s")
    hub.add_segment(stream, seg(10, disc=True))
    text = hls.media_playlist("s", SOURCE)
    assert text is not None and "#EXT-X-ENDLIST" not in text and "#EXT-X-DISCONTINUITY" in text


async def test_wait_ready_returns_on_first_segment_or_times_out() -> None:
    hub = StreamHub()
    hls = HLSPublisher(2.0)
    hub.add_listener(hls)
    assert await hls.wait_ready("unknown", SOURCE, 0.01) is None
    stream = hub.begin_publish("w")
    assert await hls.wait_ready("w", SOURCE, 0.01) is None
    waiter = asyncio.create_task(hls.wait_ready("w", SOURCE, 5))
    await asyncio.sleep(0.01)
    hub.add_segment(stream, seg(0))
    rendition = await asyncio.wait_for(waiter, 1)
    assert rendition is not None and rendition.segments
