"""Plans' stream limits on two real gateways sharing a store (SQLite file) and the test Redis,
published with the ffmpeg CLI over RTMP (and a WHIP offer): a key's concurrent streams and its
stream minutes hold across the nodes, a plan changed through one node's ``/api/admin`` reaches
the other's cache within a second; with a Redis that refuses connections, each limit fails as
the README's table says."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from gateway_streams import GatewayFactory, is_live, rtmp_url, stored_stream
from mediatools import ClipMaker, fetch_hls, push, wait_until
from redis_testkit import redis_url, refused_url

from mediagw.gateway import Gateway
from mediagw.platform import keys
from mediagw.platform.limits import PlanLimits
from mediagw.platform.plan_limits import PlanLookup
from mediagw.platform.store import ApiKey
from mediagw.platform.tenancy import Tenant


def _every_key_on(plan: PlanLimits) -> PlanLookup:
    """Every key on ``plan`` (stored plans count whole minutes: a test's are seconds)."""

    async def lookup(key: ApiKey) -> PlanLimits:
        return plan

    return lookup


@pytest.fixture
def nodes(gateways: GatewayFactory) -> GatewayFactory:
    """Gateway nodes on one SQLite store and one Redis, every key on ``plans`` if given."""

    async def start(plans: PlanLimits | None = None, **overrides: Any) -> Gateway:
        lookup = None if plans is None else _every_key_on(plans)
        return await gateways(plans=lookup, **{"redis_url": redis_url(), **overrides})

    return start


async def _api(gw: Gateway, method: str, path: str, key: str, body: Any = None) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, f"{gw.public_url()}/api{path}", json=body) as resp,
    ):
        return resp.status


async def _key(gw: Gateway) -> Tenant:
    assert gw.store is not None
    row, _ = await keys.create_key(gw.store, "customer", ["streams"])
    return Tenant(row.id, admin=False)


async def _customer(gw: Gateway, **plan: int) -> tuple[str, Tenant]:
    """A key on a plan of its own (stored, set through the admin API): its id and tenant."""
    assert gw.store is not None
    _, admin = await keys.create_key(gw.store, "ops", ["admin"])
    row, _ = await keys.create_key(gw.store, "customer", ["streams"])
    plan_id = f"p{row.id[-8:]}"
    body = {"id": plan_id, "name": "tiny", **_camel(plan)}
    assert await _api(gw, "POST", "/admin/plans", admin, body) == 201
    assert await _api(gw, "PATCH", f"/admin/keys/{row.id}", admin, {"planId": plan_id}) == 204
    return admin, Tenant(row.id, admin=False)


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(w.capitalize() for w in rest)

    return {camel(k): v for k, v in fields.items()}


@pytest.mark.ffmpeg
async def test_a_keys_concurrent_streams_hold_across_nodes(
    nodes: GatewayFactory, make_clip: ClipMaker
) -> None:
    a, b = await nodes(), await nodes()
    _, capped = await _customer(a, max_concurrent_streams=1)
    first, second = await stored_stream(a, "one", capped), await stored_stream(a, "two", capped)
    pushing = asyncio.create_task(push(make_clip(seconds=6), rtmp_url(a, first)))
    await wait_until(lambda: is_live(a, first), timeout=30)
    code, _ = await push(make_clip(seconds=2), rtmp_url(b, second))  # the other node: refused too
    assert code != 0 and b.hub.get(second.playback_id) is None
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/sdp"}
        url = f"{b.public_url()}/whip/{second.stream_key}"
        async with http.post(url, data="v=0\r\n", headers=headers) as resp:
            text = await resp.text()
            assert resp.status == 403, text
            assert "already has 1 live streams, its plan's maximum" in text
    code, err = await pushing
    assert code == 0, err
    await wait_until(lambda: not is_live(a, first), timeout=10)
    code, err = await push(make_clip(seconds=2), rtmp_url(b, second))  # its place is free again
    assert code == 0, err
    assert a.redis is not None and b.redis is not None
    assert a.redis.failures == b.redis.failures == 0


@pytest.mark.ffmpeg
async def test_a_keys_minutes_run_out_at_one_total_across_nodes(
    nodes: GatewayFactory, make_clip: ClipMaker
) -> None:
    plan = PlanLimits(stream_minutes_daily=0.1)  # 6 s on all nodes together
    a, b = await nodes(plan), await nodes(plan)
    short = await _key(a)
    on_a, on_b = await stored_stream(a, "a", short), await stored_stream(a, "b", short)
    clip = make_clip(seconds=15)
    pushes = [push(clip, rtmp_url(a, on_a)), push(clip, rtmp_url(b, on_b))]
    await asyncio.wait_for(asyncio.gather(*pushes), 12)  # both cut: neither plays its 15 s
    assert a.quotas.status_reason(on_a.id) == b.quotas.status_reason(on_b.id) == "quota_exhausted"
    played = [
        len((await fetch_hls(a.http_port, on_a.playback_id)).segments),
        len((await fetch_hls(b.http_port, on_b.playback_id)).segments),
    ]
    # alone, each node lets its stream run 6 s and more (seen: 8 + 8 segments); together they
    # stop at 6 s in all, plus for each stream up to a segment counted late, a flush (a second)
    # and its last part segment (seen: 9 in all)
    assert sum(played) <= 11, played
    code, _ = await push(make_clip(seconds=2), rtmp_url(b, on_a))  # no minutes left on any node
    assert code != 0


async def test_a_plan_changed_on_one_node_reaches_the_others_cache_within_a_second(
    nodes: GatewayFactory,
) -> None:
    a, b = await nodes(), await nodes()
    assert b.invalidations is not None
    await asyncio.wait_for(b.invalidations.ready.wait(), 5)
    admin, tenant = await _customer(a, max_concurrent_streams=1)
    key = tenant.key_id
    limits = await b.plans.limits_of_owner(key)
    assert limits is not None and limits.max_concurrent_streams == 1  # cached on B for 5 s
    plan_id = f"p{key[-8:]}"
    body = {"maxConcurrentStreams": 3}
    assert await _api(a, "PATCH", f"/admin/plans/{plan_id}", admin, body) == 200
    await wait_until(lambda: not b.plans.cached(key)[0], timeout=1.0)
    limits = await b.plans.limits_of_owner(key)
    assert limits is not None and limits.max_concurrent_streams == 3
    assert await _api(a, "PATCH", f"/admin/keys/{key}", admin, {"planId": None}) == 204
    await wait_until(lambda: not b.plans.cached(key)[0], timeout=1.0)  # the key's own plan
    limits = await b.plans.limits_of_owner(key)
    assert limits is not None and limits.max_concurrent_streams is None


@pytest.mark.ffmpeg
async def test_a_refused_redis_leaves_each_node_its_own_stream_limits(
    nodes: GatewayFactory, make_clip: ClipMaker
) -> None:
    gw = await nodes(
        PlanLimits(stream_minutes_daily=0.05, max_concurrent_streams=1), redis_url=refused_url()
    )
    assert gw.redis is not None and gw.redis.down
    short = await _key(gw)
    first, second = await stored_stream(gw, "one", short), await stored_stream(gw, "two", short)
    before = gw.redis.failures
    pushing = asyncio.create_task(push(make_clip(seconds=10), rtmp_url(gw, first)))
    await wait_until(lambda: is_live(gw, first), timeout=30)  # admitted: fails open
    # its lease (leases.py), its minutes and its place: each asked once, counted
    assert gw.redis.failures == before + 3
    code, _ = await push(make_clip(seconds=2), rtmp_url(gw, second))  # this node's own count
    assert code != 0
    code, _ = await asyncio.wait_for(pushing, 8)  # cut after ~3 s by this node's count
    assert gw.quotas.status_reason(first.id) == "quota_exhausted"
    # a plan change applies here at once; other nodes take it when their cache expires (5 s)
    assert short.key_id is not None and gw.plans.cached(short.key_id)[0]
    admin, _ = await _customer(gw, max_concurrent_streams=2)
    assert await _api(gw, "PATCH", f"/admin/keys/{short.key_id}", admin, {"planId": None}) == 204
    assert not gw.plans.cached(short.key_id)[0]
