"""The server channel rules (spec §4.2) on tables, plus a hypothesis property test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagw.livepeer.trickle.wire import parse_int
from mediagw.orchestrator.trickle.routes import Route, RouteError, RouteKind, parse_route
from mediagw.orchestrator.trickle.rules import (
    WINDOW,
    ChannelRules,
    GetOutcome,
    PostOutcome,
    SegmentRecord,
)


def rules() -> ChannelRules[SegmentRecord]:
    return ChannelRules(SegmentRecord, now=0.0)


def written(r: ChannelRules[SegmentRecord], *seqs: int, now: float = 1.0) -> None:
    """Publish complete segments ``seqs`` (first byte, then end)."""
    for seq in seqs:
        plan = r.post(seq)
        assert plan.segment is not None
        r.first_byte(plan.segment, now)
        r.end_post(plan.segment, now)


# --- GET: which seq is served, which creates a waiting slot, which gets 470 ------------------

# (segments written before, GET seq) -> (outcome, effective seq, latest, created)
GET_TABLE = [
    ((), -1, GetOutcome.SERVE, 0, 0, True),  # next on a fresh channel: wait for 0
    ((), -2, GetOutcome.SERVE, 0, 0, True),  # current on a fresh channel: 0
    ((), 0, GetOutcome.SERVE, 0, 0, True),
    ((), 1, GetOutcome.SERVE, 1, 0, True),  # seq 1 while next_write is 0
    ((), 2, GetOutcome.UNAVAILABLE, 2, 0, False),
    ((0, 1, 2), -1, GetOutcome.SERVE, 3, 3, True),
    ((0, 1, 2), -2, GetOutcome.SERVE, 2, 3, False),  # the current one, held
    ((0, 1, 2), 0, GetOutcome.SERVE, 0, 3, False),  # inside the window
    ((0, 1, 2), 3, GetOutcome.SERVE, 3, 3, True),  # == next_write
    ((0, 1, 2), 4, GetOutcome.UNAVAILABLE, 4, 3, False),  # too far ahead
    ((0, 1, 2), 1, GetOutcome.SERVE, 1, 3, False),
    ((0, 1, 2, 3, 4, 5, 6), 1, GetOutcome.UNAVAILABLE, 1, 7, False),  # fell out of the window
    ((0, 1, 2, 3, 4, 5, 6), 2, GetOutcome.SERVE, 2, 7, False),  # oldest held
    ((0, 1, 2, 3, 4, 5, 6), 1000, GetOutcome.UNAVAILABLE, 1000, 7, False),
    ((0,), -3, GetOutcome.BAD, -3, 1, False),
]


@pytest.mark.parametrize(("before", "asked", "outcome", "seq", "latest", "created"), GET_TABLE)
def test_get_table(
    before: tuple[int, ...], asked: int, outcome: GetOutcome, seq: int, latest: int, created: bool
) -> None:
    r = rules()
    written(r, *before)
    plan = r.get(asked)
    assert (plan.outcome, plan.seq, plan.latest, plan.created) == (outcome, seq, latest, created)
    if outcome is GetOutcome.SERVE:
        assert plan.segment is not None and plan.segment.seq == seq
        assert plan.send_latest == (seq != latest)


def test_get_on_closed_channel() -> None:
    r = rules()
    written(r, 0, 1)
    closed = r.close()
    assert [c.seq for c in closed] == []  # both were already complete
    assert r.get(1).outcome is GetOutcome.SERVE  # held segments are still served
    plan = r.get(2)  # == next_write, but no waiting slot on a closed channel
    assert (plan.outcome, plan.seq, plan.latest) == (GetOutcome.CLOSED, 2, 2)
    assert r.get(-1).outcome is GetOutcome.CLOSED


def test_waiting_get_is_evicting_the_old_slot() -> None:
    r = rules()
    written(r, 0, 1, 2, 3, 4)
    old = r.record(0)
    assert old is not None
    plan = r.get(5)  # next_write: takes slot 0
    assert plan.created and old.evicted and old.closed
    assert r.record(0) is None


# --- POST ---------------------------------------------------------------------------------


def test_next_write_moves_on_first_byte_not_on_post() -> None:
    r = rules()
    plan = r.post(0)
    assert plan.outcome is PostOutcome.WRITE and r.next_write == 0
    assert plan.segment is not None
    assert r.first_byte(plan.segment, now=5.0)
    assert r.next_write == 1 and r.last_write == 5.0
    r.end_post(plan.segment, now=6.0)
    assert r.next_write == 1 and r.last_write == 5.0  # the end does not count as a write


def test_post_minus_one_uses_next_write() -> None:
    r = rules()
    written(r, 0, 1)
    plan = r.post(-1)
    assert plan.seq == 2


@pytest.mark.parametrize("seq", [-2, -5])
def test_post_bad_seq(seq: int) -> None:
    assert rules().post(seq).outcome is PostOutcome.BAD


def test_post_on_closed_channel() -> None:
    r = rules()
    r.close()
    assert r.post(0).outcome is PostOutcome.CLOSED


def test_post_takes_over_a_waiting_get_slot() -> None:
    r = rules()
    get = r.get(0)
    post = r.post(0)
    assert post.reused and post.segment is get.segment


def test_post_replaces_a_written_or_closed_record() -> None:
    r = rules()
    written(r, 0)
    old = r.record(0)
    plan = r.post(0)  # a restarted publisher writes 0 again
    assert not plan.reused and plan.segment is not old
    assert old is not None and old.evicted
    plan5 = r.post(5)  # same slot, other seq
    assert plan5.segment is not None and plan.segment is not None
    assert plan.segment.evicted and plan.segment in plan5.closed


def test_empty_preconnect_end_moves_next_write() -> None:
    r = rules()
    written(r, 0)
    plan = r.post(1)
    assert plan.segment is not None
    assert r.end_post(plan.segment, now=9.0)
    assert r.next_write == 2 and r.last_write == 9.0 and plan.segment.closed


def test_reset_closes_older_keeps_ahead() -> None:
    r = rules()
    written(r, 0, 1)
    waiting = r.get(2).segment  # a reader waits for 2 (next_write)
    ahead = r.post(4).segment  # preconnected, ahead
    plan = r.post(3, reset=True)
    assert waiting is not None and ahead is not None
    assert waiting.closed and not waiting.evicted  # unblocked, still held
    assert not ahead.closed
    assert {c.seq for c in plan.closed} == {2}  # 0 and 1 were complete already
    assert plan.segment is not None and not plan.segment.closed


def test_first_byte_of_closed_record_is_refused() -> None:
    r = rules()
    plan = r.post(0)
    assert plan.segment is not None
    assert r.drop(0) is plan.segment
    assert not r.first_byte(plan.segment, 1.0)
    assert r.next_write == 0


def test_drop_only_held_seq() -> None:
    r = rules()
    written(r, 0)
    assert r.drop(3) is None
    assert r.drop(-1) is None
    assert r.drop(0) is not None


def test_idle() -> None:
    r = ChannelRules(SegmentRecord, now=100.0)
    assert not r.idle(399.0, 300.0)
    assert r.idle(401.0, 300.0)
    written(r, 0, now=400.0)
    assert not r.idle(699.0, 300.0)


# --- routes -------------------------------------------------------------------------------

ROUTES = [
    ("POST", "abc", Route(RouteKind.CREATE, "abc")),
    ("DELETE", "abc", Route(RouteKind.DELETE, "abc")),
    ("POST", "abc/3", Route(RouteKind.PUBLISH, "abc", 3)),
    ("POST", "abc/-1", Route(RouteKind.PUBLISH, "abc", -1)),
    ("GET", "abc-out/-2", Route(RouteKind.SUBSCRIBE, "abc-out", -2)),
    ("GET", "abc/next", Route(RouteKind.NEXT, "abc")),
    ("GET", "abc/x", Route(RouteKind.SUBSCRIBE, "abc", None)),
    ("DELETE", "abc/7", Route(RouteKind.DROP, "abc", 7)),
    ("GET", "abc", RouteError(405, "Method Not Allowed")),
    ("PUT", "abc/1", RouteError(405, "Method Not Allowed")),
    ("GET", "abc/1/2", RouteError(404, "404 page not found")),
    ("GET", "", RouteError(404, "404 page not found")),
    ("GET", "/1", RouteError(404, "404 page not found")),
]


@pytest.mark.parametrize(("method", "tail", "expected"), ROUTES)
def test_routes(method: str, tail: str, expected: Route | RouteError) -> None:
    assert parse_route(method, tail) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("12", 12), ("-1", -1), ("+3", 3), (" 4 ", 4), ("", None), ("1e3", None),
     ("9" * 16, None), ("abc", None), (None, None)],
)  # fmt: skip
def test_parse_int(text: str | None, value: int | None) -> None:
    assert parse_int(text) == value


# --- property: random operations keep the invariants -----------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("post"), st.integers(-1, 12), st.booleans()),
        st.tuples(st.just("byte"), st.integers(0, 12), st.just(False)),
        st.tuples(st.just("end"), st.integers(0, 12), st.just(False)),
        st.tuples(st.just("get"), st.integers(-2, 12), st.just(False)),
        st.tuples(st.just("drop"), st.integers(0, 12), st.just(False)),
        st.tuples(st.just("close"), st.just(0), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_rules_invariants(operations: list[tuple[str, int, bool]]) -> None:
    r = rules()
    posted: dict[int, SegmentRecord] = {}
    for now, (op, seq, flag) in enumerate(operations):
        before = r.next_write
        if op == "post":
            plan = r.post(seq, reset=flag)
            if plan.segment is not None:
                posted[plan.seq] = plan.segment
                assert plan.seq == (before if seq == -1 else seq)
                if flag:  # reset: nothing older stays open
                    assert all(h.closed for h in r.held() if h.seq < plan.seq)
        elif op == "byte" and seq in posted:
            rec = posted[seq]
            accepted = r.first_byte(rec, float(now))
            assert accepted == (not rec.closed)
            if accepted:
                assert r.next_write == rec.seq + 1
        elif op == "end" and seq in posted:
            r.end_post(posted[seq], float(now))
            assert posted[seq].closed
        elif op == "get":
            plan_g = r.get(seq)
            effective = {-1: before, -2: max(before - 1, 0)}.get(seq, seq)
            assert plan_g.seq == effective and plan_g.latest == before
            if plan_g.outcome is GetOutcome.SERVE:
                assert plan_g.segment is not None and plan_g.segment.seq == effective
            elif plan_g.outcome is GetOutcome.UNAVAILABLE:
                assert not r.closed
                assert effective != before and not (before == 0 and effective == 1)
            elif plan_g.outcome is GetOutcome.CLOSED:
                assert r.closed
        elif op == "drop":
            r.drop(seq)
        elif op == "close":
            r.close()
            assert all(h.closed for h in r.held())
        # window invariants
        held = r.held()
        assert len(held) <= WINDOW
        assert len({h.seq % WINDOW for h in held}) == len(held)
        assert all(r.record(h.seq) is h and not h.evicted for h in held)
        assert r.next_write >= 0
        if r.closed:
            assert r.get(r.next_write + 7).outcome in (GetOutcome.CLOSED, GetOutcome.SERVE)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["GET", "POST", "DELETE", "PUT"]), st.text(max_size=300))
def test_parse_route_never_raises(method: str, tail: str) -> None:
    route = parse_route(method, tail)
    if isinstance(route, Route):
        assert route.channel and "/" not in route.channel
        assert route.seq is None or abs(route.seq) < 10**15
