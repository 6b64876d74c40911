"""The usage ledger against the reference orchestrator's own counters, over real sockets: a
customer's key creates a stream through ``/api``, publishes over RTMP, and its usage query
(after the ledger's flush) shows the pixels the orchestrator transcoded, the tickets and EV it
received, and the live-AI seconds it was sent, within one segment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, fetch_hls, make_keystore, push, wait_until

from mediagw.gateway import Gateway
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform import keys

from .conftest import GatewayFactory

pytestmark = pytest.mark.ffmpeg

PROFILE = {"name": "144p", "width": 256, "height": 144, "bitrate": 200_000, "fps": 30}


async def _api(gw: Gateway, method: str, path: str, key: str, **kw: Any) -> Any:
    url = f"http://127.0.0.1:{gw.http_port}/api{path}"
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, url, **kw) as resp,
    ):
        assert resp.status in (200, 201, 204), (path, resp.status, await resp.text())
        return await resp.json() if resp.status != 204 else None


async def _flushed_usage(gw: Gateway, key: str) -> dict[str, Any]:
    """The key's usage after everything counted so far reached the store."""
    assert gw.ledger is not None
    gw.delivery.flush()
    gw.usage.drain()
    await gw.ledger.flush()
    (row,) = await _api(gw, "GET", "/data/usage/query", key)
    assert isinstance(row, dict)
    return row


async def test_transcoded_pixels_tickets_and_ev_match_the_orchestrator(
    gateway_factory: GatewayFactory, make_clip: ClipMaker, tmp_path: Path
) -> None:
    keystore, password = make_keystore(tmp_path)
    config = OrchestratorConfig(priced=True, price_per_unit=3, pixels_per_unit=1,
                                x264_preset="ultrafast")  # fmt: skip
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(
            orch_addr=(orch.url,), eth_keystore_path=str(keystore), eth_password=password,
            wei_rate=Decimal("2500"),
        )  # fmt: skip
        assert gw.store is not None
        _, key = await keys.create_key(gw.store, "customer", ["streams"])
        stream = await _api(
            gw, "POST", "/stream", key, json={"name": "paid", "profiles": [PROFILE]}
        )
        play = stream["playbackId"]
        clip = make_clip(seconds=20, size="256x144")
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream['streamKey']}"
        code, err = await push(clip, url, readrate=4.0, timeout=120)
        assert code == 0, err
        await wait_until(lambda: gw.hub.get(play) is not None and not gw.hub.get(play).live, 60)  # type: ignore[union-attr]
        assert gw.transcodes is not None
        await wait_until(lambda: play not in gw.transcodes.pipelines, 60)  # type: ignore[union-attr]
        watched = await fetch_hls(gw.http_port, play)  # one viewer fetches every segment

        usage = await _flushed_usage(gw, key)
        s = orch.stats
        assert s.tickets_received > 0 and s.pixels > 0
        assert usage["transcodedPixels"] == s.pixels
        assert usage["tickets"] == s.tickets_received
        assert abs(int(usage["costWei"]) - s.ev_credited) <= 5  # whole wei per flushed row
        seconds = 20.0
        segment = 2.0  # -segmentDuration
        assert abs(usage["TotalUsageMins"] * 60 - seconds) <= segment
        assert abs(usage["transcodedMins"] * 60 - seconds) <= segment
        source = gw.hls.rendition(play, "source")
        assert source is not None and len(watched.segments) == len(source.segments)
        assert usage["hlsBytes"] == sum(len(data) for data in source.segments.values())
        assert abs(usage["DeliveryUsageMins"] * 60 - seconds) <= segment
        assert usage["weiRate"] == "2500"


async def test_live_ai_seconds_match_the_segments_the_orchestrator_received(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,))
        assert gw.store is not None and gw.live_ai is not None
        _, key = await keys.create_key(gw.store, "ai app", ["streams"])
        stream = await _api(gw, "POST", "/stream", key, json={"name": "ai", "pipeline": "invert"})
        clip = make_clip(seconds=8)  # one keyframe a second: 1 s live-AI segments
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream['streamKey']}"
        code, err = await push(clip, url, live=True)
        assert code == 0, err
        await wait_until(lambda: stream["playbackId"] in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        await wait_until(lambda: orch.stats.live_sessions_ended >= 1, 30)

        usage = await _flushed_usage(gw, key)
        received = orch.stats.live_segments_in  # each 1 s of media
        assert received > 0
        assert abs(usage["liveAiMins"] * 60 - received * 1.0) <= 1.0
        assert usage["liveAiPixels"] > 0
        assert abs(usage["TotalUsageMins"] * 60 - 8.0) <= 2.0
        (status,) = [r async for r in _breakdown(gw, key)]
        assert status["CreatorID"] == stream["id"]


async def _breakdown(gw: Gateway, key: str) -> Any:
    for row in await _api(gw, "GET", "/data/usage/query?breakdownBy[]=streamId", key):
        yield row


async def test_recorded_seconds_are_metered_and_unwatched_streams_deliver_nothing(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    gw = await gateway_factory()
    assert gw.store is not None
    _, key = await keys.create_key(gw.store, "recorder", ["streams"])
    stream = await _api(gw, "POST", "/stream", key, json={"name": "rec", "record": True})
    play = stream["playbackId"]
    code, err = await push(
        make_clip(seconds=6), f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream['streamKey']}"
    )
    assert code == 0, err
    await wait_until(lambda: gw.hub.get(play) is not None and not gw.hub.get(play).live, 30)  # type: ignore[union-attr]
    assert gw.lifecycle is not None
    await gw.lifecycle.drain()  # the session is stored ended once its recording has its end
    sessions = await _api(gw, "GET", f"/stream/{stream['id']}/sessions", key)
    source = gw.hls.rendition(play, "source")
    assert source is not None
    await gw.session_recorder.close()  # every queued segment written
    usage = await _flushed_usage(gw, key)
    assert sessions and sessions[0]["recordingUrl"]
    # every recorded segment (minutes are given to 3 decimals: 0.06 s)
    assert abs(usage["StorageUsageMins"] * 60 - source.seconds_total) <= 0.06
    assert abs(usage["TotalUsageMins"] * 60 - 6.0) <= 2.0
    assert usage["DeliveryUsageMins"] == 0 and usage["hlsBytes"] == 0  # nobody watched
