"""A thin request/response layer over raw ASGI (what hypercorn hands us).

Error answers look like Go's ``http.Error``: ``text/plain; charset=utf-8``,
``X-Content-Type-Options: nosniff``, the text plus a newline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "BodyTooLarge",
    "Disconnected",
    "Receive",
    "Request",
    "Scope",
    "Send",
    "http_error",
    "respond",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body went over the limit given to ``Request.body``."""


class Disconnected(Exception):
    """The client went away before the body was read."""


class Request:
    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.http2: bool = scope.get("http_version") == "2"
        self.client: tuple[str, int] | None = (
            tuple(scope["client"]) if scope.get("client") else None
        )
        self.headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key not in self.headers:  # Go's Header.Get returns the first value
                self.headers[key] = value.decode("latin-1")
        self.disconnected = False
        self.gone = asyncio.Event()  # set once the client is known to have gone away
        self._watcher: asyncio.Task[None] | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    async def body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def wait_disconnect(self) -> None:
        """Return once the client has gone away (after the body was read)."""
        if self._watcher is not None:
            await self.gone.wait()
            return
        while not self.disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
        self.gone.set()

    def watch_disconnect(self) -> None:
        """Notice a client that goes away while we work (the body must have been read)."""
        if self._watcher is None and not self.disconnected:
            self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self.disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
        self.gone.set()

    def guard(self, send: Send) -> Send:
        """``send`` that gives up once the client is gone. hypercorn's HTTP/2 stream waits
        forever to flush a body into a connection that has closed; this never does."""

        async def guarded(message: Message) -> None:
            if self.gone.is_set():
                return
            sending = asyncio.ensure_future(send(message))
            gone = asyncio.ensure_future(self.gone.wait())
            try:
                await asyncio.wait({sending, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                if not sending.done():
                    sending.cancel()
            if sending.done() and not sending.cancelled():
                sending.result()  # re-raise what send raised, if anything

        return guarded

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    out = list(headers or [])
    if content_type is not None:
        out.append((b"content-type", content_type.encode()))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def http_error(send: Send, status: int, text: str) -> None:
    await respond(
        send,
        status,
        (text + "\n").encode(),
        content_type="text/plain; charset=utf-8",
        headers=[(b"x-content-type-options", b"nosniff")],
    )
