"""PaymentSender: the payment_example vector, echo rules, nonces, balances, off-chain (§5-§11)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from fractions import Fraction

import pytest
from payments.pay_testkit import hx, key_of_vectors, section

from mediagw.eth.crypto import recover_address
from mediagw.livepeer.proto import net
from mediagw.payments.errors import (
    MissingPrice,
    NeedsRefresh,
    PriceAboveCap,
    SigningError,
    TicketParamsExpired,
    TotalEVTooHigh,
)
from mediagw.payments.sender import MAX_SENDER_NONCES, PaymentSender, balance_key
from mediagw.payments.signer import LocalSigner, OffchainSigner
from mediagw.payments.tickets import Ticket, expected_value, int_to_bytes, is_winning

EXAMPLE = section("payment_example")[0]


def example_info(**changes: object) -> net.OrchestratorInfo:
    e = EXAMPLE
    params = net.TicketParams(
        recipient=hx(e["recipient"]),
        face_value=int_to_bytes(int(e["face_value"])),
        win_prob=int_to_bytes(int(e["win_prob"])),
        recipient_rand_hash=hx(e["recipient_rand_hash"]),
        seed=hx(e["seed"]),
        expiration_block=int_to_bytes(int(e["expiration_block"])),
        expiration_params=net.TicketExpirationParams(
            creation_round=int(e["creation_round"]),
            creation_round_block_hash=hx(e["creation_round_block_hash"]),
        ),
    )
    for name, value in changes.items():
        if isinstance(value, net.TicketExpirationParams):
            params.expiration_params.CopyFrom(value)
        else:
            setattr(params, name, value)
    return net.OrchestratorInfo(
        transcoder="https://127.0.0.1:8935",
        ticket_params=params,
        price_info=net.PriceInfo(
            pricePerUnit=int(e["expected_price"]["pricePerUnit"]),
            pixelsPerUnit=int(e["expected_price"]["pixelsPerUnit"]),
        ),
        address=hx(e["recipient"]),
        auth_token=net.AuthToken(token=b"tok", session_id="sess-1", expiration=2_000_000_000),
    )


EV = expected_value(int(EXAMPLE["face_value"]), int(EXAMPLE["win_prob"]))  # a hair above 5 wei


def decode(header: str) -> net.Payment:
    payment = net.Payment()
    payment.ParseFromString(base64.b64decode(header, validate=True))
    return payment


@pytest.fixture
def sender() -> PaymentSender:
    return PaymentSender(LocalSigner(key_of_vectors()), clock=lambda: 1000.0)


async def test_payment_example_vector(sender: PaymentSender) -> None:
    info = example_info()
    bundle = await sender.build_payment(info, Fraction(6), stream="s1")
    assert bundle.num_tickets == 2
    assert bundle.nonces == (1, 2)
    assert bundle.new_credit == bundle.total_ev == 2 * EV
    assert bundle.existing == 0 and bundle.balance_key == (hx(EXAMPLE["recipient"]), "sess-1")
    assert bundle.payment is not None
    assert bundle.payment.SerializeToString() == hx(EXAMPLE["expected_payment_protobuf"])
    assert bundle.header == EXAMPLE["expected_livepeer_payment_header"]
    rand = int(EXAMPLE["recipient_rand"])
    for sp, ticket in zip(bundle.payment.ticket_sender_params, EXAMPLE["tickets"], strict=True):
        assert sp.sender_nonce == ticket["sender_nonce"]
        assert sp.sig == hx(ticket["signature"])
        assert is_winning(sp.sig, rand, int(EXAMPLE["win_prob"])) is ticket["wins"]
        assert is_winning(sp.sig, rand, int(ticket["would_win_with_win_prob"]))
        assert recover_address(hx(ticket["ticket_hash"]), sp.sig) == hx(EXAMPLE["sender"])
    assert not bundle.payment.ticket_params.HasField("expiration_params")  # field 7 unset, as GL
    u = sender.usage("s1")
    assert (u.payments, u.tickets, u.ev) == (1, 2, 2 * EV)


def fields_of(payment: net.Payment) -> list[bytes]:
    tp, ep = payment.ticket_params, payment.expiration_params
    return [
        tp.recipient,
        tp.face_value,
        tp.win_prob,
        tp.recipient_rand_hash,
        tp.seed,
        tp.expiration_block,
        ep.creation_round_block_hash,
    ]


async def test_echo_rules_nothing_leaks_between_infos(sender: PaymentSender) -> None:
    a = example_info()
    b = example_info(
        recipient=b"\xbb" * 20,
        face_value=int_to_bytes(200_000_000),
        win_prob=int_to_bytes(int(EXAMPLE["win_prob"]) // 2),
        recipient_rand_hash=b"\xb1" * 32,
        seed=b"\xb2" * 32,
        expiration_block=int_to_bytes(2000),
        expiration_params=net.TicketExpirationParams(
            creation_round=11, creation_round_block_hash=b"\xb3" * 32
        ),
    )
    b.price_info.CopyFrom(
        net.PriceInfo(pricePerUnit=7, pixelsPerUnit=3, capability=2, constraint="x")
    )
    pa = decode((await sender.build_payment(a, Fraction(6))).header)
    pb = decode((await sender.build_payment(b, Fraction(6))).header)
    tb = b.ticket_params
    assert fields_of(pb) == [
        tb.recipient,
        tb.face_value,
        tb.win_prob,
        tb.recipient_rand_hash,
        tb.seed,
        tb.expiration_block,
        tb.expiration_params.creation_round_block_hash,
    ]
    assert pb.expiration_params.creation_round == 11
    assert pb.expected_price == b.price_info
    assert pb.sender == sender.signer.address
    assert [sp.sender_nonce for sp in pb.ticket_sender_params] == [1, 2]  # new PM session
    raw_b = pb.SerializeToString()
    for value in fields_of(pa)[:1] + fields_of(pa)[3:]:  # A's distinctive bytes
        assert value not in raw_b
    # every ticket of B is signed over B's params
    for sp in pb.ticket_sender_params:
        t = Ticket(
            tb.recipient,
            sender.signer.address,
            200_000_000,
            int.from_bytes(tb.win_prob, "big"),
            sp.sender_nonce,
            tb.recipient_rand_hash,
            11,
            b"\xb3" * 32,
        )
        assert recover_address(t.hash, sp.sig) == sender.signer.address


async def test_nonces_consecutive_never_reused(sender: PaymentSender) -> None:
    info = example_info()
    rrh = info.ticket_params.recipient_rand_hash
    assert sender.nonce(rrh) == 0
    first = await sender.build_payment(info, Fraction(6))
    assert first.nonces == (1, 2)  # misc.sender_first_nonce
    sender.spend(first.balance_key or ("", ""))  # failed request: its nonces stay burnt
    second = await sender.build_payment(info, Fraction(11))
    assert second.nonces == (3, 4, 5)
    assert sender.nonce(rrh) == 5
    other = example_info(recipient_rand_hash=b"\x99" * 32, seed=b"\x98" * 32)
    assert (await sender.build_payment(other, Fraction(1))).nonces == (1,)
    third = await sender.build_payment(info, Fraction(1))
    assert third.nonces == (6,)


async def test_nonce_limit_600(sender: PaymentSender) -> None:
    info = example_info()
    sender.max_total_ev = 10**9
    bundle = await sender.build_payment(info, EV * 599)
    assert bundle.nonces[-1] == 599
    sender.settle(bundle.balance_key, bundle.existing, bundle.new_credit, bundle.new_credit)
    with pytest.raises(NeedsRefresh, match="600"):
        await sender.build_payment(info, 2 * EV)
    assert sender.nonce(info.ticket_params.recipient_rand_hash) == 599  # refused, nothing taken
    assert (await sender.build_payment(info, EV)).nonces == (MAX_SENDER_NONCES,)
    with pytest.raises(NeedsRefresh):
        await sender.build_payment(info, EV)


async def test_balance_lifecycle(sender: PaymentSender) -> None:
    info = example_info()
    key = balance_key(info)
    b1 = await sender.build_payment(info, Fraction(6))
    assert sender.balance(key) == 0  # reserved while in flight
    sender.settle(key, b1.existing, b1.new_credit, Fraction(6))  # success, debit 6
    assert sender.balance(key) == 2 * EV - 6
    b2 = await sender.build_payment(info, Fraction(3))  # 4.x < max(3, EV): one ticket
    assert (b2.existing, b2.num_tickets) == (2 * EV - 6, 1)
    sender.restore(key, b2.existing, new_credit=b2.new_credit)  # no response headers
    assert sender.balance(key) == 2 * EV - 6
    assert sender.balances.metrics.forgotten_credit == EV
    b3 = await sender.build_payment(info, Fraction(3))
    sender.spend(key, new_credit=b3.new_credit)  # response received, failure
    assert sender.balance(key) == 0
    b4 = await sender.build_payment(info, Fraction(1))
    assert b4.num_tickets == 1
    sender.settle(key, b4.existing, b4.new_credit, Fraction(100))  # may go negative
    assert sender.balance(key) == EV - 100
    sender.reset(key)
    assert sender.balance(key) == 0
    # enough credit: no tickets, but the header still carries sender and price
    sender.balances.credit(key, Fraction(1000))
    b5 = await sender.build_payment(info, Fraction(10))
    assert b5.num_tickets == 0 and b5.existing == 1000
    p = decode(b5.header)
    assert p.sender == sender.signer.address and p.expected_price == info.price_info
    assert not p.HasField("ticket_params") and not p.HasField("expiration_params")


async def test_errors_restore_the_reserved_credit(sender: PaymentSender) -> None:
    info = example_info()
    key = balance_key(info)
    sender.balances.credit(key, Fraction(3))
    with pytest.raises(TicketParamsExpired):
        await sender.build_payment(info, Fraction(6), last_l1_block=999)
    assert sender.balance(key) == 3
    sender.max_total_ev = 5
    with pytest.raises(TotalEVTooHigh):
        await sender.build_payment(info, Fraction(6), last_l1_block=998)
    assert sender.balance(key) == 3
    with pytest.raises(PriceAboveCap):
        await sender.build_payment(info, Fraction(6), price_cap=Fraction(1, 2))
    assert sender.balance(key) == 3
    assert sender.nonce(info.ticket_params.recipient_rand_hash) == 0


class BrokenSigner:
    offchain = False
    address = b"\x01" * 20

    async def sign(self, digest: bytes) -> bytes:
        return b"\x00" * 64

    async def sign_many(self, digests: Sequence[bytes]) -> list[bytes]:
        return [b"\x00" * 64 for _ in digests]


async def test_signing_failure_burns_nonces_and_restores_credit() -> None:
    sender = PaymentSender(BrokenSigner())
    info = example_info()
    with pytest.raises(SigningError):
        await sender.build_payment(info, Fraction(6))
    assert sender.nonce(info.ticket_params.recipient_rand_hash) == 2
    assert sender.balance(balance_key(info)) == 0


async def test_offchain_and_offchain_orchestrator() -> None:
    off = PaymentSender(OffchainSigner())
    bundle = await off.build_payment(example_info(), Fraction(6))
    assert bundle.header == "" and bundle.num_tickets == 0 and bundle.balance_key is None
    assert decode(bundle.header) == net.Payment()  # "" decodes to an empty Payment
    on = PaymentSender(LocalSigner(key_of_vectors()))
    bare = net.OrchestratorInfo(transcoder="https://o:8935")  # off-chain O: no params, no price
    assert (await on.build_payment(bare, Fraction(6))).header == ""


async def test_zero_price_sends_sender_and_price_only(sender: PaymentSender) -> None:
    info = example_info(face_value=b"", win_prob=b"")
    info.price_info.CopyFrom(net.PriceInfo(pricePerUnit=0, pixelsPerUnit=1))
    bundle = await sender.build_payment(info, Fraction(0))
    assert bundle.num_tickets == 0
    p = decode(bundle.header)
    assert p.sender == sender.signer.address and p.expected_price.pixelsPerUnit == 1
    assert not p.ticket_sender_params


async def test_missing_price_with_ticket_params(sender: PaymentSender) -> None:
    info = example_info()
    info.ClearField("price_info")
    with pytest.raises(MissingPrice):
        await sender.build_payment(info, Fraction(6))


async def test_fallback_expiration_only_when_o_sent_none(sender: PaymentSender) -> None:
    fallback = (42, b"\x42" * 32)
    info = example_info()
    p = decode((await sender.build_payment(info, Fraction(1), fallback_expiration=fallback)).header)
    assert p.expiration_params.creation_round == int(EXAMPLE["creation_round"])
    bare = example_info(recipient_rand_hash=b"\x77" * 32)
    bare.ticket_params.ClearField("expiration_params")
    p = decode((await sender.build_payment(bare, Fraction(1), fallback_expiration=fallback)).header)
    assert (
        p.expiration_params.creation_round,
        p.expiration_params.creation_round_block_hash,
    ) == fallback
    p = decode((await sender.build_payment(bare, Fraction(1))).header)
    assert p.HasField("expiration_params")  # present whenever tickets are (zero round, zero hash)
    assert p.expiration_params.creation_round_block_hash == bytes(32)


async def test_usage_and_session_pruning(sender: PaymentSender) -> None:
    info = example_info()
    await sender.build_payment(info, Fraction(6), stream="a")
    await sender.build_payment(info, Fraction(1), stream="a")
    taken = sender.take_usage("a")
    assert (taken.payments, taken.tickets, taken.ev) == (2, 3, 3 * EV)
    assert sender.usage("a").tickets == 0
    assert sender.forget_expired(999) == 0
    assert sender.forget_expired(1000) == 1
    assert sender.nonce(info.ticket_params.recipient_rand_hash) == 0


async def test_caller_reserved_mode(sender: PaymentSender) -> None:
    """The caller reserves, passes ``existing``, and owns the restore on failure."""
    info = example_info()
    key = balance_key(info)
    sender.balances.credit(key, Fraction(4))
    existing = sender.reserve(key)
    bundle = await sender.build_payment(info, Fraction(6), key, existing)
    assert bundle.existing == 4 and bundle.num_tickets == 1 and bundle.balance_key == key
    sender.settle(key, existing, bundle.new_credit, Fraction(6))
    assert sender.balance(key) == 4 + EV - 6
    existing = sender.reserve(key)
    with pytest.raises(TicketParamsExpired):
        await sender.build_payment(info, Fraction(60), key, existing, last_l1_block=999)
    assert sender.balance(key) == 0  # not restored by build_payment: the caller does it
    sender.restore(key, existing)
    assert sender.balance(key) == 4 + EV - 6
