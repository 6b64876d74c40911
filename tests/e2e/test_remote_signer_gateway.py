"""The gateway with -remoteSignerUrl: credentials from the signer (no key here), orchestrators
from the signer's discovery (only those it would pay), and a clear start-up failure when the
signer is unreachable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mediatools import ClipMaker, push, wait_until

from mediagw.config import Settings
from mediagw.errors import ConfigError
from mediagw.gateway import Gateway
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.pool.sources import StaticSource
from mediagw.signer_service.app import SignerServer
from mediagw.signer_service.config import SignerConfig

pytestmark = pytest.mark.ffmpeg


async def test_gateway_uses_signer_credentials_and_discovery(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path
) -> None:
    """The signer's discovery lists only orchestrators it would pay (go-livepeer
    remote_discovery.go): a priced one with a live model here; an off-chain transcoding one,
    which it would not pay, is left out. The gateway (no key of its own, no -orchAddr) runs a
    live AI stream on the listed one, paid through the signer."""
    live = OrchestratorConfig(
        work_dir=tmp_path,
        priced=True,
        price_per_unit=1,
        ticket_ev=27_648_000,  # one ticket = 1 s of 720p30 at 1 wei per pixel
        live_models=DEFAULT_LIVE_MODELS,
        live_status_interval=1.0,
    )
    async with (
        ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast")) as offchain,
        ReferenceOrchestrator(live) as orch,
    ):
        config = SignerConfig(
            private_key=os.urandom(32),
            port=0,
            discovery=True,
            sources=[StaticSource([offchain.url, orch.url], normalize_orch_addr)],
        )
        async with SignerServer(config) as signer:
            gw = await gateway_factory(
                remote_signer_url=signer.url,
                remote_signer_headers={"Authorization": "Bearer user-1"},
                transcoding_options="",
            )
            assert gw.stack is not None and gw.stack.signer.offchain  # no key on the gateway
            clip = make_clip(seconds=6)
            url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/rs?pipeline=noop"
            code, err = await push(clip, url)
            assert code == 0, err
            manager = gw.live_ai
            assert manager is not None
            await wait_until(lambda: "rs" in manager.finished, 30)
            final = manager.finished["rs"]["gateway_status"]
            assert final["swaps"] == 0 and final["payments"]["failed"] == 0, final
            out = gw.hls.rendition("rs-out", "source")
            assert out is not None and len(out.segments) >= 2
            stats = orch.stats
            assert stats.live_sessions_started == 1 and stats.tickets_accepted > 0
            assert not stats.rejections and not stats.ticket_errors, stats.as_json()
            assert offchain.stats.get_orchestrator >= 1  # asked by the signer, not listed


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
