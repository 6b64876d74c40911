"""Plans' stream limits on a real gateway, published with the ffmpeg CLI over RTMP (and a WHIP
offer): a key's N+1th concurrent stream is refused, a stream whose key runs out of stream
minutes is ended with ``quota_exhausted`` (publisher disconnected, ``statusReason``, webhooks)
while another key's stream goes on, and the key's next publish is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from gateway_streams import GatewayFactory, is_live, rtmp_url, stored_stream
from mediatools import ClipMaker, fetch_hls, push, wait_until
from webhook_testkit import receiver

from mediagw.gateway import Gateway
from mediagw.platform import keys
from mediagw.platform.limits import PlanLimits
from mediagw.platform.store import ApiKey
from mediagw.platform.tenancy import Tenant

pytestmark = pytest.mark.ffmpeg

PLANS: dict[str, PlanLimits] = {}


async def lookup(key: ApiKey) -> PlanLimits:
    return PLANS.get(key.name, PlanLimits())


@pytest.fixture(autouse=True)
def _no_plans() -> None:
    PLANS.clear()


async def _customer(gw: Gateway, name: str, plan: PlanLimits) -> tuple[str, Tenant]:
    """A key on ``plan``: its text, and the tenant its streams belong to."""
    assert gw.store is not None
    PLANS[name] = plan
    row, text = await keys.create_key(gw.store, name, ["streams"])
    return text, Tenant(row.id, admin=False)


async def test_a_keys_stream_beyond_its_plans_concurrent_streams_is_refused(
    gateways: GatewayFactory, make_clip: ClipMaker
) -> None:
    gw = await gateways(plans=lookup)
    _, capped = await _customer(gw, "capped", PlanLimits(max_concurrent_streams=1))
    _, free = await _customer(gw, "free", PlanLimits())
    first, second = await stored_stream(gw, "one", capped), await stored_stream(gw, "two", capped)
    others = await stored_stream(gw, "other", free)
    pushing = asyncio.create_task(push(make_clip(seconds=6), rtmp_url(gw, first)))
    await wait_until(lambda: is_live(gw, first), timeout=30)
    code, _ = await push(make_clip(seconds=2), rtmp_url(gw, second))
    assert code != 0 and gw.hub.get(second.playback_id) is None
    url = f"http://127.0.0.1:{gw.http_port}/whip/{second.stream_key}"
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/sdp"}
        async with http.post(url, data="v=0\r\n", headers=headers) as resp:
            text = await resp.text()
            assert resp.status == 403, text
            assert "already has 1 live streams, its plan's maximum" in text
    code, err = await push(make_clip(seconds=2), rtmp_url(gw, others))  # another key: not counted
    assert code == 0, err
    code, err = await pushing
    assert code == 0, err
    await wait_until(lambda: not is_live(gw, first), timeout=10)
    code, err = await push(make_clip(seconds=2), rtmp_url(gw, second))  # a place is free again
    assert code == 0, err


async def test_a_stream_whose_key_runs_out_of_minutes_ends_and_others_go_on(
    gateways: GatewayFactory, make_clip: ClipMaker
) -> None:
    gw = await gateways(plans=lookup, webhook_allow_private=True)
    assert gw.webhooks is not None and gw.streams is not None
    key, short = await _customer(gw, "short", PlanLimits(stream_minutes_daily=0.05))  # 3 s
    _, free = await _customer(gw, "free", PlanLimits())
    ending, going = await stored_stream(gw, "ending", short), await stored_stream(gw, "going", free)
    async with receiver() as rec:
        await gw.webhooks.create("ops", f"{rec.url}/hook", ["stream.idle", "quota.exhausted"])
        clip = make_clip(seconds=10)
        other = asyncio.create_task(push(clip, rtmp_url(gw, going)))
        await wait_until(lambda: is_live(gw, going), timeout=30)
        await asyncio.wait_for(push(clip, rtmp_url(gw, ending)), 8)  # cut after ~3 s
        assert not is_live(gw, ending) and is_live(gw, going)
        assert gw.quotas.status_reason(ending.id) == "quota_exhausted"

        def events(name: str) -> list[dict[str, Any]]:
            docs = [r.doc for r in rec.on("/hook")]
            return [d for d in docs if d["event"] == name and d["stream"]["id"] == ending.id]

        await wait_until(lambda: bool(events("quota.exhausted") and events("stream.idle")), 30)
        (exhausted,) = events("quota.exhausted")
        assert exhausted["payload"]["reason"] == "quota_exhausted"
        assert exhausted["payload"]["quota"] == "stream minutes daily"
        (idle,) = events("stream.idle")
        assert idle["payload"]["reason"] == "quota_exhausted"
        async with aiohttp.ClientSession() as http:
            api = f"http://127.0.0.1:{gw.http_port}/api/stream/{ending.id}"
            headers = {"Authorization": f"Bearer {key}"}
            async with http.get(api, headers=headers) as resp:
                doc = await resp.json()
                assert resp.status == 200 and doc["statusReason"] == "quota_exhausted"
                assert not doc["isActive"]
        played = await fetch_hls(gw.http_port, ending.playback_id)
        assert 3 <= len(played.segments) <= 5  # stopped at the quota, not at the clip's end
        code, err = await push(make_clip(seconds=2), rtmp_url(gw, ending))  # no minutes left
        assert code != 0 and (await gw.streams.list_sessions(ending.id))[0].ended_at
        assert len(await gw.streams.list_sessions(ending.id)) == 1
        code, err = await other
        assert code == 0, err
        assert (await fetch_hls(gw.http_port, going.playback_id)).video_frames == 300
