"""The gateway's RemoteSigner against the signer service, and the headers it returns POSTed to a
PRICED reference orchestrator's /payment (live-AI spec §9, §10.2, §10.3; payments §8.3)."""

from __future__ import annotations

import base64
import json
import math
from fractions import Fraction

import aiohttp
import pytest
from signer_service.conftest import SignerFactory
from signer_service.signer_testkit import (
    PPS,
    NsClock,
    balance,
    decode_payment,
    decode_segdata,
    get_info,
    job_caps,
    post_payment,
    state_doc,
    ticket_ev,
)

from mediagw.eth.crypto import checksum, keccak256, recover_address
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRPC
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments.live import EMPTY_SEGMENT_HASH
from mediagw.payments.remote import (
    RemoteSigner,
    SignerError,
    SignerNoPaymentNeeded,
    SignerPriceRejected,
    SignerRefreshNeeded,
)
from mediagw.pool.prices import PriceCaps
from mediagw.signer_service import SignerServer

PRICE = Fraction(10)  # the priced fixture: 10 wei per pixel
MID = "f1405ced"


async def _info(
    client: RemoteSigner, rpc: OrchestratorRPC, orch: ReferenceOrchestrator
) -> net.OrchestratorInfo:
    address, sig = await client.sign_orchestrator_info()
    return await get_info(rpc, orch, address, sig)


async def test_sign_orchestrator_info(signer: SignerServer, client: RemoteSigner) -> None:
    address, sig = await client.sign_orchestrator_info()
    assert address == signer.address
    assert recover_address(keccak256(checksum(address).encode()), sig) == address
    assert await client.sign_orchestrator_info() == (address, sig)  # cached


async def test_sign_orchestrator_info_fails_fast() -> None:
    async with RemoteSigner("127.0.0.1:1", timeout=2) as dead:  # https:// added, nobody there
        assert dead.url == "https://127.0.0.1:1"
        with pytest.raises(SignerError, match="unavailable"):
            await dead.sign_orchestrator_info()


async def test_prepayment_accepted_then_adopt_info_and_pay_again(
    client: RemoteSigner,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    http: aiohttp.ClientSession,
    clock: NsClock,
    signer: SignerServer,
) -> None:
    info = await _info(client, rpc, priced)
    ev = ticket_ev(info)
    first = await client.generate_live_payment(
        info, state=None, manifest_id=MID, capabilities=job_caps()
    )
    # 60 s of 720p30 at the initial price, tickets per payments §8.3 from a zero balance
    fee = 60 * PPS * PRICE
    tickets = math.ceil(fee / ev)
    pay = decode_payment(first)
    assert pay.sender == signer.address
    assert [t.sender_nonce for t in pay.ticket_sender_params] == list(range(1, tickets + 1))
    assert pay.expected_price == info.price_info
    assert balance(first) == tickets * ev - fee
    doc = state_doc(first)
    assert doc["Type"] == "lv2v" and doc["SequenceNumber"] == 0
    assert doc["PMSessionID"] == "0x" + info.ticket_params.recipient_rand_hash.hex()
    assert doc["SenderNonce"] == tickets
    assert doc["OrchestratorAddress"] == "0x" + priced.address.hex()
    seg = decode_segdata(first)
    assert seg.manifestId == MID.encode() and seg.seq == 0 and seg.hash == EMPTY_SEGMENT_HASH
    assert seg.auth_token == info.auth_token

    reply = await post_payment(http, priced, first)
    result = reply.result
    stats = priced.stats
    assert (stats.tickets_accepted, stats.tickets_rejected) == (tickets, 0)
    assert priced.node is not None
    assert priced.node.balances.balance(signer.address, MID) == tickets * ev

    # adopt PaymentResult.info (new ticket params, same auth token) and pay 5 s later
    new_info = result.info
    assert new_info.auth_token == info.auth_token
    assert new_info.ticket_params.recipient_rand_hash != info.ticket_params.recipient_rand_hash
    clock.advance(5)
    second = await client.generate_live_payment(
        new_info, state=first.state, manifest_id=MID, capabilities=job_caps()
    )
    pay2 = decode_payment(second)
    # new PM session: nonces restart at 1; fee = 5 s at the initial price
    assert [t.sender_nonce for t in pay2.ticket_sender_params] == [1]
    assert balance(second) == balance(first) + ticket_ev(new_info) - 5 * PPS * PRICE
    assert state_doc(second)["SequenceNumber"] == 1
    reply2 = await post_payment(http, priced, second)
    assert reply2.status == 200, reply2.text
    assert (stats.tickets_accepted, stats.tickets_rejected) == (tickets + 1, 0)

    # the same info again continues the nonces of that PM session
    clock.advance(60)
    third = await client.generate_live_payment(
        new_info, state=second.state, manifest_id=MID, capabilities=job_caps()
    )
    assert [t.sender_nonce for t in decode_payment(third).ticket_sender_params] == [2]
    assert (await post_payment(http, priced, third)).status == 200
    assert stats.tickets_rejected == 0


async def test_lv2v_interval_billing_carries_remainders(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    ev = ticket_ev(info)
    first = await client.generate_live_payment(info, state=None, manifest_id=MID)
    units = []
    previous = first
    # 60 s + 0.6 pixel each time (60 s so that every call needs tickets): the 0.6 add up
    extra_ns = 0.6 / PPS * 10**9  # ~21.7 ns
    for _ in range(4):
        clock.advance(60, ns=round(extra_ns))
        pay = await client.generate_live_payment(info, state=previous.state, manifest_id=MID)
        n = len(decode_payment(pay).ticket_sender_params)
        units.append((balance(previous) + n * ev - balance(pay)) / PRICE)
        previous = pay
    # 22 ns = 0.61 px: 0.61 -> 0, 1.22 -> 1 (0.22 left), 0.83 -> 0, 1.44 -> 1
    assert [u - 60 * PPS for u in units] == [0, 1, 0, 1]


async def test_fee_uses_the_initial_price(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    first = await client.generate_live_payment(info, state=None, manifest_id=MID)
    cheaper = net.OrchestratorInfo()
    cheaper.CopyFrom(info)
    cheaper.price_info.pricePerUnit = 5  # a lower price later: still billed at 10
    clock.advance(5)
    second = await client.generate_live_payment(cheaper, state=first.state, manifest_id=MID)
    n = len(decode_payment(second).ticket_sender_params)
    assert balance(second) == balance(first) + n * ticket_ev(info) - 5 * PPS * PRICE


async def test_tampered_state_is_refused(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    first = await client.generate_live_payment(info, state=None, manifest_id=MID)
    assert first.state is not None
    doc = state_doc(first)
    doc["Balance"] = "1000000000000000"  # a richer balance would mean no tickets
    forged = dict(first.state, State=base64.b64encode(json.dumps(doc).encode()).decode())
    clock.advance(5)
    with pytest.raises(SignerError) as err:
        await client.generate_live_payment(info, state=forged, manifest_id=MID)
    assert (err.value.status, err.value.message) == (400, "invalid sig")
    sig = bytearray(base64.b64decode(first.state["Sig"]))
    sig[5] ^= 1
    bad_sig = dict(first.state, Sig=base64.b64encode(bytes(sig)).decode())
    with pytest.raises(SignerError) as err:
        await client.generate_live_payment(info, state=bad_sig, manifest_id=MID)
    assert err.value.status == 400
    # and the state needs the ManifestID, the same type and the same orchestrator
    with pytest.raises(SignerError, match="missing manifestID"):
        await client.generate_live_payment(info, state=first.state, manifest_id="")
    with pytest.raises(SignerError, match="job type mismatch"):
        await client.generate_live_payment(info, state=first.state, manifest_id=MID, type="live")
    other = net.OrchestratorInfo()
    other.CopyFrom(info)
    other.address = bytes(19) + b"\x01"
    with pytest.raises(SignerError, match="orchestratorAddress mismatch"):
        await client.generate_live_payment(other, state=first.state, manifest_id=MID)


async def test_refresh_needed_when_auth_token_in_last_10_percent(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    clock.now = (info.auth_token.expiration - 180) * 10**9  # exactly at the refresh point: ok
    await client.generate_live_payment(info, state=None, manifest_id=MID)
    clock.now += 10**9
    with pytest.raises(SignerRefreshNeeded) as err:
        await client.generate_live_payment(info, state=None, manifest_id=MID)
    assert err.value.status == 480
    assert err.value.orchestrator_url == info.transcoder == priced.service_uri


async def test_price_above_configured_maximum(
    make_signer: SignerFactory, rpc: OrchestratorRPC, priced: ReferenceOrchestrator
) -> None:
    async with (
        make_signer(caps=PriceCaps.from_flags("5")) as server,
        RemoteSigner(server.url) as client,
    ):
        info = await _info(client, rpc, priced)
        with pytest.raises(SignerPriceRejected) as err:
            await client.generate_live_payment(info, state=None, manifest_id=MID)
        assert err.value.status == 481
        assert "configured maximum price" in err.value.message


async def test_price_above_request_max_price(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator
) -> None:
    info = await _info(client, rpc, priced)
    with pytest.raises(SignerPriceRejected, match="request maxPrice"):
        await client.generate_live_payment(info, state=None, manifest_id=MID, max_price=9)
    ok = await client.generate_live_payment(info, state=None, manifest_id=MID, max_price=10)
    assert ok.payment_header


async def test_price_raised_during_the_session(
    client: RemoteSigner,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    clock: NsClock,
) -> None:
    info = await _info(client, rpc, priced)
    first = await client.generate_live_payment(info, state=None, manifest_id=MID)
    priced.faults.price_factor = 2.5  # O now quotes 25 wei per pixel: more than doubled
    raised = await _info(client, rpc, priced)
    assert raised.price_info.pricePerUnit == 25
    clock.advance(5)
    with pytest.raises(SignerPriceRejected) as err:
        await client.generate_live_payment(raised, state=first.state, manifest_id=MID)
    assert err.value.status == 481 and "initial session price" in err.value.message


async def test_balance_covers_the_fee(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    first = await client.generate_live_payment(info, state=None, manifest_id=MID)
    clock.advance(5)
    second = await client.generate_live_payment(info, state=first.state, manifest_id=MID)
    assert balance(second) >= ticket_ev(info) - 5 * PPS * PRICE
    clock.advance(0.1)  # 0.1 s costs 27.6 Mwei: the balance covers max(fee, ticket EV)
    with pytest.raises(SignerNoPaymentNeeded) as err:
        await client.generate_live_payment(info, state=second.state, manifest_id=MID)
    assert err.value.status == 482


async def test_more_than_100_tickets_is_refused(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator
) -> None:
    info = await _info(client, rpc, priced)
    pixels = math.ceil(101 * ticket_ev(info) / PRICE)
    with pytest.raises(SignerError) as err:
        await client.generate_live_payment(
            info, state=None, manifest_id=MID, type="", in_pixels=pixels
        )
    assert err.value.status == 400 and "exceeds maximum of 100" in err.value.message
    ok = await client.generate_live_payment(
        info, state=None, manifest_id=MID, type="", in_pixels=pixels // 2
    )
    assert len(decode_payment(ok).ticket_sender_params) == 51


async def test_live_and_fixed_billing(
    client: RemoteSigner, rpc: OrchestratorRPC, priced: ReferenceOrchestrator, clock: NsClock
) -> None:
    info = await _info(client, rpc, priced)
    ev = ticket_ev(info)
    per_second = math.ceil(2 * ev)  # a per-second price: every call needs tickets
    info.price_info.pricePerUnit = per_second
    first = await client.generate_live_payment(info, state=None, manifest_id=MID, type="live")
    n = len(decode_payment(first).ticket_sender_params)
    assert n == 21 and balance(first) == n * ev - 10 * per_second  # first live call: 10 s
    clock.advance(2.2)
    second = await client.generate_live_payment(
        info, state=first.state, manifest_id=MID, type="live"
    )
    n2 = len(decode_payment(second).ticket_sender_params)
    assert balance(second) == balance(first) + n2 * ev - 3 * per_second  # ceil(2.2 s)
    fixed = await client.generate_live_payment(info, state=None, manifest_id=MID, type="fixed")
    n3 = len(decode_payment(fixed).ticket_sender_params)
    assert n3 == 3 and balance(fixed) == n3 * ev - per_second


async def test_error_bodies(signer: SignerServer, http: aiohttp.ClientSession) -> None:
    async with http.post(signer.url + "/generate-live-payment", data=b"{nope") as resp:
        assert resp.status == 400
        doc = await resp.json()
        assert set(doc) == {"error"} and doc["error"]["message"].startswith("invalid JSON")
    async with http.post(signer.url + "/generate-live-payment", json={}) as resp:
        assert (resp.status, (await resp.json())["error"]["message"]) == (
            400,
            "missing orchestrator",
        )
    info = net.OrchestratorInfo(transcoder="https://o:1")
    body = {"orchestrator": base64.b64encode(info.SerializeToString()).decode()}
    async with http.post(signer.url + "/generate-live-payment", json=body) as resp:
        assert (await resp.json())["error"]["message"] == "missing or zero priceInfo"
    big = b"x" * (signer.config.max_body_bytes + 1)
    async with http.post(signer.url + "/generate-live-payment", data=big) as resp:
        assert resp.status == 413
