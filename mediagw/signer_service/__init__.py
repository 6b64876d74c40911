"""The remote signer service (live-AI spec §10): holds the ETH key and deposit, signs
OrchestratorRequests and live payments for gateways that hold no key, keeps no per-stream state
(the gateway echoes a signed state blob), asks an auth webhook before paying, and optionally
lists orchestrators for gateways (``/discover-orchestrators``).

    config = SignerConfig(private_key=key, port=0)
    async with SignerServer(config) as server:
        ...                                   # server.url
    exit_code = await run_signer(["-httpAddr", "127.0.0.1:7936", "-devKey"])
"""

from __future__ import annotations

from .app import SignerServer, SignerService, build_app
from .config import SignerConfig
from .errors import RequestFailed, SignerServiceError
from .main import run_signer

__all__ = [
    "RequestFailed",
    "SignerConfig",
    "SignerServer",
    "SignerService",
    "SignerServiceError",
    "build_app",
    "run_signer",
]
