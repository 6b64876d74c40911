"""``GET /discover-orchestrators`` (live-AI spec §10.4): real orchestrators asked with the
signer's own credentials, price filtering, capability filtering, 503 while empty."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from signer_service.conftest import SignerFactory

from mediagw.clock import ManualClock
from mediagw.livepeer.candidates import Candidate
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.remote import RemoteSigner, SignerError
from mediagw.pipelines.sources import SignerDiscoverySource
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import StaticSource
from mediagw.signer_service.discovery import DiscoveryCache


async def _filled(server_cache: DiscoveryCache | None) -> None:
    assert server_cache is not None
    for _ in range(200):
        if len(server_cache):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("discovery cache stayed empty")


NOOP = "live-video-to-video/noop"


def _live(tmp_path: Path, sub: str, clock: ManualClock, **kw: Any) -> OrchestratorConfig:
    (tmp_path / sub).mkdir()
    kw.setdefault("live_models", {"noop": True})
    return OrchestratorConfig(work_dir=tmp_path / sub, clock=clock, **kw)


async def test_discovery_lists_orchestrators_within_the_price_cap(
    make_signer: SignerFactory, tmp_path: Path, orch_clock: ManualClock
) -> None:
    def config(price: int, sub: str) -> OrchestratorConfig:
        return _live(tmp_path, sub, orch_clock, priced=True, price_per_unit=price)

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
                assert await remote.discover_orchestrators([NOOP]) == [Candidate(cheap.url, 1.0)]
                assert await remote.discover_orchestrators(["live-video-to-video/tint"]) == []
                adapter = SignerDiscoverySource(remote)
                assert await adapter.candidates() == [Candidate(cheap.url, 1.0)]
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.url + "/discover-orchestrators") as resp,
            ):
                assert resp.status == 200
                assert await resp.json() == [
                    {"address": cheap.url, "score": 1.0, "capabilities": [NOOP], "runners": []}
                ]


async def test_only_orchestrators_the_signer_would_pay_are_listed(
    make_signer: SignerFactory, tmp_path: Path, orch_clock: ManualClock
) -> None:
    """go-livepeer remote_discovery.go: a capability without a price is not eligible, an O
    without an eligible capability is not listed. Real orchestrators: off-chain (no price at
    all), priced without live models, priced per model (capabilities_prices checked against
    the model's cap, not the transcoding price)."""
    configs = {
        "offchain": _live(tmp_path, "offchain", orch_clock),
        "transcode": _live(tmp_path, "transcode", orch_clock, priced=True, price_per_unit=1,
                           live_models={}),
        "live": _live(tmp_path, "live", orch_clock, priced=True, price_per_unit=1200,
                      live_price_per_unit=10, live_models={"noop": True, "tint": True},
                      live_model_prices={"tint": 40}),
    }  # fmt: skip
    caps = PriceCaps(
        max_price_per_unit=2000,
        per_capability={("live-video-to-video", "default"): Fraction(20)},
    )
    async with contextlib.AsyncExitStack() as stack:
        orchs = {
            name: await stack.enter_async_context(ReferenceOrchestrator(config))
            for name, config in configs.items()
        }
        source = StaticSource([o.url for o in orchs.values()], normalize_orch_addr)
        server = await stack.enter_async_context(
            make_signer(discovery=True, sources=[source], caps=caps)
        )
        await _filled(server.service.discovery)
        remote = await stack.enter_async_context(RemoteSigner(server.url))
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.url + "/discover-orchestrators") as resp,
        ):
            assert resp.status == 200
            # tint is listed at 40 wei per pixel, above its cap of 20: only noop is eligible;
            # the O's price_info (1200, its transcoding price) is not what is checked
            assert await resp.json() == [
                {"address": orchs["live"].url, "score": 1.0, "capabilities": [NOOP],
                 "runners": []},
            ]  # fmt: skip
        assert await remote.discover_orchestrators(["live-video-to-video/tint"]) == []
        assert all(o.stats.get_orchestrator >= 1 for o in orchs.values())


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


async def test_orchestrators_down_at_start_are_found_on_the_next_request(
    make_signer: SignerFactory, tmp_path: Path, orch_clock: ManualClock
) -> None:
    """The start-up round finds nobody; the O comes up; the next request refreshes (instead of
    answering 503 until the 25 min refresh) and lists it."""
    port = _closed_port()
    source = StaticSource([f"https://127.0.0.1:{port}"], normalize_orch_addr)
    async with make_signer(
        discovery=True, sources=[source], discovery_retry_interval=0.0
    ) as server:
        cache = server.service.discovery
        assert cache is not None
        for _ in range(200):  # the start-up round
            if cache.rounds:
                break
            await asyncio.sleep(0.02)
        assert cache.rounds == 1 and len(cache) == 0
        config = _live(tmp_path, "late", orch_clock, priced=True, price_per_unit=3, port=port)
        async with (
            ReferenceOrchestrator(config) as orch,
            RemoteSigner(server.url) as remote,
        ):
            assert await remote.discover_orchestrators() == [Candidate(orch.url, 1.0)]
            assert cache.rounds == 2 and orch.stats.get_orchestrator == 1


def _ai_info(url: str, price: int | None, models: dict[str, int | None]) -> net.OrchestratorInfo:
    """An O offering live-video-to-video models, with per-model prices (None: not listed);
    ``price`` None: no price_info."""
    info = net.OrchestratorInfo(transcoder=url)
    if price is not None:
        info.price_info.pricePerUnit, info.price_info.pixelsPerUnit = price, 1
    for model, model_price in models.items():
        info.capabilities.constraints.PerCapability[35].models[model].warm = True
        if model_price is not None:
            info.capabilities_prices.add(
                pricePerUnit=model_price, pixelsPerUnit=1, capability=35, constraint=model
            )
    return info


async def test_capability_filter_and_per_capability_caps() -> None:
    infos = {
        "https://a:1": _ai_info("https://a:1", 1, {"noop": 3, "streamdiffusion": 40}),
        "https://b:1": _ai_info("https://b:1", 1, {"streamdiffusion": 8}),
        "https://c:1": _ai_info("https://c:1", 100, {}),  # no AI pipeline
        # no price_info: the per-model price is still checked against the cap
        "https://d:1": _ai_info("https://d:1", None, {"noop": 60}),
        "https://e:1": _ai_info("https://e:1", None, {"noop": 4}),
        # no per-model price: price_info is the price (0 and absent: not paid, not listed)
        "https://f:1": _ai_info("https://f:1", 30, {"noop": None}),
        "https://g:1": _ai_info("https://g:1", 0, {"noop": None}),
        "https://h:1": _ai_info("https://h:1", None, {"noop": None}),
        "https://i:1": _ai_info("https://i:1", 1, {"noop": 0}),
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
    assert await cache.refresh() == 4
    urls = lambda found: [e["address"] for e in found or []]  # noqa: E731
    listed = ["https://a:1", "https://b:1", "https://e:1", "https://f:1"]
    assert urls(cache.orchestrators([])) == listed
    assert urls(cache.orchestrators([NOOP])) == ["https://a:1", "https://e:1", "https://f:1"]
    # a's streamdiffusion is priced 40, above that model's cap of 10
    assert urls(cache.orchestrators(["live-video-to-video/streamdiffusion"])) == ["https://b:1"]
    both = [NOOP, "live-video-to-video/streamdiffusion"]
    assert urls(cache.orchestrators(both)) == listed
    found = cache.orchestrators([NOOP])
    assert found is not None
    assert found[0]["capabilities"] == [NOOP]  # only the eligible capabilities are listed


async def test_an_empty_snapshot_is_retried_on_requests_at_most_every_few_seconds() -> None:
    up = False
    fetched: list[str] = []
    now = [100.0]

    async def fetch(url: str) -> net.OrchestratorInfo:
        fetched.append(url)
        if not up:
            raise ConnectionRefusedError("down")
        return _ai_info(url, 1, {"noop": 2})

    source = StaticSource(["https://a:1"], normalize_orch_addr)
    cache = DiscoveryCache(
        [source], fetch, PriceCaps(), interval=1500, retry_interval=5, clock=lambda: now[0]
    )
    assert await cache.refresh() == 0  # the start-up round: the O is down
    up = True
    await cache.refresh_if_empty()
    assert len(fetched) == 1 and cache.orchestrators([]) is None  # 0 s since: no new round
    now[0] += 4.9
    await cache.refresh_if_empty()
    assert len(fetched) == 1
    now[0] += 0.1
    await asyncio.gather(*(cache.refresh_if_empty() for _ in range(3)))  # one shared round
    assert len(fetched) == 2 and cache.rounds == 2
    assert [e["address"] for e in cache.orchestrators([]) or []] == ["https://a:1"]
    now[0] += 60
    await cache.refresh_if_empty()  # not empty: the 25 min schedule applies
    assert len(fetched) == 2


async def test_discovered_addresses_are_checked_like_orch_addr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A remote signer (a third party's: ours lists only addresses it checked) answers garbage
    beside good addresses: every malformed one is skipped and logged, the good ones are kept,
    private ones too (orchestrators often are on private networks), normalized as -orchAddr."""
    garbage = [
        {"address": "ftp://orch:8935"},
        {"address": "https://orch:8935/path?x=1"},
        {"address": "https://user:pw@orch:8935"},
        {"address": "https://orch:99999"},
        {"address": "https://orch:0"},
        {"address": "https://ev il:8935"},
        {"address": "https://orch\u0000x:8935"},
        {"address": "https://" + "a" * 5000 + ":8935"},
        {"address": 42},
        "not an object",
    ]
    good = [
        {"address": "https://10.1.2.3:8935", "score": 0.5},
        {"address": "https://orch-1.internal", "score": 1},
        {"address": "https://10.1.2.3:8935", "score": 0.5},  # the same, once
    ]

    async def discover(request: web.Request) -> web.Response:
        return web.json_response([*garbage[:5], *good, *garbage[5:]])

    app = web.Application()
    app.router.add_get("/discover-orchestrators", discover)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    caplog.set_level(logging.WARNING, logger="mediagw.payments.remote")
    try:
        async with RemoteSigner(f"http://127.0.0.1:{port}") as remote:
            source = SignerDiscoverySource(remote, normalize=normalize_orch_addr)
            found = await source.candidates()
    finally:
        await runner.cleanup()
    assert found == [
        Candidate("https://10.1.2.3:8935", 0.5),
        Candidate("https://orch-1.internal", 1.0),
    ]
    logged = " ".join(str(r.__dict__.get("entries", "")) for r in caplog.records)
    for part in ("ftp://orch", "/path", "user:pw", "99999", "port 0", "ev il", "over 1024",
                 "not an object", "42"):  # fmt: skip
        assert part in logged, part
    assert len(logged) < 5000  # the 5,000-character address is not logged whole
