"""aiohttp routes for WHIP (RFC 9725) and WHEP, mountable under any prefix.

Endpoint ``{prefix}``: ``POST`` (``Content-Type: application/sdp``, else 415) answers 201 with the
SDP answer, ``Location: {path}/{session}``, a weak ``ETag``, one ``Link`` per ICE server URL and
``Access-Control-Expose-Headers`` (``Location``, ``ETag``, ``Link``, ``Accept-Patch`` and the hook's
headers); ``OPTIONS`` 204; any other method 405 (``HEAD`` included).
Session ``{prefix}/{session}``: ``DELETE`` ends it (200, 404 if unknown); ``PATCH`` (trickle ICE,
ICE restart) is not supported: 405 for WHIP (RFC 9725), 501 for WHEP (go-livepeer).
With ``cors_origin``, preflights allow ``POST`` on the endpoint, ``PATCH`` and ``DELETE`` on the
session (a cross-origin page then sees the real answer to ``PATCH``, not a CORS failure) and the
``Content-Type``, ``Authorization`` and ``If-Match`` request headers.
Errors: 400 malformed SDP, 413 too large, 422 unsupported media, 404 unknown stream, 503 full;
the body is a one-line text reason.

Hooks: ``authorize(request)`` runs before the offer is parsed (raise an ``aiohttp.web``
HTTP exception to refuse); ``on_session(request, session)`` runs after a session exists and may
return extra response headers (e.g. ``Livepeer-Playback-URL``, or a ``Location`` of its own); if
it raises, the session is closed and the exception propagates. ``on_refused(request)`` (WHIP)
runs when an offer that ``authorize`` let in gets no session after all (too large, malformed,
full, the client gone): what ``authorize`` reserved can be given back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, Protocol, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from .errors import OfferError, WebRTCError
from .sdp import MAX_SDP_BYTES
from .whep import WhepEgress, WhepSession
from .whip import WhipIngest, WhipSession

SDP_TYPE = "application/sdp"
Authorize = Callable[[web.Request], Awaitable[None]]
Refused = Callable[[web.Request], None]


class _Session(Protocol):
    id: str
    etag: str

    async def close(self, reason: str = ...) -> None: ...


S = TypeVar("S", bound=_Session)
OnSession = Callable[[web.Request, S], Awaitable[Mapping[str, str] | None]]
OnWhipSession = OnSession[WhipSession]
OnWhepSession = OnSession[WhepSession]


def add_whip_routes(
    app: web.Application,
    prefix: str,
    ingest: WhipIngest,
    on_session: OnWhipSession | None = None,
    *,
    authorize: Authorize | None = None,
    on_refused: Refused | None = None,
    cors_origin: str | None = None,
) -> None:
    """Mount WHIP at ``prefix`` (may hold route variables, e.g. ``/live/{stream}/whip``)."""

    async def offer(request: web.Request, sdp: str) -> tuple[str, WhipSession]:
        answer, session_id = await ingest.offer(sdp)
        return answer, ingest.get(session_id)

    _Routes(
        prefix=prefix,
        offer=offer,
        lookup=ingest.get,
        on_session=on_session,
        authorize=authorize,
        on_refused=on_refused,
        cors_origin=cors_origin,
        link_values=ingest.config.ice.link_header_values(),
        patch_status=405,
    ).mount(app)


def add_whep_routes(
    app: web.Application,
    prefix: str,
    egress: WhepEgress,
    on_session: OnWhepSession | None = None,
    *,
    stream_of: Callable[[web.Request], str] | None = None,
    authorize: Authorize | None = None,
    cors_origin: str | None = None,
) -> None:
    """Mount WHEP at ``prefix``; the stream is ``match_info['stream']`` unless ``stream_of``."""

    def default_stream(request: web.Request) -> str:
        return request.match_info.get("stream", "")

    pick = stream_of or default_stream

    async def offer(request: web.Request, sdp: str) -> tuple[str, WhepSession]:
        answer, session_id = await egress.offer(pick(request), sdp)
        return answer, egress.get(session_id)

    _Routes(
        prefix=prefix,
        offer=offer,
        lookup=egress.get,
        on_session=on_session,
        authorize=authorize,
        cors_origin=cors_origin,
        link_values=egress.config.ice.link_header_values(),
        patch_status=501,
    ).mount(app)


class _Routes(Generic[S]):
    def __init__(
        self,
        *,
        prefix: str,
        offer: Callable[[web.Request, str], Awaitable[tuple[str, S]]],
        lookup: Callable[[str], S],
        on_session: OnSession[S] | None,
        authorize: Authorize | None,
        cors_origin: str | None,
        link_values: list[str],
        patch_status: int,
        on_refused: Refused | None = None,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.offer = offer
        self.lookup = lookup
        self.on_session = on_session
        self.authorize = authorize
        self.on_refused = on_refused
        self.cors_origin = cors_origin
        self.link_values = link_values
        self.patch_status = patch_status

    def mount(self, app: web.Application) -> None:
        app.router.add_route("*", self.prefix, self.endpoint)
        app.router.add_route("*", self.prefix + "/{session_id}", self.resource)

    def _headers(self, **extra: str) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        if self.cors_origin is not None:
            headers["Access-Control-Allow-Origin"] = self.cors_origin
        for key, value in extra.items():
            headers[key.replace("_", "-")] = value
        return headers

    def _error(self, status: int, reason: str, **extra: str) -> web.Response:
        return web.Response(status=status, text=reason + "\n", headers=self._headers(**extra))

    def _preflight(self, allow: str, cors_methods: str) -> web.Response:
        headers = self._headers(Allow=allow, Accept_Post=SDP_TYPE)
        if self.cors_origin is not None:
            headers["Access-Control-Allow-Methods"] = cors_methods
            headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, If-Match"
        for value in self.link_values:
            headers.add("Link", value)
        return web.Response(status=204, headers=headers)

    async def endpoint(self, request: web.Request) -> web.StreamResponse:
        allow = "OPTIONS, POST"
        if request.method == "OPTIONS":
            return self._preflight(allow, allow)
        if request.method != "POST":
            return self._error(405, f"method {request.method} not allowed", Allow=allow)
        if request.content_type != SDP_TYPE:
            return self._error(415, f"Content-Type must be {SDP_TYPE}")
        if self.authorize is not None:
            await self.authorize(request)
        accepted: list[S] = []  # the session, once on_session took it
        try:
            return await self._offer(request, accepted)
        finally:
            if not accepted and self.on_refused is not None:
                self.on_refused(request)

    async def _offer(self, request: web.Request, accepted: list[S]) -> web.Response:
        body = await _read_limited(request, MAX_SDP_BYTES)
        if body is None:
            return self._error(413, f"SDP offer larger than {MAX_SDP_BYTES} bytes")
        try:
            answer, session = await self.offer(request, body.decode("utf-8"))
        except UnicodeDecodeError:
            return self._error(400, "SDP offer is not UTF-8")
        except OfferError as exc:
            return self._error(exc.http_status, str(exc))
        except WebRTCError as exc:
            extra = {"Retry_After": "5"} if exc.http_status == 503 else {}
            return self._error(exc.http_status, str(exc), **extra)
        extra_headers: Mapping[str, str] | None = None
        if self.on_session is not None:
            try:
                extra_headers = await self.on_session(request, session)
            except BaseException:
                await session.close("refused by the application")
                raise
        accepted.append(session)
        headers = self._headers(
            Location=f"{request.path.rstrip('/')}/{session.id}", ETag=session.etag
        )
        for value in self.link_values:
            headers.add("Link", value)
        exposed = ["Location", "ETag", "Link", "Accept-Patch"]
        for key, value in (extra_headers or {}).items():  # may replace Location
            headers[key] = value
            if key not in exposed:
                exposed.append(key)
        headers["Access-Control-Expose-Headers"] = ", ".join(exposed)
        return web.Response(
            status=201, body=answer.encode(), content_type=SDP_TYPE, headers=headers
        )

    async def resource(self, request: web.Request) -> web.StreamResponse:
        allow = "OPTIONS, DELETE"
        session_id = request.match_info["session_id"]
        if request.method == "OPTIONS":
            return self._preflight(allow, "OPTIONS, PATCH, DELETE")
        if request.method == "PATCH":
            return self._error(
                self.patch_status, "trickle ICE and ICE restarts are not supported", Allow=allow
            )
        if request.method != "DELETE":
            return self._error(405, f"method {request.method} not allowed", Allow=allow)
        try:
            session = self.lookup(session_id)
        except WebRTCError as exc:
            return self._error(exc.http_status, str(exc))
        await session.close("deleted by the client")
        return web.Response(status=200, headers=self._headers())


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None if it exceeds ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
