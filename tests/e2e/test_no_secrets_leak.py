"""Secrets never leave the gateway: a real gateway configured with a static stream key, a stored
stream's key, an API key, a keystore password, a remote signer's header, a metrics key and a
playback JWT is driven with wrong and right keys (RTMP publishes, one with live AI paid through
the remote signer, /api calls, /metrics, HLS with bad and good tokens). Every log record at
DEBUG, formatted as text and as JSON, /metrics, /streams, the live AI status and every error
body are scanned for each secret."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, make_keystore, push, wait_until

from mediagw.log import JSONFormatter, TextFormatter
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform import keys
from mediagw.platform.access import create_signing_key, sign_token
from mediagw.signer_service import SignerConfig, SignerServer

pytestmark = pytest.mark.ffmpeg

STATIC_KEY = "static-KEY-4f1c9e7a2b"
PASSWORD = "keystore-PASSWORD-93b1d0"
SIGNER_HEADER = "signer-HEADER-7d2e55a1"
METRICS_KEY = "metrics-KEY-c08a61f3"
# priced: the live AI session is paid through the remote signer (with its header)
PRICED = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS, priced=True, price_per_unit=1,
                            pixels_per_unit=1, ticket_ev=27_648_000)  # fmt: skip


async def test_no_secret_in_logs_metrics_status_or_error_bodies(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []  # every answer body the test got
    async with (
        SignerServer(SignerConfig(private_key=bytes(range(1, 33)), port=0)) as signer,
        ReferenceOrchestrator(PRICED) as orch,
    ):
        gw = await gateway_factory(
            orch_addr=(orch.url,), transcoding_options="", log_level="debug",
            eth_keystore_path=str(make_keystore(tmp_path, PASSWORD)[0]), eth_password=PASSWORD,
            remote_signer_url=signer.url,
            remote_signer_headers={"Authorization": f"Bearer {SIGNER_HEADER}"},
            stream_keys={STATIC_KEY: "staticpb"}, metrics_key=METRICS_KEY,
        )  # fmt: skip
        assert gw.streams is not None and gw.store is not None
        stream = await gw.streams.create({"name": "s", "profiles": [],
                                          "playbackPolicy": {"type": "jwt"}})  # fmt: skip
        _, api_key = await keys.create_key(gw.store, "app", ["admin"])
        signing = await create_signing_key(gw.store, "k")
        token = sign_token(signing.private_key, signing.public_key, stream.playback_id,
                           expires_at=time.time() + 300)  # fmt: skip
        secrets = [STATIC_KEY, PASSWORD, SIGNER_HEADER, METRICS_KEY, stream.stream_key, api_key,
                   token, token.rsplit(".", 1)[1], signing.private_key]  # fmt: skip

        rtmp, base = f"rtmp://127.0.0.1:{gw.rtmp_port}/live", f"http://127.0.0.1:{gw.http_port}"
        clip = make_clip(seconds=3)
        for wrong in (STATIC_KEY[:-1] + "X", stream.stream_key + "X", api_key):
            code, _ = await push(clip, f"{rtmp}/{wrong}")
            assert code != 0
        code, err = await push(clip, f"{rtmp}/{stream.stream_key}")
        assert code == 0, err
        code, err = await push(make_clip(seconds=6), f"{rtmp}/{STATIC_KEY}?pipeline=noop")
        assert code == 0, err
        assert gw.live_ai is not None
        await wait_until(lambda: "staticpb" in gw.live_ai.finished, 30)  # type: ignore[union-attr]

        async with aiohttp.ClientSession() as http:

            async def get(path: str, auth: str = "", **headers: str) -> int:
                if auth:
                    headers["Authorization"] = auth
                async with http.get(base + path, headers=headers) as resp:
                    seen.append(f"{resp.status} {path} {dict(resp.headers)} {await resp.text()}")
                    return resp.status

            for bad in (api_key + "x", api_key[:-1], f"{api_key} {api_key}", METRICS_KEY):
                assert await get("/api/stream", f"Bearer {bad}") == 401
            assert await get("/metrics", f"Bearer {METRICS_KEY}x") == 401
            assert await get("/metrics", f"Bearer {METRICS_KEY}") == 200
            assert await get("/streams") == 200
            assert await get("/live/video-to-video/staticpb/status") == 200
            gated = f"/stream/{stream.playback_id}.m3u8"
            assert await get(gated, **{"Livepeer-Jwt": token[:-2] + "AA"}) == 401
            assert await get(gated + f"?jwt={token}x") == 401

    text, as_json = TextFormatter(), JSONFormatter()
    lines = [f(r) for r in caplog.records for f in (text.format, as_json.format)]
    assert not [line for line in lines if "live start failed" in line]  # paid, so signed
    assert len(lines) > 50 and seen
    for secret in secrets:
        assert not [line for line in lines if secret in line], secret
        assert not [body for body in seen if secret in body.split(" ", 2)[2]], secret
