"""A reference Livepeer orchestrator for local development, demos and tests.

It behaves on the wire as go-livepeer does (specs: livepeer-transcode.md, livepeer-payments.md):
one TLS port with gRPC (GetOrchestrator, EndTranscodingSession, Ping) and HTTP (/segment,
/payment, /stream/..., plus /stats for tests), off-chain or priced (tickets verified, results
signed), CPU transcoding with PyAV, and fault switches for failover tests. The gateway never
imports this package.

    async with ReferenceOrchestrator(OrchestratorConfig(priced=True, price_per_unit=1)) as o:
        ...  # o.url, o.stats, o.config.faults
"""

from __future__ import annotations

from .config import Faults, OrchestratorConfig
from .main import run_orchestrator
from .server import ReferenceOrchestrator
from .stats import OrchestratorStats

__all__ = [
    "Faults",
    "OrchestratorConfig",
    "OrchestratorStats",
    "ReferenceOrchestrator",
    "run_orchestrator",
]
