"""The store's live half (``sql_live``) on both backends: sessions starting and ending, atomic
counter increments, the clean-up after an unclean stop, multistream targets."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from mediagw.errors import StoreConflict, StoreNotFound
from mediagw.platform.store import Counters, MultistreamTarget, Session, SqlStore, Stream


def _stream(n: int) -> Stream:
    return Stream(id=f"s{n}", name=f"n{n}", stream_key=f"k{n}", playback_id=f"p{n}", created_at=n)


async def test_a_session_starts_active_counts_and_finishes(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    session = Session(id="a", stream_id="s1", created_at=10, last_seen=10, record=True)
    before = store.statements
    started = await store.start_session(session)  # the stream as the update left it
    # PostgreSQL: one statement in autocommit (the insert in a CTE), one round trip
    postgres = store._engine.dialect.name == "postgresql"
    assert store.statements - before == (1 if postgres else 2)
    assert started.is_active and started.last_seen == 10
    assert await store.get_stream("s1") == started
    assert await store.get_session("a") == session
    await store.add_counters("s1", "a", Counters(source_segments=2, source_bytes=100), 20)
    await store.add_counters("s1", "a", Counters(source_segments_duration=4.0), 30)
    before = store.statements
    finished = await store.finish_session(
        "s1", "a", Counters(source_segments=1, transcoded_bytes=7), 40, "http://h/r.m3u8"
    )
    assert store.statements - before == (1 if postgres else 2)  # one statement on PostgreSQL
    assert finished is not None
    ended, after = finished
    assert ended == await store.get_session("a")
    assert ended == dataclasses.replace(
        session,
        ended_at=40,
        last_seen=40,
        recording_url="http://h/r.m3u8",
        source_segments=3,
        source_bytes=100,
        source_segments_duration=4.0,
        transcoded_bytes=7,
    )
    stream = await store.get_stream("s1")
    assert stream == after  # returned by the update, as stored
    assert stream is not None and not stream.is_active and stream.last_seen == 40
    assert (stream.source_segments, stream.source_bytes, stream.transcoded_bytes) == (3, 100, 7)
    # ended already (a takeover ended it): None, and its last counters are added all the same
    assert await store.finish_session("s1", "a", Counters(source_bytes=5), 50) is None
    again, stream_after = await store.get_session("a"), await store.get_stream("s1")
    assert again is not None and (again.ended_at, again.source_bytes, again.last_seen) == (
        40,
        105,
        50,
    )
    assert stream_after is not None and stream_after.source_bytes == 105
    assert not stream_after.is_active
    with pytest.raises(StoreNotFound):
        await store.start_session(Session(id="b", stream_id="nope", created_at=1))


async def test_a_stream_stays_active_until_its_last_open_session_ends(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.start_session(Session(id="x", stream_id="s1", created_at=1))
    await store.start_session(Session(id="y", stream_id="s1", created_at=2))  # a takeover
    finished = await store.finish_session("s1", "x", Counters(source_segments=1), 3)
    assert finished is not None and finished[1].is_active  # y is still open
    assert (await store.get_stream("s1")) == finished[1]
    finished = await store.finish_session("s1", "y", Counters(source_segments=2), 4)
    assert finished is not None and not finished[1].is_active
    assert finished[1].source_segments == 3 and finished[1].last_seen == 4


async def test_concurrent_increments_are_never_lost(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.start_session(Session(id="a", stream_id="s1", created_at=1))
    one = Counters(source_segments=1, source_bytes=10, transcoded_segments_duration=0.5)
    await asyncio.gather(*(store.add_counters("s1", "a", one, n) for n in range(20)))
    stream = await store.get_stream("s1")
    session = await store.get_session("a")
    for row in (stream, session):
        assert row is not None
        assert (row.source_segments, row.source_bytes) == (20, 200)
        assert row.transcoded_segments_duration == pytest.approx(10.0)


async def test_many_streams_counters_in_one_call(store: SqlStore) -> None:
    """The periodic flush: every live stream's deltas in one transaction, each added to its
    own stream and session (the other rows untouched), zeros included."""
    for n in (1, 2, 3):
        await store.create_stream(_stream(n))
    await store.start_session(Session(id="a", stream_id="s1", created_at=1))
    await store.start_session(Session(id="c", stream_id="s3", created_at=1))
    await store.add_counters("s1", "a", Counters(source_segments=1, source_bytes=5), 2)
    await store.add_counters_many(
        [
            ("s1", "a", Counters(source_segments=2, source_segments_duration=4.0)),
            ("s2", None, Counters(transcoded_bytes=9)),
            ("s3", "c", Counters()),
        ],
        50,
    )
    await store.add_counters_many([], 60)  # nothing to flush: nothing done
    s1, s2, s3 = [await store.get_stream(f"s{n}") for n in (1, 2, 3)]
    a, c = await store.get_session("a"), await store.get_session("c")
    assert s1 is not None and a is not None and s2 is not None and s3 is not None
    for row in (s1, a):
        assert (row.source_segments, row.source_bytes, row.last_seen) == (3, 5, 50)
        assert row.source_segments_duration == pytest.approx(4.0)
    assert (s2.transcoded_bytes, s2.source_segments, s2.last_seen) == (9, 0, 50)
    assert c is not None and (s3.last_seen, c.last_seen, c.source_segments) == (50, 50, 0)


async def test_stream_counters_without_a_session(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.add_counters("s1", None, Counters(transcoded_segments=3), 5)
    stream = await store.get_stream("s1")
    assert stream is not None and stream.transcoded_segments == 3 and stream.last_seen == 5


async def test_stale_sessions_end_when_last_seen_after_an_unclean_stop(store: SqlStore) -> None:
    for n in (1, 2, 3):
        await store.create_stream(_stream(n))
    await store.start_session(Session(id="a", stream_id="s1", created_at=10))
    await store.add_counters("s1", "a", Counters(), 25)
    await store.start_session(Session(id="b", stream_id="s2", created_at=30))
    await store.start_session(Session(id="c", stream_id="s3", created_at=5))
    await store.finish_session("s3", "c", Counters(), 6)
    assert sorted(await store.end_stale_sessions()) == ["s1", "s2"]
    assert [(await store.get_session(i)).ended_at for i in "abc"] == [25, 30, 6]  # type: ignore[union-attr]
    assert [(await store.get_stream(f"s{n}")).is_active for n in (1, 2, 3)] == [False] * 3  # type: ignore[union-attr]
    assert await store.end_stale_sessions() == ()


async def test_multistream_targets(store: SqlStore) -> None:
    first = MultistreamTarget(id="t1", name="yt", url="rtmp://a/live/secret", created_at=1)
    second = MultistreamTarget(
        id="t2", name="tw", url="srt://b:9000", created_at=2, disabled=True, owner_key_id="k"
    )
    assert await store.create_multistream_target(first) == first
    await store.create_multistream_target(second)
    assert await store.get_multistream_target("t2") == second
    assert await store.get_multistream_target("nope") is None
    assert [t.id for t in await store.list_multistream_targets()] == ["t2", "t1"]
    assert [t.id for t in await store.list_multistream_targets(limit=1)] == ["t2"]
    with pytest.raises(StoreConflict, match="id"):
        await store.create_multistream_target(first)
    assert await store.delete_multistream_target("t1")
    assert not await store.delete_multistream_target("t1")
    assert [t.id for t in await store.list_multistream_targets()] == ["t2"]
