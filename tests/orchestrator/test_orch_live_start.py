"""Live video-to-video on the reference orchestrator: capability 35 in GetOrchestrator and
``POST /live-video-to-video`` step by step (live-AI spec §2, §3.2), off-chain and priced, over
TLS with aiohttp and grpcio."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from orchestrator.orch_testkit import GATEWAY_KEY, ORCH_KEY
from orchestrator.test_orch_live_kit import (
    LIVE_MODELS,
    PricedGateway,
    live_caps,
    offchain_headers,
    orchestrator_info,
    start,
    wait_until,
)

from mediagw.errors import ConfigError
from mediagw.livepeer.capabilities import compatible
from mediagw.livepeer.proto import net
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.orchestrator.main import build_config, parse_args, parse_live_models

TICKET_EV = 27_648_000


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(work_dir=tmp_path, live_models=LIVE_MODELS, live_capacity=1)
    async with ReferenceOrchestrator(config) as orch:
        yield orch


@pytest.fixture
async def priced_live(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        work_dir=tmp_path,
        priced=True,
        private_key=ORCH_KEY,
        price_per_unit=1,
        pixels_per_unit=1,
        ticket_ev=TICKET_EV,
        live_models=LIVE_MODELS,
    )
    async with ReferenceOrchestrator(config) as orch:
        yield orch


async def test_get_orchestrator_live_caps(live: ReferenceOrchestrator) -> None:
    info = await orchestrator_info(live, live_caps("invert"))
    caps = info.capabilities
    assert list(caps.mandatories) == []  # go-livepeer 0.9.1: none, so bit-35-only jobs fit
    assert (caps.bitstring[0] >> 35) & 1
    assert caps.capacities[35] == 3
    models = caps.constraints.PerCapability[35].models
    assert set(models) == {"noop", "invert", "tint"}
    assert models["invert"].warm and not models["tint"].warm
    assert models["invert"].capacity == 1 and models["invert"].runnerVersion == "0.14.1"
    assert compatible(live_caps("invert"), caps)
    assert compatible(live_caps("tint", warm=False), caps)
    assert not compatible(live_caps("tint", warm=True), caps)  # cold model, warm asked
    assert not compatible(live_caps("invert", runner_version="0.15.0"), caps)

    # unknown model: O has no container for it -> capped; with the check skipped the info comes
    # back, and the gateway's compatibility test refuses it
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await orchestrator_info(live, live_caps("streamdiffusion"))
    assert err.value.details() == "Invalid orchestrator request: OrchestratorCapped"
    info = await orchestrator_info(live, live_caps("streamdiffusion"), ignore_capacity=True)
    assert not compatible(live_caps("streamdiffusion"), info.capabilities)


async def test_offchain_start_and_capacity(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    info = await orchestrator_info(live, live_caps())
    started = await start(http, live, await offchain_headers(info))
    urls = started.urls
    mid = urls["manifest_id"]
    assert len(mid) == 8 and int(mid, 16) >= 0
    base = f"{live.service_uri}/ai/trickle/{mid}"
    assert urls == {
        "publish_url": base,
        "subscribe_url": base + "-out",
        "control_url": base + "-control",
        "events_url": base + "-events",
        "manifest_id": mid,
    }
    trickle = live.node.live.trickle if live.node else None
    assert trickle is not None
    assert {trickle.get_channel(n).mime for n in (mid, mid + "-out")} == {"video/MP2T"}  # type: ignore[union-attr]
    assert trickle.get_channel(mid + "-events").mime == "application/json"  # type: ignore[union-attr]
    assert live.stats.live_sessions_started == 1

    # capacity 1 per model: the container is taken, the O is capped for it in GetOrchestrator
    full = await start(http, live, await offchain_headers(info))
    assert (full.status, full.text) == (503, "insufficient capacity\n")
    with pytest.raises(grpc.aio.AioRpcError):
        await orchestrator_info(live, live_caps())
    info2 = await orchestrator_info(live, live_caps(), ignore_capacity=True)
    assert info2.capabilities.constraints.PerCapability[35].models["invert"].capacityInUse == 1
    # another model still has an idle container
    noop = await start(http, live, await offchain_headers(info, live_caps("noop")), model="noop")
    assert noop.status == 200

    # the gateway closes its input: the session ends, its container is free again
    async with http.delete(urls["publish_url"], ssl=False) as resp:
        assert resp.status == 200
    await wait_until(lambda: live.stats.live_sessions_ended == 1)
    for key in ("publish_url", "subscribe_url", "control_url", "events_url"):
        async with http.get(urls[key] + "/next", ssl=False) as resp:
            # all four are closed (removed once their short linger is over: then 404)
            closed = resp.headers.get("Lp-Trickle-Closed") == "terminated"
            assert resp.status == 404 or (resp.status == 200 and closed), (key, resp.status)
    again = await start(http, live, await offchain_headers(info))
    assert again.status == 200


async def test_start_errors_offchain(
    live: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    info = await orchestrator_info(live, live_caps())
    good = await offchain_headers(info)

    async def expect(status: int, text: str, **kwargs: object) -> None:
        got = await start(http, live, kwargs.pop("headers", good), **kwargs)  # type: ignore[arg-type]
        assert (got.status, got.text) == (status, text + "\n" if text else "")

    # 1: JSON
    bad_json = await start(http, live, good, body=b"{not json")
    assert bad_json.status == 400 and bad_json.text.startswith("invalid JSON")
    await expect(400, "model_id is required", body=b'{"params": {}}')
    await expect(
        400,
        "json: cannot unmarshal params into an object",
        body=b'{"model_id": "noop", "params": [1]}',
    )
    # 3: capacity: unknown model, fault switch
    await expect(503, "insufficient capacity", model="streamdiffusion")
    live.faults.live_reject_start = True
    await expect(503, "insufficient capacity")
    live.faults.live_reject_start = False
    # 4: payment header
    bad_b64 = {**good, "Livepeer-Payment": "@@@@"}
    await expect(402, "base64 decode error: illegal base64 data at input byte 0", headers=bad_b64)
    bad_proto = {**good, "Livepeer-Payment": base64.b64encode(b"\xff\xff").decode()}
    text = "protobuf unmarshal error: proto: cannot parse invalid wire-format data"
    await expect(402, text, headers=bad_proto)
    # 5: SegData credentials
    await expect(403, "ErrorSegEncoding", headers={**good, "Livepeer-Segment": "@@@"})
    caps36 = net.Capabilities(bitstring=[1 << 36])
    await expect(403, "incompatible capabilities", headers=await offchain_headers(info, caps36))
    forged = net.OrchestratorInfo()
    forged.CopyFrom(info)
    forged.auth_token.expiration += 60
    await expect(403, "invalid auth token", headers=await offchain_headers(forged))
    # 9: the runner refuses the params: 500, no channels left behind
    await expect(500, "width: must be a multiple of 64, got 500", params={"width": 500})
    await expect(500, "strength: must be between 0 and 1, got 2", params={"strength": 2})
    trickle = live.node.live.trickle if live.node else None
    assert trickle is not None and trickle.channel_names() == []
    # 0: the empty 200 of go-livepeer's validator quirk
    live.faults.live_empty_reply = True
    await expect(200, "")  # no JSON: the gateway must treat it as a failure
    live.faults.live_empty_reply = False
    # nothing above took a container
    assert (await start(http, live, good)).status == 200
    assert live.stats.rejections["503 insufficient capacity"] == 2


async def test_start_priced(
    priced_live: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    orch = priced_live
    gateway = PricedGateway()
    info = await orchestrator_info(orch, live_caps(), key=GATEWAY_KEY)
    assert info.price_info.pricePerUnit == 1 and info.ticket_params.recipient == orch.address

    # 5: SegData signed by someone else than the payment's sender
    other = PricedGateway(bytes(31) + b"\x07")
    forged = await gateway.headers(info, tickets=1)
    forged["Livepeer-Segment"] = (await other.headers(info, tickets=0))["Livepeer-Segment"]
    got = await start(http, orch, forged)
    assert (got.status, got.text) == (403, "ErrSegSig\n")
    # 6: ProcessPayment error (a ticket whose params were not ours)
    tampered = net.OrchestratorInfo()
    tampered.CopyFrom(info)
    tampered.ticket_params.seed = b"\x01" * 32
    got = await start(http, orch, await gateway.headers(tampered, tickets=1))
    assert (got.status, got.text) == (400, "invalid recipientRand for ticket recipientRandHash\n")
    # 7: priced, no tickets: nothing credited under the new mid
    got = await start(http, orch, await gateway.headers(info, tickets=0))
    assert (got.status, got.text) == (400, "Insufficient balance\n")
    # one ticket = one ticket EV: enough to start; credited to (sender, mid)
    started = await start(http, orch, await gateway.headers(info, tickets=1))
    mid = started.urls["manifest_id"]
    assert orch.node is not None
    balance = orch.node.balances.balance(gateway.signer.address, mid)
    assert balance is not None and balance >= TICKET_EV
    assert orch.stats.live_sessions_started == 1


def test_cli_live_flags() -> None:
    args = parse_args(["-liveModels", "noop, invert:true,tint:false", "-liveCapacity", "3"])
    config = build_config(args)
    assert config.live_models == {"noop": True, "invert": True, "tint": False}
    assert config.live_capacity == 3 and config.live_payment_interval == 5.0
    assert build_config(parse_args([])).live_models == {}
    with pytest.raises(ConfigError):
        parse_live_models("noop:maybe")
