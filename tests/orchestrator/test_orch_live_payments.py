"""Live payment accounting on the reference orchestrator (live-AI spec §9.2): the O debits
27,648,000 pixels per second x the session price from (sender, mid) per input segment, at most
once per interval; without further ``/payment`` calls the four channels close when the credit
runs out, with them they stay open. Real tickets signed by ``PaymentSender`` + ``LocalSigner``.

Numbers: price 1 wei/pixel, ticket EV 27,648,000 wei = one second of billing per ticket, a
debit every 0.25 s; the start pays 2 tickets (2 s of credit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from orchestrator.orch_testkit import GATEWAY_KEY, ORCH_KEY
from orchestrator.test_orch_live_kit import (
    LIVE_MODELS,
    PricedGateway,
    channels,
    live_caps,
    live_segments,
    next_segment,
    orchestrator_info,
    start,
    wait_until,
)

from mediagw.livepeer.proto import net
from mediagw.livepeer.trickle import TrickleChannelGone
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator

__all__ = ["live_segments"]

TICKET_EV = 27_648_000  # one second of 720p30 at 1 wei per pixel
INTERVAL = 0.25
PUBLISH_EVERY = 0.2


@pytest.fixture
async def priced_live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        work_dir=tmp_path,
        priced=True,
        private_key=ORCH_KEY,
        price_per_unit=1,
        pixels_per_unit=1,
        ticket_ev=TICKET_EV,
        live_models=LIVE_MODELS,
        live_payment_interval=INTERVAL,
    )
    async with ReferenceOrchestrator(config) as orch:
        yield orch


async def _session(
    http: aiohttp.ClientSession, orch: ReferenceOrchestrator, gateway: PricedGateway
) -> tuple[net.OrchestratorInfo, dict[str, str]]:
    info = await orchestrator_info(orch, live_caps("noop"), key=GATEWAY_KEY)
    headers = await gateway.headers(info, tickets=2, caps=live_caps("noop"))
    return info, (await start(http, orch, headers, model="noop")).urls


async def test_channels_close_when_credit_runs_out(
    priced_live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    orch, gateway = priced_live, PricedGateway()
    _, urls = await _session(http, orch, gateway)
    ch = channels(http, urls)
    began = time.monotonic()
    try:
        with pytest.raises(TrickleChannelGone):
            for n in range(int(8 / PUBLISH_EVERY)):
                await ch.publisher.write_segment(live_segments[n % len(live_segments)])
                await asyncio.sleep(PUBLISH_EVERY)
        elapsed = time.monotonic() - began
        assert 1.7 < elapsed < 4.0, elapsed  # 2 s of credit, billed every 0.25 s
        # the output subscriber ends too; every channel is gone
        async for _ in ch.output:
            pass
        async with http.get(urls["control_url"] + "/0", ssl=False) as resp:
            assert resp.status == 404
    finally:
        await ch.close()
    stats = orch.stats
    assert stats.live_insufficient_balance == 1 and stats.live_sessions_ended == 1
    assert stats.live_debits >= 3  # a segment every 0.2 s: a bill every other one
    assert stats.live_fees_debited <= 2 * TICKET_EV + 1


async def test_payments_keep_the_session_open(
    priced_live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    orch, gateway = priced_live, PricedGateway()
    info, urls = await _session(http, orch, gateway)
    mid = urls["manifest_id"]
    ch = channels(http, urls)

    async def pay() -> None:
        nonlocal info
        while True:
            await asyncio.sleep(0.5)  # one ticket (1 s of credit) every 0.5 s
            headers = await gateway.headers(
                info, tickets=1, manifest_id=mid, caps=live_caps("noop")
            )
            async with http.post(orch.url + "/payment", headers=headers, ssl=False) as resp:
                assert resp.status == 200, await resp.text()
                info = net.PaymentResult.FromString(await resp.read()).info

    payer = asyncio.create_task(pay())
    try:
        for n in range(int(4 / PUBLISH_EVERY)):
            segment = live_segments[n % len(live_segments)]
            await ch.publisher.write_segment(segment)
            assert await next_segment(ch.output) == segment
            await asyncio.sleep(PUBLISH_EVERY)
    finally:
        payer.cancel()
        await ch.close()
    stats = orch.stats
    assert stats.live_insufficient_balance == 0 and stats.payments >= 6
    assert stats.live_debits >= 8
    await wait_until(lambda: stats.live_sessions_ended == 1)  # ended by the gateway's DELETE
    assert orch.node is not None
    balance = orch.node.balances.balance(gateway.signer.address, mid)
    assert balance is not None and balance > 0
