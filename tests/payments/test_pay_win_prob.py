"""Orchestrator-side faceValue / winProb choice (payments spec §4.5, vector win_prob)."""

from __future__ import annotations

import pytest
from payments.pay_testkit import rat, section

from mediagw.errors import MediaGWError
from mediagw.payments.errors import InsufficientSenderReserve, PaymentError
from mediagw.payments.tickets import (
    AVG_GAS_PRICE,
    MAX_WIN_PROB,
    expected_value,
    face_value_and_win_prob,
    face_value_for,
    tx_cost,
    win_prob_for,
)

CASES = {c["id"]: c for c in section("win_prob")}


def test_recipient_ticket_params_vector() -> None:
    c = CASES["recipient_ticket_params"]
    fv, wp = face_value_and_win_prob(
        ticket_ev=int(c["orchestrator_ticket_ev"]),
        tx_cost=tx_cost(int(c["redeem_gas"]), int(c["gas_price"])),
        tx_cost_multiplier=int(c["tx_cost_multiplier"]),
        max_float=int(c["sender_max_float"]),
    )
    assert fv == int(c["expected_face_value"])
    assert wp == int(c["expected_win_prob"])
    assert expected_value(fv, wp) == rat(c["ev_exact"])


@pytest.mark.parametrize("case_id", ["win_prob_face_value_equals_ev", "win_prob_zero_face_value"])
def test_derived_win_prob_edges(case_id: str) -> None:
    c = CASES[case_id]
    assert win_prob_for(int(c["face_value"]), int(c["orchestrator_ticket_ev"])) == int(
        c["expected_win_prob"]
    )


def test_win_prob_exact_division() -> None:
    # (2^256 - 1) = 3 * 5 * 17 * 257 * ...: divisible by 5, no rounding up
    assert win_prob_for(5, 1) == MAX_WIN_PROB // 5
    assert win_prob_for(7, 2) == 2 * (MAX_WIN_PROB // 7 + 1)


def test_face_value_rules() -> None:
    # tx cost too small: EV x 100
    assert face_value_for(ticket_ev=1000, tx_cost=1, max_float=None) == 100_000
    # capped by max float, then by -maxFaceValue
    assert face_value_for(ticket_ev=10, tx_cost=1000, max_float=50_000) == 50_000
    assert (
        face_value_for(ticket_ev=10, tx_cost=1000, max_float=None, max_face_value=20_000) == 20_000
    )
    # max_face_value 0 = no cap
    assert face_value_for(ticket_ev=10, tx_cost=1000, max_float=None, max_face_value=0) == 100_000


def test_insufficient_sender_reserve() -> None:
    with pytest.raises(InsufficientSenderReserve, match="insufficient sender reserve") as info:
        face_value_for(ticket_ev=1000, tx_cost=1, max_float=999)
    assert isinstance(info.value, PaymentError) and isinstance(info.value, MediaGWError)
    # below the current tx cost and below the 3 gwei average cost: refused
    gas = 1_200_000
    with pytest.raises(InsufficientSenderReserve):
        face_value_for(
            ticket_ev=1,
            tx_cost=tx_cost(gas, 10 * AVG_GAS_PRICE),
            max_float=tx_cost(gas, AVG_GAS_PRICE) - 1,
            avg_tx_cost=tx_cost(gas, AVG_GAS_PRICE),
        )
    # below the current cost but covering the average cost: accepted
    fv = face_value_for(
        ticket_ev=1,
        tx_cost=tx_cost(gas, 10 * AVG_GAS_PRICE),
        max_float=tx_cost(gas, AVG_GAS_PRICE),
        avg_tx_cost=tx_cost(gas, AVG_GAS_PRICE),
    )
    assert fv == tx_cost(gas, AVG_GAS_PRICE)
    with pytest.raises(ValueError):
        face_value_for(ticket_ev=-1, tx_cost=1, max_float=None)
