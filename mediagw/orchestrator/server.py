"""``ReferenceOrchestrator``: one TLS (or plaintext) port serving gRPC and HTTP with hypercorn.

The socket is ours (port 0 works, the bound port is known before the service URI is built);
each accepted connection is handed to hypercorn's TCPServer, and its transport is remembered by
peer address so a fault can cut it mid-response. A new self-signed certificate is written to the
work directory at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config as HyperConfig
from hypercorn.utils import wrap_app

from mediagw.errors import ConfigError

from .app import OrchestratorApp
from .asgi import Request
from .certs import Certificate, generate_certificate
from .config import Faults, OrchestratorConfig
from .node import OrchestratorNode
from .stats import OrchestratorStats

__all__ = ["ReferenceOrchestrator"]

log = logging.getLogger("mediagw.orchestrator")
STOP_GRACE = 2.0


def _hypercorn_config(cert: Certificate | None) -> HyperConfig:
    config = HyperConfig()
    if cert is not None:
        config.certfile = str(cert.cert_path)
        config.keyfile = str(cert.key_path)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.keep_alive_timeout = 600  # go-livepeer HTTPIdleTimeout: 10 min
    config.h11_max_incomplete_size = 1 << 20  # Go's default MaxHeaderBytes
    config.h2_max_header_list_size = 1 << 20
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("mediagw.orchestrator.http")
    config.graceful_timeout = STOP_GRACE
    return config


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"orchestrator cannot listen on {host}:{port}: {exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ReferenceOrchestrator:
    """A go-livepeer-compatible orchestrator for development and tests."""

    def __init__(self, config: OrchestratorConfig | None = None) -> None:
        self.config = config or OrchestratorConfig()
        self.node: OrchestratorNode | None = None
        self.certificate: Certificate | None = None
        self.port = 0
        self.service_uri = ""
        self._server: asyncio.Server | None = None
        self._context: WorkerContext | None = None
        self._transports: dict[tuple[str, int], asyncio.Transport] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._tmp_dir: Path | None = None

    # --- public -----------------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return not self.service_uri.startswith("http://")

    @property
    def url(self) -> str:
        """Where to reach this orchestrator from this machine."""
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def stats(self) -> OrchestratorStats:
        if self.node is None:
            raise RuntimeError("orchestrator not started")
        return self.node.stats

    @property
    def faults(self) -> Faults:
        """The live fault switches (flip them between requests)."""
        return self.config.faults

    @property
    def address(self) -> bytes:
        """The ETH address (priced mode), else empty."""
        return self.node.address if self.node is not None else b""

    async def start(self) -> None:
        cfg = self.config
        sock = _bind(cfg.host, cfg.port)
        self.port = sock.getsockname()[1]
        host = cfg.host if cfg.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        uri_host = f"[{host}]" if ":" in host else host
        scheme = "http" if cfg.plaintext else "https"
        default_uri = f"{scheme}://{uri_host}:{self.port}"
        self.service_uri = (cfg.service_uri or default_uri).rstrip("/")
        parsed = urlparse(self.service_uri)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            sock.close()
            raise ConfigError(f"service URI must be http(s)://host:port, got {cfg.service_uri!r}")
        work_dir = cfg.work_dir
        if work_dir is None:
            self._tmp_dir = work_dir = Path(tempfile.mkdtemp(prefix="mediagw-orchestrator-"))
        if self.tls:
            self.certificate = await asyncio.to_thread(
                generate_certificate, parsed.hostname, work_dir, time.time()
            )
        hyper = _hypercorn_config(self.certificate)
        self.node = OrchestratorNode(cfg, self.service_uri)
        await self.node.start()
        asgi_app: Any = OrchestratorApp(
            self.node, self._abort, self._stopping, abort_scope=self._abort_scope
        )
        app = wrap_app(asgi_app, 0, "asgi")
        self._context = WorkerContext(None)
        loop = asyncio.get_running_loop()
        context = self._context

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            peer = writer.get_extra_info("peername")
            key = (str(peer[0]), int(peer[1])) if peer else ("", 0)
            self._transports[key] = writer.transport  # type: ignore[assignment]
            try:
                await TCPServer(app, loop, hyper, context, {}, reader, writer).run()
            except asyncio.CancelledError:
                pass  # stop() gave up waiting; asyncio would log a cancelled connection task
            except Exception as exc:  # e.g. hypercorn's h2 KeyError on a stream reset by the peer
                extra = {"peer": key[0], "error": f"{type(exc).__name__}: {exc}"}
                log.warning("connection dropped by a server error", extra=extra)
            finally:
                self._transports.pop(key, None)

        self._server = await asyncio.start_server(
            on_connection,
            sock=sock,
            ssl=hyper.create_ssl_context() if self.tls else None,
            ssl_handshake_timeout=10 if self.tls else None,
        )
        log.info(
            "reference orchestrator listening",
            extra={"url": self.url, "service_uri": self.service_uri, "priced": cfg.priced},
        )

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        if self._context is not None:
            await self._context.terminated.set()
        for transport in list(self._transports.values()):
            transport.abort()
        if self.node is not None:
            await self.node.close()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), STOP_GRACE)
            self._server = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    async def __aenter__(self) -> ReferenceOrchestrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- internals --------------------------------------------------------------------------

    def _abort(self, request: Request) -> None:
        self._abort_client(request.client)

    def _abort_scope(self, scope: MutableMapping[str, Any]) -> None:
        """Kill the connection of an ASGI request (the trickle routes cut readers this way)."""
        client = scope.get("client")
        self._abort_client(tuple(client) if client else None)

    def _abort_client(self, client: tuple[Any, ...] | None) -> None:
        if client is None:
            return
        transport = self._transports.get((str(client[0]), int(client[1])))
        if transport is not None:
            transport.abort()
