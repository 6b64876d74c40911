"""``SharedRedis``: the client of a real Redis (``MEDIAGW_TEST_REDIS_URL``), and a Redis that
refuses connections: the gateway starts, and the log says once that Redis is down."""

from __future__ import annotations

import logging

import pytest
from redis_testkit import refused_url

from mediagw.platform.shared.redis import SharedRedis


async def test_keys_live_under_the_prefix(shared_redis: SharedRedis) -> None:
    await shared_redis.start()
    assert not shared_redis.down
    key = shared_redis.key("limit", "key_1")
    assert key == shared_redis.prefix + "limit:key_1"
    await shared_redis.client.set(key, b"1")
    assert await shared_redis.client.get(key) == b"1"


async def test_a_dead_redis_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    shared = SharedRedis(refused_url())
    with caplog.at_level(logging.INFO, logger="mediagw.redis"):
        await shared.start()  # does not raise: the gateway starts without Redis
        shared.failed(ConnectionError("again"))
    await shared.close()
    assert shared.down and shared.failures == 2
    down = [r for r in caplog.records if r.getMessage().startswith("redis is down")]
    assert len(down) == 1
    assert "requests are allowed" in down[0].getMessage()
    shared.ok()
    assert not shared.down
