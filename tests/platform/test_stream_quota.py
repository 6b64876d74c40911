"""``StreamQuotas`` alone, with a manual clock: live-AI minutes end only the key's streams that
run a pipeline, two publishes at once cannot both take the last place, and an admin key's or the
operator's streams have no limits; with two nodes on the test Redis, live-AI minutes used on
both end the key's streams on both. (The gateway tests publish for real.)"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from redis_testkit import fresh_redis

from mediagw.clock import ManualClock
from mediagw.errors import PublishRejected
from mediagw.platform.limits import PlanLimits
from mediagw.platform.plan_limits import PlanCache
from mediagw.platform.shared.stream_limits import SharedStreamLimits
from mediagw.platform.store import ApiKey, Stream
from mediagw.platform.stream_quota import StreamQuotas
from mediagw.request import StreamRequest
from mediagw.usage import LIVE_AI, TRANSCODE, UsageEvent

KEYS = {
    "k1": ApiKey(id="k1", name="k1", lookup_id="a", secret_hash="x", created_at=0),
    "root": ApiKey(
        id="root", name="root", lookup_id="b", secret_hash="x", created_at=0, scopes=("admin",)
    ),
}


class Keys:
    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return KEYS.get(key_id)


@dataclass
class Hub:  # what the quotas read of the hub's stream
    id: str
    request: StreamRequest
    stats: object = None


@dataclass
class Fixture:
    quotas: StreamQuotas
    granted: dict[str, Stream]
    ended: list[str] = field(default_factory=list)

    def row(self, name: str, owner: str | None, pipeline: str | None = None) -> Stream:
        row = Stream(
            id=f"id-{name}", name=name, stream_key=f"key-{name}", playback_id=name,
            created_at=0, owner_key_id=owner, pipeline=pipeline,
        )  # fmt: skip
        self.granted[name] = row
        return row

    async def publish(self, row: Stream) -> None:
        await self.quotas.admit(row)
        request = StreamRequest(id=row.playback_id, stream_id=row.id)
        self.quotas.on_stream_start(Hub(row.playback_id, request))  # type: ignore[arg-type]


def _fixture(plan: PlanLimits) -> Fixture:
    async def lookup(key: ApiKey) -> PlanLimits:
        return plan

    clock = ManualClock(1_700_000_000.0)
    plans = PlanCache(lookup, store=Keys(), clock=clock)  # type: ignore[arg-type]
    granted: dict[str, Stream] = {}
    fx = Fixture(None, granted)  # type: ignore[arg-type]

    def terminate(playback_id: str, message: str) -> bool:
        fx.ended.append(playback_id)
        return True

    fx.quotas = StreamQuotas(plans, granted, terminate, clock=clock)
    return fx


def _ai(stream: str, ms: int, kind: str = LIVE_AI) -> UsageEvent:
    return UsageEvent(stream, 1, "", "https://o", kind, ms, "ms")


async def test_live_ai_minutes_end_only_the_keys_streams_with_a_pipeline() -> None:
    fx = _fixture(PlanLimits(live_ai_minutes_daily=1.0))
    ai, plain = fx.row("ai", "k1", pipeline="comfyui"), fx.row("plain", "k1")
    await fx.publish(ai)
    await fx.publish(plain)
    fx.quotas.emit(_ai("ai", 59_000))
    fx.quotas.emit(_ai("ai", 5_000_000, kind=TRANSCODE))  # not live AI
    assert fx.ended == []
    fx.quotas.emit(_ai("ai", 1_000))
    assert fx.ended == ["ai"]
    assert fx.quotas.status_reason(ai.id) == "quota_exhausted"
    assert fx.quotas.status_reason(plain.id) is None
    with pytest.raises(PublishRejected, match="daily live AI minutes"):
        await fx.quotas.admit(ai)
    await fx.quotas.admit(plain)  # stream minutes are not live-AI minutes


async def test_two_publishes_at_once_cannot_both_take_the_last_place() -> None:
    fx = _fixture(PlanLimits(max_concurrent_streams=1))
    a, b = fx.row("a", "k1"), fx.row("b", "k1")
    await fx.quotas.admit(a)  # admitted, not live yet: its place is held
    with pytest.raises(PublishRejected, match="already has 1 live streams"):
        await fx.quotas.admit(b)
    await fx.quotas.admit(a)  # the same stream again is not a second one


async def test_the_operators_and_admin_keys_streams_have_no_limits() -> None:
    fx = _fixture(PlanLimits(max_concurrent_streams=0, stream_minutes_daily=0.0))
    for row in (fx.row("mine", None), fx.row("admins", "root")):
        await fx.publish(row)
    with pytest.raises(PublishRejected, match="daily stream minutes"):
        await fx.quotas.admit(fx.row("customer", "k1"))


async def test_live_ai_minutes_used_on_two_nodes_end_the_keys_streams_on_both() -> None:
    async with fresh_redis() as one, fresh_redis(one.prefix) as two:
        nodes = [_fixture(PlanLimits(live_ai_minutes_daily=1.0)) for _ in range(2)]
        for fx, shared in zip(nodes, (one, two), strict=True):
            fx.quotas.attach(SharedStreamLimits(shared))
        a, b = nodes
        await a.publish(a.row("on-a", "k1", pipeline="comfyui"))
        await b.publish(b.row("on-b", "k1", pipeline="comfyui"))
        a.quotas.emit(_ai("on-a", 40_000))
        b.quotas.emit(_ai("on-b", 40_000))  # 80 s in all; each node alone: 40 s of 60
        assert a.ended == b.ended == []
        now = a.quotas.clock.wall()
        for fx in (a, b, a):  # each flush reads every node's total
            assert fx.quotas.shared is not None
            await fx.quotas.shared.flush(now)
        assert a.ended == ["on-a"] and b.ended == ["on-b"]
        with pytest.raises(PublishRejected, match="daily live AI minutes"):
            await b.quotas.admit(b.row("again", "k1", pipeline="comfyui"))


async def test_an_expired_plan_is_looked_up_once_for_all_the_keys_streams() -> None:
    """Every stream checks its key's plan at every segment or usage event: when the cached
    plan expires under many live streams, one lookup goes to the store, not one per check."""
    import asyncio

    fx = _fixture(PlanLimits(live_ai_minutes_daily=100.0))
    calls: list[str] = []
    gate = asyncio.Event()

    class SlowKeys(Keys):
        async def get_api_key(self, key_id: str) -> ApiKey | None:
            calls.append(key_id)
            await gate.wait()
            return KEYS.get(key_id)

    rows = [fx.row(f"s{i}", "k1", pipeline="comfyui") for i in range(20)]
    for row in rows:
        await fx.publish(row)
    fx.quotas.plans.store = SlowKeys()  # type: ignore[assignment]
    fx.quotas.plans.forget()  # the cached plan expired
    calls.clear()
    for _ in range(3):
        for row in rows:
            fx.quotas.emit(_ai(row.playback_id, 1_000))
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == ["k1"]
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    fx.quotas.emit(_ai("s0", 1_000))  # cached again: no lookup
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == ["k1"]
    await fx.quotas.close()
