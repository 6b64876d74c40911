"""A Livepeer Studio app moved to mediagw by changing the base URL and the key.

Studio's own Python SDK (``livepeer`` 0.3.0, from PyPI) creates a stream and a webhook, FFmpeg's
RTMP client publishes with the stream key, the playback-info URL plays in ffprobe, and a real
HTTP receiver verifies ``stream.started`` then ``stream.idle`` signatures. Then the gateway as a
real process is killed with SIGKILL mid-publish and restarted: the key, the stream and the
webhook are still there, and the event that could not be delivered before the crash is.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import IN_CI, need_tool, probe_frames, push, wait_until
from webhook_testkit import Receiver, receiver

from mediagw.gateway import Gateway
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform import keys
from mediagw.platform.webhook_wire import verify

from .conftest import GatewayFactory

ClipMaker = Callable[..., Path]


def _sdk() -> Any:
    try:
        import livepeer
    except ImportError:
        if IN_CI:
            pytest.fail("Studio's SDK (livepeer==0.3.0, the dev extra) is required under CI")
        pytest.skip("livepeer (Studio's Python SDK) is not installed")
    return livepeer


def _events(rec: Receiver, path: str) -> list[str]:
    return [r.doc["event"] for r in rec.on(path)]


async def test_a_studio_sdk_app_works_with_only_the_base_url_and_key_changed(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    livepeer = _sdk()
    gw: Gateway = await gateway_factory(webhook_allow_private=True)
    assert gw.store is not None
    _, key = await keys.create_key(gw.store, "studio app", ["streams"])
    lp = livepeer.Livepeer(api_key=key, server_url=f"http://127.0.0.1:{gw.http_port}/api")
    async with receiver() as rec:
        made = await asyncio.to_thread(
            lp.stream.create, request={"name": "cam'; DROP TABLE streams;--"}
        )
        stream = made.stream
        assert stream.name == "cam'; DROP TABLE streams;--"
        assert stream.stream_key and stream.playback_id and stream.id
        assert [p.name for p in stream.profiles] == ["240p0", "360p0", "480p0", "720p0"]
        hook = await asyncio.to_thread(
            lp.webhook.create,
            request={
                "name": "events",
                "url": f"{rec.url}/hook",
                "events": ["stream.started", "stream.idle"],
                "shared_secret": "s3cret",
                "stream_id": stream.id,
            },
        )
        assert hook.webhook is not None and hook.webhook.id
        clip = make_clip(seconds=4)
        code, err = await push(
            clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream.stream_key}", live=False
        )
        assert code == 0, err
        await wait_until(lambda: _events(rec, "/hook") == ["stream.started", "stream.idle"], 20)
        for got in rec.on("/hook"):
            stamp = verify("s3cret", got.body, got.headers["Livepeer-Signature"], scheme="v1")
            assert stamp == got.doc["timestamp"]
            assert got.doc["stream"]["id"] == stream.id
            assert stream.stream_key not in got.body.decode()  # the key never leaves in events
        info = await asyncio.to_thread(lp.playback.get, id=stream.playback_id)
        sources = {s.hrn: s for s in info.playback_info.meta.source}
        hls = sources["HLS (TS)"]
        assert hls.type == "html5/application/vnd.apple.mpegurl"
        assert sources["WebRTC (H264)"].type == "html5/video/h264"
        assert stream.stream_key not in hls.url and stream.playback_id in hls.url
        assert await probe_frames(hls.url) >= 100  # 4 s at 30 fps, the ended stream plays whole
        again = (await asyncio.to_thread(lp.stream.get, id=stream.id)).stream
        assert again.is_active is False and again.last_seen and again.source_segments
        assert isinstance(again.created_at, float | int) and isinstance(
            again.last_seen, float | int
        )
        sessions = await asyncio.to_thread(lp.session.get_recorded, parent_id=stream.id)
        assert len(sessions.data) == 1 and sessions.data[0].source_segments
        listed = await asyncio.to_thread(lp.stream.get_all)
        assert [s.id for s in listed.data] == [stream.id]


async def test_a_stream_created_with_a_pipeline_runs_live_ai_and_plays_its_output(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        gw: Gateway = await gateway_factory(orch_addr=(orch.url,))
        assert gw.store is not None
        _, key = await keys.create_key(gw.store, "ai app", ["streams"])
        base = f"http://127.0.0.1:{gw.http_port}/api"
        auth = {"Authorization": f"Bearer {key}"}
        body = {"name": "ai", "pipeline": "invert", "pipelineParams": {"strength": 1}}
        async with aiohttp.ClientSession(headers=auth) as api:
            async with api.post(f"{base}/stream", json=body) as resp:
                assert resp.status == 201, await resp.text()
                stream = await resp.json()
            async with api.get(f"{base}/playback/{stream['playbackId']}") as resp:
                info = await resp.json()
        hls_url = info["meta"]["source"][0]["url"]
        assert hls_url.endswith(f"/hls/{stream['playbackId']}-out/index.m3u8")
        clip = make_clip(seconds=6)
        code, err = await push(
            clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream['streamKey']}", live=True
        )
        assert code == 0, err
        out = f"{stream['playbackId']}-out"
        await wait_until(lambda: stream["playbackId"] in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        assert orch.stats.live_sessions_started == 1
        assert await probe_frames(hls_url) >= 60  # the AI output plays at the playback-info URL
        assert gw.hls.rendition(out, "source") is not None


# the gateway as a real process, killed with SIGKILL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from mediagw.cli import main; sys.exit(main())",
        *args,
    ]


async def _running(data: Path, http: int, rtmp: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        _cli(
            "run", "-dataDir", str(data), "-httpAddr", f"127.0.0.1:{http}",
            "-rtmpAddr", f"127.0.0.1:{rtmp}", "-embeddedOrchestrator=false",
            "-webhookAllowPrivate",
        ),
        stdout=subprocess.DEVNULL, stderr=open(data.parent / "gateway.log", "ab"),  # noqa: SIM115
    )  # fmt: skip
    async with aiohttp.ClientSession() as http_client:
        for _ in range(300):
            try:
                async with http_client.get(f"http://127.0.0.1:{http}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, (data.parent / "gateway.log").read_text()[-3000:]
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start")


async def test_kill_9_and_restart_lose_no_key_stream_webhook_or_event(
    tmp_path: Path, make_clip: ClipMaker
) -> None:
    need_tool("ffmpeg")
    data = tmp_path / "data"
    http, rtmp, hook_port = _free_port(), _free_port(), _free_port()
    base = f"http://127.0.0.1:{http}/api"
    gw = await _running(data, http, rtmp)
    try:
        made = await asyncio.to_thread(
            subprocess.run,
            _cli("keys", "create", "--name", "ops", "--scope", "streams", "-dataDir", str(data)),
            capture_output=True, check=True,
        )  # fmt: skip
        key = made.stdout.decode().strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=auth) as api:
            async with api.post(f"{base}/stream", json={"name": "survivor"}) as resp:
                assert resp.status == 201
                stream = await resp.json()
            hook_body = {
                "name": "down for now",
                "url": f"http://127.0.0.1:{hook_port}/hook",  # nobody listens yet
                "events": ["stream.started", "stream.idle"],
                "sharedSecret": "s3cret",
            }
            async with api.post(f"{base}/webhook", json=hook_body) as resp:
                assert resp.status == 200
                hook = await resp.json()
            clip = make_clip(seconds=30)
            url = f"rtmp://127.0.0.1:{rtmp}/live/{stream['streamKey']}"
            pushing = asyncio.create_task(push(clip, url, live=True))
            for _ in range(200):
                async with api.get(f"{base}/stream/{stream['id']}") as resp:
                    if (await resp.json())["isActive"]:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the stream never became active")
            await asyncio.sleep(0.5)  # stream.started is queued, and its first attempt failed
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait()
        await pushing  # FFmpeg's publish ends with the gateway
        async with receiver(hook_port) as rec:
            gw = await _running(data, http, rtmp)
            async with aiohttp.ClientSession(headers=auth) as api:
                async with api.get(f"{base}/stream/{stream['id']}") as resp:
                    assert resp.status == 200  # the key and the stream survived
                    after = await resp.json()
                assert after["isActive"] is False  # the crash's session was ended at start
                assert after["streamKey"] == stream["streamKey"]
                async with api.get(f"{base}/webhook/{hook['id']}") as resp:
                    assert resp.status == 200
                async with api.get(f"{base}/stream/{stream['id']}/sessions") as resp:
                    sessions = await resp.json()
                assert len(sessions) == 1 and sessions[0]["isActive"] is False
            # the event queued before the crash is delivered after it, then the idle one
            await wait_until(lambda: _events(rec, "/hook") == ["stream.started", "stream.idle"], 40)
            for got in rec.on("/hook"):
                assert verify("s3cret", got.body, got.headers["Livepeer-Signature"], scheme="v1")
                assert got.doc["stream"]["id"] == stream["id"]
            assert rec.on("/hook")[1].doc["payload"]["reason"] == "unclean stop"
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(20)
            except subprocess.TimeoutExpired:
                gw.kill()
    log = (tmp_path / "gateway.log").read_text()
    assert stream["streamKey"] not in log  # nor in the gateway's own logs
    assert json.dumps(stream["streamKey"]) not in log


async def test_a_keys_stored_plan_limits_its_requests_and_the_refusals_are_counted(
    gateway_factory: GatewayFactory,
) -> None:
    gw: Gateway = await gateway_factory()
    assert gw.store is not None
    _, admin = await keys.create_key(gw.store, "operator", ["admin"])
    row, app = await keys.create_key(gw.store, "customer", ["streams"])
    base = f"http://127.0.0.1:{gw.http_port}"
    plan = {"id": "tiny", "name": "tiny", "rateLimit": 2, "burstLimit": 2}
    async with aiohttp.ClientSession() as http:
        as_admin = {"Authorization": f"Bearer {admin}"}
        async with http.post(f"{base}/api/admin/plans", json=plan, headers=as_admin) as resp:
            assert resp.status == 201, await resp.text()
        async with http.patch(
            f"{base}/api/admin/keys/{row.id}", json={"planId": "tiny"}, headers=as_admin
        ) as resp:
            assert resp.status == 204, await resp.text()
        statuses = []
        for _ in range(3):
            headers = {"Authorization": f"Bearer {app}"}
            async with http.get(f"{base}/api/stream", headers=headers) as resp:
                statuses.append(resp.status)
                limit = resp.headers.get("X-RateLimit-Limit")
        assert statuses == [200, 200, 429] and limit == "2"
        async with http.get(f"{base}/metrics") as resp:
            scrape = await resp.text()
    line = next(x for x in scrape.splitlines() if x.startswith("mediagw_api_rate_limited_total{"))
    assert float(line.rsplit(" ", 1)[1]) == 1.0
