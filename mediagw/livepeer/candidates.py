"""An orchestrator to ask for its OrchestratorInfo: its discovery URL, trust score and region tag.

The entries of ``-orchAddr``, of the discovery webhook's JSON array and of a remote signer's
``/discover-orchestrators`` (go-livepeer ``common.OrchestratorLocalInfo``: URL and score). A score
of ``TRUSTED_SCORE`` (``common.Score_Trusted``) marks a trusted orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TRUSTED_SCORE", "Candidate"]

#: Score of a trusted orchestrator (go-livepeer ``common.Score_Trusted``).
TRUSTED_SCORE = 1.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An orchestrator discovery may query: its discovery URL, trust score and region tag."""

    url: str
    score: float
    region: str = ""

    @property
    def trusted(self) -> bool:
        return self.score >= TRUSTED_SCORE
