"""The playback gate: HLS (and, through ``whep_authorize``, WHEP) of token-gated streams.

    add_playback_gate(app, PlaybackAccess(store, clock=clock))   # before the app starts

A middleware in front of the HLS routes (``http.HLS_HANDLERS``: ``/stream/...`` and Studio's
``/hls/{playbackId}/...``; their LL-HLS ``.../ll/...``: ``llhls_http.LL_HANDLERS``): the
manifest id of a store stream is its playback id, so it asks
``PlaybackAccess.check`` about that id with the token of the request, the ``Livepeer-Jwt``
header or else the ``jwt`` query parameter. A public stream passes untouched (cached lookups,
no store call per request). A refusal is ``{"errors": ["..."]}`` with 401 or 403, before the
route runs: nobody learns from it whether the stream is live.

Carrying the token: hls.js given ``index.m3u8?jwt=T`` fetches the URIs in the playlists as they
are, so a playlist fetched with ``?jwt=`` gets ``?jwt=T`` appended to each of its URIs (variant
playlists, segments, ``URI="..."`` attributes), rewritten here at the edge: the publisher stays
free of auth. The token carried is the one presented, not a short-lived one minted from it:
a minted token would need a secret shared by every gateway behind a load balancer, and buys
nothing here, since a token is verified once and then served from a cache until it expires
(``PlaybackAccess``); disabling its key still takes effect within the key cache's seconds, and
the expiry chosen by whoever signed it stays the one that counts (a player needs a fresh token,
as with Studio, once it passes). A token sent as the header is not copied into URLs: such a
client keeps sending the header. Answers of a gated stream are ``Cache-Control: private``: a
shared cache must not hand them to a viewer without a token.

The live AI output of a stream (``{playbackId}-out``, played over HLS and WHEP) is gated by the
policy of its stream: playback ids hold no dash, so the suffix is unambiguous.

While the store is unreachable the gate decides with what ``PlaybackAccess`` last knew; a stream
it knows nothing of is answered 503 with ``Retry-After`` (never played unchecked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from ..errors import AccessDenied, StoreError
from ..platform.access import Grant, PlaybackAccess
from .http import HLS_HANDLERS, PLAYLIST_TYPE
from .llhls_http import LL_HANDLERS

__all__ = [
    "ACCESS_KEY",
    "TOKEN_HEADER",
    "TOKEN_QUERY",
    "add_playback_gate",
    "carry_token",
    "playback_id_of",
    "whep_authorize",
]

TOKEN_HEADER = "Livepeer-Jwt"
TOKEN_QUERY = "jwt"
AI_OUTPUT_SUFFIX = "-out"
ACCESS_KEY = web.AppKey("playback_access", PlaybackAccess)
_URI_ATTR = re.compile(r'URI="([^"]*)"')

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_GATED = HLS_HANDLERS | LL_HANDLERS  # HLS and LL-HLS: one policy
Authorize = Callable[[web.Request], Awaitable[None]]
RETRY_AFTER = "2"  # seconds a viewer waits when the store cannot say whether it may play
UNKNOWN = "the stream's playback policy cannot be read (the store's database is unreachable): retry"


def playback_id_of(manifest_id: str) -> str:
    """The playback id whose policy gates a manifest id (its own, or its stream's for the
    live AI output ``{playbackId}-out``)."""
    if manifest_id.endswith(AI_OUTPUT_SUFFIX) and len(manifest_id) > len(AI_OUTPUT_SUFFIX):
        return manifest_id[: -len(AI_OUTPUT_SUFFIX)]
    return manifest_id


def _token(request: web.Request) -> tuple[str | None, bool]:
    """The token presented and whether it came in the query."""
    header = request.headers.get(TOKEN_HEADER)
    if header:
        return header.strip(), False
    query = request.query.get(TOKEN_QUERY)
    return (query, True) if query else (None, False)


def _refusal(exc: AccessDenied) -> web.Response:
    return web.json_response(
        {"errors": [str(exc)]}, status=exc.status, headers={"Cache-Control": "no-store"}
    )


def _unavailable() -> web.Response:
    return web.json_response(
        {"errors": [UNKNOWN]},
        status=503,
        headers={"Cache-Control": "no-store", "Retry-After": RETRY_AFTER},
    )


def carry_token(playlist: str, token: str) -> str:
    """``playlist`` with ``?jwt=<token>`` (``&jwt=`` after a query) on every URI it lists."""
    suffix = f"{TOKEN_QUERY}={quote(token, safe='')}"

    def add(uri: str) -> str:
        return f"{uri}{'&' if '?' in uri else '?'}{suffix}"

    def rewrite(line: str) -> str:
        if line.startswith("#"):
            return _URI_ATTR.sub(lambda m: f'URI="{add(m.group(1))}"', line)
        return add(line.strip()) if line.strip() else line

    return "\n".join(rewrite(line) for line in playlist.split("\n"))


async def _check(access: PlaybackAccess, manifest_id: str, token: str | None) -> Grant | None:
    return await access.check(playback_id_of(manifest_id), token)


@web.middleware
async def playback_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.handler not in _GATED or request.method == "OPTIONS":
        return await handler(request)
    token, in_query = _token(request)
    try:
        grant = await _check(request.app[ACCESS_KEY], request.match_info["id"], token)
    except AccessDenied as exc:
        return _refusal(exc)
    except StoreError:
        return _unavailable()
    resp = await handler(request)
    if grant is None:
        return resp
    if "Cache-Control" in resp.headers:
        resp.headers["Cache-Control"] = resp.headers["Cache-Control"].replace("public", "private")
    if (
        in_query
        and token is not None
        and isinstance(resp, web.Response)
        and resp.status == 200
        and resp.content_type == PLAYLIST_TYPE
        and resp.text is not None
    ):
        resp.text = carry_token(resp.text, token)
    return resp


def add_playback_gate(app: web.Application, access: PlaybackAccess) -> None:
    """Gate the HLS routes of ``app`` (built by ``http.build_app``) with ``access``. Call it
    before the app starts; the gate runs inside the CORS middleware, so refusals carry CORS."""
    app[ACCESS_KEY] = access
    app.middlewares.append(playback_gate)


def whep_authorize(
    access: PlaybackAccess, stream_of: Callable[[web.Request], str] | None = None
) -> Authorize:
    """An ``authorize`` hook for ``webrtc.add_whep_routes``: the stream played (``stream_of``,
    else ``match_info['stream']``) plays only as ``PlaybackAccess`` allows, with the token of
    the ``Livepeer-Jwt`` header or ``?jwt=``. A refusal raises 401/403 with ``{"errors"}``."""

    async def authorize(request: web.Request) -> None:
        stream = stream_of(request) if stream_of is not None else request.match_info["stream"]
        try:
            await _check(access, stream, _token(request)[0])
        except AccessDenied as exc:
            error = web.HTTPUnauthorized if exc.status == 401 else web.HTTPForbidden
            raise error(
                text=json.dumps({"errors": [str(exc)]}),
                content_type="application/json",
                headers={"Cache-Control": "no-store"},
            ) from None
        except StoreError:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"errors": [UNKNOWN]}),
                content_type="application/json",
                headers={"Cache-Control": "no-store", "Retry-After": RETRY_AFTER},
            ) from None

    return authorize
