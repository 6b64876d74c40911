"""A reference Livepeer orchestrator for local development, demos and tests.

It behaves on the wire as go-livepeer does (specs: livepeer-transcode.md, livepeer-payments.md):
one TLS port with gRPC (GetOrchestrator, EndTranscodingSession, Ping) and HTTP (/segment,
/payment, /stream/..., plus /stats for tests), off-chain or priced (tickets verified, results
signed), CPU transcoding with PyAV, and fault switches for failover tests. With
``live_models`` set it also runs live video-to-video (capability 35): ``POST
/live-video-to-video``, trickle channels under ``/ai/trickle/``, an in-process CPU "runner" and
live payment accounting (see ``live``). The gateway never imports this package.

    async with ReferenceOrchestrator(OrchestratorConfig(priced=True, price_per_unit=1)) as o:
        ...  # o.url, o.stats, o.config.faults
"""

from __future__ import annotations

from .config import DEFAULT_LIVE_MODELS, Faults, OrchestratorConfig
from .main import run_orchestrator
from .server import ReferenceOrchestrator
from .stats import OrchestratorStats

__all__ = [
    "DEFAULT_LIVE_MODELS",
    "Faults",
    "OrchestratorConfig",
    "OrchestratorStats",
    "ReferenceOrchestrator",
    "run_orchestrator",
]
