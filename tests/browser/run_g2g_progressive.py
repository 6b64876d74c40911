"""Browser run, meant to execute inside a private network namespace (see
test_browser_g2g_progressive.py): a gateway with an in-process reference orchestrator (``noop``,
1 s live AI segments), a page server and headless Chromium. The page draws numbered frames
(mediagw/bench/static/framecode.js) on a canvas, publishes them over WHIP with
``?pipeline=noop``, plays the AI output over WHEP and reads the numbers back on each
``requestVideoFrameCallback``; this prints what it saw, with figures, as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from itertools import pairwise
from typing import Any

from run_whip_hls import PAGE_HOST, serve_page

from mediagw.bench.chromium import find_chromium, run_page
from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

SEGMENT = 1.0  # live AI target segment seconds


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """From the page's (n, captured ms, shown ms) triples: latencies, the share of frames out
    before their input segment could have been cut, and whether the numbers only go up."""
    shown = report.get("shown", [])
    latencies = [(s - c) / 1000 for _, c, s in shown]
    numbers = [n for n, _, _ in shown]
    return {
        "frames": len(shown),
        "span": numbers[-1] - numbers[0] if numbers else 0,
        "latency_p50": statistics.median(latencies) if latencies else None,
        "latency_max": max(latencies, default=None),
        "within_segment": (sum(1 for v in latencies if v < SEGMENT) / len(latencies))
        if latencies
        else 0.0,
        "increasing": all(a < b for a, b in pairwise(numbers)),
        # a new viewer's frame rate: frames shown in the first second after its first frame
        "first_second": sum(1 for _, _, s in shown if s - shown[0][2] < 1000) if shown else 0,
    }


async def main(timeout: float) -> dict[str, Any]:
    chromium = find_chromium()
    if chromium is None:
        return {"error": "chromium not installed"}
    orch = ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS))
    await orch.start()
    gw = Gateway(
        Settings(
            rtmp_addr="127.0.0.1:0",
            http_addr="127.0.0.1:0",
            embedded_orchestrator=False,
            orch_addr=(orch.url,),
            transcoding_options="",
            live_ai_segment_duration=SEGMENT,
        )
    )
    await gw.start()
    runner, port, reported = await serve_page("g2g_progressive.html")
    page = f"http://{PAGE_HOST}:{port}/?gw=http://127.0.0.1:{gw.http_port}&name=g2g&seconds=8"
    try:
        result = await run_page(chromium, page, reported, timeout, hosts=(PAGE_HOST,))
        result.setdefault("shown", [])
        stream = gw.hub.get("g2g")
        result["source_segments"] = stream.stats.segments if stream else 0
        result["ai_segments_out"] = orch.stats.live_segments_out
        result.update(figures(result))
        result["shown"] = [*result["shown"][:5], "..."]  # the figures say the rest
    finally:
        await runner.cleanup()
        await gw.stop()
        await orch.stop()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("timeout", type=float, nargs="?", default=40)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.timeout))))
