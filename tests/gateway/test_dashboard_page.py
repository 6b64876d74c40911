"""``/dashboard`` serves its page and assets from the package: only the listed files, the page
with a CSP that loads nothing from elsewhere, and a clear 404 when hls.js was not installed."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from mediatools import serve_app

from mediagw.api import dashboard
from mediagw.api.dashboard import add_dashboard_page


async def test_page_and_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web.Application()
    add_dashboard_page(app)
    missing = tmp_path / "hls.min.js"
    monkeypatch.setitem(dashboard.ASSETS, "hls.min.js", (missing, "text/javascript"))
    async with serve_app(app) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "/dashboard") as resp:
            page = await resp.text()
            assert resp.status == 200 and resp.content_type == "text/html"
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert 'src="/dashboard/dashboard.js"' in page and "http" not in page.split("<body>")[1]
        async with http.get(url + "/dashboard/dashboard.js") as resp:
            assert resp.status == 200 and resp.content_type == "text/javascript"
            assert "/api/admin/orchestrators" in await resp.text()
        for path in ("/dashboard/index.html.bak", "/dashboard/%2e%2e%2fgateway.py"):
            async with http.get(url + path) as resp:
                assert resp.status == 404, path
        async with http.get(url + "/dashboard/hls.min.js") as resp:
            assert resp.status == 404 and "make system-deps" in await resp.text()
        missing.write_text("/* hls.js */")
        async with http.get(url + "/dashboard/hls.min.js") as resp:
            assert resp.status == 200 and await resp.text() == "/* hls.js */"
