"""Live AI is priced by the model, through the whole gateway on real sockets: an RTMP publisher
(the ffmpeg CLI) asks for a pipeline; the gateway, paying with its own key, discovers a priced
reference orchestrator whose transcoding price is 120x its live price, and prepays 60 s of
720p30 (live-AI spec §3.3) at the live price: its job capabilities carry ``capacities {35: 1}``,
which is what the orchestrator prices by (go-livepeer ``core/orchestrator.go`` priceInfo)."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from mediatools import ClipMaker, make_keystore, push, stream_entry, wait_until

from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg

TRANSCODING_PRICE = 1200  # wei per pixel
LIVE_PRICE = 10  # wei per pixel, every live model
TICKET_EV = 1_000_000_000  # wei: the prepayment is 17 tickets
PREPAY_PIXELS = 60 * 30 * 1280 * 720  # 1,658,880,000


async def test_prepayment_is_priced_by_the_model(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path
) -> None:
    keystore, password = make_keystore(tmp_path)
    (tmp_path / "o").mkdir()
    config = OrchestratorConfig(
        work_dir=tmp_path / "o",
        priced=True,
        price_per_unit=TRANSCODING_PRICE,
        pixels_per_unit=1,
        live_price_per_unit=LIVE_PRICE,
        ticket_ev=TICKET_EV,
        live_models=DEFAULT_LIVE_MODELS,
        live_status_interval=1.0,
    )
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(
            orch_addr=(orch.url,),
            eth_keystore_path=str(keystore),
            eth_password=password,
            transcoding_options="",
        )
        assert gw.live_ai is not None
        # no /payment during the test: what the orchestrator holds is the prepayment alone
        gw.live_ai.config = replace(gw.live_ai.config, payment_interval=3600.0)
        clip = make_clip(seconds=6)
        code, err = await push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai?pipeline=noop")
        assert code == 0, err
        await wait_until(lambda: "ai" in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        stats = orch.stats
        assert stats.live_sessions_started == 1 and stats.payments == 0, stats.as_json()
        assert not stats.rejections and not stats.ticket_errors, stats.as_json()
        expected = PREPAY_PIXELS * LIVE_PRICE  # 16,588,800,000 wei
        ev, tickets = stats.ev_credited, stats.tickets_accepted
        print(
            f"\nprepayment: {tickets} tickets, EV {float(ev):,.0f} wei; expected 60 s of 720p30"
            f" at {LIVE_PRICE} wei/pixel = {expected:,} wei (at the transcoding price it would"
            f" be {PREPAY_PIXELS * TRANSCODING_PRICE:,} wei)"
        )
        ticket_ev = ev / tickets
        assert abs(ticket_ev - TICKET_EV) / TICKET_EV < Fraction(1, 10**6)
        assert tickets == math.ceil(expected / TICKET_EV)
        assert expected <= ev < expected + ticket_ev  # within one ticket's EV
        final = gw.live_ai.finished["ai"]["gateway_status"]  # type: ignore[union-attr]
        assert final["swaps"] == 0 and final["payments"]["failed"] == 0, final
        # the usage seam: the prepayment is the stream's cost in /streams, as O credited it
        gw.usage.drain()
        item = await stream_entry(gw.http_port, "ai")
        assert item["tickets_sent"] == tickets and int(item["ev_sent_wei"]) == round(ev), item
        assert gw.stream_usage.of("ai").live_ai_ms >= 4000  # most of the 6 s went to the O
