"""The signer's auth webhook (live-AI spec §10.5) with a real webhook server on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from mediatools import serve_app
from signer_service.conftest import SignerFactory
from signer_service.signer_testkit import START, NsClock, get_info, state_doc

from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRPC
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments.remote import RemoteSigner, SignerError, SignerPriceRejected

MID = "abcd0123"


@dataclass
class Webhook:
    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=lambda: {"status": 200})
    http_status: int = 200
    raw: bytes | None = None


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()

    async def handle(request: web.Request) -> web.Response:
        hook.calls.append(await request.json())
        hook.request_headers.append(dict(request.headers))
        if hook.raw is not None:
            return web.Response(status=hook.http_status, body=hook.raw)
        return web.json_response(hook.answer, status=hook.http_status)

    app = web.Application()
    app.router.add_post("/auth", handle)
    async with serve_app(app) as base:
        hook.url = f"{base}/auth"
        yield hook


async def _pay(
    remote: RemoteSigner,
    rpc: OrchestratorRPC,
    orch: ReferenceOrchestrator,
    state: dict[str, Any] | None = None,
) -> Any:
    address, sig = await remote.sign_orchestrator_info()
    info = await get_info(rpc, orch, address, sig)
    return await remote.generate_live_payment(info, state=state, manifest_id=MID)


async def test_refusal_status_and_reason_reach_the_gateway(
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
) -> None:
    webhook.answer = {"status": 403, "reason": "no credit left for user u1"}
    async with make_signer(webhook_url=webhook.url) as server, RemoteSigner(server.url) as remote:
        with pytest.raises(SignerError) as err:
            await _pay(remote, rpc, priced)
    assert (err.value.status, err.value.message) == (403, "no credit left for user u1")
    webhook.answer = {"status": 402}  # no reason: a default one
    async with make_signer(webhook_url=webhook.url) as server, RemoteSigner(server.url) as remote:
        with pytest.raises(SignerError) as err:
            await _pay(remote, rpc, priced)
    assert err.value.status == 402
    assert err.value.message == "signer auth rejected request with status 402"


async def test_metering_sees_every_call_with_the_gateway_headers(
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    clock: NsClock,
) -> None:
    webhook.answer = {"status": 200, "auth_id": "user-u1"}
    headers = {"Authorization": "Bearer token-u1", "x-customer": "acme"}
    hook_headers = {"X-Signer-Secret": "s3cret"}
    async with (
        make_signer(webhook_url=webhook.url, webhook_headers=hook_headers) as server,
        RemoteSigner(server.url, headers=headers) as remote,
    ):
        first = await _pay(remote, rpc, priced)
        clock.advance(60)
        second = await _pay(remote, rpc, priced, first.state)
    assert len(webhook.calls) == 2
    for n, call in enumerate(webhook.calls):
        assert call["headers"]["Authorization"] == ["Bearer token-u1"]
        assert call["headers"]["X-Customer"] == ["acme"]  # Go's canonical header names
        assert "Host" not in call["headers"]
        assert call["state"]["SequenceNumber"] == n
        assert call["state"]["Type"] == "lv2v"
    assert webhook.calls[0]["state"]["AuthID"] == ""
    assert webhook.calls[1]["state"]["AuthID"] == "user-u1"  # pinned in the state
    assert all(h["X-Signer-Secret"] == "s3cret" for h in webhook.request_headers)
    assert state_doc(first)["AuthID"] == state_doc(second)["AuthID"] == "user-u1"
    # the state's balance after the first call is what the webhook saw for metering
    assert webhook.calls[0]["state"]["Balance"] == state_doc(first)["Balance"]


async def test_expiry_caches_the_decision(
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    clock: NsClock,
) -> None:
    webhook.answer = {"status": 200, "expiry": START + 100}
    async with make_signer(webhook_url=webhook.url) as server, RemoteSigner(server.url) as remote:
        first = await _pay(remote, rpc, priced)
        clock.advance(60)
        second = await _pay(remote, rpc, priced, first.state)
        assert len(webhook.calls) == 1  # START + 60 <= expiry: not asked
        assert state_doc(second)["AuthExpiry"] == START + 100
        clock.advance(60)
        webhook.answer = {"status": 200}
        third = await _pay(remote, rpc, priced, second.state)
        assert len(webhook.calls) == 2  # expired: asked again
        assert state_doc(third)["AuthExpiry"] == 0


async def test_auth_id_change_is_refused(
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    clock: NsClock,
) -> None:
    async with make_signer(webhook_url=webhook.url) as server:
        async with RemoteSigner(server.url, headers={"Signer-Auth-Id": "a"}) as remote:
            first = await _pay(remote, rpc, priced)
            assert state_doc(first)["AuthID"] == "a"
        async with RemoteSigner(server.url, headers={"Signer-Auth-Id": "b"}) as remote:
            clock.advance(60)
            with pytest.raises(SignerError) as err:
                await _pay(remote, rpc, priced, first.state)
    assert (err.value.status, err.value.message) == (500, "Internal Server Error")


async def test_webhook_max_price(
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
) -> None:
    webhook.answer = {
        "status": 200,
        "maxPrice": {"price": "9.5", "currency": "wei", "unit": "720p-pixel-seconds"},
    }
    async with make_signer(webhook_url=webhook.url) as server, RemoteSigner(server.url) as remote:
        with pytest.raises(SignerPriceRejected, match="auth webhook maxPrice"):
            await _pay(remote, rpc, priced)
        webhook.answer["maxPrice"]["unit"] = "seconds"
        with pytest.raises(SignerError) as err:
            await _pay(remote, rpc, priced)
        assert err.value.status == 502 and "maxPrice.unit" in err.value.message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "case", ["down", "http_500", "not_json", "no_status", "status_not_int", "status_zero"]
)
async def test_unusable_webhook_is_a_500(
    case: str,
    make_signer: SignerFactory,
    webhook: Webhook,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
) -> None:
    url = webhook.url
    if case == "down":
        url = f"http://127.0.0.1:{_closed_port()}/auth"
    elif case == "http_500":
        webhook.http_status = 500
    elif case == "not_json":
        webhook.raw = b"<html>ok</html>"
    elif case == "no_status":
        webhook.answer = {"reason": "fine"}
    elif case == "status_not_int":
        webhook.answer = {"status": "200"}
    else:
        webhook.answer = {"status": 0}
    async with make_signer(webhook_url=url) as server, RemoteSigner(server.url) as remote:
        with pytest.raises(SignerError) as err:
            await _pay(remote, rpc, priced)
    assert (err.value.status, err.value.message) == (500, "Internal Server Error")


async def test_webhook_is_not_asked_for_requests_refused_earlier(
    make_signer: SignerFactory, webhook: Webhook
) -> None:
    async with make_signer(webhook_url=webhook.url) as server, RemoteSigner(server.url) as remote:
        info = net.OrchestratorInfo(transcoder="https://o:1")
        with pytest.raises(SignerError) as err:
            await remote.generate_live_payment(info, state=None, manifest_id=MID)
    assert err.value.status == 400
    assert webhook.calls == []
    assert json.dumps(webhook.answer)  # untouched
