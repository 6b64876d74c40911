"""Plans' rate limits and request quotas in the ``/api`` frame, over real sockets on SQLite and
PostgreSQL, with a manual clock: NaaP's headers on every answer, 429 with ``Retry-After`` over a
limit, recovery when the bucket refills or the UTC day turns, a plan change applied within the
cache's seconds, admin keys exempt, refusals counted against nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from api_testkit import Server, api_server

from mediagw.platform import keys
from mediagw.platform.limits import PlanLimits
from mediagw.platform.store import ApiKey, SqlStore
from mediagw.platform.streams import StreamService

PLANS: dict[str, PlanLimits] = {}


async def lookup(key: ApiKey) -> PlanLimits:
    return PLANS.get(key.name, PlanLimits())


@pytest.fixture
async def server(store: SqlStore) -> AsyncIterator[Server]:
    PLANS.clear()
    async with api_server(store, {"streams": StreamService(store)}, plans=lookup) as running:
        yield running


async def _customer(server: Server, plan: PlanLimits, name: str = "customer") -> str:
    PLANS[name] = plan
    _, text = await keys.create_key(server.store, name, ["streams"], clock=server.clock.wall)
    return text


def _midnight_after(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86_400


async def test_over_the_rate_limit_429_with_every_header_then_recovery(server: Server) -> None:
    plan = PlanLimits(rate_limit=2, burst_limit=2, daily_quota=50, monthly_quota=1000)
    key = await _customer(server, plan)
    now = server.clock.now
    status, _, h = await server.call("GET", "/api/stream", key)
    assert status == 200
    assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) == ("2", "1")
    assert h["X-RateLimit-Reset"] == str(int(now) + 30)  # one token back in 30 s
    assert (h["X-Quota-Daily-Limit"], h["X-Quota-Daily-Used"]) == ("50", "1")
    assert (h["X-Quota-Monthly-Limit"], h["X-Quota-Monthly-Used"]) == ("1000", "1")
    assert "Retry-After" not in h
    status, _, h = await server.call("GET", "/api/stream/nope", key)  # a 404 is counted
    assert status == 404 and h["X-RateLimit-Remaining"] == "0"
    status, doc, h = await server.call("GET", "/api/stream", key)
    assert status == 429
    assert doc["errors"] and "2 requests a minute" in doc["errors"][0]
    assert h["Retry-After"] == "30"
    assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) == ("2", "0")
    assert h["X-RateLimit-Reset"] == str(int(now) + 60)
    assert (h["X-Quota-Daily-Used"], h["X-Quota-Monthly-Used"]) == ("2", "2")  # not counted
    server.clock.advance(29)
    assert (await server.call("GET", "/api/stream", key))[0] == 429
    server.clock.advance(1)
    status, _, h = await server.call("GET", "/api/stream", key)
    assert status == 200 and h["X-Quota-Daily-Used"] == "3"


async def test_daily_quota_refuses_until_00_utc_and_a_plan_change_applies_in_seconds(
    server: Server,
) -> None:
    key = await _customer(server, PlanLimits(rate_limit=None, daily_quota=2))
    assert [(await server.call("GET", "/api/stream", key))[0] for _ in range(2)] == [200, 200]
    status, doc, h = await server.call("GET", "/api/stream", key)
    wait = _midnight_after(server.clock.now) - server.clock.now
    assert status == 429 and "daily quota of 2 requests" in doc["errors"][0]
    assert h["Retry-After"] == str(int(wait)) and h["X-Quota-Daily-Used"] == "2"
    assert "X-RateLimit-Limit" not in h  # no rate limit on this plan
    PLANS["customer"] = PlanLimits(rate_limit=None, daily_quota=3)  # the operator raises it
    server.clock.advance(5)
    assert (await server.call("GET", "/api/stream", key))[0] == 200
    assert (await server.call("GET", "/api/stream", key))[0] == 429
    server.clock.now = _midnight_after(server.clock.now)
    status, _, h = await server.call("GET", "/api/stream", key)
    assert status == 200 and h["X-Quota-Daily-Used"] == "1"


async def test_admin_keys_are_exempt_and_failed_auth_counts_nothing(server: Server) -> None:
    PLANS["root"] = PlanLimits(rate_limit=1, burst_limit=1)
    for _ in range(5):
        status, _, h = await server.call("GET", "/api/stream", server.admin)
        assert status == 200 and "X-RateLimit-Limit" not in h
    key = await _customer(server, PlanLimits(rate_limit=1, burst_limit=1))
    assert (await server.call("GET", "/api/stream", key + "x"))[0] == 401
    assert (await server.call("GET", "/api/admin/keys", key))[0] == 403  # no scope: not counted
    status, _, h = await server.call("GET", "/api/stream", key)
    assert status == 200 and h["X-RateLimit-Remaining"] == "0"
    assert (await server.call("GET", "/api/stream", key))[0] == 429
    other = await _customer(server, PlanLimits(rate_limit=1, burst_limit=1), "other")
    assert (await server.call("GET", "/api/stream", other))[0] == 200  # keys are independent
