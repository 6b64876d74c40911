"""Ingest health per stream (``stream/health``) from the segments the hub lists: bitrate, frame
rate, keyframe spacing and segment timing over the last ``window`` segments, reset by a new
publish session, forgotten with the stream."""

from __future__ import annotations

from mediagw.clock import ManualClock
from mediagw.stream.health import StreamHealth
from mediagw.stream.hub import StreamHub
from segmenter import Segment
from segmenter.packet import CLOCK


def _segment(seq: int, seconds: float, size: int, frames: int) -> Segment:
    return Segment(seq, b"\0" * size, 0, round(seconds * CLOCK), False, None, None, frames, 0)


def test_figures_over_the_window_of_segments() -> None:
    clock = ManualClock(1000.0)
    hub = StreamHub(clock=clock.wall, ended_ttl=0)
    health = StreamHealth(clock=clock.wall, window=4)
    hub.add_listener(health)
    stream = hub.begin_publish("s1")
    assert health.of(stream)["bitrate_bps"] is None  # nothing to tell yet
    hub.add_segment(stream, _segment(0, 9.0, 999_999, 1))  # leaves the window
    for seq, (seconds, size) in enumerate([(2.0, 50_000), (2.0, 50_000), (1.0, 25_000)], 1):
        clock.advance(2.0)
        hub.add_segment(stream, _segment(seq, seconds, size, round(seconds * 30)))
    clock.advance(2.0)
    hub.add_segment(stream, _segment(4, 3.0, 75_000, 90))
    clock.advance(0.5)
    h = health.of(stream)
    assert h["window_segments"] == 4
    assert h["bitrate_bps"] == 200_000  # 200 kB over 8 media seconds
    assert h["fps"] == 30.0
    assert h["keyframe_interval_s"] == 2.0  # the median spacing of segment starts
    assert (h["segment_duration_min_s"], h["segment_duration_max_s"]) == (1.0, 3.0)
    assert h["segment_interval_s"] == 2.0 and h["last_segment_age_s"] == 0.5


def test_a_new_session_starts_afresh_and_a_removed_stream_is_forgotten() -> None:
    clock = ManualClock(1000.0)
    hub = StreamHub(clock=clock.wall, ended_ttl=0)
    health = StreamHealth(clock=clock.wall)
    hub.add_listener(health)
    stream = hub.begin_publish("s1")
    hub.add_segment(stream, _segment(0, 2.0, 1000, 60))
    hub.end_publish(stream)
    stream = hub.begin_publish("s1")
    assert health.of(stream)["window_segments"] == 0
    hub.add_segment(stream, _segment(1, 2.0, 1000, 60))
    hub.end_publish(stream)
    assert hub.sweep() == ["s1"]
    assert health.of(stream)["window_segments"] == 0
