"""Probabilistic micropayment tickets: hash, auxData, expected value, win check (payments spec §4).

Pure functions on integers and bytes; both the gateway (sender) and the reference orchestrator
(recipient) use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .crypto import keccak256

__all__ = [
    "MAX_WIN_PROB",
    "Ticket",
    "aux_data",
    "expected_value",
    "int_to_bytes",
    "is_winning",
    "pad32",
    "recipient_rand_hash",
]

MAX_WIN_PROB = 2**256 - 1


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
