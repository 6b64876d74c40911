"""StreamSelector: MinLS order, stickiness, failures and suspension, refresh, region steering."""

from __future__ import annotations

import pytest
from pool.pool_testkit import make_info, session

from mediagw.clock import ManualClock
from mediagw.pool import OrchSession, StreamSelector, latency_score


def make(
    *sessions: OrchSession, regions: tuple[str, ...] = (), pool_size: int = 0
) -> tuple[StreamSelector, ManualClock]:
    clock = ManualClock()
    sel = StreamSelector(regions, clock=clock, pool_size=pool_size or len(sessions))
    sel.refresh(list(sessions))
    return sel, clock


def run(sel: StreamSelector, score: float, **kw: object) -> OrchSession:
    """Select and complete one segment."""
    s = sel.select(**kw)  # type: ignore[arg-type]
    assert s is not None
    sel.complete(s, score)
    return s


def test_latency_score() -> None:
    assert latency_score(3.0, 2.0) == 1.5
    assert latency_score(0.75, 1.0) == 0.5  # floor 1.5 s


def test_unknown_sessions_in_discovery_order() -> None:
    a, b, c = session("a"), session("b"), session("c")
    sel, _ = make(a, b, c)
    assert sel.select() is a
    assert sel.select() is a  # a is in flight, just started: sticky
    assert sel.select(exclude={a.url}) is b  # the next unknown in discovery order
    assert sel.select(exclude={a.url, b.url}) is c
    assert sel.select(exclude={a.url, b.url, c.url}) is None


def test_sticky_keeps_fast_session() -> None:
    a, b = session("a"), session("b")
    sel, _ = make(a, b)
    assert run(sel, 0.5) is a
    assert run(sel, 0.9) is a  # nothing in flight and score <= 1.0
    assert run(sel, 1.0) is a
    assert run(sel, 1.5) is a  # last score was 1.0, still kept
    assert sel.select() is b  # a's score 1.5 > 1.0, an unknown is left


def test_slow_known_session_reused_when_no_unknown_left() -> None:
    a, b = session("a"), session("b")
    sel, _ = make(a, b)
    assert run(sel, 3.0) is a
    assert run(sel, 2.0) is b
    assert run(sel, 2.5) is b  # no unknown left: best known (b 2.0 < a 3.0)
    assert run(sel, 2.5) is b  # b now 2.5 < a 3.0
    assert run(sel, 9.0) is b
    assert sel.select() is a  # a 3.0 < b 9.0


def test_known_sessions_ordered_by_score() -> None:
    a, b, c = session("a"), session("b"), session("c")
    sel, _ = make(a, b, c)
    for s, score in ((a, 0.9), (b, 0.3), (c, 0.6)):
        got = sel.select(exclude={x.url for x in (a, b, c) if x is not s})
        assert got is s
        sel.complete(s, score)
    # last is c (0.6, sticky) -> exclude it to look at the heap
    assert sel.select(exclude={c.url}) is b
    sel.complete(b, 0.3)
    assert sel.select(exclude={b.transcoder, c.transcoder}) is a  # exclude by transcoder


def test_sticky_while_in_flight_within_segment_duration() -> None:
    a, b = session("a"), session("b")
    sel, clock = make(a, b)
    assert sel.select(segment_duration=2.0) is a
    clock.advance(1.9)
    assert sel.select(segment_duration=2.0) is a  # oldest in flight 1.9 s < 2 s
    assert a.in_flight == 2
    clock.advance(0.2)
    assert sel.select(segment_duration=2.0) is b  # 2.1 s: not sticky, b is available
    sel.complete(a, 0.5)
    sel.complete(a, 0.5)
    assert a.in_flight == 0


def test_sticky_window_floor_is_one_and_a_half_seconds() -> None:
    a, b = session("a"), session("b")
    sel, clock = make(a, b)
    assert sel.select(segment_duration=0.5) is a
    clock.advance(1.4)
    assert sel.select(segment_duration=0.5) is a
    clock.advance(0.2)
    assert sel.select(segment_duration=0.5) is b


def test_sticky_doubles_when_nothing_else() -> None:
    (a,) = (session("a"),)
    sel, clock = make(a)
    assert sel.select(segment_duration=2.0) is a
    clock.advance(3.0)
    assert sel.select(segment_duration=2.0) is a  # 3 s < 2 x 2 s, nothing else
    clock.advance(1.5)
    assert sel.select(segment_duration=2.0) is None  # 4.5 s: too old even at 2x


def test_select_empty() -> None:
    sel = StreamSelector(clock=ManualClock())
    assert sel.select() is None
    assert sel.needs_refresh()


def test_retryable_failure_suspends_and_removes() -> None:
    a, b = session("a"), session("b")
    sel, _ = make(a, b, pool_size=16)  # penalty ceil(16 / 8) = 2
    s = sel.select()
    assert s is a
    sel.fail(a, retryable=True)
    assert a.in_flight == 0
    assert a not in sel.sessions
    assert sel.suspended(a.url) == 2
    assert sel.select(exclude={a.url}) is b
    sel.fail(b, retryable=True)
    assert sel.select() is None
    # a late completion of a removed session is ignored
    sel.complete(a, 0.1)
    assert sel.sessions == []
    sel.refresh([])
    assert sel.suspended(a.url) == 1
    sel.refresh([])
    assert sel.suspended(a.url) == 0


def test_non_retryable_failure_keeps_session() -> None:
    a, b = session("a"), session("b")
    sel, _ = make(a, b)
    assert sel.select() is a
    sel.fail(a, retryable=False)
    assert sel.suspended(a.url) == 0
    assert a in sel.sessions
    assert sel.select(exclude={b.url}) is a  # back at the front of the unknown ones
    sel.complete(a, 0.4)
    sel.select()
    sel.fail(a, retryable=False)
    assert a.latency_score == 0.4
    assert sel.select() is a


def test_two_failures_in_flight_resuspend_with_max() -> None:
    a, b = session("a"), session("b")
    sel, _ = make(a, b, pool_size=24)  # penalty 3
    assert sel.select() is a
    assert sel.select() is a
    sel.fail(a, retryable=True)
    sel.refresh([])
    sel.fail(a, retryable=True)  # the second in-flight segment fails later: release_at 1 + 3
    assert sel.suspended(a.url) == 3


def test_refresh_threshold_and_dedupe() -> None:
    clock = ManualClock()
    sel = StreamSelector(clock=clock)
    assert sel.needs_refresh()
    sessions = [session(n) for n in "abcdefghij"]
    assert sel.refresh(sessions, pool_size=20) == 10
    assert not sel.needs_refresh()  # 10 >= min(8, 10)
    dup_t = OrchSession("https://other:8935", make_info(transcoder=sessions[0].transcoder))
    dup_u = OrchSession(sessions[1].url, make_info(transcoder="https://new-t:8935"))
    fresh = session("k")
    assert sel.refresh([dup_t, dup_u, fresh, fresh]) == 1
    assert len(sel) == 11
    for s in sessions[:4]:
        assert sel.select() is s
        sel.fail(s, retryable=True)
    assert len(sel) == 7
    assert sel.needs_refresh()  # 7 < min(8, ceil(20 / 2))
    sel.pool_size = 9
    assert sel.needs_refresh() is False  # 7 >= min(8, 5)


def test_exhausted() -> None:
    sel = StreamSelector(clock=ManualClock(), max_attempts=3)
    assert not sel.exhausted(2)
    assert sel.exhausted(3)


def test_region_preference_in_order_and_fallback() -> None:
    us = session("us", region="us-east", latency=0.01)
    eu = session("eu", region="EU-West", latency=0.2)
    ap = session("ap", region="ap-south", latency=0.3)
    anywhere = session("x", latency=0.05)
    sel, _ = make(us, eu, ap, anywhere, regions=("eu-west", "ap-south"))
    assert sel.select() is eu  # case-insensitive, first preferred region
    sel.fail(eu, retryable=True)
    assert sel.select() is ap  # next preferred region
    sel.fail(ap, retryable=True)
    assert sel.select() is us  # no preferred one left: fastest of the rest
    sel.complete(us, 0.5)
    assert sel.select() is us  # sticky


@pytest.mark.parametrize("score", [0.5, 3.0])
def test_region_tier_beats_latency_score(score: float) -> None:
    eu = session("eu", region="eu-west")
    us = session("us", region="us-east")
    sel, _ = make(us, eu, regions=("eu-west",))
    assert run(sel, score) is eu
    assert run(sel, 0.1, exclude={eu.url}) is us
    assert sel.select() is eu  # us is the last and fast, but eu is a better tier


def test_sticky_gives_way_to_a_preferred_region_after_refresh() -> None:
    us = session("us", region="us-east")
    sel, _ = make(us, regions=("eu-west",))
    assert run(sel, 0.2) is us
    assert run(sel, 0.2) is us
    eu = session("eu", region="eu-west")
    sel.refresh([eu])
    assert sel.select() is eu


def test_busy_preferred_session_still_sticky() -> None:
    eu = session("eu", region="eu-west")
    us = session("us", region="us-east")
    sel, clock = make(us, eu, regions=("eu-west",))
    assert sel.select() is eu
    clock.advance(0.5)
    assert sel.select() is eu  # busy but within the window; us is a worse tier
