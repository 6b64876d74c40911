"""Gateway-side checks before paying an orchestrator (payments spec §7, §8.1, §8.5).

- ``parse_ticket_params``: O's TicketParams as integers, with hard size limits (a hostile O
  cannot make us hash or sign something other than what it sent);
- ``validate_ticket_params``: go-livepeer ``pm/sender.go`` validateTicketParams, same order and
  texts; ``TicketParamsExpired`` means "refresh", every other error means "drop this O";
- ``validate_sender``: our own deposit / reserve / unlock state (ErrSenderValidation);
- ``check_price``: missing price, the 2x jump guard, and our price cap (never lets a price above
  the cap through, in any mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mediagw.livepeer.proto import net

from .errors import (
    FaceValueTooHigh,
    FaceValueTooLow,
    InvalidTicketParams,
    MissingPrice,
    PriceAboveCap,
    PriceJump,
    SenderValidationError,
    TicketEVTooHigh,
    TicketParamsExpired,
    TotalEVTooHigh,
)
from .tickets import MAX_WIN_PROB, expected_value

__all__ = [
    "DEFAULT_MAX_TICKET_EV",
    "DEFAULT_MAX_TOTAL_EV",
    "PARAMS_EXPIRY_BUFFER",
    "PRICE_INCREASE_THRESHOLD",
    "ParsedTicketParams",
    "SenderInfo",
    "check_price",
    "check_price_info",
    "float_string",
    "params_expired",
    "parse_ticket_params",
    "price_of",
    "validate_sender",
    "validate_ticket_params",
]

DEFAULT_MAX_TICKET_EV = 3_000_000_000_000  # -maxTicketEV, wei
DEFAULT_MAX_TOTAL_EV = 20_000_000_000_000  # -maxTotalEV, wei
PARAMS_EXPIRY_BUFFER = 1  # L1 blocks (pm/recipient.go paramsExpiryBuffer)
PRICE_INCREASE_THRESHOLD = 2  # server/segment_rpc.go priceIncreaseThreshold


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """TicketBroker.getSenderInfo: (deposit, withdrawRound), (fundsRemaining, claimedInCurrentRound)

    All in wei except ``withdraw_round`` (a round number, 0 = not unlocking)."""

    deposit: int
    withdraw_round: int
    reserve_funds_remaining: int
    reserve_claimed_in_current_round: int


@dataclass(frozen=True, slots=True)
class ParsedTicketParams:
    recipient: bytes  # 20
    face_value: int
    win_prob: int
    recipient_rand_hash: bytes  # 32
    seed: int
    expiration_block: int
    creation_round: int  # 0 when O sent no expiration params
    creation_round_block_hash: bytes  # 32, zero when absent

    @property
    def ev(self) -> Fraction:
        return expected_value(self.face_value, self.win_prob)


def _uint(name: str, raw: bytes) -> int:
    if len(raw) > 32:
        raise InvalidTicketParams(f"ticketParams {name} is longer than 32 bytes")
    return int.from_bytes(raw, "big")


def parse_ticket_params(params: net.TicketParams) -> ParsedTicketParams:
    """Integers and fixed-size fields of O's TicketParams; rejects anything that does not fit."""
    if len(params.recipient) != 20:
        raise InvalidTicketParams("ticketParams recipient must be 20 bytes")
    if len(params.recipient_rand_hash) != 32:
        raise InvalidTicketParams("ticketParams recipient_rand_hash must be 32 bytes")
    win_prob = _uint("win_prob", params.win_prob)
    if win_prob > MAX_WIN_PROB:  # unreachable with <= 32 bytes, kept for clarity
        raise InvalidTicketParams("ticketParams win_prob exceeds 2^256 - 1")
    creation_round, block_hash = 0, bytes(32)
    if params.HasField("expiration_params"):
        exp = params.expiration_params
        if exp.creation_round < 0:
            raise InvalidTicketParams("ticketParams creation_round is negative")
        if len(exp.creation_round_block_hash) > 32:
            raise InvalidTicketParams("ticketParams creation_round_block_hash exceeds 32 bytes")
        creation_round = exp.creation_round
        block_hash = exp.creation_round_block_hash.rjust(32, b"\x00")
    return ParsedTicketParams(
        recipient=params.recipient,
        face_value=_uint("face_value", params.face_value),
        win_prob=win_prob,
        recipient_rand_hash=params.recipient_rand_hash,
        seed=_uint("seed", params.seed),
        expiration_block=_uint("expiration_block", params.expiration_block),
        creation_round=creation_round,
        creation_round_block_hash=block_hash,
    )


def float_string(value: Fraction, prec: int = 5) -> str:
    """Go ``big.Rat.FloatString(prec)``: fixed decimals, halves rounded away from zero."""
    scale = 10**prec
    scaled = abs(value) * scale
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    sign = "-" if value < 0 else ""
    if prec == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole // scale}.{whole % scale:0{prec}d}"


def params_expired(expiration_block: int, last_l1_block: int) -> bool:
    """G's rule: usable while expiration_block - last L1 block > 1 (§7)."""
    return expiration_block - last_l1_block <= PARAMS_EXPIRY_BUFFER


def validate_ticket_params(
    params: net.TicketParams | ParsedTicketParams,
    *,
    last_l1_block: int | None,
    max_ticket_ev: Fraction | int = DEFAULT_MAX_TICKET_EV,
    deposit: int | None,
    deposit_multiplier: int = 1,
    num_tickets: int = 1,
    max_total_ev: Fraction | int | None = None,
) -> ParsedTicketParams:
    """go-livepeer validateTicketParams. ``last_l1_block``/``deposit`` None skip those checks
    (no chain reader); ``max_total_ev`` None skips the total check. Returns the parsed params."""
    p = params if isinstance(params, ParsedTicketParams) else parse_ticket_params(params)
    if p.expiration_block == 0:
        raise InvalidTicketParams("ticketParams expiration block is 0")
    if last_l1_block is not None and params_expired(p.expiration_block, last_l1_block):
        raise TicketParamsExpired
    ev = p.ev
    if ev <= 0:
        return p
    if ev >= p.face_value:
        raise FaceValueTooLow(f"ticket faceValue too low faceValue={p.face_value}")
    if ev > max_ticket_ev:
        raise TicketEVTooHigh(
            f"ticket EV {float_string(ev)} > max ticket EV {float_string(Fraction(max_ticket_ev))}"
        )
    if max_total_ev is not None and ev * num_tickets > max_total_ev:
        raise TotalEVTooHigh(
            f"total ticket EV {float_string(ev * num_tickets)} for {num_tickets} tickets"
            f" > max total ticket EV {float_string(Fraction(max_total_ev))}"
        )
    if deposit is not None:
        if deposit_multiplier < 1:
            raise ValueError("deposit_multiplier must be >= 1")
        max_face_value = deposit // deposit_multiplier
        if p.face_value > max_face_value:
            raise FaceValueTooHigh(
                f"ticket faceValue {p.face_value} > max faceValue {max_face_value}"
            )
    return p


def validate_sender(info: SenderInfo, *, last_initialized_round: int) -> None:
    """Our own account can back tickets: not unlocking, reserve > 0, deposit > 0."""
    if info.withdraw_round != 0 and info.withdraw_round <= last_initialized_round + 1:
        raise SenderValidationError(
            "unable to validate sender: deposit and reserve is set to unlock soon"
        )
    if info.reserve_funds_remaining == 0:
        raise SenderValidationError("no sender reserve")
    if info.deposit == 0:
        raise SenderValidationError("no sender deposit")


def price_of(price_info: net.PriceInfo | None) -> Fraction | None:
    """pricePerUnit / pixelsPerUnit; None when absent; MissingPrice when unusable."""
    if price_info is None:
        return None
    if price_info.pixelsPerUnit == 0:
        raise MissingPrice("pixels per unit is 0")
    if price_info.pixelsPerUnit < 0 or price_info.pricePerUnit < 0:
        raise MissingPrice(
            f"invalid orchestrator price {price_info.pricePerUnit}/{price_info.pixelsPerUnit}"
        )
    return Fraction(price_info.pricePerUnit, price_info.pixelsPerUnit)


def check_price_info(
    price_info: net.PriceInfo | None, *, initial: Fraction | None, cap: Fraction | None
) -> Fraction:
    """The price to pay, or PriceRejected. ``cap`` None: no cap; a cap of 0 admits free Os only."""
    price = price_of(price_info)
    if price is None:
        raise MissingPrice("missing orchestrator price")
    if initial is not None and price > initial * PRICE_INCREASE_THRESHOLD:
        raise PriceJump(
            "Orchestrator price has more than doubled, "
            f"Orchestrator price: {price}, Orchestrator initial price: {initial}"
        )
    if cap is not None and price > cap:
        raise PriceAboveCap(
            f"orchestrator price {price} wei/pixel is above the maximum {cap} wei/pixel"
        )
    return price


def check_price(
    info: net.OrchestratorInfo, *, initial: Fraction | None, cap: Fraction | None
) -> Fraction:
    """``check_price_info`` on ``info.price_info`` (absent field = missing price)."""
    return check_price_info(
        info.price_info if info.HasField("price_info") else None, initial=initial, cap=cap
    )
