"""Browser run for the dashboard test (inside a private network namespace, see
``browser_testkit``): a gateway with a store (SQLite) and the reference orchestrator, a stream
pushed live with FFmpeg's RTMP client, and headless Chromium on the gateway's own
``/dashboard#key=<admin key>``. Chromium is driven over its DevTools protocol (a WebSocket):
the page's state is read with ``Runtime.evaluate`` until its player has played and its
scoreboard lists the orchestrator, then screenshots are saved into the directory given.
Prints what the page showed as JSON."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from run_whip_hls import CHROMIUM_FLAGS

from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform import keys
from mediagw.platform.store import SqlStore

STREAM = "dash1"
# what the page shows, read in the page (returnByValue)
STATE = """(() => {
  const video = document.querySelector("video[data-stream]");
  const q = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const rows = [...document.querySelectorAll("#orchestrators tbody tr[data-orchestrator]")];
  const cells = rows.map(r => [...r.cells].map(c => c.textContent));
  const health = [...document.querySelectorAll("article.stream .health tr")]
    .map(r => [r.cells[0].textContent, r.cells[1].textContent]);
  return {
    loaded: document.body.dataset.loaded === "1",
    login_shown: !document.getElementById("login").hidden,
    key_in_url: location.href.includes("key="),
    stream: video ? video.dataset.stream : null,
    current_time: video ? video.currentTime : 0,
    frames: q ? q.totalVideoFrames : 0,
    player_error: video ? (video.closest("article").dataset.error || null) : null,
    hls_js: typeof Hls !== "undefined",
    orchestrators: cells,
    health: Object.fromEntries(health),
    usage: document.getElementById("usage").textContent,
    audit_rows: document.querySelectorAll("#audit tbody tr").length,
    status: document.getElementById("status").textContent,
  };
})()"""


class DevTools:
    """Just enough of the Chrome DevTools protocol: one page, commands by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        reply = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(reply["data"]))


async def _page_socket(http: aiohttp.ClientSession, profile: Path) -> str:
    for _ in range(100):  # Chromium writes its DevTools port into the profile when it listens
        port_file = profile / "DevToolsActivePort"
        if port_file.exists() and port_file.read_text().strip():
            port = port_file.read_text().split()[0]
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                pages = [t for t in await resp.json() if t["type"] == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        await asyncio.sleep(0.1)
    raise RuntimeError("Chromium's DevTools endpoint did not come up")


async def main(clip: str, out: str, timeout: float) -> dict[str, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    ffmpeg = shutil.which("ffmpeg")
    if chromium is None or ffmpeg is None:
        return {"error": "chromium or ffmpeg not installed"}
    shots = Path(out)
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as profile:
        store = await SqlStore.open(data)
        _, admin = await keys.create_key(store, "operator", ["admin"])
        await keys.create_key(store, "a customer", ["streams"])  # an audit-free key, listed
        orch = ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast"))
        await orch.start()
        settings = Settings(
            rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", segment_duration=1.0,
            embedded_orchestrator=False, orch_addr=(orch.url,), usage_flush_interval=1.0,
        )  # fmt: skip
        gw = Gateway(settings, store=store)
        await gw.start()
        publisher = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip,
            "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{STREAM}",
        )  # fmt: skip
        for _ in range(100):  # the first segment is out: the stream is live
            if gw.hls.media_playlist(STREAM, "source") is not None:
                break
            await asyncio.sleep(0.1)
        page = f"http://127.0.0.1:{gw.http_port}/dashboard#key={admin}"
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--window-size=1400,1700", page,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        result: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as http:
                url = await _page_socket(http, Path(profile))
                async with http.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws:
                    tools = DevTools(ws)
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline:
                        state = await tools.evaluate(STATE) or {}
                        result["state"] = state
                        if (
                            state.get("current_time", 0) > 3
                            and state.get("frames", 0) > 60
                            and (state.get("orchestrators"))
                            and "no usage yet" not in state.get("usage", "no usage yet")
                        ):
                            result["played"] = True
                            break
                        await asyncio.sleep(0.5)
                    await tools.screenshot(shots / "dashboard.png")
                    await asyncio.sleep(2.0)  # one more refresh: a second look, for review
                    await tools.screenshot(shots / "dashboard-later.png")
                    result["screenshots"] = [str(shots / "dashboard.png"),
                                             str(shots / "dashboard-later.png")]  # fmt: skip
        except Exception as exc:  # reported, not raised: the test shows what went wrong
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            proc.kill()
            await proc.wait()
            publisher.kill()
            await publisher.wait()
        result["orchestrator_url"] = orch.url
        result["stream"] = STREAM
        await gw.stop()
        await orch.stop()
        await store.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("out", help="directory for the screenshots")
    parser.add_argument("timeout", type=float, nargs="?", default=60)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clip, args.out, args.timeout))))
