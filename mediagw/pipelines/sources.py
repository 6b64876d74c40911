"""Orchestrator sources that join two packages: the remote signer's ``/discover-orchestrators``
(``payments.remote``) as a pool ``Source`` (``pool.sources``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..livepeer.candidates import Candidate
from ..payments.remote import RemoteSigner, SignerError

__all__ = ["SignerDiscoverySource"]

# the remote signer client's logger: its warnings keep the name they always had
log = logging.getLogger("mediagw.payments.remote")


class SignerDiscoverySource:
    """The signer's ``/discover-orchestrators`` as a pool ``Source``; errors give no candidates."""

    def __init__(self, signer: RemoteSigner, caps: Sequence[str] = ()) -> None:
        self.signer = signer
        self.caps = list(caps)

    async def candidates(self) -> list[Candidate]:
        try:
            return await self.signer.discover_orchestrators(self.caps)
        except SignerError as exc:
            log.warning("remote signer discovery failed", extra={"error": str(exc)})
            return []
