"""The remote signer's HTTP service (live-AI spec §10.2-10.5) and its server.

Routes: ``POST /sign-orchestrator-info``, ``POST /generate-live-payment`` and, with discovery on,
``GET /discover-orchestrators``. Errors are ``{"error":{"message":...}}`` with the 500/503
message rule. Request bodies above ``max_body_bytes`` get 413 before they are read. Every
signature and signature check runs in the service's crypto thread pool.

    async with SignerServer(SignerConfig(private_key=key, port=0)) as server:
        ...  # server.url, server.address
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from mediagw.errors import ConfigError
from mediagw.eth.crypto import checksum
from mediagw.livepeer.rpc import OrchestratorRPC, orchestrator_request, sign_orchestrator_request
from mediagw.livepeer.tls import PinStore
from mediagw.payments.signer import LocalSigner

from ..httpbody import read_prefix
from .authhook import AuthWebhook, go_headers
from .config import SignerConfig
from .discovery import DiscoveryCache
from .errors import RequestFailed, public_message
from .payment import LivePaymentMinter

__all__ = ["SignerServer", "SignerService", "error_response"]

log = logging.getLogger("mediagw.signer")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps({"error": {"message": public_message(status, message)}})
    return web.Response(
        status=status, text=body, content_type="application/json", headers=headers or {}
    )


class SignerService:
    """The signer's state for one process: key, crypto pool, webhook, discovery cache."""

    def __init__(self, config: SignerConfig) -> None:
        self.config = config
        self._executor = ThreadPoolExecutor(max(1, config.crypto_workers), "signer-crypto")
        if config.signer is not None:
            self.signer = config.signer
        elif config.private_key:
            self.signer = LocalSigner(config.private_key, self._executor)
        else:
            raise ConfigError("the signer needs a key (private_key or signer)")
        self.webhook = (
            AuthWebhook(
                config.webhook_url,
                config.webhook_headers,
                timeout=config.webhook_timeout,
                max_body=config.max_webhook_body_bytes,
            )
            if config.webhook_url
            else None
        )
        self.minter = LivePaymentMinter(config, self.signer, self._executor, self.webhook)
        self.info_sig = b""
        self.rpc: OrchestratorRPC | None = None
        self.discovery: DiscoveryCache | None = None
        self._discovery_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.info_sig = await sign_orchestrator_request(self.signer.address, self.signer.sign)
        if self.config.discovery:
            self.rpc = OrchestratorRPC(PinStore())
            rpc, request = self.rpc, orchestrator_request(self.signer.address, self.info_sig, None)
            self.discovery = DiscoveryCache(
                self.config.sources,
                lambda url: rpc.get_orchestrator(url, request),
                self.config.caps,
                interval=self.config.discovery_interval,
                timeout=self.config.discovery_timeout,
                retry_interval=self.config.discovery_retry_interval,
            )
            self._discovery_task = asyncio.get_running_loop().create_task(self.discovery.run())

    async def close(self) -> None:
        if self._discovery_task is not None:
            self._discovery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovery_task
        if self.discovery is not None:
            await self.discovery.close()
        if self.rpc is not None:
            await self.rpc.close()
        if self.webhook is not None:
            await self.webhook.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- handlers -----------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise RequestFailed(413, f"request body larger than {limit} bytes")
        data = await read_prefix(request.content, limit + 1)
        if len(data) > limit:
            raise RequestFailed(413, f"request body larger than {limit} bytes")
        return data

    async def sign_orchestrator_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"address": checksum(self.signer.address), "signature": "0x" + self.info_sig.hex()}
        )

    async def generate_live_payment(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        answer = await self.minter.generate(body, go_headers(request.headers.items()))
        return web.json_response(answer)

    async def discover_orchestrators(self, request: web.Request) -> web.Response:
        if self.discovery is None:
            raise RequestFailed(503, "no orchestrator pool configured")
        await self.discovery.refresh_if_empty()  # an empty snapshot is retried (rate-limited)
        found = self.discovery.orchestrators(request.query.getall("caps", []))
        if found is None:
            raise RequestFailed(503, "cache empty")
        return web.json_response(found)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RequestFailed as err:
        if err.status >= 500:
            log.warning("signer request failed", extra={"path": request.path, "error": str(err)})
        return error_response(err.status, err.message, err.headers)


def build_app(service: SignerService) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=service.config.max_body_bytes)
    app.router.add_post("/sign-orchestrator-info", service.sign_orchestrator_info)
    app.router.add_post("/generate-live-payment", service.generate_live_payment)
    if service.config.discovery:
        app.router.add_get("/discover-orchestrators", service.discover_orchestrators)
    return app


class SignerServer:
    """The signer listening on ``config.host:config.port`` (0 = ephemeral)."""

    def __init__(self, config: SignerConfig) -> None:
        self.config = config
        self.service = SignerService(config)
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> bytes:
        return self.service.signer.address

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await self.service.start()
        self._runner = web.AppRunner(build_app(self.service), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host or None, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"signer cannot listen on {self.config.host}:{self.config.port}: {exc}"
            ) from None
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.config.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.service.close()

    async def __aenter__(self) -> SignerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
