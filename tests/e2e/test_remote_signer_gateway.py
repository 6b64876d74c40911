"""The gateway with -remoteSignerUrl: credentials from the signer (no key here), orchestrators
from the signer's discovery, and a clear start-up failure when the signer is unreachable."""

from __future__ import annotations

import os
from typing import Any

import pytest
from mediatools import ClipMaker, count_frames, fetch_hls, push, wait_until

from mediagw.config import Settings
from mediagw.errors import ConfigError
from mediagw.gateway import Gateway
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.pool.sources import StaticSource
from mediagw.signer.app import SignerServer
from mediagw.signer.config import SignerConfig

pytestmark = pytest.mark.ffmpeg


async def test_gateway_uses_signer_credentials_and_discovery(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    async with ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast")) as orch:
        config = SignerConfig(
            private_key=os.urandom(32),
            port=0,
            discovery=True,
            sources=[StaticSource([orch.url], normalize_orch_addr)],
        )
        async with SignerServer(config) as signer:
            gw = await gateway_factory(
                remote_signer_url=signer.url,
                remote_signer_headers={"Authorization": "Bearer user-1"},
                transcoding_options="P144p30fps16x9",
            )
            assert gw.stack is not None and gw.stack.signer.offchain  # no key on the gateway
            clip = make_clip(seconds=4)
            video, _ = count_frames(clip)
            code, err = await push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/rs", live=False)
            assert code == 0, err

            def ended() -> bool:
                s = gw.hub.get("rs")
                return s is not None and not s.live

            await wait_until(ended, 30)
            manager = gw.transcodes
            assert manager is not None
            await wait_until(lambda: "rs" not in manager.pipelines and not manager._closing, 30)
            result = await fetch_hls(gw.http_port, "rs", "P144p30fps16x9")
            assert result.segments and abs(result.video_frames - video) <= len(result.segments)
            assert orch.stats.segments_transcoded >= 2


async def test_unreachable_signer_stops_start_up_with_a_clear_error() -> None:
    gw = Gateway(
        Settings(
            rtmp_addr="127.0.0.1:0",
            http_addr="127.0.0.1:0",
            remote_signer_url="http://127.0.0.1:9/",
        )
    )
    with pytest.raises(ConfigError, match="remoteSignerUrl"):
        await gw.start()
    await gw.stop()
