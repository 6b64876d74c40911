"""Requests that break HTTP inside a handler get a 4xx, not a 500 with a traceback.

aiohttp parses a body while a handler reads it: a broken chunked framing or a short body
raises in the handler (``HttpProcessingError``), and a client that goes away mid-body raises
``ConnectionResetError``. Both are the client's doing: the first gets a 400 naming the
problem, the second one debug line (there is nobody to answer). Anything else a handler
raises is a bug and stays a 500 with its traceback (rate-limited: ``mediagw.log``).

``send_deadline`` (the outermost middleware) writes a handler's answer itself and cuts the
connection if it is not written within ``SEND_TIMEOUT``: a reader that stops reading (or
pipelines requests and never reads) holds an unsent answer in the server's buffers for that
long at most, not forever. Answers a handler streams itself (prepared) are not timed.

``body_deadline`` cuts the connection of a request whose body arrives too slowly (a client that
sends its headers, then one byte a second, holds a handler otherwise): every body gets
``BODY_GRACE`` seconds, and one more second per ``BODY_MIN_RATE`` bytes received (Apache's
mod_reqtimeout does the same: a large media push at any usable rate is never cut). The clock
stops when the whole body has arrived, read or not.

aiohttp prepares a handler's answer once more after the middlewares (a no-op for a prepared
``StreamResponse``), but ``FileResponse.prepare`` sends its file again each time it is called:
after ``send_deadline`` had sent it, every file answer ended in an "Unhandled exception"
(found by ``mediagw bench fuzzlive``). Files are answered with :class:`FileAnswer`, which
prepares once; a plain ``FileResponse`` is left to aiohttp, untimed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError

from ..httpbody import describe_http_error

log = logging.getLogger("mediagw.http")

__all__ = [
    "BODY_GRACE",
    "BODY_MIN_RATE",
    "SEND_TIMEOUT",
    "FileAnswer",
    "body_deadline",
    "client_errors",
    "send_deadline",
]

SEND_TIMEOUT = 30.0  # seconds to write one answer: a 2 s segment at 1/15 of its bitrate
BODY_GRACE = 10.0  # seconds any request body may take
BODY_MIN_RATE = 1024  # bytes a second: each KiB received gives the body one more second

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def client_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpProcessingError as exc:
        text = f"malformed request body: {describe_http_error(exc)}"
        return web.json_response({"error": text}, status=400)
    except ConnectionResetError:
        if request.transport is not None and not request.transport.is_closing():
            raise  # not our client's connection: a bug to see in full
        log.debug("client went away mid-request", extra={"peer": request.remote})
        return web.Response(status=400, text="client went away")


class FileAnswer(web.FileResponse):
    """A ``FileResponse`` that sends its file once however often it is prepared."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return None
        return await super().prepare(request)


@web.middleware
async def send_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if response.prepared or (
        isinstance(response, web.FileResponse) and not isinstance(response, FileAnswer)
    ):
        return response
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await response.prepare(request)
            await response.write_eof()
    except ConnectionError:
        pass  # the client went away: aiohttp's own write finds it gone and says nothing
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # drops what is unsent; close() would wait for it
        log.info(
            "HTTP answer not read in time: connection closed",
            extra={"peer": request.remote, "timeout": SEND_TIMEOUT},  # paths may hold keys
        )
    return response  # aiohttp's own write finds it sent, or the connection gone


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = request.content
    if not request.body_exists or body.is_eof():
        return await handler(request)
    loop = asyncio.get_running_loop()
    start, grace, rate = loop.time(), BODY_GRACE, BODY_MIN_RATE
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timer
        if body.is_eof():
            return
        due = start + grace + body.total_bytes / rate
        if loop.time() < due:
            timer = loop.call_at(due, check)
            return
        if request.transport is not None:
            request.transport.abort()  # the handler's read fails: "client went away"
        log.info(
            "HTTP request body too slow: connection closed",
            extra={"peer": request.remote, "received": body.total_bytes,
                   "seconds": round(loop.time() - start, 1)},
        )  # fmt: skip

    timer = loop.call_at(start + grace, check)
    try:
        return await handler(request)
    finally:
        if timer is not None:
            timer.cancel()
