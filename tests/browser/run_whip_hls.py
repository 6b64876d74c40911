"""Browser run, meant to execute inside a private network namespace (see test_browser_*.py):
a gateway, a page server and headless Chromium with a fake camera. The page publishes over WHIP
and plays the resulting HLS with hls.js, then posts what happened; this prints it as JSON."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from mediagw.config import Settings
from mediagw.gateway import Gateway

HERE = Path(__file__).resolve().parent
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


async def main(timeout: float, pipeline: str = "") -> dict[str, object]:
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
            webrtc_host_addresses=("127.0.0.1",),
            embedded_orchestrator=False,
            orch_addr=orch_addr,
        )
    )
    await gw.start()
    reported: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

    async def report(request: web.Request) -> web.Response:
        if not reported.done():
            reported.set_result(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", lambda _: web.FileResponse(HERE / "whip_hls.html"))
    app.router.add_get(
        "/hls.min.js", lambda _: web.FileResponse(HERE / "node_modules/hls.js/dist/hls.min.js")
    )
    app.router.add_post("/report", report)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    page = f"http://127.0.0.1:{port}/?gw=http://127.0.0.1:{gw.http_port}&name=browser&seconds=7"
    if pipeline:
        page += f"&pipeline={pipeline}"
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            result = await asyncio.wait_for(reported, timeout)
        except TimeoutError:
            result = {"error": f"no report from the page within {timeout} s"}
        finally:
            proc.kill()
            await proc.wait()
    stream = gw.hub.get("browser")
    result["segments"] = stream.stats.segments if stream else 0
    await runner.cleanup()
    await gw.stop()
    if orch is not None:
        result["ai_segments_out"] = orch.stats.live_segments_out
        await orch.stop()
    return result


if __name__ == "__main__":
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    pipeline = sys.argv[2] if len(sys.argv) > 2 else ""
    print(json.dumps(asyncio.run(main(timeout, pipeline))))
