"""The reference orchestrator's wire faults on ``<mid>-out`` (``live_output_470`` /
``live_output_404``, counted down, narrowed by ``live_stream``), its count of the gateway's
output GETs, and its drain at the end of the input (the last input segment still comes out)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from orchestrator.test_orch_live_kit import (
    LIVE_MODELS,
    channels,
    live_caps,
    live_segments,
    next_segment,
    offchain_headers,
    orchestrator_info,
    start,
    wait_until,
)

from mediagw.orchestrator import Faults, OrchestratorConfig, ReferenceOrchestrator

__all__ = ["live_segments"]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(work_dir=tmp_path, live_models=LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        yield orch


async def _start(
    http: aiohttp.ClientSession, orch: ReferenceOrchestrator, stream: str
) -> dict[str, str]:
    info = await orchestrator_info(orch, live_caps("noop"))
    headers = await offchain_headers(info, live_caps("noop"))
    body = json.dumps({"model_id": "noop", "stream_id": stream}).encode()
    return (await start(http, orch, headers, body=body)).urls


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with http.get(url, ssl=False, timeout=timeout) as resp:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return resp.status, headers, await resp.read()


def test_countdown() -> None:
    faults = Faults(live_output_470=2, live_output_404=-1)
    assert [faults.take_live_output("live_output_470") for _ in range(3)] == [True, True, False]
    assert faults.live_output_470 == 0
    assert all(faults.take_live_output("live_output_404") for _ in range(5))
    assert faults.live_output_404 == -1
    faults.live_output_404 = None
    assert not faults.take_live_output("live_output_404")
    assert Faults().live_applies("x") and not Faults(live_stream="a").live_applies("b")


async def test_output_470_and_404_for_one_stream(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    urls_a = await _start(http, live, "a")
    urls_b = await _start(http, live, "b")
    a = live.node.live.sessions[urls_a["manifest_id"]] if live.node else None
    assert a is not None and a.stream_id == "a"
    ch = channels(http, urls_a)
    await ch.output.close()  # only the GETs below
    try:
        await ch.publisher.write_segment(live_segments[0])
        out = urls_a["subscribe_url"]
        await wait_until(lambda: a.outputs == 1)
        assert (await _get(http, f"{out}/0"))[2] == live_segments[0]
        live.faults.live_stream = "a"
        live.faults.live_output_470 = 2
        for _ in range(2):
            status, headers, body = await _get(http, f"{out}/1")
            assert (status, body) == (470, b"Entry not found")
            assert headers["lp-trickle-latest"] == "1" and headers["lp-trickle-seq"] == "1"
        status, _, _ = await _get(http, f"{out}/0")  # the fault is used up: served again
        assert status == 200
        live.faults.live_output_404 = 1
        assert (await _get(http, f"{out}/0"))[0] == 404
        assert (await _get(http, f"{out}/0"))[0] == 200
        live.faults.live_output_404 = -1  # stream b is not concerned
        assert live.node is not None
        intercept = live.node.live.trickle.intercept
        assert intercept("GET", urls_b["manifest_id"] + "-out/0") is None
        assert intercept("GET", urls_a["manifest_id"] + "-out/x") is None  # the server's 400
        assert intercept("POST", urls_a["manifest_id"] + "-out/0") is None
        assert live.faults.live_output_404 == -1
        live.faults.live_output_404 = None
        assert a.output_faults == 3 and a.output_requests == 6
        assert live.stats.faults_injected == 3
    finally:
        await ch.close()


async def test_the_last_input_segment_comes_out_after_the_input_is_closed(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    ch = channels(http, await _start(http, live, "s"))
    try:
        for segment in live_segments[:3]:
            await ch.publisher.write_segment(segment)
        await ch.publisher.close()  # DELETE at once, as a gateway ends its stream
        got = [await next_segment(ch.output) for _ in range(3)]
        assert got == live_segments[:3]
        await wait_until(lambda: live.stats.live_sessions_ended == 1)
        async for _ in ch.output:  # then the O closed its channels
            pass
    finally:
        await ch.close()
