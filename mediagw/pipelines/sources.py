"""Orchestrator sources that join two packages: the remote signer's ``/discover-orchestrators``
(``payments.remote``) as a pool ``Source`` (``pool.sources``).

The signer's addresses are checked like ``-orchAddr`` entries (``normalize``: scheme, host,
port, length; private addresses allowed, orchestrators often are on private networks): a bad
entry is skipped and logged, the others are kept."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..errors import ConfigError
from ..livepeer.candidates import Candidate
from ..payments.remote import RemoteSigner, SignerError

__all__ = ["SignerDiscoverySource"]

# the remote signer client's logger: its warnings keep the name they always had
log = logging.getLogger("mediagw.payments.remote")


class SignerDiscoverySource:
    """The signer's ``/discover-orchestrators`` as a pool ``Source``; errors give no candidates."""

    def __init__(
        self,
        signer: RemoteSigner,
        caps: Sequence[str] = (),
        normalize: Callable[[str], str] | None = None,
    ) -> None:
        self.signer = signer
        self.caps = list(caps)
        self.normalize = normalize

    async def candidates(self) -> list[Candidate]:
        try:
            found = await self.signer.discover_orchestrators(self.caps)
        except SignerError as exc:
            log.warning("remote signer discovery failed", extra={"error": str(exc)})
            return []
        return found if self.normalize is None else self._checked(found, self.normalize)

    def _checked(self, found: list[Candidate], normalize: Callable[[str], str]) -> list[Candidate]:
        kept: list[Candidate] = []
        seen: set[str] = set()
        skipped: list[str] = []
        for candidate in found:
            try:
                url = normalize(candidate.url)
            except ConfigError as exc:
                skipped.append(str(exc))
                continue
            if url not in seen:
                seen.add(url)
                kept.append(Candidate(url, candidate.score, candidate.region))
        if skipped:
            log.warning(
                "remote signer discovery: skipped malformed orchestrator addresses",
                extra={"skipped": len(skipped), "entries": "; ".join(skipped[:10])[:2000]},
            )
        return kept
