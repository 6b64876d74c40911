"""The orchestrators a stream may use: sources, discovery, price caps, selection, suspension.

Flow: a :class:`~.sources.Source` lists :class:`~mediagw.livepeer.candidates.Candidate` URLs;
:func:`~.discovery.discover` asks each for its OrchestratorInfo and keeps the acceptable ones as
:class:`~.session.OrchSession` objects; a :class:`~.selection.StreamSelector` per stream (and per
trust pool) picks the session for each segment, suspends failed ones and says when to discover
again.

The RPC client and the capability check are not imported here; the caller passes them in
(see :class:`~.discovery.FetchInfo` and :class:`~.discovery.Compatible`).
"""

from __future__ import annotations

from .discovery import Compatible, FetchInfo, acceptance_refusal, discover
from .prices import PriceCaps, price_jumped, price_of, price_refusal
from .selection import StreamSelector, latency_score
from .session import OrchSession
from .sources import Blocklist, Source, StaticSource, WebhookSource
from .suspension import Suspensions, penalty_for

__all__ = [
    "Blocklist",
    "Compatible",
    "FetchInfo",
    "OrchSession",
    "PriceCaps",
    "Source",
    "StaticSource",
    "StreamSelector",
    "Suspensions",
    "WebhookSource",
    "acceptance_refusal",
    "discover",
    "latency_score",
    "penalty_for",
    "price_jumped",
    "price_of",
    "price_refusal",
]
