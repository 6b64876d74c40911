"""A clock-driven stand-in for the chain reads an orchestrator makes (payments spec §7).

There is no chain in local development, so blocks advance with the clock:
``L1 block = base_block + floor(now / block_time)``, a round is ``round_length`` blocks, and a
round's block hash is a fixed non-zero keccak of the round number. Everything a gateway echoes
back (expiration block, creation round, block hash) is consistent across calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediagw.eth.crypto import keccak256
from mediagw.payments.tickets import pad32

from .config import Clock

__all__ = ["PARAMS_EXPIRATION_BLOCKS", "DevChain"]

PARAMS_EXPIRATION_BLOCKS = 40  # ticket params live 40 L1 blocks (pm/recipient.go)


@dataclass(frozen=True)
class DevChain:
    clock: Clock
    block_time: float = 12.0
    base_block: int = 0
    round_length: int = 5760

    def last_seen_l1_block(self) -> int:
        return self.base_block + int(self.clock() // self.block_time)

    def last_initialized_round(self) -> int:
        return self.last_seen_l1_block() // self.round_length

    @staticmethod
    def block_hash_for_round(round_number: int) -> bytes:
        return keccak256(b"mediagw dev chain round" + pad32(round_number))

    def expiration_params(self) -> tuple[int, bytes]:
        """(creation round, its block hash) for new ticket params."""
        round_number = self.last_initialized_round()
        return round_number, self.block_hash_for_round(round_number)

    def params_expiration_block(self) -> int:
        return self.last_seen_l1_block() + PARAMS_EXPIRATION_BLOCKS
