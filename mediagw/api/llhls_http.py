"""LL-HLS routes (``publish/llhls.py``), beside the HLS ones and gated like them.

    GET /stream/{id}/ll/index.m3u8                  multivariant (one variant: source.m3u8)
    GET /stream/{id}/ll/{rendition}.m3u8            LL media playlist; ?_HLS_msn=M[&_HLS_part=N]
    GET /stream/{id}/ll/{rendition}/init-{n}.mp4    init segment (EXT-X-MAP)
    GET /stream/{id}/ll/{rendition}/{msn}.mp4       whole segment (its parts joined)
    GET /stream/{id}/ll/{rendition}/{msn}.{part}.mp4  part
    GET /hls/{id}/ll/...                            the same under Studio's playback path

Blocking reload (rfc8216bis 6.2.5.2): a playlist request with ``_HLS_msn`` is held until the
playlist holds that segment (with ``_HLS_part``: that part) or a later one, then answered; 400
for ``_HLS_part`` alone, for a non-number, or for a segment or part too far ahead; 503 when it
does not come within three target durations. A part or segment not cut yet but close (the
preload hint's part, or up to three parts further) is held the same way, then served; 404
once it cannot come (its segment ended sooner). A stream holds at most ``max_waiters``
requests at once; more get 503 with ``Retry-After: 1``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ..clock import SYSTEM
from ..publish.hls import SOURCE
from ..publish.llhls import LLHLSPublisher, LLRendition, TooManyWaiters
from ..publish.llondemand import LLOnDemand
from ..publish.llplaylist import render_ll_multivariant
from ..stream.hub import StreamHub
from .http import SERVED_KEY, WAIT_KEY, Handler, _error, _playlist, _stream_id

__all__ = ["LL_HANDLERS", "LL_KEY", "add_llhls_routes", "install_llhls"]

MP4_TYPE = "video/mp4"
LL_KEY = web.AppKey("llhls", LLHLSPublisher)
_MAX_NUMBER = 10**12


def _number(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) >= _MAX_NUMBER:
        raise web.HTTPBadRequest(text=f"{name} must be a decimal integer, got {text[:32]!r}")
    return int(text)


def _busy(exc: TooManyWaiters) -> web.Response:
    resp = _error(503, f"{exc}; retry in a second")
    resp.headers["Retry-After"] = "1"
    return resp


async def multivariant(request: web.Request) -> web.StreamResponse:
    sid = _stream_id(request)
    ll = request.app[LL_KEY]
    try:
        rend = await ll.wait(sid, SOURCE, _listed, request.app[WAIT_KEY])
    except TooManyWaiters as exc:
        return _busy(exc)
    if rend is None:
        return _error(404, f"stream {sid!r} is not live (publish it, or check the id)")
    text = render_ll_multivariant(f"{SOURCE}.m3u8", rend.peak_bps, rend.codecs, rend.resolution)
    return _playlist(text)


def _listed(rend: LLRendition) -> bool:
    return rend.playlist.last_part() is not None


async def media_playlist(request: web.Request) -> web.StreamResponse:
    sid = _stream_id(request)
    name = request.match_info["rendition"]
    msn, part = _number(request, "_HLS_msn"), _number(request, "_HLS_part")
    if part is not None and msn is None:
        return _error(400, "_HLS_part needs _HLS_msn (rfc8216bis 6.2.5.2)")
    ll = request.app[LL_KEY]
    try:
        rend = await ll.wait(sid, name, _listed, request.app[WAIT_KEY])
        if rend is None:
            return _error(404, f"no LL-HLS rendition {name!r} for stream {sid!r}")
        if msn is not None and not rend.playlist.ended:  # ended: answered at once
            if rend.playlist.too_far(msn, part):
                return _error(400, f"_HLS_msn={msn} _HLS_part={part} is too far ahead of live")
            timeout = ll.hold_timeout(rend)
            rend = await ll.wait(sid, name, lambda r: r.playlist.reached(msn, part), timeout)
            if rend is None:
                return _error(503, f"segment {msn} part {part} did not come in {timeout:.0f} s")
    except TooManyWaiters as exc:
        return _busy(exc)
    return _playlist(rend.playlist.render())


async def init_segment(request: web.Request) -> web.StreamResponse:
    sid = _stream_id(request)
    rend = request.app[LL_KEY].rendition(sid, request.match_info["rendition"])
    data = rend.inits.get(int(request.match_info["n"])) if rend else None
    if data is None:
        return _error(404, f"init segment {request.match_info['n']} of {sid} is not available")
    return _media(data)


async def segment(request: web.Request) -> web.StreamResponse:
    msn = int(request.match_info["msn"])
    return await _serve(request, msn, None)


async def part(request: web.Request) -> web.StreamResponse:
    msn, index = int(request.match_info["msn"]), int(request.match_info["part"])
    return await _serve(request, msn, index)


async def _serve(request: web.Request, msn: int, index: int | None) -> web.StreamResponse:
    sid = _stream_id(request)
    name = request.match_info["rendition"]
    ll = request.app[LL_KEY]
    rend = ll.rendition(sid, name)
    data = _media_of(rend, msn, index)
    if data is None and rend is not None and _coming(rend, msn, index):
        try:  # held until it is cut, or until it cannot come
            await ll.wait(sid, name, lambda r: not _coming(r, msn, index), ll.hold_timeout(rend))
        except TooManyWaiters as exc:
            return _busy(exc)
        data = _media_of(rend, msn, index)
    what = f"segment {msn}" if index is None else f"part {msn}.{index}"
    if data is None or rend is None:
        return _error(404, f"{what} of {sid}/{name} is not (or no longer) available")
    on_served: Callable[[str, int, float], None] | None = request.app[SERVED_KEY]
    if on_served is not None:
        on_served(sid, len(data), rend.duration_of(msn, index))
    return _media(data)


def _media_of(rend: LLRendition | None, msn: int, index: int | None) -> bytes | None:
    if rend is None:
        return None
    return rend.segments.get(msn) if index is None else rend.parts.get((msn, index))


def _coming(rend: LLRendition, msn: int, index: int | None) -> bool:
    """Not there yet, but soon: worth holding the request for."""
    if rend.gone or _media_of(rend, msn, index) is not None:
        return False
    if index is None:  # the segment being cut
        return not rend.playlist.ended and rend.msn == msn
    return LLHLSPublisher.part_ahead(rend, msn, index)


def _media(data: bytes) -> web.Response:
    return web.Response(
        body=data,
        content_type=MP4_TYPE,
        headers={"Cache-Control": "public, max-age=3600, immutable"},
    )


LL_HANDLERS: frozenset[Handler] = frozenset(
    {multivariant, media_playlist, init_segment, segment, part}
)


def install_llhls(
    hub: StreamHub,
    app: web.Application,
    part_target: float,
    *,
    target_duration: float = 2.0,
    window: int = 6,
    wall: Callable[[], float] = SYSTEM.wall,
) -> LLHLSPublisher:
    """LL-HLS for the streams of ``hub`` a player asks for (``LLOnDemand``: their progress
    stream), served on ``app``; other streams (the live AI output) ``feed()`` the publisher
    returned."""
    llhls = LLHLSPublisher(part_target, target_duration=target_duration, window=window, wall=wall)
    gate = LLOnDemand(llhls, hub.want_progress, keep=llhls.window + llhls.grace)
    llhls.set_demand(gate.demand)
    hub.add_progress_listener(gate.on_progress)
    hub.add_listener(gate)
    add_llhls_routes(app, llhls)
    return llhls


def add_llhls_routes(app: web.Application, llhls: LLHLSPublisher) -> None:
    """The LL-HLS routes on an app built by ``http.build_app`` (its wait and served hooks)."""
    app[LL_KEY] = llhls
    for root in ("/stream/{id}/ll", "/hls/{id}/ll"):
        app.router.add_get(f"{root}/index.m3u8", multivariant)
        app.router.add_get(f"{root}/{{rendition}}.m3u8", media_playlist)
        base = f"{root}/{{rendition}}"
        app.router.add_get(rf"{base}/init-{{n:\d{{1,9}}}}.mp4", init_segment)
        app.router.add_get(rf"{base}/{{msn:\d{{1,12}}}}.mp4", segment)
        app.router.add_get(rf"{base}/{{msn:\d{{1,12}}}}.{{part:\d{{1,6}}}}.mp4", part)
