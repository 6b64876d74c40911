"""The O's trickle routes with a hook in front, for the fault switches that act on the wire
(``Faults.live_output_470`` / ``live_output_404``): ``intercept(method, tail)`` sees every
request under the base path first and may answer it itself (status, headers, body); None lets
the trickle server handle it as usual."""

from __future__ import annotations

from collections.abc import Callable

from ..trickle import TrickleServer, TrickleServerConfig
from ..trickle.asgi import AbortHook, Receive, Scope, Send, TrickleASGI

__all__ = ["Intercept", "InterceptingTrickleServer", "Reply"]

Reply = tuple[int, list[tuple[str, str]], bytes]
Intercept = Callable[[str, str], Reply | None]  # (method, path after the base path)


class _InterceptingASGI(TrickleASGI):
    def __init__(
        self,
        server: TrickleServer,
        base_path: str,
        *,
        abort: AbortHook | None,
        intercept: Intercept,
    ) -> None:
        super().__init__(server, base_path, abort=abort)
        self._intercept = intercept

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.handles(scope["path"]):
            reply = self._intercept(scope["method"], scope["path"][len(self.base_path) :])
            if reply is not None:
                status, headers, body = reply
                encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
                encoded.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": encoded})
                await send({"type": "http.response.body", "body": body})
                return
        await super().__call__(scope, receive, send)


class InterceptingTrickleServer(TrickleServer):
    """A ``TrickleServer`` whose ASGI app asks ``intercept`` first."""

    def __init__(
        self,
        config: TrickleServerConfig,
        *,
        clock: Callable[[], float],
        intercept: Intercept,
    ) -> None:
        super().__init__(config, clock=clock)
        self.intercept = intercept

    def asgi_app(self, base_path: str = "/", *, abort: AbortHook | None = None) -> TrickleASGI:
        return _InterceptingASGI(self, base_path, abort=abort, intercept=self.intercept)
