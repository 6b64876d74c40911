"""Probabilistic micropayment tickets: hash, auxData, expected value, win check (payments spec §4).

Pure functions on integers and bytes; both the gateway (sender) and the reference orchestrator
(recipient) use them. The orchestrator side also finds here how it picks faceValue and winProb
(§4.5, go-livepeer ``pm/recipient.go``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mediagw.eth.crypto import keccak256

from .errors import InsufficientSenderReserve

__all__ = [
    "AVG_GAS_PRICE",
    "EV_MULTIPLIER",
    "MAX_WIN_PROB",
    "REDEEM_GAS_ARBITRUM",
    "REDEEM_GAS_L1",
    "TX_COST_MULTIPLIER",
    "Ticket",
    "aux_data",
    "expected_value",
    "face_value_and_win_prob",
    "face_value_for",
    "int_to_bytes",
    "is_winning",
    "pad32",
    "recipient_rand_hash",
    "tx_cost",
    "win_prob_for",
]

MAX_WIN_PROB = 2**256 - 1
TX_COST_MULTIPLIER = 100  # -txCostMultiplier default
EV_MULTIPLIER = 100  # faceValue floor = ticket EV x 100
AVG_GAS_PRICE = 3_000_000_000  # 3 gwei, go-livepeer's hard-coded "average" gas price
REDEEM_GAS_ARBITRUM = 1_200_000
REDEEM_GAS_L1 = 350_000


def pad32(value: int) -> bytes:
    """Unsigned 256-bit big-endian, left-padded (abi.encodePacked of a uint256)."""
    return value.to_bytes(32, "big")


def int_to_bytes(value: int) -> bytes:
    """Minimal unsigned big-endian; 0 -> empty bytes (how TicketParams carry big integers)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


def aux_data(creation_round: int, creation_round_block_hash: bytes) -> bytes:
    """Empty when the round is 0 and the block hash all zero; else pad32(round) || hash."""
    if creation_round == 0 and not any(creation_round_block_hash):
        return b""
    return pad32(creation_round) + creation_round_block_hash.rjust(32, b"\x00")


def expected_value(face_value: int, win_prob: int) -> Fraction:
    """EV = faceValue * winProb / (2^256 - 1), exact."""
    return Fraction(face_value * win_prob, MAX_WIN_PROB)


def recipient_rand_hash(recipient_rand: int) -> bytes:
    return keccak256(pad32(recipient_rand))


def is_winning(sig: bytes, recipient_rand: int, win_prob: int) -> bool:
    """uint256(keccak256(sig || pad32(recipientRand))) < winProb (only O knows recipientRand)."""
    return int.from_bytes(keccak256(sig + pad32(recipient_rand)), "big") < win_prob


@dataclass(frozen=True, slots=True)
class Ticket:
    recipient: bytes  # 20
    sender: bytes  # 20
    face_value: int
    win_prob: int
    sender_nonce: int
    recipient_rand_hash: bytes  # 32
    creation_round: int = 0
    creation_round_block_hash: bytes = bytes(32)

    @property
    def aux_data(self) -> bytes:
        return aux_data(self.creation_round, self.creation_round_block_hash)

    @property
    def preimage(self) -> bytes:
        """abi.encodePacked(recipient, sender, faceValue, winProb, senderNonce, rrHash, auxData)."""
        return b"".join(
            (
                self.recipient.rjust(20, b"\x00"),
                self.sender.rjust(20, b"\x00"),
                pad32(self.face_value),
                pad32(self.win_prob),
                pad32(self.sender_nonce),
                self.recipient_rand_hash.rjust(32, b"\x00"),
                self.aux_data,
            )
        )

    @property
    def hash(self) -> bytes:
        return keccak256(self.preimage)

    @property
    def ev(self) -> Fraction:
        return expected_value(self.face_value, self.win_prob)


# --- orchestrator side: choosing faceValue and winProb (payments spec §4.5) -------------------


def tx_cost(redeem_gas: int, gas_price: int) -> int:
    """Cost of redeeming one winning ticket: redeemGas x gas price (wei)."""
    return redeem_gas * gas_price


def face_value_for(
    *,
    ticket_ev: int,
    tx_cost: int,
    tx_cost_multiplier: int = TX_COST_MULTIPLIER,
    max_float: int | None,
    max_face_value: int = 0,
    avg_tx_cost: int | None = None,
) -> int:
    """go-livepeer recipient.faceValue.

    faceValue = tx_cost x multiplier, at least ticket_ev x 100; capped by the sender's max float
    (``None``: no cap known) and by ``max_face_value`` when > 0. Raises InsufficientSenderReserve
    when the result is below ticket_ev, or below the tx cost at both the current gas price
    (``tx_cost``) and the 3 gwei average (``avg_tx_cost`` = ``tx_cost(redeem_gas, AVG_GAS_PRICE)``;
    ``None`` checks the current cost only).
    """
    if min(ticket_ev, tx_cost, tx_cost_multiplier, max_face_value) < 0:
        raise ValueError("face value inputs must not be negative")
    face_value = tx_cost * tx_cost_multiplier
    if face_value < ticket_ev:
        face_value = ticket_ev * EV_MULTIPLIER
    if max_float is not None and face_value > max_float:
        face_value = max_float
    if max_face_value > 0 and face_value > max_face_value:
        face_value = max_face_value
    if face_value < ticket_ev:
        raise InsufficientSenderReserve
    avg = tx_cost if avg_tx_cost is None else avg_tx_cost
    if face_value < tx_cost and face_value < avg:
        raise InsufficientSenderReserve
    return face_value


def win_prob_for(face_value: int, ticket_ev: int) -> int:
    """go-livepeer recipient.winProb: 0 for faceValue 0, max for faceValue == EV, else
    EV x ceil((2^256 - 1) / faceValue)."""
    if face_value <= 0:
        return 0
    if face_value == ticket_ev:
        return MAX_WIN_PROB
    return ticket_ev * -(-MAX_WIN_PROB // face_value)


def face_value_and_win_prob(
    *,
    ticket_ev: int,
    tx_cost: int,
    tx_cost_multiplier: int = TX_COST_MULTIPLIER,
    max_float: int | None,
    max_face_value: int = 0,
    avg_tx_cost: int | None = None,
) -> tuple[int, int]:
    """(faceValue, winProb) an orchestrator advertises to a sender when its price is > 0.

    With price 0 an orchestrator advertises (0, 0) and never calls this.
    """
    face_value = face_value_for(
        ticket_ev=ticket_ev,
        tx_cost=tx_cost,
        tx_cost_multiplier=tx_cost_multiplier,
        max_float=max_float,
        max_face_value=max_face_value,
        avg_tx_cost=avg_tx_cost,
    )
    return face_value, win_prob_for(face_value, ticket_ev)
