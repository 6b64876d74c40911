"""Live fault switches of the reference orchestrator, for the gateway's failover tests: output
stalls after N segments, channels closed after N segments, no events. Off-chain: no
accounting at all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from orchestrator.test_orch_live_kit import (
    LIVE_MODELS,
    channels,
    collect_events,
    live_caps,
    live_segments,
    next_segment,
    offchain_headers,
    orchestrator_info,
    start,
)

from mediagw.livepeer.trickle import TrickleChannelGone
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator

__all__ = ["live_segments"]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        work_dir=tmp_path, live_models=LIVE_MODELS, live_status_interval=0.2
    )
    async with ReferenceOrchestrator(config) as orch:
        yield orch


async def _urls(http: aiohttp.ClientSession, orch: ReferenceOrchestrator) -> dict[str, str]:
    info = await orchestrator_info(orch, live_caps("noop"))
    headers = await offchain_headers(info, live_caps("noop"))
    return (await start(http, orch, headers, model="noop")).urls


async def test_stall_and_close_after(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    live.faults.live_stall_after = 2
    ch = channels(http, await _urls(http, live))
    try:
        for segment in live_segments[:2]:
            await ch.publisher.write_segment(segment)
            assert await next_segment(ch.output) == segment
        for segment in live_segments[2:4]:
            await ch.publisher.write_segment(segment)
        with pytest.raises(TimeoutError):
            await next_segment(ch.output, timeout=1.0)
        assert live.stats.live_segments_in == 4 and live.stats.live_segments_out == 2
    finally:
        await ch.close()
    live.faults.live_stall_after = None

    live.faults.live_close_after = 2
    ch = channels(http, await _urls(http, live))
    try:
        for segment in live_segments[:2]:
            await ch.publisher.write_segment(segment)
            await next_segment(ch.output)
        async for _ in ch.output:  # the O closed its channels: the subscriber ends
            pass
        with pytest.raises(TrickleChannelGone):
            await ch.publisher.write_segment(live_segments[2])
    finally:
        await ch.close()
    assert live.stats.live_sessions_ended == 2
    assert live.stats.live_debits == 0  # off-chain: no accounting


async def test_no_events(live: ReferenceOrchestrator, http: aiohttp.ClientSession) -> None:
    live.faults.live_no_events = True
    ch = channels(http, await _urls(http, live))
    try:
        assert await collect_events(ch.events, 0.8) == []
        live.faults.live_no_events = False
        # the next status comes within its interval (a loaded machine may take longer)
        events = [json.loads(await next_segment(ch.events, 10)) for _ in range(2)]
        assert all(e["event"]["type"] == "status" for e in events), events
    finally:
        await ch.close()
