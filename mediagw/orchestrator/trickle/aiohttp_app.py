"""The trickle routes as an aiohttp application (for an aiohttp host, e.g. a test orchestrator).

Mount it with ``parent.add_subapp("/trickle/", server.aiohttp_app())``. Unlike the ASGI front
end this one sends go-livepeer's real keepalive, a bare ``100 Continue``, every
``keepalive_interval`` while a publisher's first byte is awaited (HTTP/1.1 allows any number of
1xx answers before the final one). A client that went away while its GET waits is noticed by
polling the transport every ``GONE_POLL`` seconds (aiohttp gives no disconnect event to a
handler that is not reading).
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus

from aiohttp import web

from .handlers import Headers, TrickleHandlers
from .routes import parse_route
from .segment import PeerGone
from .types import ChannelHost

__all__ = ["make_aiohttp_app"]

GONE_POLL = 0.5
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LOST = (ConnectionError, OSError, asyncio.IncompleteReadError)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


class _AiohttpExchange:
    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response: web.StreamResponse | None = None
        self._gone: asyncio.Future[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    def header(self, name: str) -> str:
        return self._request.headers.get(name, "")

    async def read(self) -> bytes | None:
        try:
            chunk = await self._request.content.readany()
        except _LOST as exc:
            raise PeerGone from exc
        if not chunk:
            if self._request.content.exception() is not None:
                raise PeerGone
            return None
        return chunk

    async def interim(self) -> bool:
        if self.response is not None or self._request.version < (1, 1):
            return False
        try:
            await self._request.writer.write(CONTINUE)
        except _LOST as exc:
            raise PeerGone from exc
        return True

    def _make(self, status: int, headers: Headers) -> web.StreamResponse:
        response = web.StreamResponse(status=status, reason=_reason(status))
        for name, value in headers:
            if name.lower() == "connection" and value.lower() == "close":
                response.force_close()
            else:
                response.headers[name] = value
        self.response = response
        return response

    async def respond(self, status: int, headers: Headers, body: bytes = b"") -> None:
        response = self._make(status, headers)
        response.content_length = len(body)
        try:
            await response.prepare(self._request)
            await response.write(body)
            await response.write_eof()
        except _LOST as exc:
            raise PeerGone from exc

    async def start(self, status: int, headers: Headers) -> None:
        response = self._make(status, headers)
        response.enable_chunked_encoding()
        try:
            await response.prepare(self._request)
        except _LOST as exc:
            raise PeerGone from exc

    async def write(self, data: bytes) -> None:
        assert self.response is not None
        try:
            await self.response.write(data)
        except _LOST as exc:
            raise PeerGone from exc

    async def end(self) -> None:
        assert self.response is not None
        try:
            await self.response.write_eof()
        except _LOST as exc:
            raise PeerGone from exc

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def gone(self) -> asyncio.Future[None]:
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
            self._poller = asyncio.create_task(self._poll())
        return self._gone

    async def _poll(self) -> None:
        while True:
            transport = self._request.transport
            if transport is None or transport.is_closing():
                if self._gone is not None and not self._gone.done():
                    self._gone.set_result(None)
                return
            await asyncio.sleep(GONE_POLL)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def make_aiohttp_app(server: ChannelHost) -> web.Application:
    handlers = TrickleHandlers(server)

    async def handle(request: web.Request) -> web.StreamResponse:
        exchange = _AiohttpExchange(request)
        try:
            route = parse_route(request.method, request.match_info["tail"])
            await handlers.handle(route, exchange)
        finally:
            await exchange.close()
        if exchange.response is None:  # the client went away before any answer
            exchange.abort()
            return web.Response(status=499)
        return exchange.response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
