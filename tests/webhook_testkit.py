"""A webhook receiver for the platform's webhook tests: a real aiohttp server on 127.0.0.1 that
records every request (raw body, headers) and answers what the test tells it to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``status`` is answered on every path; ``hang`` paths never answer."""

    url: str = ""
    status: int = 204
    hang: set[str] = field(default_factory=set)
    got: list[Received] = field(default_factory=list)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.got.append(Received(request.path, dict(request.headers), await request.read()))
        if request.path in self.hang:
            await asyncio.Event().wait()
        return web.Response(status=self.status, text="answer" if self.status >= 300 else "")


@asynccontextmanager
async def receiver(port: int = 0) -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{bound}"
    try:
        yield rec
    finally:
        await runner.cleanup()
