"""Live video-to-video media path on the reference orchestrator (live-AI spec §4-§7, §12):
MPEG-TS segments published over trickle (TLS) come back processed, one output segment per
input; control messages change the effect live; events arrive in the §7 format and cadence."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from orchestrator.test_orch_live_kit import (
    LIVE_MODELS,
    channels,
    decode,
    live_caps,
    live_segments,
    next_segment,
    offchain_headers,
    orchestrator_info,
    start,
    wait_until,
)

from mediagw.livepeer.trickle.errors import TrickleSegmentBroken
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator

__all__ = ["live_segments"]  # the session fixture, used through its name

STATUS_INTERVAL = 0.4


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        work_dir=tmp_path, live_models=LIVE_MODELS, live_status_interval=STATUS_INTERVAL
    )
    async with ReferenceOrchestrator(config) as orch:
        yield orch


async def _start(
    http: aiohttp.ClientSession, orch: ReferenceOrchestrator, model: str, params: dict[str, object]
) -> dict[str, str]:
    info = await orchestrator_info(orch, live_caps(model, warm=False))
    headers = await offchain_headers(info, live_caps(model, warm=False))
    return (await start(http, orch, headers, model=model, params=params)).urls


async def test_invert_with_live_control(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    urls = await _start(http, live, "invert", {"strength": 1.0})
    ch = channels(http, urls)
    stats = live.stats
    events: list[dict[str, Any]] = []

    async def collect() -> None:  # from the start, as a gateway reads them: none is missed
        async for segment in ch.events:
            events.append(json.loads(await segment.read()))

    collector = asyncio.create_task(collect())
    try:
        outputs = []
        for seq, segment in enumerate(live_segments):
            if seq == 2:  # keepalive ignored; bad params refused, old params kept
                await ch.control.write_segment(json.dumps({"keep": "alive"}).encode())
                await ch.control.write_segment(json.dumps({"strength": 5}).encode())
                await wait_until(lambda: stats.live_param_errors == 1 and stats.live_keepalives)
            if seq == 3:  # a valid update: applies to the next segments
                await ch.control.write_segment(json.dumps({"strength": 0.0}).encode())
                await wait_until(lambda: stats.live_control_updates == 1)
            assert await ch.publisher.write_segment(segment) == seq
            outputs.append(await next_segment(ch.output))
        inputs = [decode(s) for s in live_segments]
        results = [decode(o) for o in outputs]
        for seq, (i, o) in enumerate(zip(inputs, results, strict=True)):
            assert (o.frames, o.width, o.height) == (30, 320, 240)
            assert o.keyframe_first and o.first_pts == i.first_pts  # timestamps kept
            if seq < 3:
                assert i.luma < 60 and abs(o.luma - (255 - i.luma)) < 10, (seq, i, o)
            else:
                assert abs(o.luma - i.luma) < 3, (seq, i, o)
        assert stats.live_segments_in == stats.live_segments_out == 5

        def seen() -> bool:
            kinds = {e["event"]["type"] for e in events}
            updated = any(
                e["event"].get("inference_status", {}).get("last_params") == {"strength": 0.0}
                for e in events
            )
            return updated and {"error", "runner_send_first_processed_segment"} <= kinds

        await wait_until(seen, 30)  # the status after the update comes within its interval
        collector.cancel()
        kinds = [e["event"]["type"] for e in events]
        assert "runner_receive_first_ingest_segment" in kinds
        assert "runner_send_first_processed_segment" in kinds
        trace = next(e for e in events if e["event"]["type"].startswith("runner_receive"))
        assert trace["queue_event_type"] == "stream_trace"
        error = next(e for e in events if e["event"]["type"] == "error")
        assert error["queue_event_type"] == "ai_stream_events"
        assert error["event"]["pipeline"] == "invert"
        assert "strength" in error["event"]["message"]
        statuses = [e["event"] for e in events if e["event"]["type"] == "status"]
        sent = [s["inference_status"]["last_params"] for s in statuses]
        assert sent[0] == {"strength": 1.0}  # sent once after each change, then null
        assert {"strength": 0.0} in sent and sent.count({"strength": 0.0}) == 1
        assert statuses[-1]["inference_status"]["last_error"].startswith("invalid params")
    finally:
        collector.cancel()
        await ch.close()
    await wait_until(lambda: stats.live_sessions_ended == 1)


async def test_tint_noop_and_size(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    urls = await _start(http, live, "tint", {"color": [255, 0, 0], "strength": 1.0})
    ch = channels(http, urls)
    try:
        await ch.publisher.write_segment(live_segments[0])
        red = decode(await next_segment(ch.output))
        update = {"color": [0, 0, 255], "strength": 1.0, "width": 384, "height": 512}
        await ch.control.write_segment(json.dumps(update).encode())
        await wait_until(lambda: live.stats.live_control_updates == 1)
        await ch.publisher.write_segment(live_segments[1])
        blue = decode(await next_segment(ch.output))
    finally:
        await ch.close()
    assert red.red > 240 and blue.red < 15
    assert (red.width, red.height, blue.width, blue.height) == (320, 240, 384, 512)

    urls = await _start(http, live, "noop", {})
    ch = channels(http, urls)
    try:
        for segment in live_segments[:2]:
            await ch.publisher.write_segment(segment)
            assert await next_segment(ch.output) == segment  # echoed byte for byte
    finally:
        await ch.close()


async def test_status_cadence(live: ReferenceOrchestrator, http: aiohttp.ClientSession) -> None:
    urls = await _start(http, live, "noop", {"width": 512})
    ch = channels(http, urls)
    events: list[dict[str, Any]] = []
    try:
        async for segment in ch.events:  # the first five statuses, however busy the machine
            events.append(json.loads(await segment.read()))
            if sum(e["event"]["type"] == "status" for e in events) == 5:
                break
    finally:
        await ch.close()
    statuses = [e for e in events if e["event"]["type"] == "status"]
    assert len(statuses) == 5, len(statuses)
    for message in statuses:
        assert message["queue_event_type"] == "ai_stream_status"
        event = message["event"]
        assert event["pipeline"] == "noop"
        assert event["state"] == "OFFLINE"  # no input yet
        assert set(event["input_status"]) == {"last_input_time", "fps"}
        assert {"last_params", "last_params_hash", "fps", "last_error", "restart_count"} <= set(
            event["inference_status"]
        )
    stamps = [m["event"]["timestamp"] for m in statuses]
    gaps = sorted((b - a) / 1000 for a, b in itertools.pairwise(stamps))
    # never faster than the interval; a loaded machine may stretch a gap, not most of them
    assert gaps[0] > STATUS_INTERVAL - 0.05 and gaps[len(gaps) // 2] < 2 * STATUS_INTERVAL, gaps
    assert statuses[0]["event"]["inference_status"]["last_params"] == {"width": 512}


async def test_noop_output_flows_while_its_input_arrives(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    """Pass-through is progressive: the output segment's first bytes reach the gateway while
    the input segment's POST is still open (its second half is only sent after that). An input
    POST that dies mid-way breaks its output segment off (not a short one passed as whole)."""
    urls = await _start(http, live, "noop", {})
    ch = channels(http, urls)
    segment = live_segments[0]
    half = len(segment) // 2
    try:
        first, rest = await _output_while_input_arrives(ch, segment)
        assert first + rest == segment and len(first) <= half
        await _input_dies_output_breaks(ch, segment)
        assert live.stats.live_segments_broken == 1

        await ch.publisher.write_segment(live_segments[1])
        assert await next_segment(ch.output) == live_segments[1]
    finally:
        await ch.close()
    assert live.stats.live_segments_out == 2


class _Died(Exception):
    pass


async def _output_while_input_arrives(ch: Any, segment: bytes) -> tuple[bytes, bytes]:
    """Send the first half of ``segment``, wait for the output's first chunk, then send the
    rest: (first output chunk, the rest of the output)."""
    half = len(segment) // 2
    async with ch.publisher.segment() as upload:
        await upload.write(segment[:half])
        output = await asyncio.wait_for(anext(ch.output), 10)
        chunks = aiter(output)
        first = await asyncio.wait_for(anext(chunks), 10)
        await upload.write(segment[half:])
    return first, b"".join([chunk async for chunk in chunks])


async def _input_dies_output_breaks(ch: Any, segment: bytes) -> None:
    """The input POST dies after half of ``segment`` (its output had begun): the output
    segment's readers are cut."""
    with pytest.raises(_Died):
        async with ch.publisher.segment() as upload:
            await upload.write(segment[: len(segment) // 2])
            output = await asyncio.wait_for(anext(ch.output), 10)
            chunks = aiter(output)
            await asyncio.wait_for(anext(chunks), 10)
            raise _Died
    with pytest.raises(TrickleSegmentBroken):
        async for _ in chunks:
            pass


async def test_effect_output_flows_while_its_input_arrives(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession, live_segments: list[bytes]
) -> None:
    """Effects are progressive too: decoded, inverted and encoded frames come out while the
    input's second half is still unsent; the whole output decodes with every frame. An input
    that dies mid-way breaks the output off."""
    urls = await _start(http, live, "invert", {"strength": 1.0})
    ch = channels(http, urls)
    segment = live_segments[0]
    try:
        first, rest = await _output_while_input_arrives(ch, segment)
        before, after = decode(segment), decode(first + rest)
        assert after.frames == before.frames == 30 and after.keyframe_first
        assert abs(after.luma - (255 - before.luma)) < 20
        await _input_dies_output_breaks(ch, segment)
        assert live.stats.live_segments_broken == 1
    finally:
        await ch.close()
    assert live.stats.live_segments_out == 1 and live.stats.live_errors == 0
