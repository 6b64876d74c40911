"""Payments vectors on the primitives: ticket hash, auxData, EV, signatures, misc."""

from __future__ import annotations

import pytest
from payments.pay_testkit import address_of_vectors, hx, ids, key_of_vectors, rat, section

from mediagw.eth.crypto import (
    SECP256K1_HALF_N,
    SignatureError,
    keccak256,
    personal_hash,
    recover_address,
)
from mediagw.payments.signer import LocalSigner
from mediagw.payments.tickets import MAX_WIN_PROB, Ticket, aux_data, expected_value


@pytest.mark.parametrize("case", section("ticket_hash"), ids=ids("ticket_hash"))
def test_ticket_hash(case: dict) -> None:
    ticket = Ticket(
        recipient=hx(case["recipient"]),
        sender=hx(case["sender"]),
        face_value=int(case["face_value"]),
        win_prob=int(case["win_prob"]),
        sender_nonce=int(case["sender_nonce"]),
        recipient_rand_hash=hx(case["recipient_rand_hash"]),
        creation_round=int(case["creation_round"]),
        creation_round_block_hash=hx(case["creation_round_block_hash"]),
    )
    assert ticket.aux_data == hx(case["aux_data"])
    assert ticket.preimage == hx(case["preimage"])
    assert ticket.hash == hx(case["expected_hash"])


@pytest.mark.parametrize("case", section("aux_data"), ids=ids("aux_data"))
def test_aux_data(case: dict) -> None:
    got = aux_data(int(case["creation_round"]), hx(case["creation_round_block_hash"]))
    assert got == hx(case["expected_aux_data"])


@pytest.mark.parametrize("case", section("ticket_ev"), ids=ids("ticket_ev"))
def test_ticket_ev(case: dict) -> None:
    ev = expected_value(int(case["face_value"]), int(case["win_prob"]))
    assert ev == rat(case["ev_exact"])
    assert round(ev) == int(case["ev_rounded_to_integer"])


@pytest.mark.parametrize("case", section("signature_recovery"), ids=ids("signature_recovery"))
def test_signature_recovery(case: dict) -> None:
    message, sig = hx(case["message"]), hx(case["signature"])
    if "personal_hash" in case:
        assert personal_hash(message) == hx(case["personal_hash"])
    if case["expected"] == "accept":
        assert recover_address(message, sig) == hx(case["expected_recovered_address"])
    else:
        with pytest.raises(SignatureError, match=case["expected_error"]):
            recover_address(message, sig)


@pytest.mark.parametrize("case", section("derived_signatures"), ids=ids("derived_signatures"))
async def test_local_signer_reproduces_derived_signatures(case: dict) -> None:
    signer = LocalSigner(key_of_vectors())
    assert signer.address == hx(case["signer"]) == address_of_vectors()
    digest = hx(case["digest"]) if "digest" in case else hx(case["ticket_hash"])
    if "flatten" in case:
        assert keccak256(hx(case["flatten"])) == digest
    sig = await signer.sign(digest)
    assert sig == hx(case["expected_signature"])
    assert recover_address(digest, sig) == signer.address


def test_misc() -> None:
    misc = {c["id"]: c for c in section("misc")}
    assert keccak256(b"") == hx(misc["keccak256_empty"]["expected"])
    assert int(misc["max_win_prob"]["expected"]) == MAX_WIN_PROB
    assert int(misc["secp256k1_half_n"]["expected"]) == SECP256K1_HALF_N
    assert int.from_bytes(hx(misc["secp256k1_half_n"]["expected_hex"]), "big") == SECP256K1_HALF_N
    # sender_first_nonce is checked in test_pay_sender.py (the first ticket carries nonce 1)
    assert int(misc["sender_first_nonce"]["expected"]) == 1
