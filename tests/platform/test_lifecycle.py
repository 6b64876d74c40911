"""The stream lifecycle over a real store (both backends), driven as the hub drives it: a
session per publish, periodic deltas that add up to exactly what the hub counted, the end, and
the events (with the stream, never its key)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mediagw.platform.lifecycle import StreamLifecycle
from mediagw.platform.store import SqlStore, Stream
from mediagw.request import StreamRequest


@dataclass
class Stats:
    segments: int = 0
    bytes: int = 0
    media_seconds: float = 0.0


@dataclass
class HubStream:  # the part of mediagw.stream.hub.Stream the lifecycle reads
    id: str
    request: StreamRequest
    stats: Stats = field(default_factory=Stats)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []

    async def emit(
        self, event: str, *, stream_id: str, stream_doc: dict[str, Any], payload: dict[str, Any],
        stream_row: Stream | None = None,
    ) -> None:  # fmt: skip
        assert stream_row is None or stream_row.id == stream_id
        self.seen.append((event, stream_id, stream_doc, payload))


async def test_sessions_counters_and_events(store: SqlStore) -> None:
    row = Stream(id="s1", name="n", stream_key="sk-1", playback_id="p1", created_at=1, record=True)
    await store.create_stream(row)
    transcoded = {"p1": (0, 0.0, 0)}
    events = Events()
    life = StreamLifecycle(
        store, {"p1": row}, events=events, transcoded=transcoded.__getitem__,
        recording_url=lambda sid: f"http://gw/recordings/{sid}/index.m3u8",
    )  # fmt: skip
    life.start()
    hub = HubStream("p1", StreamRequest("p1", stream_id="s1"))
    hub.stats = Stats(segments=7, bytes=700, media_seconds=14.0)  # an earlier, unstored session
    transcoded["p1"] = (5, 10.0, 500)
    other = HubStream("p2", StreamRequest("p2", stream_id="s1"))  # not granted by the store
    life.on_stream_start(other)
    life.on_stream_start(hub)
    assert life.recording_session("p1") is not None and life.recording_session("p2") is None
    for n in range(3):  # segments come, the ticker flushes now and then
        hub.stats.segments += 2
        hub.stats.bytes += 100
        hub.stats.media_seconds += 4.0
        transcoded["p1"] = (transcoded["p1"][0] + 1, transcoded["p1"][1] + 2.0, 500 + 50 * (n + 1))
        life.flush()
    await life.drain()
    live = await store.get_stream("s1")
    assert live is not None and live.is_active and live.source_segments == 6
    hub.stats.segments += 1
    life.on_stream_end(hub)
    await life.close()
    (session,) = await store.list_sessions("s1")
    stream = await store.get_stream("s1")
    assert stream is not None and not stream.is_active
    for got in (session, stream):
        assert (got.source_segments, got.source_bytes) == (7, 300)
        assert got.source_segments_duration == 12.0
        assert (got.transcoded_segments, got.transcoded_bytes) == (3, 150)
        assert got.transcoded_segments_duration == 6.0
    assert session.ended_at is not None
    assert session.recording_url == f"http://gw/recordings/{session.id}/index.m3u8"
    names = [e[0] for e in events.seen]
    assert names == ["stream.started", "recording.started", "stream.idle", "recording.ready"]
    assert all(e[1] == "s1" for e in events.seen)
    assert "sk-1" not in repr(events.seen)
    assert events.seen[2][2]["isActive"] is False
    assert events.seen[3][3]["recordingUrl"] == session.recording_url


async def test_one_flush_is_one_store_call_for_every_live_stream(store: SqlStore) -> None:
    rows = [
        Stream(id=f"s{n}", name="n", stream_key=f"sk-{n}", playback_id=f"p{n}", created_at=1)
        for n in (1, 2, 3)
    ]
    for row in rows:
        await store.create_stream(row)
    calls: list[int] = []
    many = store.add_counters_many

    async def counted(updates: Any, at: int) -> None:
        calls.append(len(updates))
        await many(updates, at)

    store.add_counters_many = counted  # type: ignore[method-assign]
    life = StreamLifecycle(store, {r.playback_id: r for r in rows}, events=Events())
    life.start()
    hubs = [HubStream(r.playback_id, StreamRequest(r.playback_id, stream_id=r.id)) for r in rows]
    for hub in hubs:
        life.on_stream_start(hub)
        hub.stats.segments += 2
    life.flush()
    await life.drain()
    assert calls == [3]
    assert [(await store.get_stream(r.id)).source_segments for r in rows] == [2, 2, 2]  # type: ignore[union-attr]
    for hub in hubs:
        life.on_stream_end(hub)
    await life.close()


async def test_a_recorded_session_ends_once_its_recording_has_its_end(store: SqlStore) -> None:
    """The recorder writes a recording's end after the segments it still has queued: the
    session is stored ended (recording.ready sent) only once that end is written."""
    row = Stream(id="s1", name="n", stream_key="sk-1", playback_id="p1", created_at=1, record=True)
    await store.create_stream(row)
    written = asyncio.Event()
    events = Events()
    life = StreamLifecycle(
        store, {"p1": row}, events=events,
        recording_url=lambda sid: f"http://gw/recordings/{sid}/index.m3u8",
        recording_ended={"p1": written}.get,
    )  # fmt: skip
    life.start()
    hub = HubStream("p1", StreamRequest("p1", stream_id="s1"))
    life.on_stream_start(hub)
    await life.drain()
    life.on_stream_end(hub)
    await asyncio.sleep(0.2)  # the lifecycle's worker is free to go on meanwhile
    (session,) = await store.list_sessions("s1")
    assert session.ended_at is None and "recording.ready" not in [e[0] for e in events.seen]
    written.set()
    await life.close()
    (session,) = await store.list_sessions("s1")
    assert session.ended_at is not None and session.recording_url
    assert [e[0] for e in events.seen][-1] == "recording.ready"
