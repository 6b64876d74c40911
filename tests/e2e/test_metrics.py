"""GET /metrics over real sockets: FFmpeg publishes over RTMP, the reference orchestrator
transcodes, and the scrape says what happened under go-livepeer's and MediaMTX's names."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, push, wait_until

from mediagw.api.metrics import PLAIN_COUNTERS
from mediagw.gateway import Gateway
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "mediagw.json"
LADDER = "P144p30fps16x9,P240p30fps16x9"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
NAME = re.compile(r"\b((?:livepeer|mediagw|paths|rtmp_conns|webrtc|hls_sessions)[a-zA-Z0-9_]*)")

OrchFactory = Callable[..., Any]
Samples = dict[str, list[tuple[str, float]]]


@pytest.fixture
async def orchestrators() -> AsyncIterator[OrchFactory]:
    async with AsyncExitStack() as stack:

        async def start(**kwargs: Any) -> ReferenceOrchestrator:
            orch = ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast", **kwargs))
            await stack.enter_async_context(orch)
            return orch

        yield start


async def scrape(gw: Gateway, headers: dict[str, str] | None = None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{gw.http_port}/metrics"
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as resp:
        return resp.status, await resp.text()


def parse(text: str) -> tuple[set[str], Samples]:
    """(every family named by a TYPE line, samples by name: (labels, value))."""
    families, samples = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        elif line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match is not None, line
            name, labels, value = match.groups()
            samples.setdefault(name, []).append((labels or "", float(value)))
    return families, samples


def total(samples: Samples, name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def dashboard_names() -> set[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    return {m for e in exprs for m in NAME.findall(e)}


async def publish(gw: Gateway, name: str, clip_seconds: float, make_clip: ClipMaker) -> None:
    code, err = await push(
        make_clip(seconds=clip_seconds), f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}", live=False
    )
    assert code == 0, err
    await wait_until(lambda: gw.hub.get(name) is not None and not gw.hub.get(name).live, 30)  # type: ignore[union-attr]


async def test_a_transcoded_publish_in_the_scrape_and_every_dashboard_query_in_it(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    orch = await orchestrators()
    gw = await gateway_factory(orch_addr=(orch.url,), transcoding_options=LADDER)
    await publish(gw, "m", 6, make_clip)
    assert gw.transcodes is not None
    await wait_until(lambda: "m" not in gw.transcodes.pipelines and not gw.transcodes._closing, 90)  # type: ignore[union-attr]
    stream = gw.hub.get("m")
    assert stream is not None
    cut = stream.stats.segments
    assert cut >= 3
    # one segment of the source served over HLS: counted as egress
    url = f"http://127.0.0.1:{gw.http_port}/stream/m/source/0.ts"
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
        served = len(await resp.read())
    gw.usage.drain()  # the usage events: delivered to the metrics now
    status, text = await scrape(gw)
    assert status == 200
    families, samples = parse(text)

    # every metric the dashboard queries is exposed by a real gateway
    wanted = {
        n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for n in dashboard_names()
    }
    assert wanted, "the dashboard queries nothing?"
    missing = sorted(wanted - families)
    assert not missing, missing
    # ... and those this publish is about have values
    with_values = {
        "livepeer_stream_created_total", "livepeer_stream_started_total",
        "livepeer_stream_ended_total", "livepeer_current_sessions_total",
        "livepeer_max_sessions_total", "livepeer_segment_source_appeared_total",
        "livepeer_segment_source_uploaded_total", "livepeer_segment_transcoded_all_appeared_total",
        "livepeer_success_rate", "livepeer_transcode_overall_latency_seconds_bucket",
        "livepeer_upload_time_seconds_bucket", "rtmp_conns", "rtmp_conns_inbound_bytes",
        "webrtc_sessions", "hls_sessions_outbound_bytes", "mediagw_usage_transcode_pixels_total",
        "mediagw_usage_dropped_total", "mediagw_auth_throttled_total",
    }  # fmt: skip
    assert not sorted(with_values - set(samples)), sorted(with_values - set(samples))
    # go-livepeer's counters named without _total keep their name
    for name in PLAIN_COUNTERS:
        assert f"# TYPE livepeer_{name} counter" in text, name

    # the values: one stream, every segment cut appeared and was transcoded by the one O
    assert total(samples, "livepeer_stream_created_total") == 1
    assert total(samples, "livepeer_stream_started_total") == 1
    assert total(samples, "livepeer_stream_ended_total") == 1
    assert total(samples, "livepeer_current_sessions_total") == 0
    assert total(samples, "livepeer_segment_source_appeared_total") == cut
    assert total(samples, "livepeer_segment_transcoded_all_appeared_total") == cut
    assert total(samples, "livepeer_segment_source_uploaded_total") == cut
    assert orch.stats.segments_transcoded == cut
    assert total(samples, "livepeer_transcode_overall_latency_seconds_count") == cut
    assert samples["livepeer_success_rate"][0][1] == 1.0
    (labels, _), *_ = samples["livepeer_segment_transcoded_all_appeared_total"]
    assert f'orchestrator_uri="{orch.url}"' in labels, labels
    assert f'profiles="{LADDER}"' in labels, labels
    assert 'node_type="bctr"' in labels and "node_id=" in labels
    assert "manifest_id" not in text  # without -metricsPerStream
    assert total(samples, "mediagw_usage_transcode_pixels_total") > 0
    # FLV in, MPEG-TS segments out: the same media within a factor of two
    assert (
        stream.stats.bytes / 2 < total(samples, "rtmp_conns_inbound_bytes") < 2 * stream.stats.bytes
    )
    assert total(samples, "hls_sessions_outbound_bytes") == served


async def test_manifest_id_only_with_metrics_per_stream_each_gateway_its_own_registry(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    plain = await gateway_factory()
    per_stream = await gateway_factory(metrics_per_stream=True)
    await publish(plain, "a", 2, make_clip)
    await publish(per_stream, "b", 2, make_clip)
    _, text_plain = await scrape(plain)
    _, text_per = await scrape(per_stream)
    _, plain_samples = parse(text_plain)
    _, per_samples = parse(text_per)
    assert "manifest_id" not in text_plain
    appeared = per_samples["livepeer_segment_source_appeared_total"]
    assert appeared and all('manifest_id="b"' in labels for labels, _ in appeared), appeared
    # two gateways in one process: each counts its own stream only
    assert total(plain_samples, "livepeer_stream_created_total") == 1
    assert total(per_samples, "livepeer_stream_created_total") == 1
    assert total(plain_samples, "livepeer_segment_source_appeared_total") == (
        plain.hub.get("a").stats.segments  # type: ignore[union-attr]
    )


async def test_live_paths_while_publishing(gateway_factory: Any, make_clip: ClipMaker) -> None:
    """While a stream is live it is a MediaMTX path, with the bytes it brought in."""
    gw = await gateway_factory()
    clip = make_clip(seconds=4)
    task = asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/p", live=True))
    try:
        await wait_until(
            lambda: gw.hub.get("p") is not None and gw.hub.get("p").stats.segments > 0, 30
        )  # type: ignore[union-attr]
        _, text = await scrape(gw)
        _, samples = parse(text)
        assert ('{name="p",state="ready"}', 1.0) in samples["paths"], samples.get("paths")
        assert total(samples, "paths_inbound_bytes") > 0
        assert total(samples, "livepeer_current_sessions_total") == 1
        assert total(samples, "rtmp_conns") == 1
        # the event loop's tasks: at least the scrape's own handler and the stream's
        assert total(samples, "mediagw_asyncio_tasks") >= 2
    finally:
        code, err = await task
    assert code == 0, err


async def test_metrics_key(gateway_factory: Any) -> None:
    gw = await gateway_factory(metrics_key="s3cret")
    status, text = await scrape(gw)
    assert status == 401 and "-metricsKey" in text
    status, _ = await scrape(gw, {"Authorization": "Bearer wrong"})
    assert status == 401
    status, text = await scrape(gw, {"Authorization": "Bearer s3cret"})
    assert status == 200 and "livepeer_max_sessions_total" in text
    open_gw = await gateway_factory()
    status, _ = await scrape(open_gw)
    assert status == 200
