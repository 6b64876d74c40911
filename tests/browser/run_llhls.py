"""Browser run for the LL-HLS test (inside a private network namespace, see ``browser_testkit``):
a gateway, a stream published live with FFmpeg's RTMP client, and headless Chromium playing
``/stream/<id>/ll/index.m3u8`` with hls.js in low-latency mode for a few seconds. Prints what
the page saw as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil

from run_whip_hls import PAGE_HOST, serve_page

from mediagw.bench.chromium import run_page
from mediagw.config import Settings
from mediagw.gateway import Gateway

STREAM = "llive"


async def main(clip: str, play: float, timeout: float) -> dict[str, object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    ffmpeg = shutil.which("ffmpeg")
    if chromium is None or ffmpeg is None:
        return {"error": "chromium or ffmpeg not installed"}
    gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0"))
    await gw.start()
    assert gw.llhls is not None
    publisher = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip,
        "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{STREAM}",
    )  # fmt: skip
    runner, port, reported = await serve_page("ll_hls.html")
    for _ in range(100):  # the first segment is out: the stream is live (the page's first
        stream = gw.hub.get(STREAM)  # request turns LL-HLS on for it: made on demand)
        if stream is not None and stream.stats.segments:
            break
        await asyncio.sleep(0.1)
    src = f"http://127.0.0.1:{gw.http_port}/stream/{STREAM}/ll/index.m3u8"
    page = f"http://{PAGE_HOST}:{port}/?src={src}&play={play}"
    try:
        result = await run_page(chromium, page, reported, timeout, hosts=(PAGE_HOST,))
    finally:
        publisher.kill()
        await publisher.wait()
    await runner.cleanup()
    await gw.stop()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("play", type=float, nargs="?", default=5)
    parser.add_argument("timeout", type=float, nargs="?", default=40)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clip, args.play, args.timeout))))
