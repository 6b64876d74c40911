"""``TtlCache``: bounded, expiring, single-flight (a unit of access.py's caches)."""

from __future__ import annotations

import asyncio

import pytest

from mediagw.clock import ManualClock
from mediagw.platform.ttl_cache import TtlCache


async def test_entries_expire_and_the_least_recently_used_goes_first() -> None:
    clock = ManualClock()
    cache = TtlCache[str, int](max_entries=2, clock=clock)
    loads: list[str] = []

    async def load(key: str) -> int:
        loads.append(key)
        return len(loads)

    assert await cache.get("a", lambda: load("a"), 5) == 1
    assert await cache.get("b", lambda: load("b"), 5) == 2
    assert await cache.get("a", lambda: load("a"), 5) == 1  # a is now the most recent
    assert await cache.get("c", lambda: load("c"), 5) == 3  # b is evicted, not a
    assert len(cache) == 2
    assert cache.peek("b") == (False, None) and cache.peek("a") == (True, 1)
    clock.advance(5)
    assert await cache.get("a", lambda: load("a"), 5) == 4
    assert await cache.get("d", lambda: load("d"), lambda value: 0) == 5  # ttl 0: not cached
    assert cache.peek("d") == (False, None)
    assert loads == ["a", "b", "c", "a", "d"]


async def test_one_load_for_concurrent_gets_and_a_failure_caches_nothing() -> None:
    cache = TtlCache[str, int](max_entries=10, clock=ManualClock())
    release = asyncio.Event()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("database down")

    waiters = [asyncio.ensure_future(cache.get("k", failing, 5)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)

    async def ok() -> int:
        return 7

    assert await cache.get("k", ok, 5) == 7  # the failure was not cached


async def test_a_cancelled_waiter_does_not_cancel_the_load_of_the_others() -> None:
    cache = TtlCache[str, int](max_entries=10, clock=ManualClock())
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 3

    first = asyncio.ensure_future(cache.get("k", slow, 5))
    second = asyncio.ensure_future(cache.get("k", slow, 5))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == 3
    with pytest.raises(asyncio.CancelledError):
        await first
    assert cache.peek("k") == (True, 3)


async def test_with_stale_a_failed_load_answers_what_was_last_known() -> None:
    clock = ManualClock()
    cache = TtlCache[str, int](max_entries=10, clock=clock, stale=60)
    plain = TtlCache[str, int](max_entries=10, clock=clock)

    async def ok() -> int:
        return 7

    async def down() -> int:
        raise RuntimeError("database down")

    assert await cache.get("k", ok, 5) == 7 and await plain.get("k", ok, 5) == 7
    clock.advance(30)  # expired: the store is asked again, and fails
    assert await cache.get("k", down, 5) == 7  # the store is down: what it last knew
    assert cache.stale_served == 1 and cache.peek("k") == (False, None)
    with pytest.raises(RuntimeError):
        await plain.get("k", down, 5)
    with pytest.raises(RuntimeError):
        await cache.get("other", down, 5)  # nothing known: the failure
    clock.advance(35)  # 65 s past expiry: too old to answer
    with pytest.raises(RuntimeError):
        await cache.get("k", down, 5)
