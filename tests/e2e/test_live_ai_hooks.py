"""The live AI auth webhook and the heartbeat through the whole gateway: ffmpeg publishers over
RTMP, a reference orchestrator running the pipelines, and the operator's hooks as HTTP servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from mediatools import ClipMaker, push, serve_app, wait_until

from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg


class Operator:
    """The operator's side: a live AI auth webhook and a heartbeat endpoint."""

    def __init__(self) -> None:
        self.auth: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.beats: list[list[str]] = []
        self.refuse: set[str] = set()
        self.answers: dict[str, dict[str, Any]] = {}
        self.terminate: set[str] = set()
        self.url = ""

    async def on_auth(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.auth.append((dict(request.headers), body))
        if body["stream"] in self.refuse:
            return web.Response(status=403, text="no credit")
        return web.json_response(self.answers.get(body["stream"], {}))

    async def on_beat(self, request: web.Request) -> web.Response:
        ids = (await request.json())["ids"]
        self.beats.append(ids)
        return web.json_response({"terminatedStreamIds": sorted(self.terminate & set(ids))})


@pytest.fixture
async def operator() -> AsyncIterator[Operator]:
    op = Operator()
    app = web.Application()
    app.router.add_post("/auth", op.on_auth)
    app.router.add_post("/beat", op.on_beat)
    async with serve_app(app) as base:
        op.url = base
        yield op


async def test_auth_webhook_chooses_the_pipeline_and_refuses_streams(
    gateway_factory: Any, make_clip: ClipMaker, operator: Operator
) -> None:
    operator.answers["cam1"] = {"pipeline": "invert", "stream_id": "st_cam1",
                                "pipeline_parameters": {"strength": 1}}  # fmt: skip
    operator.refuse.add("bad")
    async with ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)) as orch:
        gw = await gateway_factory(
            orch_addr=(orch.url,),
            live_ai_auth_webhook_url=f"{operator.url}/auth",
            live_ai_auth_api_key="op-key",
        )
        clip = make_clip(seconds=8)
        rtmp = f"rtmp://127.0.0.1:{gw.rtmp_port}/live"
        good = asyncio.create_task(push(clip, f"{rtmp}/cam1?pipeline=noop&streamId=mine"))
        code, err = await push(clip, f"{rtmp}/bad?pipeline=noop")
        assert code != 0 and gw.hub.get("bad") is None, err
        # a plain publish (no pipeline) never asks the live AI webhook
        plain = asyncio.create_task(push(clip, f"{rtmp}/plain"))
        await wait_until(lambda: gw.hls.media_playlist("cam1-out", "source") is not None, 30)
        assert gw.live_ai is not None
        base = f"http://127.0.0.1:{gw.http_port}/live/video-to-video"
        async with aiohttp.ClientSession() as s:
            # status by the stream ID the webhook gave (go-livepeer's key) and by name
            for key in ("st_cam1", "cam1"):
                async with s.get(f"{base}/{key}/status") as resp:
                    assert resp.status == 200
                    status = await resp.json()
                assert status["gateway_status"]["model"] == "invert", status
            # WHIP on the live AI path asks the webhook before anything else: refused -> 401
            # (RFC 9725: the publisher is not authorized), with the webhook's reason
            headers = {"Content-Type": "application/sdp"}
            async with s.post(f"{base}/bad/whip", data="v=0\r\n", headers=headers) as resp:
                assert resp.status == 401, await resp.text()
                assert "refused" in await resp.text()
            # /start asks it too
            async with s.post(f"{base}/bad/start", json={"pipeline": "noop"}) as resp:
                assert resp.status == 403
        assert (await good)[0] == 0 and (await plain)[0] == 0
        asked = [body for _, body in operator.auth]
        assert {b["stream"] for b in asked} == {"cam1", "bad"}, asked
        first = next(b for b in asked if b["stream"] == "cam1")
        assert first["type"] == "rtmp" and "pipeline=noop" in first["query_params"]
        assert first["whep_url"] == f"{base}/cam1/whep"
        assert all(h["x-api-key"] == "op-key" for h, _ in operator.auth)
        whip = [b for b in asked if b["stream"] == "bad" and b["type"] == "livepeer-whip"]
        assert whip, asked
        # the webhook's stream ID won over ?streamId=; the orchestrator ran invert
        stream = gw.hub.get("cam1")
        assert stream is not None and stream.request.stream_id == "st_cam1"
        assert orch.stats.live_sessions_started == 1
        assert gw.hls.media_playlist("plain-out", "source") is None


async def test_heartbeat_stops_the_streams_it_is_told_to(
    gateway_factory: Any, make_clip: ClipMaker, operator: Operator
) -> None:
    async with ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)) as orch:
        gw = await gateway_factory(
            orch_addr=(orch.url,),
            live_ai_heartbeat_url=f"{operator.url}/beat",
            live_ai_heartbeat_interval=0.5,
        )
        clip = make_clip(seconds=14)
        rtmp = f"rtmp://127.0.0.1:{gw.rtmp_port}/live"
        paying = asyncio.create_task(push(clip, f"{rtmp}/s1?pipeline=noop&streamId=paying"))
        await wait_until(lambda: gw.hls.media_playlist("s1-out", "source") is not None, 30)
        broke = asyncio.create_task(push(clip, f"{rtmp}/s2?pipeline=noop&streamId=broke"))
        # the operator cuts "broke" off only once it has a segment listed and the heartbeat
        # names it (on a busy machine the first beat can come before the first segment is cut)
        await wait_until(lambda: gw.hls.media_playlist("s2", "source") is not None, 30)
        await wait_until(lambda: any("broke" in ids for ids in operator.beats), 20)
        operator.terminate.add("broke")
        # the heartbeat names both; the answer ends "broke" only, and its publisher is cut
        code, _ = await asyncio.wait_for(broke, 20)
        assert code != 0  # disconnected long before its 14 s clip ended
        assert not paying.done()
        s2 = gw.hub.get("s2")
        assert s2 is not None and not s2.live and s2.last_error == "credit_exhaustion"
        assert gw.live_ai is not None
        await wait_until(lambda: "s2" in gw.live_ai.finished, 10)  # type: ignore[union-attr]
        ended = gw.live_ai.finished["s2"]["gateway_status"]
        assert ended["end_reason"] == "credit_exhaustion", ended
        assert "#EXT-X-ENDLIST" in (gw.hls.media_playlist("s2", "source") or "")
        # the other stream ran to its end, every beat listing it
        assert (await paying)[0] == 0
        assert all("paying" in ids for ids in operator.beats if ids)
        await wait_until(lambda: "s1" in gw.live_ai.finished, 15)  # type: ignore[union-attr]
        s1 = gw.live_ai.status("s1")
        assert s1 is not None and s1["gateway_status"]["end_reason"] != "credit_exhaustion"
        assert gw.heartbeat is not None and gw.heartbeat.terminated == 1
        beat_body = json.dumps(operator.beats[0])
        assert "paying" in beat_body
        assert orch.stats.live_sessions_started == 2
