"""Requests that break HTTP inside a handler get a 4xx, not a 500 with a traceback.

aiohttp parses a body while a handler reads it: a broken chunked framing or a short body
raises in the handler (``HttpProcessingError``), and a client that goes away mid-body raises
``ConnectionResetError``. Both are the client's doing: the first gets a 400 naming the
problem, the second one debug line (there is nobody to answer). Anything else a handler
raises is a bug and stays a 500 with its traceback (rate-limited: ``mediagw.log``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..httpbody import describe_http_error

log = logging.getLogger("mediagw.http")

__all__ = ["client_errors"]

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
