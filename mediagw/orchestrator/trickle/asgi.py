"""The trickle routes as an ASGI application (hypercorn serves it on the orchestrator port).

Interim responses: ASGI has no message for a bare ``100 Continue``. hypercorn offers
``http.response.early_hint`` on HTTP/2 and HTTP/3 only, so the first-byte keepalive is sent
there as an interim **103** (a 1xx like go-livepeer's 100, tolerated the same way by clients);
on HTTP/1.1 hypercorn drops interim responses, so no keepalive is sent. hypercorn has no read
timeout by default, so an idle preconnected POST is not closed by the server either way.

Cutting a reader (its segment left the window): ASGI cannot abort a response mid-body, and
hypercorn keeps an HTTP/1.1 connection open when an app stops mid-body. The host passes
``abort(scope)`` that kills the request's connection (the reference orchestrator can do this by
peer address); without it the response ends cleanly after the bytes already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .handlers import Headers, TrickleHandlers
from .routes import parse_route
from .segment import PeerGone
from .types import ChannelHost

__all__ = ["AbortHook", "Receive", "Scope", "Send", "TrickleASGI"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AbortHook = Callable[[Scope], None]


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class _ASGIExchange:
    def __init__(self, scope: Scope, receive: Receive, send: Send, abort: AbortHook | None) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._abort = abort
        self._headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            self._headers.setdefault(key, value.decode("latin-1"))
        self._body_done = False
        self._started = False
        self._finished = False
        self._gone: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def header(self, name: str) -> str:
        return self._headers.get(name.lower(), "")

    async def read(self) -> bytes | None:
        while not self._body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._set_gone()
                raise PeerGone
            body = message.get("body", b"")
            if not message.get("more_body", False):
                self._body_done = True
            if body:
                return bytes(body)
        return None

    async def interim(self) -> bool:
        if self._started or "http.response.early_hint" not in self._scope.get("extensions", {}):
            return False
        await self._emit({"type": "http.response.early_hint", "links": []})
        return True

    async def _emit(self, message: Message) -> None:
        """Send; a transport that broke under the server (the client left) is ``PeerGone``."""
        try:
            await self._send(message)
        except Exception as exc:
            raise PeerGone from exc

    async def respond(self, status: int, headers: Headers, body: bytes = b"") -> None:
        out = [*_encode(headers), (b"content-length", str(len(body)).encode())]
        self._started = True
        await self._emit({"type": "http.response.start", "status": status, "headers": out})
        self._finished = True
        await self._emit({"type": "http.response.body", "body": body})

    async def start(self, status: int, headers: Headers) -> None:
        self._started = True
        await self._emit(
            {"type": "http.response.start", "status": status, "headers": _encode(headers)}
        )

    async def write(self, data: bytes) -> None:
        gone = self.gone()
        if gone.done():
            raise PeerGone
        # hypercorn's HTTP/2 send waits forever on a connection that closed: race it
        sending = asyncio.ensure_future(
            self._send({"type": "http.response.body", "body": data, "more_body": True})
        )
        await asyncio.wait({sending, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not sending.done():
            sending.cancel()
            raise PeerGone
        if sending.exception() is not None:
            raise PeerGone from sending.exception()

    async def end(self) -> None:
        self._finished = True
        await self._emit({"type": "http.response.body", "body": b"", "more_body": False})

    def abort(self) -> None:
        if self._abort is not None:
            self._abort(self._scope)
            self._finished = True

    def gone(self) -> asyncio.Future[None]:
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
            self._watcher = asyncio.create_task(self._watch())
        return self._gone

    def _set_gone(self) -> None:
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
        if not self._gone.done():
            self._gone.set_result(None)

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._set_gone()
                return

    async def close(self) -> None:
        client_gone = self._gone is not None and self._gone.done()
        if self._started and not self._finished and not client_gone:
            with contextlib.suppress(Exception):  # end an unfinished body cleanly (no abort hook)
                await self.end()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher


class TrickleASGI:
    """ASGI app serving ``{base_path}{ch}[/{seq}|/next]``."""

    def __init__(
        self, server: ChannelHost, base_path: str = "/", *, abort: AbortHook | None = None
    ) -> None:
        stripped = base_path.strip("/")
        self.base_path = f"/{stripped}/" if stripped else "/"
        self.server = server
        self.handlers = TrickleHandlers(server)
        self._abort = abort

    def handles(self, path: str) -> bool:
        return path.startswith(self.base_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        exchange = _ASGIExchange(scope, receive, send, self._abort)
        try:
            tail = path[len(self.base_path) :] if self.handles(path) else "\x00"
            await self.handlers.handle(parse_route(scope["method"], tail), exchange)
        finally:
            await exchange.close()
