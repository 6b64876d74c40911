"""Priced mode over real TLS: SegData signatures, tickets checked as go-livepeer's
ProcessPayment does (order, texts, fatal or not, credit), balances, signed results, /payment."""

from __future__ import annotations

import base64
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from coincurve import PrivateKey
from orchestrator.orch_testkit import (
    GATEWAY_ADDRESS,
    GATEWAY_KEY,
    ORCH_KEY,
    P144,
    P240,
    fetch,
    get_orchestrator,
    headers,
    payment,
    post,
    request_for,
    segdata,
    ticket_of,
)

from mediagw.clock import ManualClock
from mediagw.eth.crypto import address_of, checksum, keccak256, recover_address, sign_digest
from mediagw.livepeer.proto import net
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.tickets import expected_value

GW = checksum(GATEWAY_ADDRESS)


async def _info(orch: ReferenceOrchestrator) -> net.OrchestratorInfo:
    return await get_orchestrator(orch, request_for(GATEWAY_KEY))


def _ev(info: net.OrchestratorInfo) -> Fraction:
    tp = info.ticket_params
    return expected_value(int.from_bytes(tp.face_value, "big"), int.from_bytes(tp.win_prob, "big"))


async def _segment(
    http: aiohttp.ClientSession,
    orch: ReferenceOrchestrator,
    sd: net.SegData,
    pay: net.Payment | None,
    body: bytes,
) -> tuple[int, str, bytes]:
    reply = await post(http, orch, "/segment", headers(sd, pay), body)
    return reply.status, reply.text, reply.body


async def test_paid_segment_signed_result(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, seq=4, key=GATEWAY_KEY, profiles=(P240, P144))
    status, text, body = await _segment(http, priced, sd, payment(info, nonces=[1]), segment_small)
    assert status == 200, text
    result = net.TranscodeResult.FromString(body)
    assert result.WhichOneof("result") == "data"
    # the result signature covers keccak(keccak(r0) || keccak(r1)), personal-signed by O
    renditions = [await fetch(http, s.url) for s in result.data.segments]
    digest = keccak256(b"".join(keccak256(r) for r in renditions))
    assert recover_address(digest, result.data.sig) == priced.address == info.address
    # the refreshed info: same token, same price, NEW ticket params
    new = result.info
    assert new.auth_token == info.auth_token
    assert new.price_info == info.price_info
    assert new.ticket_params.seed != info.ticket_params.seed
    assert new.ticket_params.recipient_rand_hash != info.ticket_params.recipient_rand_hash
    # one ticket credited, the fee debited at 3/2 wei per pixel
    stats = priced.stats
    assert (stats.tickets_received, stats.tickets_accepted, stats.tickets_rejected) == (1, 1, 0)
    pixels = sum(s.pixels for s in result.data.segments)
    assert stats.fees_debited == Fraction(3, 2) * pixels
    assert priced.node is not None
    balance = priced.node.balances.balance(GATEWAY_ADDRESS, info.auth_token.session_id)
    assert balance == _ev(info) - Fraction(3, 2) * pixels
    # the next segment pays with the NEW params (nonces restart at 1)
    sd = segdata(new, segment_small, seq=5, key=GATEWAY_KEY, profiles=(P144,))
    status, text, _ = await _segment(http, priced, sd, payment(new, nonces=[1]), segment_small)
    assert status == 200, text
    assert priced.stats.tickets_accepted == 2


async def test_segdata_signature_checked(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    pay = payment(info)
    other = keccak256(b"someone else")
    cases = [
        segdata(info, segment_small),  # unsigned
        segdata(info, segment_small, key=other),  # signed by another key
    ]
    tampered = segdata(info, segment_small, key=GATEWAY_KEY)
    tampered.seq = 99  # signed for seq 0
    cases.append(tampered)
    renamed = segdata(info, segment_small, key=GATEWAY_KEY)
    renamed.fullProfiles[0].name = ""  # O signs net_<w>x<h>_<bitrate>, we signed the name
    cases.append(renamed)
    for sd in cases:
        assert (await _segment(http, priced, sd, pay, segment_small))[:2] == (403, "ErrSegSig\n")
    # an empty payment on a priced O: SegData checked against the zero address
    sd = segdata(info, segment_small, key=GATEWAY_KEY)
    assert (await _segment(http, priced, sd, None, segment_small))[:2] == (403, "ErrSegSig\n")
    assert priced.stats.tickets_received == 0


async def test_recipient_rand_binds_params(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, key=GATEWAY_KEY)
    want = (400, "invalid recipientRand for ticket recipientRandHash\n")
    # a different expected price than the params were made for
    cheaper = net.PriceInfo(pricePerUnit=1, pixelsPerUnit=2)
    assert (await _segment(http, priced, sd, payment(info, price=cheaper), segment_small))[
        :2
    ] == want
    # fields mixed from two infos
    other = await _info(priced)
    mixed = net.OrchestratorInfo()
    mixed.CopyFrom(info)
    mixed.ticket_params.seed = other.ticket_params.seed
    assert (await _segment(http, priced, sd, payment(mixed), segment_small))[:2] == want
    # a bumped face value
    richer = net.OrchestratorInfo()
    richer.CopyFrom(info)
    richer.ticket_params.face_value = (
        int.from_bytes(info.ticket_params.face_value, "big") + 1
    ).to_bytes(8, "big")
    assert (await _segment(http, priced, sd, payment(richer), segment_small))[:2] == want
    assert priced.stats.tickets_accepted == 0 and priced.stats.tickets_rejected == 3


async def test_nonce_reuse_and_crediting(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
    assert (await _segment(http, priced, sd, payment(info, nonces=[1, 2]), segment_small))[0] == 200
    # nonce 2 again, between two new ones: 3 is credited, 2 fails, 4 is checked but not credited
    status, text, _ = await _segment(
        http, priced, sd, payment(info, nonces=[3, 2, 4]), segment_small
    )
    assert (status, text) == (
        400,
        f"invalid ticket senderNonce: already seen sender={GW} nonce=2\n",
    )
    stats = priced.stats
    assert (stats.tickets_received, stats.tickets_accepted, stats.tickets_rejected) == (5, 3, 1)
    assert stats.ev_credited == 3 * _ev(info)
    assert stats.ticket_errors["invalid ticket senderNonce"] == 1
    # nonce 4 was recorded although not credited: a replay fails
    status, text, _ = await _segment(http, priced, sd, payment(info, nonces=[4]), segment_small)
    assert (status, text) == (
        400,
        f"invalid ticket senderNonce: already seen sender={GW} nonce=4\n",
    )


async def test_bad_ticket_signature_is_not_fatal(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    pay = payment(info, nonces=[1, 2, 3])
    pay.ticket_sender_params[1].sig = sign_digest(ORCH_KEY, ticket_of(pay, 2).hash)  # wrong key
    sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
    status, text, _ = await _segment(http, priced, sd, pay, segment_small)
    assert (status, text) == (400, "invalid ticket signature\n")
    stats = priced.stats
    # ticket 1 credited, 2 rejected, 3 checked (its nonce recorded) but not credited
    assert (stats.tickets_received, stats.tickets_accepted, stats.tickets_rejected) == (3, 1, 1)
    again = payment(info, nonces=[3])
    status, text, _ = await _segment(http, priced, sd, again, segment_small)
    assert text == f"invalid ticket senderNonce: already seen sender={GW} nonce=3\n"


async def test_fatal_errors_stop_the_batch(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
    wrong = net.OrchestratorInfo()
    wrong.CopyFrom(info)
    wrong.ticket_params.recipient = GATEWAY_ADDRESS
    status, text, _ = await _segment(http, priced, sd, payment(wrong, nonces=[1, 2]), segment_small)
    assert (status, text) == (400, "invalid ticket recipient\n")
    assert priced.stats.tickets_received == 1  # the second ticket was never looked at
    no_sender = payment(info)
    no_sender.sender = b""
    status, text, _ = await _segment(http, priced, sd, no_sender, segment_small)
    # SegData is checked against the zero address first
    assert (status, text) == (403, "ErrSegSig\n")
    no_price = payment(info)
    no_price.ClearField("expected_price")
    status, text, _ = await _segment(http, priced, sd, no_price, segment_small)
    assert (status, text) == (
        400,
        'invalid expected price sent with payment err="expected price is nil"\n',
    )
    zero_den = payment(info, price=net.PriceInfo(pricePerUnit=3, pixelsPerUnit=0))
    status, text, _ = await _segment(http, priced, sd, zero_den, segment_small)
    assert (status, text) == (
        400,
        'invalid expected price sent with payment err="pixels per unit is 0"\n',
    )


async def test_insufficient_balance(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
    status, text, _ = await _segment(http, priced, sd, payment(info, nonces=[]), segment_small)
    assert (status, text) == (400, "Insufficient balance\n")
    # the balance survives across segments of a session: pay once, then send 0 tickets
    assert (await _segment(http, priced, sd, payment(info, nonces=[1]), segment_small))[0] == 200
    assert priced.node is not None
    left = priced.node.balances.balance(GATEWAY_ADDRESS, info.auth_token.session_id)
    assert left is not None and left < priced.config.ticket_ev  # spent below one ticket's EV
    status, text, _ = await _segment(http, priced, sd, payment(info, nonces=[]), segment_small)
    assert (status, text) == (400, "Insufficient balance\n")


async def test_ticket_params_expire(
    priced: ReferenceOrchestrator,
    http: aiohttp.ClientSession,
    segment_small: bytes,
    clock: ManualClock,
) -> None:
    info = await _info(priced)
    sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
    clock.now += 41 * 12  # 41 L1 blocks later: expiration_block <= last seen block
    status, text, _ = await _segment(http, priced, sd, payment(info, nonces=[1]), segment_small)
    assert (status, text) == (400, "TicketParams expired\n")
    assert priced.stats.ticket_errors["TicketParams expired"] == 1
    clock.now += 31 * 60  # and later the auth token expires too
    status, text, _ = await _segment(http, priced, sd, payment(info, nonces=[2]), segment_small)
    assert (status, text) == (403, "expired auth token\n")


async def test_600_nonces_per_recipient_rand(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    info = await _info(priced)
    sd = segdata(info, b"", key=GATEWAY_KEY, profiles=())
    pay = payment(info, nonces=range(1, 602))
    reply = await post(http, priced, "/payment", headers(sd, pay))
    assert (reply.status, reply.text) == (
        400,
        f"invalid ticket senderNonce: too many values sender={GW} nonce=601\n",
    )
    assert (priced.stats.tickets_accepted, priced.stats.tickets_rejected) == (600, 1)


async def test_payment_route(priced: ReferenceOrchestrator, http: aiohttp.ClientSession) -> None:
    info = await _info(priced)
    sd = segdata(info, b"", key=GATEWAY_KEY, profiles=(), manifest_id=b"live-1")
    reply = await post(http, priced, "/payment", headers(sd, payment(info, nonces=[1, 2])))
    assert reply.status == 200, reply.text
    result = net.PaymentResult.FromString(reply.body)
    assert result.info.auth_token == info.auth_token
    assert result.info.ticket_params.seed != info.ticket_params.seed
    assert priced.node is not None
    # credited under (sender, manifestId), not the session ID
    assert priced.node.balances.balance(GATEWAY_ADDRESS, "live-1") == 2 * _ev(info)
    assert priced.node.balances.balance(GATEWAY_ADDRESS, info.auth_token.session_id) is None
    assert priced.stats.payments == 1
    bad = headers(sd, None) | {"Livepeer-Payment": "%%%"}
    assert (await post(http, priced, "/payment", bad)).status == 402
    unsigned = segdata(info, b"", profiles=(), manifest_id=b"live-1")
    reply = await post(http, priced, "/payment", headers(unsigned, payment(info, nonces=[3])))
    assert (reply.status, reply.text) == (403, "ErrSegSig\n")


async def test_payment_without_expiration_params_drops_connection(
    priced: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    """go-livepeer dereferences Payment.expiration_params unchecked: the handler dies."""
    info = await _info(priced)
    sd = segdata(info, b"", key=GATEWAY_KEY, profiles=())
    pay = payment(info)
    pay.ClearField("expiration_params")
    with pytest.raises(aiohttp.ClientError):
        await post(http, priced, "/payment", headers(sd, pay))


async def test_winning_tickets_counted(
    tmp_path: Path, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    """faceValue == ticket EV gives winProb 2^256-1: every ticket wins."""
    config = OrchestratorConfig(
        priced=True,
        private_key=ORCH_KEY,
        price_per_unit=1,
        ticket_ev=120_000_000,
        gas_price=1,  # faceValue = 1,200,000 gas x 1 wei x 100 = ticket EV
        work_dir=tmp_path,
        x264_preset="ultrafast",
    )
    async with ReferenceOrchestrator(config) as orch:
        info = await _info(orch)
        assert int.from_bytes(info.ticket_params.win_prob, "big") == 2**256 - 1
        sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
        reply = await post(
            http, orch, "/segment", headers(sd, payment(info, nonces=[1, 2])), segment_small
        )
        assert reply.status == 200, reply.text
        stats = orch.stats
        assert stats.tickets_winning == 2 and len(stats.winners) == 2
        assert stats.winners[0].sender == GATEWAY_ADDRESS
        async with http.get(orch.url + "/stats", ssl=False) as resp:
            data = await resp.json()
        assert data["tickets_winning"] == 2 and data["priced"] is True
        assert data["address"] == "0x" + address_of(PrivateKey(ORCH_KEY).public_key).hex()


async def test_zero_price_needs_no_tickets(
    tmp_path: Path, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    config = OrchestratorConfig(
        priced=True, price_per_unit=0, work_dir=tmp_path, x264_preset="ultrafast"
    )
    async with ReferenceOrchestrator(config) as orch:
        info = await _info(orch)
        assert (info.price_info.pricePerUnit, info.price_info.pixelsPerUnit) == (0, 1)
        assert info.ticket_params.face_value == b"" and info.ticket_params.win_prob == b""
        sd = segdata(info, segment_small, key=GATEWAY_KEY, profiles=(P144,))
        pay = payment(info, nonces=[])  # sender + expected price only
        reply = await post(http, orch, "/segment", headers(sd, pay), segment_small)
        assert reply.status == 200, reply.text
        assert reply.result.WhichOneof("result") == "data"


def test_payment_header_is_standard_base64() -> None:
    info = net.OrchestratorInfo()
    hdr = headers(None, payment(info, key=None))
    assert hdr["Livepeer-Payment"] == "" and base64.b64decode(hdr["Livepeer-Payment"]) == b""
