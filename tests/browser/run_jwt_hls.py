"""Browser run for the JWT-gated playback test (inside a private network namespace, see
``browser_testkit``): a gateway with a store (SQLite), a stream row with playback policy
``{"type": "jwt"}`` published live with FFmpeg's RTMP client at ``/live/<streamKey>``, and
headless Chromium playing Studio's ``/hls/<playbackId>/index.m3u8`` with hls.js twice at once:
with only ``?jwt=`` on that URL, and with no token. Prints what the page saw as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time

from run_whip_hls import PAGE_HOST, serve_page

from mediagw.bench.chromium import run_page
from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform.access import create_signing_key, sign_token
from mediagw.platform.store import SqlStore, Stream

PLAYBACK_ID = "jwtgated1"


async def main(clip: str, timeout: float) -> dict[str, object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    ffmpeg = shutil.which("ffmpeg")
    if chromium is None or ffmpeg is None:
        return {"error": "chromium or ffmpeg not installed"}
    with tempfile.TemporaryDirectory() as data:
        store = await SqlStore.open(data)
        await store.create_stream(
            Stream(
                id="s1", name="gated", stream_key="k-1", playback_id=PLAYBACK_ID,
                created_at=1, playback_policy={"type": "jwt"},
            )
        )  # fmt: skip
        key = await create_signing_key(store, "browser")
        token = sign_token(
            key.private_key, key.public_key, PLAYBACK_ID, expires_at=time.time() + 600
        )
        gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0"), store=store)
        await gw.start()
        publisher = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip,
            "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{gw.rtmp_port}/live/k-1",
        )  # fmt: skip
        runner, port, reported = await serve_page("jwt_hls.html")
        for _ in range(100):  # the first segment is out: the stream is live
            if gw.hls.media_playlist(PLAYBACK_ID, "source") is not None:
                break
            await asyncio.sleep(0.1)
        src = f"http://127.0.0.1:{gw.http_port}/hls/{PLAYBACK_ID}/index.m3u8"
        page = f"http://{PAGE_HOST}:{port}/?src={src}&jwt={token}"
        try:
            result = await run_page(chromium, page, reported, timeout, hosts=(PAGE_HOST,))
        finally:
            publisher.kill()
            await publisher.wait()
        result["token"] = token
        await runner.cleanup()
        await gw.stop()
        await store.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("timeout", type=float, nargs="?", default=60)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clip, args.timeout))))
