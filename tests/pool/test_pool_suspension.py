"""Suspensions expire exactly after their penalty in refresh cycles (transcode spec §9.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mediagw.pool.suspension import Suspensions, penalty_for


class GoLivepeerSuspender:
    """What go-livepeer does (DON'T COPY): the penalty is added to the stored value."""

    def __init__(self) -> None:
        self.count = 0
        self.list: dict[str, int] = {}

    def signal_refresh(self) -> None:
        self.count += 1

    def suspend(self, orch: str, penalty: int) -> None:
        self.list[orch] = self.list.get(orch, 0) + penalty

    def suspended(self, orch: str) -> int:
        at = self.list.get(orch, 0)
        return at - self.count if at > self.count else 0


def test_penalty_is_ceil_pool_over_num_orchs() -> None:
    assert penalty_for(20, 8) == 3
    assert penalty_for(16, 8) == 2
    assert penalty_for(1, 8) == 1
    assert penalty_for(0, 0) == 1


def test_spec_counter_example() -> None:
    """A pool that refreshed 5 times suspends an O for 2 cycles."""
    buggy, ours = GoLivepeerSuspender(), Suspensions()
    for _ in range(5):
        buggy.signal_refresh()
        ours.signal_refresh()
    buggy.suspend("o1", 2)
    ours.suspend("o1", 2)
    assert buggy.suspended("o1") == 0  # go-livepeer: expired before it started
    assert ours.penalty("o1") == 2
    assert "o1" in ours
    ours.signal_refresh()
    assert ours.penalty("o1") == 1
    ours.signal_refresh()
    assert ours.penalty("o1") == 0  # released after exactly 2 refreshes
    assert "o1" not in ours
    assert len(ours) == 0


def test_resuspension_takes_the_max() -> None:
    sus = Suspensions()
    assert sus.suspend("o1", 5) == 5
    sus.signal_refresh()
    assert sus.suspend("o1", 2) == 5  # 1 + 2 = 3 < 5: the later release point is kept
    assert sus.penalty("o1") == 4
    sus.signal_refresh()
    sus.signal_refresh()
    assert sus.suspend("o1", 4) == 7  # 3 + 4 = 7 > 5: extended
    assert sus.penalty("o1") == 4


def test_unknown_and_zero_penalty() -> None:
    sus = Suspensions()
    assert sus.penalty("nobody") == 0
    sus.suspend("o1", 0)
    assert "o1" not in sus
    assert 42 not in sus


@given(
    before=st.integers(min_value=0, max_value=50),
    penalty=st.integers(min_value=1, max_value=20),
)
def test_suspension_lasts_exactly_penalty_refreshes(before: int, penalty: int) -> None:
    sus = Suspensions()
    for _ in range(before):
        sus.signal_refresh()
    sus.suspend("o", penalty)
    for left in range(penalty, 0, -1):
        assert sus.penalty("o") == left
        sus.signal_refresh()
    assert sus.penalty("o") == 0
