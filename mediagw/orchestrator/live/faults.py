"""The O's trickle routes with hooks in front, for the fault switches that act on the wire.

``intercept(method, tail)`` (``Faults.live_output_470`` / ``live_output_404``) sees every
request under the base path first and may answer it itself (status, headers, body); None lets
the trickle server handle it as usual. ``cut(method, tail)`` (``Faults.live_cut_input``) may
return a byte count: the request body reaches the trickle server up to that many bytes, then
the connection is killed (the ``abort`` hook), as a peer or network dying mid-POST would."""

from __future__ import annotations

from collections.abc import Callable

from ..trickle import TrickleServer, TrickleServerConfig
from ..trickle.asgi import AbortHook, Message, Receive, Scope, Send, TrickleASGI

__all__ = ["Cut", "Intercept", "InterceptingTrickleServer", "Reply"]

Reply = tuple[int, list[tuple[str, str]], bytes]
Intercept = Callable[[str, str], Reply | None]  # (method, path after the base path)
Cut = Callable[[str, str], int | None]  # (method, path after the base path) -> body bytes


def _cutting(receive: Receive, limit: int, kill: Callable[[], None]) -> Receive:
    """``receive`` that lets ``limit`` body bytes through, then kills the connection."""
    seen = 0

    async def cut_receive() -> Message:
        nonlocal seen
        if seen >= limit:
            kill()
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            body = bytes(message.get("body", b""))
            if seen + len(body) >= limit:
                message = {**message, "body": body[: limit - seen], "more_body": True}
                seen = limit
            else:
                seen += len(body)
        return message

    return cut_receive


class _InterceptingASGI(TrickleASGI):
    def __init__(
        self,
        server: TrickleServer,
        base_path: str,
        *,
        abort: AbortHook | None,
        intercept: Intercept,
        cut: Cut | None = None,
    ) -> None:
        super().__init__(server, base_path, abort=abort)
        self._intercept = intercept
        self._cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.handles(scope["path"]):
            tail = scope["path"][len(self.base_path) :]
            limit = self._cut(scope["method"], tail) if self._cut is not None else None
            abort = self._abort
            if limit is not None and abort is not None:
                receive = _cutting(receive, limit, lambda: abort(scope))
            reply = self._intercept(scope["method"], tail)
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
        cut: Cut | None = None,
    ) -> None:
        super().__init__(config, clock=clock)
        self.intercept = intercept
        self.cut = cut

    def asgi_app(self, base_path: str = "/", *, abort: AbortHook | None = None) -> TrickleASGI:
        return _InterceptingASGI(
            self, base_path, abort=abort, intercept=self.intercept, cut=self.cut
        )
