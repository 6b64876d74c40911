"""An orchestrator to ask for its OrchestratorInfo: its discovery URL, trust score and region tag.

The entries of ``-orchAddr``, of the discovery webhook's JSON array and of a remote signer's
``/discover-orchestrators`` (go-livepeer ``common.OrchestratorLocalInfo``: URL and score). A score
of ``TRUSTED_SCORE`` (``common.Score_Trusted``) marks a trusted orchestrator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TRUSTED_SCORE", "Candidate", "usable_score"]

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


def usable_score(value: object) -> bool:
    """A score from JSON a candidate can carry: a finite number (no bool, no int past a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past a float's range
        return False
