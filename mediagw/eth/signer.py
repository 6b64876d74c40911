"""The ``Signer`` seam (ARCHITECTURE.md): who personal-signs 32-byte digests (payments spec §2).

A signer has ``address`` (20 bytes, all zero off-chain), ``offchain`` and ``async sign(digest)``;
a ``BatchSigner`` also signs a whole ticket batch in one call (``sign_many``). The key signers
(``LocalSigner``, ``OffchainSigner``) and keystore loading are in ``mediagw.payments.signer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["BatchSigner", "Signer"]


@runtime_checkable
class Signer(Protocol):
    address: bytes
    offchain: bool

    async def sign(self, digest: bytes) -> bytes: ...


@runtime_checkable
class BatchSigner(Signer, Protocol):
    async def sign_many(self, digests: Sequence[bytes]) -> list[bytes]: ...
