"""Test helpers for trickle: serve an ASGI app on hypercorn (plain or TLS) on 127.0.0.1 with an
abort hook (like the reference orchestrator), or an aiohttp app; media-like payloads."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config as HyperConfig
from hypercorn.utils import wrap_app

from mediagw.orchestrator.certs import Certificate, generate_certificate


def payload(size: int, seed: int = 0) -> bytes:
    """Reproducible random bytes, different per seed."""
    return random.Random(seed).randbytes(size)


class HypercornHost:
    """Serves one ASGI app; ``abort(scope)`` kills that request's connection."""

    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        self.port = 0
        self.certificate: Certificate | None = None
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._context: WorkerContext | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def abort(self, scope: Any) -> None:
        client = scope.get("client")
        if client:
            transport = self._transports.get((str(client[0]), int(client[1])))
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]

    def client_ssl(self) -> ssl.SSLContext:
        """A context that trusts exactly this server's self-signed certificate."""
        assert self.certificate is not None
        ctx = ssl.create_default_context(cadata=self.certificate.cert_pem.decode())
        ctx.check_hostname = False  # the SAN is a DNS name "127.0.0.1", as go-livepeer's
        return ctx

    async def start(self, app: Any) -> None:
        config = HyperConfig()
        config.alpn_protocols = ["h2", "http/1.1"]
        config.keep_alive_timeout = 600
        config.accesslog = None
        config.include_server_header = False
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="trickle-cert-")
            self.certificate = generate_certificate("127.0.0.1", Path(self._tmp.name), time.time())
            config.certfile = str(self.certificate.cert_path)
            config.keyfile = str(self.certificate.key_path)
        wrapped = wrap_app(app, 0, "asgi")
        self._context = context = WorkerContext(None)
        loop = asyncio.get_running_loop()

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.connections += 1
            peer = writer.get_extra_info("peername")
            key = (str(peer[0]), int(peer[1]))
            self._transports[key] = writer.transport
            try:
                await TCPServer(wrapped, loop, config, context, {}, reader, writer).run()
            except asyncio.CancelledError:
                pass
            finally:
                self._transports.pop(key, None)

        self._server = await asyncio.start_server(
            on_connection,
            "127.0.0.1",
            0,
            ssl=config.create_ssl_context() if self.tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._context is not None:
            await self._context.terminated.set()
        for transport in list(self._transports.values()):
            transport.abort()  # type: ignore[attr-defined]
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=0.5)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._tmp is not None:
            self._tmp.cleanup()


class AiohttpHost:
    def __init__(self) -> None:
        self.port = 0
        self.connections = 0  # not counted here
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_ssl(self) -> ssl.SSLContext:
        raise NotImplementedError("the aiohttp host serves plain HTTP")

    async def start(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate()`` every 10 ms until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def readers(server: Any, channel: str, seq: int) -> int:
    ch = server.get_channel(channel)
    if ch is None:
        return -1
    counts: dict[int, int] = {s.seq: s.readers for s in ch.info().segments}
    return counts.get(seq, 0)
