"""Browser run, meant to execute inside a private network namespace (see test_browser_*.py):
a gateway, a page server and headless Chromium with a fake camera. The page publishes over WHIP
and plays the resulting HLS with hls.js, then posts what happened; this prints it as JSON.

The gateway runs with default WebRTC settings: in the namespace only ``lo`` exists, so it must
fall back to loopback candidates by itself. The page is served from another origin (127.0.0.2,
another port) than the gateway's (127.0.0.1): every request to the gateway is cross-origin.
With ``--end`` the page ends its sessions with DELETE on their ``Location`` instead of playing
HLS, and this reports whether the stream ended on the gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from aiohttp import web

from mediagw.bench.chromium import STATIC, chromium_flags
from mediagw.bench.chromium import serve_page as bench_serve_page
from mediagw.config import Settings
from mediagw.gateway import Gateway

HERE = Path(__file__).resolve().parent
PAGE_HOST = "127.0.0.2"  # on lo too; another origin than the gateway's 127.0.0.1
CHROMIUM_FLAGS = chromium_flags(PAGE_HOST)


async def serve_page(
    html: str,
) -> tuple[web.AppRunner, int, asyncio.Future[dict[str, object]]]:
    """Serve the scenario's page (``html`` here), hls.js and the frame-number script on
    ``PAGE_HOST``, another origin than the gateway's; the page POSTs its result to ``/report``,
    which resolves the future. The caller cleans the runner up."""
    files = {"/hls.min.js": HERE / "node_modules/hls.js/dist/hls.min.js",
             "/framecode.js": STATIC / "framecode.js"}  # fmt: skip
    return await bench_serve_page(HERE / html, PAGE_HOST, files)


async def main(timeout: float, pipeline: str = "", end: bool = False) -> dict[str, object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"error": "chromium not installed"}
    orch = None
    orch_addr: tuple[str, ...] = ()
    if pipeline:  # live AI: a reference orchestrator in this namespace runs the pipeline
        from mediagw.orchestrator import (
            DEFAULT_LIVE_MODELS,
            OrchestratorConfig,
            ReferenceOrchestrator,
        )

        orch = ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS))
        await orch.start()
        orch_addr = (orch.url,)
    gw = Gateway(
        Settings(
            rtmp_addr="127.0.0.1:0",
            http_addr="127.0.0.1:0",
            embedded_orchestrator=False,
            orch_addr=orch_addr,
        )
    )
    await gw.start()
    runner, port, reported = await serve_page("whip_hls.html")
    page = f"http://{PAGE_HOST}:{port}/?gw=http://127.0.0.1:{gw.http_port}&name=browser&seconds=7"
    if pipeline:
        page += f"&pipeline={pipeline}"
    if end:
        page += "&end=1"
    # its own process group, killed whole: no helper keeps writing to the profile
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            result = await asyncio.wait_for(reported, timeout)
            if end:  # the browser still holds its peer connections: only DELETE ends them
                result.update(await _ended(gw, pipeline))
        except TimeoutError:
            result = {"error": f"no report from the page within {timeout} s"}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    stream = gw.hub.get("browser")
    result["segments"] = stream.stats.segments if stream else 0
    result["webrtc_loopback_only"] = gw.webrtc_loopback_only
    await runner.cleanup()
    await gw.stop()
    if orch is not None:
        result["ai_segments_out"] = orch.stats.live_segments_out
        await orch.stop()
    return result


async def _ended(gw: Gateway, pipeline: str) -> dict[str, object]:
    """Wait (10 s at most) for the published stream to end; what the gateway then says."""
    for _ in range(100):
        stream = gw.hub.get("browser")
        if stream is not None and not stream.live:
            break
        await asyncio.sleep(0.1)
    stream = gw.hub.get("browser")
    playlist = gw.hls.media_playlist("browser", "source") or ""
    return {
        "live_after_delete": stream.live if stream is not None else None,
        "endlist": "#EXT-X-ENDLIST" in playlist,
        "whip_sessions_after_delete": len(gw.whip.ingest),
        "whep_sessions_after_delete": len(gw.whep) if pipeline else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("timeout", type=float, nargs="?", default=60)
    parser.add_argument("pipeline", nargs="?", default="")
    parser.add_argument("--end", action="store_true", help="end the sessions with DELETE")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.timeout, args.pipeline, args.end))))
