"""``GET /discover-orchestrators`` (live-AI spec §10.4): real orchestrators asked with the
signer's own credentials, price filtering, capability filtering, 503 while empty."""

from __future__ import annotations

import asyncio
import socket
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from signer.conftest import SignerFactory
from signer.signer_testkit import FloatClock

from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.remote import RemoteSigner, SignerDiscoverySource, SignerError
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import Candidate, StaticSource
from mediagw.signer.discovery import DiscoveryCache


async def _filled(server_cache: DiscoveryCache | None) -> None:
    assert server_cache is not None
    for _ in range(200):
        if len(server_cache):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("discovery cache stayed empty")


async def test_discovery_lists_orchestrators_within_the_price_cap(
    make_signer: SignerFactory, tmp_path: Path, orch_clock: FloatClock
) -> None:
    def config(price: int, sub: str) -> OrchestratorConfig:
        (tmp_path / sub).mkdir()
        return OrchestratorConfig(
            priced=True, price_per_unit=price, work_dir=tmp_path / sub, clock=orch_clock
        )

    async with (
        ReferenceOrchestrator(config(1, "cheap")) as cheap,
        ReferenceOrchestrator(config(50, "dear")) as dear,
    ):
        source = StaticSource([cheap.url, dear.url], normalize_orch_addr)
        async with make_signer(
            discovery=True, sources=[source], caps=PriceCaps.from_flags("10")
        ) as server:
            await _filled(server.service.discovery)
            async with RemoteSigner(server.url) as remote:
                found = await remote.discover_orchestrators()
                assert found == [Candidate(cheap.url, 1.0)]
                # the orchestrators saw GetOrchestrator signed by the signer's key
                assert cheap.stats.get_orchestrator >= 1 and dear.stats.get_orchestrator >= 1
                # no reference orchestrator offers live-video-to-video
                assert await remote.discover_orchestrators(["live-video-to-video/noop"]) == []
                adapter = SignerDiscoverySource(remote)
                assert await adapter.candidates() == [Candidate(cheap.url, 1.0)]
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.url + "/discover-orchestrators") as resp,
            ):
                assert resp.status == 200
                assert await resp.json() == [
                    {"address": cheap.url, "score": 1.0, "capabilities": [], "runners": []}
                ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_empty_cache_is_503_and_off_is_404(make_signer: SignerFactory) -> None:
    source = StaticSource([f"https://127.0.0.1:{_closed_port()}"], normalize_orch_addr)
    async with make_signer(discovery=True, sources=[source]) as server:
        assert server.service.discovery is not None
        await server.service.discovery.refresh()
        async with RemoteSigner(server.url) as remote:
            with pytest.raises(SignerError) as err:
                await remote.discover_orchestrators()
            assert (err.value.status, err.value.message) == (503, "Service Unavailable Error")
            assert await SignerDiscoverySource(remote).candidates() == []
    async with make_signer() as server, RemoteSigner(server.url) as remote:
        with pytest.raises(SignerError) as err:
            await remote.discover_orchestrators()
        assert err.value.status == 404


def _ai_info(url: str, price: int, models: dict[str, int]) -> net.OrchestratorInfo:
    """An O offering live-video-to-video models, with per-model prices."""
    info = net.OrchestratorInfo(transcoder=url)
    info.price_info.pricePerUnit, info.price_info.pixelsPerUnit = price, 1
    for model, model_price in models.items():
        info.capabilities.constraints.PerCapability[35].models[model].warm = True
        info.capabilities_prices.add(
            pricePerUnit=model_price, pixelsPerUnit=1, capability=35, constraint=model
        )
    return info


async def test_capability_filter_and_per_capability_caps() -> None:
    infos = {
        "https://a:1": _ai_info("https://a:1", 1, {"noop": 3, "streamdiffusion": 40}),
        "https://b:1": _ai_info("https://b:1", 1, {"streamdiffusion": 8}),
        "https://c:1": _ai_info("https://c:1", 100, {}),
    }

    async def fetch(url: str) -> net.OrchestratorInfo:
        return infos[url]

    caps = PriceCaps(
        max_price_per_unit=50,
        per_capability={("live-video-to-video", "streamdiffusion"): Fraction(10)},
    )
    source = StaticSource(list(infos), normalize_orch_addr)
    cache = DiscoveryCache([source], fetch, caps, interval=60)
    assert cache.orchestrators([]) is None
    assert await cache.refresh() == 3
    urls = lambda found: [e["address"] for e in found or []]  # noqa: E731
    assert urls(cache.orchestrators([])) == ["https://a:1", "https://b:1"]  # c above 50
    assert urls(cache.orchestrators(["live-video-to-video/noop"])) == ["https://a:1"]
    # a's streamdiffusion is priced 40, above that model's cap of 10
    assert urls(cache.orchestrators(["live-video-to-video/streamdiffusion"])) == ["https://b:1"]
    both = ["live-video-to-video/noop", "live-video-to-video/streamdiffusion"]
    assert urls(cache.orchestrators(both)) == ["https://a:1", "https://b:1"]
    found = cache.orchestrators(["live-video-to-video/noop"])
    assert found is not None
    assert found[0]["capabilities"] == [
        "live-video-to-video/noop",
        "live-video-to-video/streamdiffusion",
    ]
