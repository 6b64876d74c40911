"""``RedisLimiter`` across nodes, on a real Redis: two clients on one prefix (two gateway
nodes) share one allowance exactly, keys expire, and a Redis that refuses connections lets
requests through (fail open), counted and logged once."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime

import pytest
from redis_testkit import fresh_redis, refused_url

from mediagw.platform.limits import PlanLimits, next_day, next_month
from mediagw.platform.shared.limiter import BUCKET_GRACE_MS, WINDOW_GRACE_MS, RedisLimiter
from mediagw.platform.shared.redis import SharedRedis

NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC).timestamp()
N = 40


@pytest.mark.parametrize(
    "plan",
    [
        PlanLimits(rate_limit=N // 2, burst_limit=N // 2),
        PlanLimits(rate_limit=None, daily_quota=N // 2),
        PlanLimits(rate_limit=None, monthly_quota=N // 2),
    ],
    ids=["rate", "daily", "monthly"],
)
async def test_two_nodes_share_one_allowance_exactly(plan: PlanLimits) -> None:
    async with fresh_redis() as a, fresh_redis(a.prefix) as b:
        nodes = [RedisLimiter(a), RedisLimiter(b)]
        # N requests at once, alternating between the nodes, all at one instant (no refill)
        got = await asyncio.gather(*(nodes[i % 2].check("key_1", plan, NOW) for i in range(N)))
    refused = [d for d in got if not d.allowed]
    assert len(refused) == N // 2
    assert {d.allowed for d in got[::2]} == {True, False}  # both nodes refused some
    assert {d.allowed for d in got[1::2]} == {True, False}


async def test_keys_expire_when_they_hold_nothing(shared_redis: SharedRedis) -> None:
    limiter = RedisLimiter(shared_redis)
    plan = PlanLimits(rate_limit=60, burst_limit=10, daily_quota=100, monthly_quota=1000)
    now = datetime(2024, 1, 15, 12, 0, tzinfo=UTC).timestamp()  # the day ends before the month
    decision = await limiter.check("key_1", plan, now)
    assert decision.allowed and decision.reset == pytest.approx(now + 1.0)
    client = shared_redis.client
    keys = [k.decode() async for k in client.scan_iter(match=shared_redis.prefix + "*")]
    assert len(keys) == 3  # the bucket, the day's count, the month's count
    bucket = await client.pttl(shared_redis.key("limit", "{key_1}", "b"))
    assert 0 < bucket <= 1000 + BUCKET_GRACE_MS  # full again a second later
    day = await client.pttl(next(k for k in keys if ":d:" in k))
    assert 0 < day <= math.ceil((next_day(now) - now) * 1000) + WINDOW_GRACE_MS
    month = await client.pttl(next(k for k in keys if ":m:" in k))
    assert day < month <= math.ceil((next_month(now) - now) * 1000) + WINDOW_GRACE_MS


async def test_a_dead_redis_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    shared = SharedRedis(refused_url())
    limiter = RedisLimiter(shared)
    plan = PlanLimits(rate_limit=1, burst_limit=1, daily_quota=1)
    with caplog.at_level(logging.ERROR, logger="mediagw.redis"):
        got = [await limiter.check("key_1", plan, NOW) for _ in range(5)]
    await shared.close()
    assert all(d.allowed for d in got)  # over every limit, yet allowed: Redis cannot count
    assert shared.failures == 5 and shared.down
    down = [r for r in caplog.records if r.getMessage().startswith("redis is down")]
    assert len(down) == 1 and "not enforced" in down[0].getMessage()
