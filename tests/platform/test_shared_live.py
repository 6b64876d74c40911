"""``SharedLiveState`` on a real Redis: a stream's last params per pipeline, written in order with
the ended-stream TTL; stopped streams with their own TTL; a dead Redis recalls nothing and
raises nothing."""

from __future__ import annotations

from redis_testkit import refused_url

from mediagw.platform.shared.live import SharedLiveState, stopped_ttl
from mediagw.platform.shared.redis import SharedRedis


async def test_the_last_params_win_and_expire_with_the_stream(shared_redis: SharedRedis) -> None:
    state = SharedLiveState(shared_redis, params_ttl=300, stopped_ttl=30, node="a")
    for strength in (1, 0.5, 0.25):  # queued faster than written: the latest is what stays
        state.remember("cam", "invert", {"strength": strength})
    await state.flush()
    assert await state.recall("cam", "invert") == {"strength": 0.25}
    assert await state.recall("cam", "tint") is None  # another pipeline's params do not fit
    assert await state.recall("other", "invert") is None
    ttl = await shared_redis.client.pttl(shared_redis.key("live", "params", "cam"))
    assert 290_000 < ttl <= 300_000
    await shared_redis.client.set(shared_redis.key("live", "params", "bad"), b"{not json")
    assert await state.recall("bad", "invert") is None


async def test_stopped_streams_are_known_for_a_while(shared_redis: SharedRedis) -> None:
    state = SharedLiveState(shared_redis, params_ttl=300, stopped_ttl=stopped_ttl(5.0))
    assert await state.stop_reason("cam") is None
    state.stopped("cam", "credit_exhaustion")
    await state.flush()
    assert await state.stop_reason("cam") == "credit_exhaustion"
    ttl = await shared_redis.client.pttl(shared_redis.key("live", "stopped", "cam"))
    assert 25_000 < ttl <= 30_000  # 4 intervals of 5 s, at least 30 s
    assert stopped_ttl(20.0) == 80.0


async def test_a_dead_redis_recalls_nothing_and_raises_nothing() -> None:
    shared = SharedRedis(refused_url())
    state = SharedLiveState(shared, params_ttl=300, stopped_ttl=30)
    state.remember("cam", "invert", {"strength": 1})
    state.stopped("cam", "credit_exhaustion")
    await state.flush()
    assert await state.recall("cam", "invert") is None
    assert await state.stop_reason("cam") is None
    await shared.close()
    assert shared.down and shared.failures == 4
