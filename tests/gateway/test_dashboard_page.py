"""``/dashboard`` serves its page and assets from the package: only the listed files, the page
with a CSP that loads nothing from elsewhere, and a clear 404 when hls.js was not installed."""

from __future__ import annotations

import logging
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


async def test_files_are_sent_once_behind_the_send_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by ``mediagw bench fuzzlive``: aiohttp prepares a handler's answer again after the
    middlewares, and ``FileResponse.prepare`` sent its file again after ``send_deadline`` had
    sent it: every file answer (dashboard, recordings) ended in an "Unhandled exception" (an
    AssertionError, or "Cannot change the response status code" on a 206 or 412)."""
    from mediagw.api.guard import client_errors, send_deadline

    caplog.set_level(logging.DEBUG, logger="aiohttp")
    app = web.Application(middlewares=[send_deadline, client_errors])
    add_dashboard_page(app)
    whole = (dashboard.STATIC / "dashboard.js").read_bytes()
    async with serve_app(app) as url, aiohttp.ClientSession() as http:
        for headers, status, body in (
            ({}, 200, whole),
            ({"Range": "bytes=0-9"}, 206, whole[:10]),
            ({"If-Match": '"nope"'}, 412, b""),
        ):
            async with http.get(url + "/dashboard/dashboard.js", headers=headers) as resp:
                assert (resp.status, await resp.read()) == (status, body), headers
        async with http.get(url + "/dashboard") as resp:
            assert resp.status == 200 and b"<body>" in await resp.read()
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failed, [(r.getMessage(), r.exc_info) for r in failed]
