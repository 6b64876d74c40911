"""Live AI on two gateway nodes sharing one Redis (``-redisUrl``): ffmpeg publishers over RTMP,
the reference orchestrator running the pipelines. A stream continued on node B after node A
(``StreamRequest.resume``) starts with the params A last applied; a stream A's heartbeat stopped
is stopped on B too; a dead Redis fails neither a start nor an update."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from e2e.test_live_ai_hooks import Operator
from mediatools import ClipMaker, push, serve_app, wait_until
from redis_testkit import redis_url, refused_url

from mediagw.gateway import Gateway
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.request import Resume, StreamRequest

pytestmark = pytest.mark.ffmpeg

CONFIG = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)


@pytest.fixture
async def operator() -> AsyncIterator[Operator]:
    op = Operator()
    app = web.Application()
    app.router.add_post("/beat", op.on_beat)
    async with serve_app(app) as base:
        op.url = base
        yield op


@pytest.fixture
async def name() -> AsyncIterator[str]:
    """A stream name no other test uses (the nodes' Redis keys are under the default prefix);
    its keys are deleted afterwards."""
    stream = f"ai{uuid.uuid4().hex[:10]}"
    yield stream
    if os.environ.get("MEDIAGW_TEST_REDIS_URL"):
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url())
        await client.delete(f"mediagw:live:params:{stream}", f"mediagw:live:stopped:{stream}")
        await client.aclose()


def continuing(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every publish on ``gw`` continues a stream another node owned (what the stream leases
    set when a publisher reconnects after its node died)."""
    begin = gw.hub.begin_publish

    def begin_publish(request: StreamRequest | str) -> Any:
        request = StreamRequest(request) if isinstance(request, str) else request
        return begin(replace(request, resume=Resume(next_seq=4, discontinuity=0, session=1)))

    monkeypatch.setattr(gw.hub, "begin_publish", begin_publish)


def orch_params(orch: ReferenceOrchestrator, stream: str) -> dict[str, Any] | None:
    """The params the orchestrator's live session of ``stream`` runs with (None: no session)."""
    assert orch.node is not None
    for session in orch.node.live.sessions.values():
        if session.stream_id == stream:
            return dict(session.params.raw)
    return None


async def _status(gw: Gateway, name: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/{name}"
    async with aiohttp.ClientSession() as s, s.get(f"{base}/status") as resp:
        assert resp.status == 200
        status: dict[str, Any] = await resp.json()
        return status


async def _update(gw: Gateway, name: str, body: bytes) -> None:
    base = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/{name}"
    async with aiohttp.ClientSession() as s, s.post(f"{base}/update", data=body) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_continued_stream_replays_its_last_params_on_the_next_node(
    gateway_factory: Any, make_clip: ClipMaker, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_url()
    clip = make_clip(seconds=8)
    query = '?pipeline=invert&params={"strength":1}'
    async with ReferenceOrchestrator(CONFIG) as orch:
        a = await gateway_factory(orch_addr=(orch.url,), redis_url=url)
        pusher = asyncio.create_task(
            push(clip, f"rtmp://127.0.0.1:{a.rtmp_port}/live/{name}{query}")
        )
        await wait_until(lambda: orch_params(orch, name) is not None, 30)
        await _update(a, name, b'{"strength": 0.25}')
        await wait_until(lambda: orch_params(orch, name) == {"strength": 0.25}, 10)
        assert (await pusher)[0] == 0
        await a.live_ai.memory.flush()  # what A applied is in Redis (written in the background)
        updates = orch.stats.live_control_updates
        # A is gone; the publisher reconnects to B with the URL it always had
        b = await gateway_factory(orch_addr=(orch.url,), redis_url=url)
        continuing(b, monkeypatch)
        pusher = asyncio.create_task(
            push(clip, f"rtmp://127.0.0.1:{b.rtmp_port}/live/{name}{query}")
        )
        await wait_until(lambda: orch_params(orch, name) is not None, 30)
        # the orchestrator started B's session with A's last params, not the URL's
        assert orch_params(orch, name) == {"strength": 0.25}
        status = await _status(b, name)
        assert status["gateway_status"]["params_from"] == "replayed", status
        # started with them: none came on B's control channel
        assert orch.stats.live_sessions_started == 2
        assert orch.stats.live_control_updates == updates
        assert (await pusher)[0] == 0
        assert a.redis is not None and b.redis is not None
        assert a.redis.failures == 0 and b.redis.failures == 0


async def test_a_dead_redis_fails_neither_the_start_nor_an_update(
    gateway_factory: Any, make_clip: ClipMaker, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(seconds=6)
    query = '?pipeline=invert&params={"strength":1}'
    async with ReferenceOrchestrator(CONFIG) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), redis_url=refused_url())
        continuing(gw, monkeypatch)  # it would read the last params: Redis answers nothing
        pusher = asyncio.create_task(
            push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}{query}")
        )
        await wait_until(lambda: orch_params(orch, name) is not None, 30)
        assert orch_params(orch, name) == {"strength": 1}  # the request's params
        await _update(gw, name, b'{"strength": 0}')
        await wait_until(lambda: orch_params(orch, name) == {"strength": 0}, 10)
        assert (await _status(gw, name))["gateway_status"]["params_from"] == "request"
        assert (await pusher)[0] == 0
        assert gw.redis is not None and gw.redis.failures >= 2  # counted, never in the way


async def test_a_stream_the_heartbeat_stopped_is_stopped_on_another_node(
    gateway_factory: Any, make_clip: ClipMaker, name: str, operator: Operator
) -> None:
    url = redis_url()
    clip = make_clip(seconds=10)
    async with ReferenceOrchestrator(CONFIG) as orch:
        a = await gateway_factory(orch_addr=(orch.url,), redis_url=url,
                                  live_ai_heartbeat_url=f"{operator.url}/beat",
                                  live_ai_heartbeat_interval=0.5)  # fmt: skip
        pusher = asyncio.create_task(
            push(clip, f"rtmp://127.0.0.1:{a.rtmp_port}/live/{name}?pipeline=noop")
        )
        await wait_until(lambda: any(name in ids for ids in operator.beats), 30)
        operator.terminate.add(name)
        assert (await asyncio.wait_for(pusher, 20))[0] != 0  # cut off by A
        await a.live_ai.memory.flush()
        # its publisher reconnects to B (whose own heartbeat has not seen it): stopped at once
        b = await gateway_factory(orch_addr=(orch.url,), redis_url=url)
        code, _ = await asyncio.wait_for(
            push(clip, f"rtmp://127.0.0.1:{b.rtmp_port}/live/{name}?pipeline=noop"), 20
        )
        assert code != 0
        stream = b.hub.get(name)
        assert stream is not None and stream.last_error == "credit_exhaustion"
        await wait_until(lambda: name in b.live_ai.finished, 10)
        assert b.live_ai.finished[name]["gateway_status"]["end_reason"] == "credit_exhaustion"
        assert orch.stats.live_sessions_started == 1  # B never asked an orchestrator
