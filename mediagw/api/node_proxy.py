"""Playback from any node: a request for a stream another gateway node owns is proxied there.

    proxy = NodeProxy(hub, node_id, whep_prefixes=("/webrtc/{stream}",), read_timeout=15.0)
    proxy.install(app)                    # before the app starts, before the playback gate
    proxy.owner_lookup = leases.owner_url # stream id -> the owner node's URL, None: not another
    await proxy.start() ... await proxy.stop()

Behind a load balancer a player's requests land on any node, while a stream's playlists,
segments, LL-HLS parts and WHEP sessions live on the node its publisher is connected to. A
playback request (the HLS and LL-HLS routes, ``/stream/...`` and ``/hls/...``; the WHEP
endpoints given and their session resources) for a stream that is not live here is looked up
(``owner_lookup``); when another node owns it, the request goes there: same method, path and
query, the end-to-end headers that matter (token, content negotiation, validators, ranges), the
body of a WHEP offer (at most 64 KiB); the answer streams back as it comes (status, headers
but hop-by-hop ones). A stream live here is always served here; a stream that ended here but is
now owned by another node is served by that node (its playlists go on there).

Proxied, not redirected: behind a load balancer the nodes' own URLs are usually not reachable
by players, and a URL of the entry node stays valid when the stream moves to another node (the
next request is looked up again). The owner does what it does for any request: it checks the
playback gate with the query and headers forwarded, carries ``?jwt=`` into playlists, and
meters the bytes it serves; the entry node neither checks nor meters proxied requests again
(this middleware runs before the gate and never reaches the routes). A WHEP session's
``Location`` is the same path on every node (it holds the stream id), so its ``DELETE`` is
proxied like the offer; the media (ICE, DTLS) flows between the player and the owner, whose
ICE candidates (``-webrtcHostAddresses``) the player must reach.

Loop guard: a proxied request carries ``X-Mediagw-Proxied: <node id>``; a node never proxies
such a request again (it serves it or answers 404), so two nodes that each think the other owns
a stream answer after one hop. An owner that does not answer gets the player a quick 502 (refused)
or 504 (no answer within ``connect_timeout``, or nothing within ``read_timeout`` while
answering) with ``Retry-After: 1``; its retry is looked up again, and lands on the new owner
once the lease moved. At most ``max_inflight`` proxied requests at once (503 beyond).

Besides playback, ``stream_routes`` names other routes that must reach a stream's node (the
live AI's ``/update`` and ``/status``: its session runs where the publisher is; a WHIP session's
URL, whose ``DELETE`` ends the publish there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web
from yarl import URL

from ..httpbody import read_prefix
from ..stream.hub import StreamHub
from .http import _ID_RE, HLS_HANDLERS, Handler, _error
from .llhls_http import LL_HANDLERS

__all__ = ["PROXIED_HEADER", "NodeProxy", "OwnerLookup"]

log = logging.getLogger("mediagw.node_proxy")

OwnerLookup = Callable[[str], Awaitable[str | None]]
PROXIED_HEADER = "X-Mediagw-Proxied"
MAX_BODY = 64 * 1024  # a WHEP offer or a trickle ICE fragment (webrtc's own limit: 64 KiB)
AI_OUTPUT_SUFFIX = "-out"  # the live AI output of stream S plays as S-out, on S's node
_PLAYBACK = HLS_HANDLERS | LL_HANDLERS
# end-to-end request headers worth forwarding: the token, content negotiation, validators
_FORWARD = (
    "Authorization", "Livepeer-Jwt", "Content-Type", "Accept", "Accept-Encoding", "Range",
    "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "Origin", "User-Agent",
)  # fmt: skip
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", PROXIED_HEADER,
    )
)  # fmt: skip
_CHUNK = 64 * 1024


class NodeProxy:
    def __init__(
        self,
        hub: StreamHub,
        node_id: str,
        *,
        whep_prefixes: Iterable[str] = (),
        stream_routes: Iterable[str] = (),
        owner_lookup: OwnerLookup | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 15.0,
        max_inflight: int = 512,
    ) -> None:
        self.hub = hub
        self.node_id = node_id
        self.owner_lookup = owner_lookup
        self._whep = {p.rstrip("/") for p in whep_prefixes}
        self._whep |= {f"{p}/{{session_id}}" for p in self._whep}
        # other routes of a stream's node, by their template: the live AI's /update, /status
        self._whep |= set(stream_routes)
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._slots = max_inflight
        self._inflight = 0
        self._http: aiohttp.ClientSession | None = None
        self.proxied = 0  # requests answered by another node
        self.failed = 0  # of them, the owner did not answer

    def install(self, app: web.Application) -> None:
        """Add the proxy to ``app``'s middlewares: inside CORS (its errors carry CORS), before
        the playback gate (the owner checks a proxied request, not this node)."""
        app.middlewares.append(self.middleware)

    async def start(self) -> None:
        if self._http is None:
            connector = aiohttp.TCPConnector(limit=self._slots)
            self._http = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=False
            )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def stream_of(self, request: web.Request) -> str | None:
        """The stream a playback request is for (None: not a playback request)."""
        route = request.match_info.route
        if route.handler in _PLAYBACK:
            return request.match_info.get("id")
        resource = route.resource
        if resource is not None and resource.canonical in self._whep:
            return request.match_info.get("stream")
        return None

    def _local(self, stream_id: str) -> bool:
        for sid in _candidates(stream_id):
            stream = self.hub.get(sid)
            if stream is not None and stream.live:
                return True
        return False

    async def _owner(self, stream_id: str) -> str | None:
        lookup = self.owner_lookup
        if lookup is None:
            return None
        for sid in _candidates(stream_id):
            try:
                url = await lookup(sid)
            except Exception:  # a lookup should say None when it cannot tell: served here
                log.exception("playback proxy: owner lookup failed", extra={"stream": sid})
                return None
            if url:
                return url
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            self.owner_lookup is None
            or request.method == "OPTIONS"  # a preflight: the same answer on every node
            or PROXIED_HEADER in request.headers  # the loop guard: served here, or 404
        ):
            return await handler(request)
        stream_id = self.stream_of(request)
        if stream_id is None or not _ID_RE.match(stream_id) or self._local(stream_id):
            return await handler(request)
        owner = await self._owner(stream_id)
        if owner is None:
            return await handler(request)
        return await self._forward(request, owner, stream_id)

    async def _forward(
        self, request: web.Request, owner: str, stream_id: str
    ) -> web.StreamResponse:
        if self._http is None:
            return _unavailable(503, "the playback proxy is not running (the node is stopping)")
        if self._inflight >= self._slots:
            return _unavailable(503, f"this node proxies {self._slots} requests already")
        body: bytes | None = None
        if request.can_read_body:
            if request.content_length is not None and request.content_length > MAX_BODY:
                return _error(413, f"request body larger than {MAX_BODY} bytes")
            body = await read_prefix(request.content, MAX_BODY + 1)
            if len(body) > MAX_BODY:
                return _error(413, f"request body larger than {MAX_BODY} bytes")
        headers = {h: request.headers[h] for h in _FORWARD if h in request.headers}
        headers.setdefault("Accept-Encoding", "identity")  # passed through as it comes
        headers[PROXIED_HEADER] = self.node_id
        forwarded = request.headers.get("X-Forwarded-For")
        remote = request.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded}, {remote}" if forwarded else remote
        base = owner.rstrip("/")
        url = URL(base + request.raw_path, encoded=True)
        self._inflight += 1
        self.proxied += 1
        try:
            async with self._http.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                return await _relay(request, upstream, base)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return self._failed(504, owner, stream_id, "did not answer in time")
        except aiohttp.ClientConnectionError as exc:
            if request.transport is None or request.transport.is_closing():
                raise  # our player went away: nothing to answer
            return self._failed(502, owner, stream_id, f"is unreachable ({exc.__class__.__name__})")
        finally:
            self._inflight -= 1

    def _failed(self, status: int, owner: str, stream_id: str, what: str) -> web.Response:
        self.failed += 1
        log.warning(
            "playback proxy: owner node failed",
            extra={"stream": stream_id, "owner": owner, "status": status},
        )
        return _unavailable(
            status,
            f"stream {stream_id!r} is served by node {owner}, which {what}; "
            "retry in a second (the stream moves to another node when its owner is gone)",
        )


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, base: str
) -> web.StreamResponse:
    resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for name, value in upstream.headers.items():
        if name.lower() in _HOP_BY_HOP:
            continue
        if name.lower() == "location" and value.startswith(base):  # stays on this node's URL
            resp.headers.add(name, value[len(base) :] or "/")
        else:
            resp.headers.add(name, value)
    await resp.prepare(request)
    try:
        async for chunk in upstream.content.iter_chunked(_CHUNK):
            await resp.write(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:  # the owner stopped mid-answer
        log.warning("playback proxy: owner node failed mid-answer", extra={"error": repr(exc)})
        resp.force_close()  # the player sees a short body, then a closed connection
        return resp
    await resp.write_eof()
    return resp


def _candidates(stream_id: str) -> tuple[str, ...]:
    """The stream ids that may hold ``stream_id``: itself, and for a live AI output
    (``S-out``) its stream ``S`` (the output is made on the node its publisher is on)."""
    if stream_id.endswith(AI_OUTPUT_SUFFIX) and len(stream_id) > len(AI_OUTPUT_SUFFIX):
        return (stream_id, stream_id[: -len(AI_OUTPUT_SUFFIX)])
    return (stream_id,)


def _unavailable(status: int, message: str) -> web.Response:
    resp = _error(status, message)
    resp.headers["Retry-After"] = "1"
    resp.headers["Cache-Control"] = "no-store"
    return resp
