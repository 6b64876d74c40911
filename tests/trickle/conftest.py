"""Fixtures for the trickle tests: a TrickleServer served over real sockets on 127.0.0.1, by
hypercorn (plain or TLS, as the reference orchestrator serves it) or by aiohttp."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from trickle.trickle_testkit import AiohttpHost, HypercornHost

from mediagw.orchestrator.trickle import TrickleServer, TrickleServerConfig

BASE = "/ai/trickle/"


@dataclass
class Env:
    server: TrickleServer
    host: HypercornHost | AiohttpHost
    session: aiohttp.ClientSession
    ssl: ssl.SSLContext | bool
    base: str

    def url(self, channel: str) -> str:
        return f"{self.base}{channel}"


EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env() -> AsyncIterator[EnvFactory]:
    made: list[tuple[TrickleServer, Any, aiohttp.ClientSession]] = []

    async def make(
        config: TrickleServerConfig | None = None,
        *,
        tls: bool = False,
        front: str = "asgi",
        wrap: Callable[[Any, HypercornHost], Any] | None = None,
        **server_kw: Any,
    ) -> Env:
        server = TrickleServer(config, **server_kw)
        await server.start()
        session = aiohttp.ClientSession()
        host: HypercornHost | AiohttpHost
        if front == "aiohttp":
            host = AiohttpHost()
            await host.start(server.aiohttp_app())
            base = host.url + "/"
        else:
            host = HypercornHost(tls=tls)
            app: Any = server.asgi_app(BASE, abort=host.abort)
            await host.start(wrap(app, host) if wrap is not None else app)
            base = host.url + BASE
        made.append((server, host, session))
        ssl_arg: ssl.SSLContext | bool = host.client_ssl() if tls else True
        return Env(server, host, session, ssl_arg, base)

    yield make
    for server, host, session in made:
        await session.close()
        await server.close()
        await host.stop()


@pytest.fixture(params=["plain", "tls"])
async def env(request: pytest.FixtureRequest, make_env: EnvFactory) -> Env:
    return await make_env(tls=request.param == "tls")
