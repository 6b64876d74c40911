"""Ticket-param validation and price guards (payments spec §7, §8.1, §8.5)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mediagw.livepeer.proto import net
from mediagw.payments.errors import (
    FaceValueTooHigh,
    FaceValueTooLow,
    InvalidTicketParams,
    MissingPrice,
    NeedsRefresh,
    PriceAboveCap,
    PriceJump,
    PriceRejected,
    SenderValidationError,
    TicketEVTooHigh,
    TicketParamsExpired,
    TicketParamsRejected,
    TotalEVTooHigh,
)
from mediagw.payments.params import (
    DEFAULT_MAX_TICKET_EV,
    DEFAULT_MAX_TOTAL_EV,
    SenderInfo,
    check_price,
    float_string,
    params_expired,
    parse_ticket_params,
    validate_sender,
    validate_ticket_params,
)
from mediagw.payments.tickets import MAX_WIN_PROB, int_to_bytes

HALF = MAX_WIN_PROB // 2 + 1  # EV = faceValue / 2 (a hair above)


def params(
    face_value: int = 1000, win_prob: int = HALF, expiration_block: int = 100
) -> net.TicketParams:
    return net.TicketParams(
        recipient=b"\x11" * 20,
        face_value=int_to_bytes(face_value),
        win_prob=int_to_bytes(win_prob),
        recipient_rand_hash=b"\x22" * 32,
        seed=b"\x33" * 32,
        expiration_block=int_to_bytes(expiration_block),
        expiration_params=net.TicketExpirationParams(
            creation_round=7, creation_round_block_hash=b"\x44" * 32
        ),
    )


def check(p: net.TicketParams, **kw: object) -> None:
    args: dict = {"last_l1_block": 10, "deposit": None} | kw
    validate_ticket_params(p, **args)


def test_defaults() -> None:
    assert DEFAULT_MAX_TICKET_EV == 3_000_000_000_000
    assert DEFAULT_MAX_TOTAL_EV == 20_000_000_000_000


def test_parse() -> None:
    p = parse_ticket_params(params())
    assert (p.face_value, p.win_prob, p.expiration_block) == (1000, HALF, 100)
    assert (p.creation_round, p.creation_round_block_hash) == (7, b"\x44" * 32)
    bare = params()
    bare.ClearField("expiration_params")
    assert parse_ticket_params(bare).creation_round_block_hash == bytes(32)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipient", b"\x11" * 21),
        ("recipient", b""),
        ("recipient_rand_hash", b"\x22" * 31),
        ("face_value", b"\x01" * 33),
        ("win_prob", b"\x01" * 33),
        ("seed", b"\x01" * 33),
        ("expiration_block", b"\x01" * 33),
    ],
)
def test_malformed_params_are_rejected(field: str, value: bytes) -> None:
    p = params()
    setattr(p, field, value)
    with pytest.raises(InvalidTicketParams):
        parse_ticket_params(p)


def test_malformed_expiration_params() -> None:
    p = params()
    p.expiration_params.creation_round = -1
    with pytest.raises(InvalidTicketParams):
        parse_ticket_params(p)
    p = params()
    p.expiration_params.creation_round_block_hash = b"\x01" * 33
    with pytest.raises(InvalidTicketParams):
        parse_ticket_params(p)


def test_expiration() -> None:
    assert params_expired(100, 99) and params_expired(100, 100) and params_expired(100, 200)
    assert not params_expired(100, 98)
    check(params(), last_l1_block=98)
    with pytest.raises(TicketParamsExpired, match="TicketParams expired") as info:
        check(params(), last_l1_block=99)
    assert isinstance(info.value, NeedsRefresh)
    assert not isinstance(info.value, TicketParamsRejected)
    with pytest.raises(InvalidTicketParams, match="ticketParams expiration block is 0"):
        check(params(expiration_block=0), last_l1_block=None)
    check(params(), last_l1_block=None)  # no chain reader: expiry not checked


def test_face_value_too_low() -> None:
    with pytest.raises(FaceValueTooLow, match="ticket faceValue too low faceValue=1000"):
        check(params(win_prob=MAX_WIN_PROB))
    check(params(face_value=0, win_prob=0))  # EV 0: nothing else checked
    check(params(face_value=0, win_prob=MAX_WIN_PROB), max_ticket_ev=0)


def test_ticket_ev_too_high() -> None:
    check(params(face_value=1000), max_ticket_ev=501)
    with pytest.raises(TicketEVTooHigh, match=r"^ticket EV 500.00000 > max ticket EV 499.00000$"):
        check(params(face_value=1000), max_ticket_ev=499)
    with pytest.raises(TicketEVTooHigh):
        check(params(face_value=1000), max_ticket_ev=Fraction(500))  # EV is a hair above 500


def test_total_ev() -> None:
    check(params(face_value=1000), num_tickets=3, max_total_ev=1501)
    with pytest.raises(
        TotalEVTooHigh, match=r"total ticket EV 1500.00000 for 3 tickets > max total ticket EV 1000"
    ):
        check(params(face_value=1000), num_tickets=3, max_total_ev=1000)


def test_deposit() -> None:
    check(params(face_value=1000), deposit=1000)
    check(params(face_value=1000), deposit=2000, deposit_multiplier=2)
    with pytest.raises(FaceValueTooHigh, match="ticket faceValue 1000 > max faceValue 999"):
        check(params(face_value=1000), deposit=1999, deposit_multiplier=2)


def test_validate_sender() -> None:
    ok = SenderInfo(
        deposit=10, withdraw_round=0, reserve_funds_remaining=5, reserve_claimed_in_current_round=0
    )
    validate_sender(ok, last_initialized_round=100)
    validate_sender(SenderInfo(10, 102, 5, 0), last_initialized_round=100)
    with pytest.raises(SenderValidationError, match="set to unlock soon"):
        validate_sender(SenderInfo(10, 101, 5, 0), last_initialized_round=100)
    with pytest.raises(SenderValidationError, match="no sender reserve"):
        validate_sender(SenderInfo(10, 0, 0, 0), last_initialized_round=100)
    with pytest.raises(SenderValidationError, match="no sender deposit"):
        validate_sender(SenderInfo(0, 0, 5, 0), last_initialized_round=100)


def info_with_price(price_per_unit: int | None, pixels_per_unit: int = 1) -> net.OrchestratorInfo:
    info = net.OrchestratorInfo(transcoder="https://o.example:8935")
    if price_per_unit is not None:
        info.price_info.CopyFrom(
            net.PriceInfo(pricePerUnit=price_per_unit, pixelsPerUnit=pixels_per_unit)
        )
    return info


def test_check_price() -> None:
    assert check_price(info_with_price(3, 2), initial=None, cap=None) == Fraction(3, 2)
    assert check_price(info_with_price(0), initial=None, cap=Fraction(0)) == 0
    with pytest.raises(MissingPrice, match="missing orchestrator price"):
        check_price(info_with_price(None), initial=None, cap=None)
    with pytest.raises(MissingPrice, match="pixels per unit is 0"):
        check_price(info_with_price(1, 0), initial=None, cap=None)
    for bad in ((-1, 1), (1, -1)):
        with pytest.raises(MissingPrice):
            check_price(info_with_price(*bad), initial=None, cap=None)


def test_price_jump() -> None:
    assert check_price(info_with_price(4), initial=Fraction(2), cap=None) == 4
    with pytest.raises(
        PriceJump,
        match="Orchestrator price has more than doubled, "
        "Orchestrator price: 9/2, Orchestrator initial price: 2",
    ):
        check_price(info_with_price(9, 2), initial=Fraction(2), cap=None)


@pytest.mark.parametrize(
    ("ppu", "pixels", "cap"),
    [
        (1001, 1000, Fraction(1)),
        (1, 1, Fraction(0)),
        (2**62, 1, Fraction(2**62 - 1)),
        (3, 1, Fraction(299999, 100000)),
    ],
)
def test_price_above_cap_never_passes(ppu: int, pixels: int, cap: Fraction) -> None:
    with pytest.raises(PriceAboveCap) as info:
        check_price(info_with_price(ppu, pixels), initial=None, cap=cap)
    assert isinstance(info.value, PriceRejected)


def test_price_at_cap_passes() -> None:
    assert check_price(info_with_price(1000, 1000), initial=None, cap=Fraction(1)) == 1


def test_float_string() -> None:
    assert float_string(Fraction(1, 3)) == "0.33333"
    assert float_string(Fraction(2, 3)) == "0.66667"
    assert float_string(Fraction(1, 200000)) == "0.00001"  # half away from zero
    assert float_string(Fraction(-1, 200000)) == "-0.00001"
    assert float_string(Fraction(-1, 10**9)) == "-0.00000"  # as Go prints it
    assert float_string(Fraction(7), 0) == "7"
