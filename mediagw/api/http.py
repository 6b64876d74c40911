"""Public HTTP routes: HLS playback at go-livepeer's paths, health, and the list of streams.

    GET /stream/{id}.m3u8                   multivariant playlist
    GET /stream/{id}/{rendition}.m3u8       media playlist
    GET /stream/{id}/{rendition}/{seq}.ts   segment
    GET /hls/{id}/index.m3u8                Livepeer Studio's playback path: the multivariant,
    GET /hls/{id}/{rendition}.m3u8          whose URIs stay under /hls/{id}/
    GET /hls/{id}/{rendition}/{seq}.ts
    GET /healthz                            liveness
    GET /streams                            JSON list of streams (live and recently ended);
                                            on an exposed address: an admin API key

A playlist request for a stream that is live but has no segment yet waits for the first one
(up to ``first_segment_wait`` seconds), so a player started with the publisher plays at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..publish.hls import SOURCE, HLSPublisher
from ..stream.hub import StreamHub
from ..usage import StreamUsage

__all__ = ["HLS_HANDLERS", "PLAYLIST_TYPE", "build_app"]

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
_ID_RE = re.compile(rf"^{_NAME}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HUB_KEY = web.AppKey("hub", StreamHub)
HLS_KEY = web.AppKey("hls", HLSPublisher)
USAGE_KEY = web.AppKey("usage", StreamUsage)
WAIT_KEY = web.AppKey("first_segment_wait", float)
# (stream id, bytes, segment seconds) of each HLS segment served: metrics, delivery usage
Served = Callable[[str, int, float], None]
SERVED_KEY: web.AppKey[Served | None] = web.AppKey("on_served")
STARTED_KEY = web.AppKey("started", float)
# the request -> None (let in) or (status, message) of the refusal (``start_key``)
KeyCheck = Callable[[web.Request], Awaitable[tuple[int, str] | None]]
STREAMS_KEY: web.AppKey[KeyCheck | None] = web.AppKey("streams_key")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# Cross-origin browser apps (RFC 9725): WHIP/WHEP clients read the session URL and
# validators, and end the session with DELETE (trickle ICE would be PATCH with If-Match). The
# Fetch spec's "*" in Allow-Headers does not cover Authorization, so it is listed by name.
CORS_ALLOW_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "If-Match", "Livepeer-Jwt", "*")
CORS_EXPOSE_HEADERS = (
    "Location", "ETag", "Link", "Accept-Patch", "Accept-Post", "Content-Length", "Content-Type",
)  # fmt: skip


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS on every answer; ``OPTIONS`` on a known path is a preflight (204), on any other
    path 404, like every method there. Routes that answer ``OPTIONS`` themselves (WHIP, WHEP)
    keep their answer; their CORS headers are merged with these."""
    try:
        if request.method == "OPTIONS":
            resp = await _options(request, handler)
        else:
            resp = await handler(request)
    except web.HTTPException as exc:
        text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else ""
        if text and exc.content_type == "application/json":  # already a JSON error: kept
            resp = web.Response(status=exc.status, text=text, content_type=exc.content_type)
        else:
            resp = _error(exc.status, text or exc.reason)
        for name in ("WWW-Authenticate", "Retry-After"):  # what the client must act on
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        if isinstance(exc, web.HTTPMethodNotAllowed):
            resp.headers["Allow"] = _allow(exc)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    _merge(resp, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS)
    _merge(resp, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
    _merge(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)
    return resp


async def _options(request: web.Request, handler: Handler) -> web.StreamResponse:
    exc = request.match_info.http_exception
    if exc is None:  # the route answers OPTIONS itself
        return await handler(request)
    if isinstance(exc, web.HTTPMethodNotAllowed):  # a known path: answer the preflight
        return web.Response(status=204, headers={"Allow": _allow(exc)})
    raise exc  # unknown path: 404


def _allow(exc: web.HTTPMethodNotAllowed) -> str:
    return ", ".join(sorted({*exc.allowed_methods, "OPTIONS"}))


def _merge(resp: web.StreamResponse, name: str, values: tuple[str, ...]) -> None:
    """Set a comma-separated list header to the union of its current items and ``values``."""
    items = [v.strip() for v in resp.headers.get(name, "").split(",") if v.strip()]
    seen = {v.lower() for v in items}
    items += [v for v in values if v.lower() not in seen]
    resp.headers[name] = ", ".join(items)


def _stream_id(request: web.Request) -> str:
    sid = request.match_info["id"]
    if not _ID_RE.match(sid):
        raise web.HTTPNotFound(reason=f"no stream {sid[:64]!r}")
    return sid


async def multivariant(request: web.Request) -> web.StreamResponse:
    return await _multivariant(request, None)


async def studio_multivariant(request: web.Request) -> web.StreamResponse:
    """``/hls/{id}/index.m3u8``: variant URIs relative to it (``{rendition}.m3u8``)."""
    return await _multivariant(request, "")


async def _multivariant(request: web.Request, uri_prefix: str | None) -> web.StreamResponse:
    sid = _stream_id(request)
    hls = request.app[HLS_KEY]
    text = hls.multivariant(sid, uri_prefix=uri_prefix)
    if text is None and await hls.wait_ready(sid, SOURCE, request.app[WAIT_KEY]):
        text = hls.multivariant(sid, uri_prefix=uri_prefix)
    if text is None:
        return _error(404, f"stream {sid!r} is not live (publish it, or check the id)")
    return _playlist(text)


async def media_playlist(request: web.Request) -> web.StreamResponse:
    sid = _stream_id(request)
    rendition = request.match_info["rendition"]
    hls = request.app[HLS_KEY]
    text = hls.media_playlist(sid, rendition)
    if text is None and await hls.wait_ready(sid, rendition, request.app[WAIT_KEY]):
        text = hls.media_playlist(sid, rendition)
    if text is None:
        return _error(404, f"no rendition {rendition!r} for stream {sid!r}")
    return _playlist(text)


def _playlist(text: str) -> web.Response:
    return web.Response(
        text=text,
        content_type=PLAYLIST_TYPE,
        headers={"Cache-Control": "no-cache"},
    )


async def segment(request: web.Request) -> web.StreamResponse:
    sid = _stream_id(request)
    rendition = request.match_info["rendition"]
    seq = int(request.match_info["seq"])
    hls = request.app[HLS_KEY]
    data = hls.segment(sid, rendition, seq)
    if data is None:
        return _error(404, f"segment {seq} of {sid}/{rendition} is not (or no longer) available")
    on_served = request.app[SERVED_KEY]
    if on_served is not None:  # egress metrics and delivery usage: counted in memory
        on_served(sid, len(data), hls.segment_duration(sid, rendition, seq))
    return web.Response(
        body=data,
        content_type=SEGMENT_TYPE,
        headers={"Cache-Control": "public, max-age=3600, immutable"},
    )


# the routes that serve a stream's HLS (a playback gate applies to these)
HLS_HANDLERS: frozenset[Handler] = frozenset(
    {multivariant, studio_multivariant, media_playlist, segment}
)


async def healthz(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    return web.json_response(
        {
            "status": "ok",
            "live_streams": hub.live_count(),
            "uptime_seconds": round(time.monotonic() - request.app[STARTED_KEY], 3),
        }
    )


async def streams(request: web.Request) -> web.StreamResponse:
    check = request.app[STREAMS_KEY]
    refusal = None if check is None else await check(request)
    if refusal is not None:
        status, message = refusal
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return web.json_response({"error": message}, status=status, headers=headers)
    hub, usage = request.app[HUB_KEY], request.app[USAGE_KEY]
    only_live = request.query.get("live") in ("1", "true")
    items = []
    for stream in hub.streams():
        if only_live and not stream.live:
            continue
        item = stream.describe()
        totals = usage.of(stream.id)  # usage on the network: what was transcoded and paid
        item["transcode_pixels"] = totals.transcode_pixels
        item["tickets_sent"] = totals.tickets_sent
        item["ev_sent_wei"] = str(round(totals.ev_sent_wei))
        item["playback_url"] = f"/stream/{stream.id}.m3u8"
        items.append(item)
    return web.json_response({"streams": items})


def build_app(
    hub: StreamHub,
    hls: HLSPublisher,
    *,
    usage: StreamUsage | None = None,
    first_segment_wait: float = 5.0,
    on_served: Served | None = None,
    streams_key: KeyCheck | None = None,
) -> web.Application:
    app = web.Application(middlewares=[cors], client_max_size=1024 * 1024)
    app[HUB_KEY] = hub
    app[USAGE_KEY] = usage or StreamUsage()
    app[HLS_KEY] = hls
    app[WAIT_KEY] = first_segment_wait
    app[SERVED_KEY] = on_served
    app[STREAMS_KEY] = streams_key  # None: /streams is open
    app[STARTED_KEY] = time.monotonic()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/streams", streams)
    app.router.add_get("/stream/{id}.m3u8", multivariant)
    app.router.add_get("/stream/{id}/{rendition}.m3u8", media_playlist)
    app.router.add_get(r"/stream/{id}/{rendition}/{seq:\d{1,12}}.ts", segment)
    app.router.add_get("/hls/{id}/index.m3u8", studio_multivariant)  # before {rendition}.m3u8
    app.router.add_get("/hls/{id}/{rendition}.m3u8", media_playlist)
    app.router.add_get(r"/hls/{id}/{rendition}/{seq:\d{1,12}}.ts", segment)
    return app
