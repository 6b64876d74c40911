"""The ASGI application of the orchestrator port: gRPC or HTTP, decided per request as
go-livepeer does (HTTP/2 and a content-type starting with ``application/grpc`` -> gRPC). Paths
under ``/ai/trickle/`` go to the live trickle server (live-AI spec §4)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .asgi import Receive, Request, Scope, Send, http_error
from .grpc_asgi import serve_unary
from .handlers import HTTPRoutes
from .live.manager import TRICKLE_PATH
from .node import OrchestratorNode

__all__ = ["GRPC_SERVICE", "OrchestratorApp"]

GRPC_SERVICE = "net.Orchestrator"
log = logging.getLogger("mediagw.orchestrator")


class OrchestratorApp:
    def __init__(
        self,
        node: OrchestratorNode,
        abort: Callable[[Request], None],
        stopping: asyncio.Event,
        *,
        abort_scope: Callable[[Scope], None] | None = None,
    ) -> None:
        self.node = node
        self.http = HTTPRoutes(node, abort, stopping)
        self.trickle = node.live.trickle.asgi_app(TRICKLE_PATH, abort=abort_scope)
        self.grpc_methods = {
            "GetOrchestrator": node.get_orchestrator,
            "EndTranscodingSession": node.end_transcoding_session,
            "Ping": node.ping,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets on this port
        if scope["path"].startswith(TRICKLE_PATH):
            try:
                await self.trickle(scope, receive, send)
            except Exception:
                log.exception("trickle request failed", extra={"path": scope["path"]})
            return
        request = Request(scope, receive)
        try:
            if request.http2 and request.header("content-type").startswith("application/grpc"):
                await serve_unary(request, send, GRPC_SERVICE, self.grpc_methods)
            else:
                await self.http(request, send)
        except Exception:
            log.exception("orchestrator request failed", extra={"path": request.path})
            try:
                await http_error(send, 500, "Internal Server Error")
            except Exception:  # the response had started; hypercorn closes the stream
                pass

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
