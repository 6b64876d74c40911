"""The limiters with explicit times: bucket refill and burst, UTC day and month windows,
refusals that count against nothing (the memory one and the Redis one alike, on a real Redis),
eviction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis_testkit import fresh_redis

from mediagw.platform.limits import (
    Limiter,
    MemoryLimiter,
    PlanLimits,
    UsageWindows,
    next_day,
    next_month,
)
from mediagw.platform.shared.limiter import RedisLimiter


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


T0 = at(2024, 1, 31, 23, 59, 0)


@pytest.fixture(params=["memory", "redis"])
async def lim(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    """Each limiter: the same requests get the same decisions."""
    if request.param == "memory":
        yield MemoryLimiter()
        return
    async with fresh_redis() as shared:
        yield RedisLimiter(shared)


async def test_burst_then_refill_at_the_rate(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=60, burst_limit=3)  # one token a second, three at once
    got = [await lim.check("k", plan, T0) for _ in range(4)]
    assert [d.allowed for d in got] == [True, True, True, False]
    assert [d.remaining for d in got] == [2, 1, 0, 0]
    refused = got[3]
    assert refused.exceeded == "rate" and refused.retry_after == pytest.approx(1.0)
    assert refused.limit == 60 and refused.reset == pytest.approx(T0 + 3.0)
    assert not (await lim.check("k", plan, T0 + 0.5)).allowed  # half a token
    again = await lim.check("k", plan, T0 + 1.0)
    assert again.allowed and again.remaining == 0
    # a long pause refills only up to the burst
    assert [(await lim.check("k", plan, T0 + 100)).allowed for _ in range(4)] == [1, 1, 1, 0]


async def test_default_plan_is_100_a_minute_with_a_minute_of_burst(lim: Limiter) -> None:
    got = [(await lim.check("k", PlanLimits(), T0)).allowed for _ in range(101)]
    assert got.count(True) == 100 and not got[-1]
    refused = await lim.check("k", PlanLimits(), T0)
    assert refused.retry_after == pytest.approx(0.6)


async def test_keys_are_independent_and_unlimited_plans_always_pass(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=1, burst_limit=1)
    assert (await lim.check("a", plan, T0)).allowed and not (await lim.check("a", plan, T0)).allowed
    assert (await lim.check("b", plan, T0)).allowed
    free = PlanLimits(rate_limit=None)
    assert all([(await lim.check("c", free, T0)).allowed for _ in range(1000)])


async def test_daily_quota_resets_at_utc_midnight_and_refusals_count_nothing(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=None, daily_quota=2, monthly_quota=10)
    assert (await lim.check("k", plan, at(2024, 3, 5, 23, 0))).daily_used == 1
    assert (await lim.check("k", plan, at(2024, 3, 5, 23, 0))).daily_used == 2
    refused = await lim.check("k", plan, at(2024, 3, 5, 23, 30))
    assert not refused.allowed and refused.exceeded == "daily"
    assert refused.daily_used == 2 and refused.monthly_used == 2  # not counted
    assert refused.retry_after == pytest.approx(30 * 60)  # until 00:00 UTC
    assert not (await lim.check("k", plan, at(2024, 3, 5, 23, 59, 59))).allowed
    fresh = await lim.check("k", plan, at(2024, 3, 6, 0, 0))
    assert fresh.allowed and fresh.daily_used == 1 and fresh.monthly_used == 3


async def test_monthly_quota_resets_on_the_first_utc_including_leap_february(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=None, monthly_quota=1)
    assert (await lim.check("k", plan, at(2024, 2, 1, 0, 0))).allowed
    refused = await lim.check("k", plan, at(2024, 2, 29, 12, 0))
    assert refused.exceeded == "monthly" and refused.retry_after == pytest.approx(12 * 3600)
    assert (await lim.check("k", plan, at(2024, 3, 1, 0, 0))).allowed
    assert next_month(at(2024, 12, 31, 23, 59)) == at(2025, 1, 1)
    assert next_day(at(2024, 12, 31, 0, 0, 1)) == at(2025, 1, 1)


async def test_a_rate_refusal_takes_no_quota_and_a_quota_refusal_no_token(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=60, burst_limit=1, daily_quota=2)
    assert (await lim.check("k", plan, T0 - 100)).allowed
    rate = await lim.check("k", plan, T0 - 100)
    assert rate.exceeded == "rate" and rate.daily_used == 1
    assert (await lim.check("k", plan, T0 - 99)).allowed
    quota = await lim.check("k", plan, T0 - 90)
    assert quota.exceeded == "daily" and quota.remaining == 1  # the token is still there


async def test_the_longest_wait_is_the_retry_after(lim: Limiter) -> None:
    plan = PlanLimits(rate_limit=1, burst_limit=1, daily_quota=1)
    noon = at(2024, 1, 31, 12, 0)
    await lim.check("k", plan, noon)
    both = await lim.check("k", plan, noon)
    assert both.exceeded == "daily" and both.retry_after == pytest.approx(12 * 3600)


def test_memory_is_bounded_and_idle_keys_go_first() -> None:
    lim = MemoryLimiter(max_keys=3)
    fast = PlanLimits(rate_limit=60, burst_limit=2)
    quota = PlanLimits(rate_limit=None, daily_quota=5)
    lim.decide("counting", quota, T0)  # must survive: its day is not over
    lim.decide("idle1", fast, T0)
    lim.decide("idle2", fast, T0)
    assert len(lim) == 3
    lim.decide("new", fast, T0 + 10)  # idle1 and idle2 are full again: they go
    assert len(lim) == 2
    assert lim.decide("counting", quota, T0 + 10).daily_used == 2
    assert lim.evict_idle(at(2024, 2, 2)) == 2  # a new day (and month): everything is fresh
    # over the bound with every key busy: the least recently used is dropped
    for name in "abcd":
        lim.decide(name, quota, T0)
    assert len(lim) == 3 and lim.decide("a", quota, T0).daily_used == 1


def test_usage_windows_add_amounts_per_utc_day_and_month() -> None:
    usage = UsageWindows(max_keys=2)
    usage.add("k", 0.5, at(2024, 1, 31, 23, 59))
    win = usage.add("k", 0.25, at(2024, 1, 31, 23, 59, 30))
    assert (win.day_used, win.month_used) == (0.75, 0.75)
    win = usage.add("k", 1.0, at(2024, 2, 1, 0, 0, 1))
    assert (win.day_used, win.month_used) == (1.0, 1.0)
    win = usage.used("k", at(2024, 2, 1, 12))
    assert (win.day_used, win.month_used) == (1.0, 1.0)
    win = usage.used("k", at(2024, 2, 2))
    assert (win.day_used, win.month_used) == (0.0, 1.0)
    usage.add("other", 1, at(2024, 2, 2))
    usage.add("third", 1, at(2024, 2, 2))  # bounded: the least recently used goes
    assert len(usage) == 2 and usage.used("third", at(2024, 2, 2)).day_used == 1
