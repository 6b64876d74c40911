"""Unit tier of the progressive input of a live session (``begin`` / ``extend`` / ``complete``,
``lose``), against the in-test orchestrator of test_live_fakes (plain HTTP, echo runner)."""

from __future__ import annotations

from live_ai.test_live_fakes import FakeLiveO, rig, wait_for

from mediagw.pipelines.live_ai.session import LiveSession
from segmenter import CLOCK, Segment, SegmentProgress, SegmentStart


def parts(seq: int) -> list[bytes]:
    return [f"seg{seq:02d}-part{i}|".encode() * 100 for i in range(3)]


def start(seq: int) -> SegmentStart:
    return SegmentStart(seq, 0, False, None, None)


def whole(seq: int) -> Segment:
    return Segment(seq, b"".join(parts(seq)), 0, CLOCK, False, None, None, 30, 0)


def received(o: FakeLiveO) -> int:
    """Bytes of input the orchestrator's trickle server holds in unfinished segments."""
    channel = o.server.get_channel(o.mids[0]) if o.mids else None
    if channel is None:
        return 0
    return sum(s.size for s in channel.info().segments if not s.closed)


def stream(session: LiveSession, seq: int, upto: int = 3) -> None:
    """Segment ``seq``: its start and its first ``upto`` parts."""
    session.begin(start(seq))
    for data in parts(seq)[:upto]:
        session.extend(SegmentProgress(seq, data, ()))


async def test_a_segment_goes_out_before_it_is_cut() -> None:
    async with rig(1) as r:
        session = r.session()
        await session.start()
        o = r.orchs[0]
        stream(session, 7, upto=1)
        await wait_for(lambda: received(o) == len(parts(7)[0]))  # the POST is open, bytes in
        assert o.inputs == []
        for data in parts(7)[1:]:
            session.extend(SegmentProgress(7, data, ()))
        await wait_for(lambda: received(o) == len(whole(7).data))
        assert o.inputs == []  # not cut yet: still one open POST
        session.complete(whole(7))
        await r.wait_outputs(1)
        assert o.inputs == [whole(7).data]
        st = session.status()
        assert st["gateway_status"]["segments"]["published"] == 1
        assert st["timings"]["input_first_byte"]["count"] == 1
        await session.end()


async def test_queued_segments_go_whole_then_the_open_one_live() -> None:
    async with rig(1) as r:
        session = r.session()  # held while no orchestrator is attached:
        session.complete(whole(0))  # no progress for it (opened before we asked): whole
        stream(session, 1)
        session.complete(whole(1))
        stream(session, 2, upto=2)
        await session.start()
        o = r.orchs[0]
        await r.wait_outputs(2)
        await wait_for(lambda: received(o) == len(parts(2)[0]) + len(parts(2)[1]))
        session.extend(SegmentProgress(2, parts(2)[2], ()))
        session.complete(whole(2))
        await r.wait_outputs(3)
        assert o.inputs == [whole(0).data, whole(1).data, whole(2).data]
        await session.end()


async def test_lost_progress_skips_its_segment_and_never_sends_it_damaged() -> None:
    async with rig(1) as r:
        session = r.session()
        await session.start()
        o = r.orchs[0]
        stream(session, 1, upto=1)
        await wait_for(lambda: received(o) > 0)
        session.lose(1)  # an item of the open segment was lost: its POST is dropped
        await wait_for(lambda: o.broken == 1)
        session.extend(SegmentProgress(1, parts(1)[1], ()))  # the rest of it is ignored
        session.complete(whole(1))
        session.lose(2)  # lost before it began here: skipped whole
        stream(session, 2)
        session.complete(whole(2))
        stream(session, 3)
        session.complete(whole(3))
        await r.wait_outputs(1)
        assert o.inputs == [whole(3).data]
        segments = session.status()["gateway_status"]["segments"]
        assert segments["skipped"] == 2 and segments["published"] == 1, segments
        await session.end()


async def test_a_segment_never_cut_is_dropped_by_the_next_start() -> None:
    async with rig(1) as r:
        session = r.session()
        await session.start()
        o = r.orchs[0]
        stream(session, 1)  # the segmenter abandons it (too large): no Segment comes
        await wait_for(lambda: received(o) > 0)
        stream(session, 2)
        session.complete(whole(2))
        await r.wait_outputs(1)
        assert o.inputs == [whole(2).data] and o.broken == 1
        assert session.counters.segments_skipped == 1
        await session.end()


async def test_a_swap_mid_segment_sends_it_whole_to_the_next_orchestrator() -> None:
    async with rig(2) as r:
        session = r.session()
        await session.start()
        first = session.current
        assert first is not None
        dead = next(o for o in r.orchs if o.url == first.url)
        alive = next(o for o in r.orchs if o is not dead)
        stream(session, 1)
        session.complete(whole(1))
        await r.wait_outputs(1)
        stream(session, 2, upto=2)
        await wait_for(lambda: received(dead) == len(parts(2)[0]) + len(parts(2)[1]))
        await dead.kill()
        await wait_for(lambda: session.current is not None and session.current.url == alive.url)
        session.extend(SegmentProgress(2, parts(2)[2], ()))
        session.complete(whole(2))
        await r.wait_outputs(2)
        assert dead.inputs == [whole(1).data] and alive.inputs == [whole(2).data]
        segments = session.status()["gateway_status"]["segments"]
        assert segments["published"] == 2 and segments["failed"] == 0, segments
        await session.end()
