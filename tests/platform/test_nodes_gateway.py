"""Two real gateways on one store (SQLite file / PostgreSQL database) and one Redis
(``-redisUrl``): the /api's request quota of a key holds across both nodes; with a Redis that
refuses connections, a gateway starts and its /api requests go through, counted in /metrics."""

from __future__ import annotations

import functools

import aiohttp
import pytest
from gateway_streams import GatewayFactory
from redis_testkit import redis_url, refused_url

from mediagw.gateway import Gateway
from mediagw.platform import keys
from mediagw.platform.limits import PlanLimits
from mediagw.platform.store import ApiKey

N = 20
PLAN = PlanLimits(rate_limit=None, daily_quota=N // 2)  # no refill: exact whatever the timing


async def lookup(key: ApiKey) -> PlanLimits:
    return PLAN


@pytest.fixture
def nodes(stored_gateways: GatewayFactory) -> GatewayFactory:
    """Gateway nodes on one store, every key on ``PLAN``."""
    return functools.partial(stored_gateways, plans=lookup)


async def _requests(nodes: list[Gateway], key: str) -> list[int]:
    """N requests of ``key``, alternating between the nodes; their statuses."""
    statuses = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(N):
            async with http.get(f"{nodes[i % 2].public_url()}/api/stream") as resp:
                statuses.append(resp.status)
    return statuses


async def test_a_quota_holds_across_two_nodes_sharing_redis(nodes: GatewayFactory) -> None:
    url = redis_url()
    a, b = await nodes(redis_url=url), await nodes(redis_url=url)
    assert a.store is not None
    _, key = await keys.create_key(a.store, "customer", ["streams"])
    statuses = await _requests([a, b], key)
    assert statuses.count(429) == N // 2 and statuses.count(200) == N // 2
    assert a.redis is not None and a.redis.failures == 0


async def test_a_dead_redis_lets_api_requests_through_and_counts_them(
    nodes: GatewayFactory,
) -> None:
    gw = await nodes(redis_url=refused_url())  # starts anyway
    assert gw.store is not None
    _, key = await keys.create_key(gw.store, "customer", ["streams"])
    statuses = await _requests([gw, gw], key)
    assert statuses == [200] * N  # over the quota, yet allowed: limits fail open
    async with aiohttp.ClientSession() as http, http.get(f"{gw.public_url()}/metrics") as resp:
        text = await resp.text()
    # the start's ping, then one per request
    assert f"mediagw_redis_failures_total {float(N + 1)}" in text
