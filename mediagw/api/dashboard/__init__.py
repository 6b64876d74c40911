"""``GET /dashboard``: the operator dashboard, one page served from the package (no CDN).

    GET /dashboard                 the page (public: it holds no data)
    GET /dashboard/{asset}         its script, style sheet and hls.js

The page asks for an admin API key, keeps it in ``sessionStorage`` and calls the admin JSON
routes with ``Authorization: Bearer`` (``api/studio/dashboard.py``, ``/api/audit``,
``/api/data/usage/query``). hls.js is not in the repository: ``make`` (``system-deps``) fetches
it from npm (``package.json`` here) and copies ``hls.min.js`` into ``static/vendor/``; without
it the page says so and plays with the browser's own HLS where there is one.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..guard import FileAnswer

__all__ = ["ASSETS", "HLS_JS", "add_dashboard_page"]

STATIC = Path(__file__).resolve().parent / "static"
HLS_JS = STATIC / "vendor" / "hls.min.js"
# the only files served: name -> (path, content type)
ASSETS: dict[str, tuple[Path, str]] = {
    "dashboard.js": (STATIC / "dashboard.js", "text/javascript"),
    "dashboard.css": (STATIC / "dashboard.css", "text/css"),
    "hls.min.js": (HLS_JS, "text/javascript"),
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# the page loads nothing from elsewhere; media (hls.js) comes from blob: URLs
CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:;"
    " style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


async def _page(request: web.Request) -> web.StreamResponse:
    return FileAnswer(
        STATIC / "index.html",
        headers={**HEADERS, "Content-Type": "text/html; charset=utf-8",
                 "Content-Security-Policy": CSP},
    )  # fmt: skip


async def _asset(request: web.Request) -> web.StreamResponse:
    found = ASSETS.get(request.match_info["asset"])
    if found is None:
        raise web.HTTPNotFound(text="no such dashboard asset")
    path, ctype = found
    if not path.is_file():  # hls.js when the set-up step was skipped
        raise web.HTTPNotFound(
            text=f"{path.name} is not installed: run `make system-deps` (npm) in the checkout"
        )
    return FileAnswer(path, headers={**HEADERS, "Content-Type": ctype})


def add_dashboard_page(app: web.Application) -> None:
    app.router.add_get("/dashboard", _page)
    app.router.add_get("/dashboard/{asset}", _asset)
