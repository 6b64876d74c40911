"""An exposed gateway that can pay (RTMP on 0.0.0.0, a local paying key, a reference
orchestrator) admits only known stream keys (RTMP, WHIP) and needs an API key for the live AI
``/start``; ``-openIngest`` opens it again; the start-up line names the mode."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, make_keystore, push

from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform import keys

pytestmark = pytest.mark.ffmpeg


async def _start(gw: Any, name: str, key: str = "", route: str = "start") -> int:
    url = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/{name}/{route}"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"pipeline": "noop"}, headers=headers) as resp,
    ):
        return resp.status


async def _whip(gw: Any, name: str) -> int:
    """A WHIP offer's status: 401 when the key is refused, else the (bad) offer's 400."""
    url = f"http://127.0.0.1:{gw.http_port}/whip/{name}"
    sdp = {"Content-Type": "application/sdp"}
    async with aiohttp.ClientSession() as http, http.post(url, data="v=0\r\n", headers=sdp) as r:
        return r.status


async def test_exposed_paying_gateway_needs_keys_unless_open_ingest(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mediagw.gateway")
    keystore, password = make_keystore(tmp_path)
    (tmp_path / "o").mkdir()
    clip = make_clip(seconds=2)
    async with ReferenceOrchestrator(OrchestratorConfig(work_dir=tmp_path / "o")) as orch:
        paying: dict[str, Any] = {
            "orch_addr": (orch.url,), "eth_keystore_path": str(keystore),
            "eth_password": password, "transcoding_options": "", "rtmp_addr": "0.0.0.0:0",
        }  # fmt: skip
        gw = await gateway_factory(**paying)
        assert any(
            r.getMessage().startswith("ingest: keys required (exposed on 0.0.0.0:0")
            for r in caplog.records
        )
        rtmp = f"rtmp://127.0.0.1:{gw.rtmp_port}/live"
        code, _ = await push(clip, f"{rtmp}/anyone")
        assert code != 0 and gw.hub.get("anyone") is None
        assert await _whip(gw, "anyone") == 401
        assert gw.streams is not None and gw.store is not None
        stream = await gw.streams.create({"name": "s", "profiles": []})
        code, err = await push(clip, f"{rtmp}/{stream.stream_key}")
        assert code == 0, err
        assert gw.hub.get(stream.playback_id) is not None
        assert await _start(gw, "ai") == 401
        assert await _start(gw, "ai", "lp_not_a_key") == 401
        _, secret = await keys.create_key(gw.store, "app", ["streams"])
        assert await _start(gw, "ai", secret) == 200
        assert await _start(gw, "ai", route="update") == 401
        assert await _start(gw, "ai", secret, route="update") == 200

        opened = await gateway_factory(**paying, open_ingest=True)
        assert any(
            r.levelno == logging.WARNING and r.getMessage().startswith("ingest: open (-openIngest)")
            for r in caplog.records
        )
        code, err = await push(clip, f"rtmp://127.0.0.1:{opened.rtmp_port}/live/anyone")
        assert code == 0, err
        assert opened.hub.get("anyone") is not None
        assert await _whip(opened, "other") == 400  # past the key check: the offer is bad
        assert await _start(opened, "ai") == 200
