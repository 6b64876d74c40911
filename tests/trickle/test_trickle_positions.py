"""Client rules (spec §4.4-§4.6) on tables: the subscriber position and the publisher retry
policy; hypothesis properties; and the two sans-IO cores wired together in memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagw.livepeer.trickle.positions import (
    PublishStep,
    Step,
    SubscriberPosition,
    publish_step,
)
from mediagw.orchestrator.trickle.rules import ChannelRules, GetOutcome, SegmentRecord

# (start, status, seq hdr, latest hdr, closed, empty) -> (step, next seq, delay)
ANSWERS = [
    (5, 200, 5, None, False, False, Step.DELIVER, 6, 0.0),
    (-1, 200, 9, None, False, False, Step.DELIVER, 10, 0.0),  # -1 resolved by Lp-Trickle-Seq
    (-2, 200, 8, 9, False, False, Step.DELIVER, 9, 0.0),
    (5, 200, 5, 7, False, True, Step.SKIP, 6, 0.0),  # empty 200: dropped segment
    (5, 200, 5, None, True, False, Step.END, 5, 0.0),  # closed wins over data
    (5, 200, None, 7, True, True, Step.END, 5, 0.0),  # "Entry not found" on a closed channel
    (5, 470, 5, 7, True, False, Step.END, 5, 0.0),
    (5, 404, None, None, False, False, Step.END, 5, 0.0),
    (2, 470, 2, 9, False, False, Step.JUMP, 9, 0.0),  # far behind: jump to latest
    (9, 470, 9, 3, False, False, Step.WAIT, 9, 0.25),  # ahead of the writer: same seq later
    (9, 470, 9, None, False, False, Step.JUMP, -1, 0.0),  # no Latest: ask for the next one
    (5, 400, None, None, False, False, Step.RETRY, 5, 0.3),
    (5, 500, None, None, False, False, Step.RETRY, 5, 0.3),
    (5, 503, None, None, False, False, Step.RETRY, 5, 0.3),
]


@pytest.mark.parametrize(
    ("start", "status", "seq", "latest", "closed", "empty", "step", "nxt", "delay"), ANSWERS
)
def test_subscriber_answers(
    start: int,
    status: int,
    seq: int | None,
    latest: int | None,
    closed: bool,
    empty: bool,
    step: Step,
    nxt: int,
    delay: float,
) -> None:
    pos = SubscriberPosition(start)
    v = pos.on_answer(status, seq=seq, latest=latest, closed=closed, empty=empty)
    assert (v.step, v.seq, v.delay) == (step, nxt, delay)
    assert pos.ended == (step is Step.END)


def test_errors_fail_after_max_in_a_row() -> None:
    pos = SubscriberPosition(3, max_errors=5)
    for _ in range(5):
        assert pos.on_error().step is Step.RETRY
    assert pos.on_error().step is Step.FAIL
    assert pos.ended
    with pytest.raises(RuntimeError):
        pos.on_error()


def test_success_resets_errors() -> None:
    pos = SubscriberPosition(3, max_errors=2)
    pos.on_error()
    pos.on_error()
    assert pos.on_answer(200, seq=3).step is Step.DELIVER
    pos.on_error()
    pos.on_error()
    assert pos.on_error().step is Step.FAIL


def test_470_storm_slows_down() -> None:
    """A server answering only 470 is asked at most ~4 times a second after a few jumps."""
    pos = SubscriberPosition(0, spin_after=3)
    delays = [pos.on_answer(470, seq=pos.seq, latest=pos.seq).delay for _ in range(6)]
    assert delays == [0.0, 0.0, 0.0, 0.25, 0.25, 0.25]
    assert pos.on_answer(200, seq=pos.seq).step is Step.DELIVER
    assert pos.on_answer(470, seq=pos.seq, latest=pos.seq).delay == 0.0


def test_bad_start() -> None:
    with pytest.raises(ValueError):
        SubscriberPosition(-3)


# status, closed, body_sent, bytes_sent, attempt, next_started -> step
PUBLISH = [
    (200, False, True, 100, 1, False, PublishStep.DONE),
    (200, True, True, 100, 1, False, PublishStep.CLOSED),
    (200, True, False, 0, 1, False, PublishStep.CLOSED),  # empty preconnect on a closed channel
    (404, False, False, 0, 1, False, PublishStep.GONE),
    (404, False, True, 100, 2, False, PublishStep.GONE),
    (None, False, False, 0, 1, False, PublishStep.RETRY),  # connection failed before any byte
    (500, False, False, 0, 1, False, PublishStep.RETRY),
    (200, False, False, 0, 1, False, PublishStep.RETRY),  # segment closed under the POST
    (None, False, False, 0, 2, False, PublishStep.DROP),  # retried once already
    (None, False, False, 0, 1, True, PublishStep.DROP),  # next segment started
    (None, False, False, 10, 1, False, PublishStep.DROP),  # bytes went out
    (500, False, True, 100, 1, False, PublishStep.DROP),
    (413, False, False, 0, 1, False, PublishStep.DROP),
]


@pytest.mark.parametrize(
    ("status", "closed", "body_sent", "sent", "attempt", "next_started", "step"), PUBLISH
)
def test_publish_steps(
    status: int | None,
    closed: bool,
    body_sent: bool,
    sent: int,
    attempt: int,
    next_started: bool,
    step: PublishStep,
) -> None:
    got = publish_step(
        status,
        closed=closed,
        body_sent=body_sent,
        bytes_sent=sent,
        attempt=attempt,
        next_started=next_started,
    )
    assert got is step


# --- properties ---------------------------------------------------------------------------

answers = st.lists(
    st.one_of(
        st.tuples(st.just(200), st.integers(0, 50), st.none(), st.booleans(), st.booleans()),
        st.tuples(st.just(470), st.integers(0, 50), st.integers(0, 50), st.just(False),
                  st.just(False)),
        st.tuples(st.sampled_from([400, 500, 503, 0]), st.none(), st.none(), st.just(False),
                  st.just(False)),
        st.tuples(st.just(404), st.none(), st.none(), st.just(False), st.just(False)),
    ),
    max_size=80,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.integers(-2, 20), answers)
def test_position_properties(
    start: int, script: list[tuple[int, int | None, int | None, bool, bool]]
) -> None:
    pos = SubscriberPosition(start, max_errors=5)
    delivered: list[int] = []
    errors_in_a_row = 0
    for status, seq, latest, closed, empty in script:
        asked = pos.seq
        if status == 0:
            v = pos.on_error()
        else:
            v = pos.on_answer(status, seq=seq, latest=latest, closed=closed, empty=empty)
        errors_in_a_row = errors_in_a_row + 1 if v.step in (Step.RETRY, Step.FAIL) else 0
        assert errors_in_a_row <= 6
        assert (v.step is Step.FAIL) == (errors_in_a_row == 6)
        if v.step is Step.DELIVER:
            delivered.append(v.answered)
        if v.step in (Step.DELIVER, Step.SKIP) and asked >= 0:
            assert v.answered >= asked and v.seq == v.answered + 1
        if v.step is Step.WAIT:
            assert v.seq == asked and v.delay > 0
        assert 0 <= v.delay <= 0.3
        if v.terminal:
            break
    assert delivered == sorted(delivered)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["write", "preconnect", "read", "read", "lag"]), max_size=80),
    st.integers(-2, 3),
)
def test_cores_in_memory(actions: list[str], start: int) -> None:
    """A sequential publisher and one subscriber wired through the two cores: the subscriber
    receives strictly increasing seqs, only ones that were written, and never fails."""
    r: ChannelRules[SegmentRecord] = ChannelRules(SegmentRecord, 0.0)
    pos = SubscriberPosition(start)
    next_seq = 0
    written: set[int] = set()
    got: list[int] = []
    for now, action in enumerate(actions):
        if action == "write":
            plan = r.post(next_seq)
            assert plan.segment is not None
            r.first_byte(plan.segment, float(now))
            r.end_post(plan.segment, float(now))
            written.add(next_seq)
            next_seq += 1
        elif action == "preconnect":
            r.post(next_seq)
        elif action == "lag":
            pass  # the reader does not ask this turn
        else:
            g = r.get(pos.seq)
            if g.outcome is GetOutcome.UNAVAILABLE:
                v = pos.on_answer(470, seq=g.seq, latest=g.latest)
                assert v.step in (Step.JUMP, Step.WAIT)
            elif g.outcome is GetOutcome.SERVE:
                assert g.segment is not None
                if not g.segment.started:
                    continue  # still waiting for its first byte
                v = pos.on_answer(200, seq=g.seq)
                assert v.step is Step.DELIVER
                got.append(v.answered)
    assert got == sorted(set(got))
    assert set(got) <= written
