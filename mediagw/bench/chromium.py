"""Headless Chromium for the benchmarks (and the browser tests): its flags, a page server, a run.

The flags keep Chromium off the network on its own: no DNS look-ups (every host name but the
loopback ones maps to "not found"), no background or component traffic, and ``--no-sandbox``
(the bench host runs as root). Pages and their scripts come from :data:`STATIC`; hls.js from the
dashboard's vendored copy or, in a checkout, ``tests/browser/node_modules`` (``make
system-deps`` fetches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["STATIC", "chromium_flags", "find_chromium", "find_hls_js", "run_page", "serve_page"]

STATIC = Path(__file__).resolve().parent / "static"
_ROOT = Path(__file__).resolve().parents[2]
HLS_JS_PLACES = (
    _ROOT / "mediagw/api/dashboard/static/vendor/hls.min.js",
    _ROOT / "tests/browser/node_modules/hls.js/dist/hls.min.js",
)


def chromium_flags(*hosts: str) -> list[str]:
    """Headless, loopback-only flags; ``hosts``: more addresses that resolve (page origins)."""
    rules = "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
    rules += "".join(f", EXCLUDE {h}" for h in hosts)
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
        f"--host-resolver-rules={rules}",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        # the Fetch spec's rule: "*" in Access-Control-Allow-Headers does not cover Authorization
        # (Chromium 156 still lets it through unless this is on)
        "--enable-features=CorsNonWildcardRequestHeadersSupport",
    ]  # fmt: skip


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def find_hls_js() -> Path | None:
    return next((p for p in HLS_JS_PLACES if p.is_file()), None)


async def serve_page(
    page: Path, host: str, files: dict[str, Path] | None = None
) -> tuple[web.AppRunner, int, asyncio.Future[dict[str, Any]]]:
    """Serve ``page`` at ``/`` and ``files`` (URL path -> file) on ``host``; the page POSTs its
    result to ``/report``, which resolves the future. The caller cleans the runner up."""
    reported: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def report(request: web.Request) -> web.Response:
        if not reported.done():
            reported.set_result(await request.json())
        return web.Response(text="ok")

    def static(path: Path) -> Any:
        return lambda _: web.FileResponse(path)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/", static(page))
    for url, path in (files or {}).items():
        app.router.add_get(url, static(path))
    app.router.add_post("/report", report)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(port), reported


async def run_page(
    chromium: str,
    url: str,
    reported: asyncio.Future[dict[str, Any]],
    timeout: float,
    hosts: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Open ``url`` in headless Chromium until the page reports (or ``timeout`` s); ``hosts``:
    page origins other than 127.0.0.1 (:func:`chromium_flags`)."""
    # its own process group: the browser's helpers (zygote, renderers) end with it
    with tempfile.TemporaryDirectory(
        prefix="mediagw-chromium-", ignore_cleanup_errors=True
    ) as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, *chromium_flags(*hosts), f"--user-data-dir={profile}", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(asyncio.shield(reported), timeout)
        except TimeoutError:
            return {"errors": [f"no report from the page within {timeout:g} s"]}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
