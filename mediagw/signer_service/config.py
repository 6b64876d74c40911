"""Configuration of the remote signer service: one dataclass, time and randomness injected."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from mediagw.payments.chain import ChainReader
from mediagw.payments.params import DEFAULT_MAX_TICKET_EV, DEFAULT_MAX_TOTAL_EV
from mediagw.payments.signer import LocalSigner
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import Source

__all__ = ["DEFAULT_DISCOVERY_INTERVAL", "DEFAULT_PORT", "SignerConfig"]

DEFAULT_PORT = 7936
DEFAULT_DISCOVERY_INTERVAL = 25 * 60.0  # -liveAICapReportInterval


@dataclass
class SignerConfig:
    # the ETH key that signs tickets, SegData, OrchestratorRequest and states: raw, or a signer
    private_key: bytes = b""
    signer: LocalSigner | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 = ephemeral
    caps: PriceCaps = field(default_factory=PriceCaps)
    max_ticket_ev: Fraction | int = DEFAULT_MAX_TICKET_EV
    max_total_ev: Fraction | int = DEFAULT_MAX_TOTAL_EV
    webhook_url: str = ""  # -remoteSignerWebhookUrl ("" = no auth webhook)
    webhook_headers: dict[str, str] = field(default_factory=dict)
    webhook_timeout: float = 5.0
    discovery: bool = False  # -remoteDiscovery: serve GET /discover-orchestrators
    sources: Sequence[Source] = ()  # -orchAddr / -orchWebhookUrl
    discovery_interval: float = DEFAULT_DISCOVERY_INTERVAL
    discovery_timeout: float = 6.0  # per GetOrchestrator call during a refresh
    discovery_retry_interval: float = 5.0  # empty snapshot: refresh on a request at most this often
    chain: ChainReader | None = None  # L1 block for the ticket params expiry check
    clock_ns: Callable[[], int] = time.time_ns  # unix nanoseconds
    rand: Callable[[int], bytes] = os.urandom
    crypto_workers: int = 2
    # hard limits
    max_body_bytes: int = 1 << 20
    max_tickets: int = 100
    max_webhook_body_bytes: int = 1 << 20
