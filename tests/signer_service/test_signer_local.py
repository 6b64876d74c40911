"""``LocalLivePayments``: the same live payments with the gateway's own key (live-AI spec §3.3,
§9.1), accepted by a priced reference orchestrator."""

from __future__ import annotations

import math
from fractions import Fraction

import aiohttp
import pytest
from signer_service.signer_testkit import (
    GATEWAY_KEY,
    PPS,
    decode_payment,
    decode_segdata,
    get_info,
    job_caps,
    post_payment,
    ticket_ev,
)

from mediagw.clock import ManualClock
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRPC, sign_orchestrator_request
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments.errors import NeedsRefresh, PriceJump
from mediagw.payments.live import (
    EMPTY_SEGMENT_HASH,
    LivePayment,
    LivePaymentSource,
    LocalLivePayments,
    NoPaymentNeeded,
)
from mediagw.payments.remote import RemoteSigner
from mediagw.payments.sender import PaymentSender
from mediagw.payments.signer import LocalSigner, OffchainSigner

PRICE = Fraction(10)
BASE = 1000.0  # a small clock value: sub-pixel time steps stay exact in a float


async def _setup(
    rpc: OrchestratorRPC, priced: ReferenceOrchestrator, orch_clock: ManualClock
) -> tuple[LocalLivePayments, ManualClock, net.OrchestratorInfo]:
    orch_clock.now = BASE
    signer = LocalSigner(GATEWAY_KEY)
    sig = await sign_orchestrator_request(signer.address, signer.sign)
    info = await get_info(rpc, priced, signer.address, sig)
    clock = ManualClock(BASE)
    return LocalLivePayments(PaymentSender(signer), clock=clock), clock, info


def _units(before: Fraction, pay: LivePayment, ev: Fraction) -> Fraction:
    assert pay.state is not None
    n = len(decode_payment(pay).ticket_sender_params)
    return (before + n * ev - Fraction(pay.state["balance"])) / PRICE


async def test_local_key_payments_accepted_by_a_priced_orchestrator(
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    orch_clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    local, clock, info = await _setup(rpc, priced, orch_clock)
    source: LivePaymentSource = local  # the same seam as RemoteSigner
    assert isinstance(source, LocalLivePayments)
    ev = ticket_ev(info)
    mid = "0a1b2c3d"
    start = await local.generate_live_payment(
        info, state=None, manifest_id=mid, capabilities=job_caps()
    )
    # §3.3: 60 s of 720p30 at O's price, from a cleared balance; then considered spent
    tickets = math.ceil(60 * PPS * PRICE / ev)
    pay = decode_payment(start)
    assert pay.sender == local.sender.signer.address
    assert [t.sender_nonce for t in pay.ticket_sender_params] == list(range(1, tickets + 1))
    assert start.state is not None and Fraction(start.state["balance"]) == 0
    seg = decode_segdata(start)
    assert (seg.manifestId, seg.seq, seg.hash) == (mid.encode(), 0, EMPTY_SEGMENT_HASH)
    reply = await post_payment(http, priced, start)
    assert reply.status == 200, reply.text
    assert (priced.stats.tickets_accepted, priced.stats.tickets_rejected) == (tickets, 0)

    # units since the last payment, remainders carried (0.6 px each time); 60 s steps so that
    # every payment needs tickets (the first interval's credit covers a few 5 s steps)
    state, info_now, before = start.state, reply.result.info, Fraction(0)
    units = []
    for _ in range(3):
        clock.now += 60 + 0.6 / PPS
        paid = await local.generate_live_payment(
            info_now, state=state, manifest_id=mid, capabilities=job_caps()
        )
        units.append(_units(before, paid, ticket_ev(info_now)) - 60 * PPS)
        reply = await post_payment(http, priced, paid)
        assert reply.status == 200, reply.text
        assert paid.state is not None
        state, info_now, before = paid.state, reply.result.info, Fraction(paid.state["balance"])
    assert units == [0, 1, 0]  # 0.6, 1.2 -> 1, 0.8 -> 0
    assert priced.stats.tickets_rejected == 0
    assert priced.stats.payments == 4


async def test_local_guards(
    rpc: OrchestratorRPC, priced: ReferenceOrchestrator, orch_clock: ManualClock
) -> None:
    local, clock, info = await _setup(rpc, priced, orch_clock)
    start = await local.generate_live_payment(info, state=None, manifest_id="m")
    assert start.state is not None
    rich = dict(start.state, balance=str(10**12))
    clock.now += 1
    with pytest.raises(NoPaymentNeeded):
        await local.generate_live_payment(info, state=rich, manifest_id="m")
    dear = net.OrchestratorInfo()
    dear.CopyFrom(info)
    dear.price_info.pricePerUnit = 25
    with pytest.raises(PriceJump):
        await local.generate_live_payment(dear, state=start.state, manifest_id="m")
    clock.now = info.auth_token.expiration - 179
    with pytest.raises(NeedsRefresh):
        await local.generate_live_payment(info, state=start.state, manifest_id="m")
    with pytest.raises(ValueError, match="not a LocalLivePayments state"):
        await local.generate_live_payment(info, state={"State": "", "Sig": ""}, manifest_id="m")


async def test_offchain_and_free_orchestrators() -> None:
    offchain = LocalLivePayments(PaymentSender(OffchainSigner()), clock=lambda: BASE)
    info = net.OrchestratorInfo(transcoder="https://o:1")
    info.auth_token.session_id, info.auth_token.expiration = "s", int(BASE) + 1800
    pay = await offchain.generate_live_payment(info, state=None, manifest_id="m")
    assert pay.payment_header == ""
    assert decode_segdata(pay).sig == b""
    with pytest.raises(NoPaymentNeeded):
        await offchain.generate_live_payment(info, state=pay.state, manifest_id="m")


def test_remote_signer_is_a_live_payment_source() -> None:
    source: LivePaymentSource = RemoteSigner("signer.example:7936")
    assert isinstance(source, RemoteSigner)
    assert source.url == "https://signer.example:7936"
