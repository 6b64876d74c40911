"""How the reference orchestrator prices a request, over real gRPC and HTTPS, as go-livepeer
does (transcode spec §4.4, live-AI spec §2): by the job's ``capacities`` and model constraints,
the transcoding price when they price nothing, ``capabilities_prices`` only without job
capabilities, the price fixed by a session's payment, and the fault ``price_factor``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from orchestrator.orch_testkit import GATEWAY_KEY, ORCH_KEY, headers, payment, post, segdata
from orchestrator.test_orch_live_kit import live_caps, orchestrator_info

from mediagw.livepeer.proto import net
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.orchestrator.pricing import listed_price, segdata_capabilities
from mediagw.pipelines.live_ai.caps import lv2v_capabilities

TRANSCODING = Fraction(1200)  # wei per pixel
LIVE = Fraction(10)
TINT = Fraction(25)


@pytest.fixture
async def orch(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        work_dir=tmp_path,
        priced=True,
        private_key=ORCH_KEY,
        price_per_unit=1200,
        pixels_per_unit=1,
        live_models={"noop": True, "tint": True},
        live_price_per_unit=10,
        live_model_prices={"tint": 25},
    )
    async with ReferenceOrchestrator(config) as o:
        yield o


def price(info: net.OrchestratorInfo) -> Fraction:
    return Fraction(info.price_info.pricePerUnit, info.price_info.pixelsPerUnit)


def listed(info: net.OrchestratorInfo) -> list[tuple[int, str, int, int]]:
    return [
        (p.capability, p.constraint, p.pricePerUnit, p.pixelsPerUnit)
        for p in info.capabilities_prices
    ]


async def quote(
    orch: ReferenceOrchestrator, caps: net.Capabilities | None, *, ignore: bool = False
) -> net.OrchestratorInfo:
    return await orchestrator_info(orch, caps, key=GATEWAY_KEY, ignore_capacity=ignore)


async def test_get_orchestrator_prices_by_capacities(orch: ReferenceOrchestrator) -> None:
    plain = await quote(orch, None)
    assert price(plain) == TRANSCODING
    assert listed(plain) == [(35, "noop", 10, 1), (35, "tint", 25, 1)]
    # the gateway's live job: bit 35, capacities {35: 1}, the model constraint
    noop = await quote(orch, lv2v_capabilities("noop"))
    assert price(noop) == LIVE and listed(noop) == []
    assert price(await quote(orch, lv2v_capabilities("tint"))) == TINT
    # the same job without capacities prices nothing: the transcoding price
    assert "capacities" not in str(live_caps("noop"))
    without = await quote(orch, live_caps("noop"))
    assert price(without) == TRANSCODING and listed(without) == []
    # capacities without a model constraint, or a model without a price: transcoding too
    bare = net.Capabilities(bitstring=lv2v_capabilities().bitstring)
    bare.capacities[35] = 1
    assert price(await quote(orch, bare)) == TRANSCODING
    assert price(await quote(orch, lv2v_capabilities("other"), ignore=True)) == TRANSCODING
    # two models in one job: the sum
    both = lv2v_capabilities("noop")
    both.constraints.PerCapability[35].models["tint"].warm = True
    assert price(await quote(orch, both)) == LIVE + TINT


async def test_price_factor_applies_to_every_advertised_price(orch: ReferenceOrchestrator) -> None:
    orch.config.faults.price_factor = 2.5
    plain = await quote(orch, None)
    assert price(plain) == 3000 and listed(plain) == [(35, "noop", 25, 1), (35, "tint", 62, 1)]
    assert price(await quote(orch, lv2v_capabilities("noop"))) == 25


async def test_payment_result_priced_by_the_segdata_capabilities(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    """go-livepeer rebuilds a SegData's capacities from its bitstring, so /payment prices a
    live job at the model's price even without capacities; no capabilities: transcoding."""
    info = await quote(orch, lv2v_capabilities("noop"))
    for nonce, (caps, expected) in enumerate(
        [(live_caps("noop"), LIVE), (lv2v_capabilities("tint"), TINT), (None, TRANSCODING)],
        start=1,
    ):
        sd = segdata(info, b"", key=GATEWAY_KEY, profiles=(), manifest_id=b"mid1", caps=None)
        if caps is not None:
            sd.capabilities.CopyFrom(caps)
        reply = await post(http, orch, "/payment", headers(sd, payment(info, nonces=[nonce])))
        assert reply.status == 200, reply.text
        result = net.PaymentResult.FromString(reply.body)
        assert price(result.info) == expected and listed(result.info) == []
    assert orch.stats.tickets_accepted == 3 and not orch.stats.ticket_errors


def test_listed_prices_are_whole_wei_rounded_down() -> None:
    entry = listed_price(35, "m", Fraction(10, 3))
    assert (entry.pricePerUnit, entry.pixelsPerUnit, entry.capability, entry.constraint) == (
        3,
        1,
        35,
        "m",
    )
    config = OrchestratorConfig(
        price_per_unit=7, pixels_per_unit=2, live_models={"a": True, "b": True}
    )
    config.live_model_prices = {"b": 3}
    assert (config.live_price("a"), config.live_price("b"), config.live_price("c")) == (
        Fraction(7, 2),
        Fraction(3, 2),
        None,
    )


def test_segdata_capabilities_as_go_livepeer_rebuilds_them() -> None:
    sd = net.SegData()
    assert segdata_capabilities(sd) == net.Capabilities()
    sd.capabilities.CopyFrom(live_caps("noop"))
    caps = segdata_capabilities(sd)
    assert dict(caps.capacities) == {35: 1} and "noop" in caps.constraints.PerCapability[35].models
    sd.capabilities.capacities[35] = 4  # given: kept as sent
    assert dict(segdata_capabilities(sd).capacities) == {35: 4}
