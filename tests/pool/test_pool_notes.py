"""OrchNotes (node-wide penalties and latency scores) and how selection uses them."""

from __future__ import annotations

from pool.pool_testkit import session

from mediagw.clock import ManualClock
from mediagw.pool import OrchSession, StreamSelector
from mediagw.pool.notes import EWMA_ALPHA, TRANSCODE_CYCLE_S, OrchNotes


def make(
    notes: OrchNotes, *sessions: OrchSession, pool_size: int = 0
) -> tuple[StreamSelector, ManualClock]:
    clock = ManualClock()
    sel = StreamSelector(clock=clock, pool_size=pool_size or len(sessions), notes=notes)
    sel.refresh(list(sessions))
    return sel, clock


def test_penalty_until_a_wall_time() -> None:
    wall = ManualClock(now=1000.0)
    notes = OrchNotes(wall)
    notes.suspend("https://a:8935", 60)
    notes.learn_penalty("https://b:8935", 1030.0, "node-b")
    notes.learn_penalty("https://c:8935", 999.0, "node-b")  # already over: ignored
    assert notes.penalty("https://a:8935") is not None
    assert notes.penalty("https://b:8935").node == "node-b"  # type: ignore[union-attr]
    assert not notes.penalized("https://c:8935")
    assert notes.take_penalties() == {"https://a:8935": 1060.0}  # only what was given here
    assert notes.take_penalties() == {}
    wall.now += 30
    assert set(notes.penalties()) == {"https://a:8935"}
    notes.learn_penalty("https://a:8935", 1040.0, "node-b")  # earlier than ours: kept ours
    assert notes.penalty("https://a:8935").node == ""  # type: ignore[union-attr]
    wall.now += 31
    assert notes.penalties() == {}


def test_latency_ewma_and_one_wake_per_batch() -> None:
    notes = OrchNotes(ManualClock())
    wakes = []
    notes.on_change = lambda: wakes.append(1)
    for score in (1.0, 0.5, 0.5):
        notes.observe("https://a:8935", score)
    expected = 1.0 + EWMA_ALPHA * (0.5 - 1.0)
    expected += EWMA_ALPHA * (0.5 - expected)
    assert notes.latency("https://a:8935") == expected
    assert len(wakes) == 1  # per batch, not per segment
    assert notes.take_latencies() == {"https://a:8935": expected}
    assert not notes.latencies_pending
    notes.learn_latency("https://b:8935", 0.3)  # another node's
    assert notes.latency("https://b:8935") == 0.3
    notes.learn_latency("https://a:8935", 9.0)  # our own measure comes first
    assert notes.latency("https://a:8935") == expected


def test_selection_avoids_an_o_penalised_elsewhere_while_another_is_usable() -> None:
    notes = OrchNotes(ManualClock(now=1000.0))
    a, b = session("a"), session("b")
    sel, _ = make(notes, a, b)
    notes.learn_penalty(a.url, 2000.0, "node-b")
    assert sel.suspended(a.url) == 1  # discovery sets it aside
    chosen = sel.select()
    assert chosen is b
    sel.complete(b, 0.4)
    assert sel.select(exclude={b.url}) is a  # nothing else left: used anyway


def test_a_failure_is_noted_for_every_node_and_latency_too() -> None:
    wall = ManualClock(now=1000.0)
    notes = OrchNotes(wall)
    a, b, c, d = (session(n) for n in "abcd")
    sel, _ = make(notes, a, b, c, d, pool_size=16)  # penalty ceil(16 / 8) = 2 cycles
    s = sel.select()
    assert s is a
    sel.fail(s, retryable=True)
    assert notes.take_penalties() == {a.url: 1000.0 + 2 * TRANSCODE_CYCLE_S}
    s = sel.select()
    assert s is b
    sel.complete(s, 0.25)
    assert notes.take_latencies() == {b.url: 0.25}
    s = sel.select()
    assert s is b  # sticky
    sel.fail(s, retryable=False)  # the input's fault: nothing noted
    assert notes.take_penalties() == {}


def test_untried_sessions_follow_the_noted_latency() -> None:
    notes = OrchNotes(ManualClock())
    slow, unknown, fast = session("slow"), session("unknown"), session("fast")
    notes.learn_latency(slow.url, 2.5)  # above the threshold (1.0)
    notes.learn_latency(fast.url, 0.2)
    sel, _ = make(notes, slow, unknown, fast)  # discovery order: slow first
    assert sel.select() is fast
    assert sel.select(exclude={fast.url}) is unknown
    assert sel.select(exclude={fast.url, unknown.url}) is slow


def test_without_notes_selection_is_unchanged() -> None:
    slow, fast = session("slow"), session("fast")
    sel = StreamSelector(clock=ManualClock(), pool_size=2)
    sel.refresh([slow, fast])
    assert sel.select() is slow  # discovery order
