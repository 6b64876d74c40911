"""The failed-authentication throttle: a sans-IO table driven by explicit times."""

from __future__ import annotations

import pytest

from mediagw.platform.throttle import FailureThrottle


def test_the_tenth_failure_in_the_window_blocks_for_the_block_time() -> None:
    t = FailureThrottle(limit=10, window=60, block=300)
    for i in range(9):
        assert t.failed("1.2.3.4", 100.0 + i) == 0
        assert t.retry_after("1.2.3.4", 100.0 + i) == 0
    assert t.failed("1.2.3.4", 109.0) == pytest.approx(300)
    assert t.retry_after("1.2.3.4", 200.0) == pytest.approx(209)
    assert t.retry_after("5.6.7.8", 200.0) == 0  # others are not affected
    assert t.retry_after("1.2.3.4", 409.0) == 0  # the block ends


def test_failures_older_than_the_window_are_forgotten() -> None:
    t = FailureThrottle(limit=3, window=60, block=300)
    t.failed("a", 0.0)
    t.failed("a", 30.0)
    assert t.failed("a", 61.0) == 0  # the first one left the window: 2 in it
    assert t.failed("a", 62.0) == pytest.approx(300)


def test_the_table_is_bounded_and_forgets_the_quietest_address() -> None:
    t = FailureThrottle(limit=2, window=60, block=300, max_addresses=3)
    t.failed("blocked", 0.0)
    t.failed("blocked", 1.0)
    for i, addr in enumerate(("b", "c", "d")):
        t.failed(addr, 2.0 + i)
    assert len(t) == 3
    assert t.retry_after("blocked", 10.0) == 0  # dropped: its newest failure was the oldest
    t2 = FailureThrottle(limit=2, window=60, block=300, max_addresses=3)
    for i, addr in enumerate(("b", "c")):
        t2.failed(addr, float(i))
    t2.failed("blocked", 5.0)
    t2.failed("blocked", 6.0)
    t2.failed("d", 7.0)  # drops "b", the quietest, not the blocked one
    assert t2.retry_after("blocked", 10.0) > 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FailureThrottle(limit=0)
