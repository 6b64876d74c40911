"""Capabilities an orchestrator reports, and the compatibility test (transcode spec §3.3-3.4).

Bit n lives in ``bitstring[n // 64]`` at position ``n % 64``.
"""

from __future__ import annotations

from mediagw.livepeer.capabilities import bitstring, version_compatible
from mediagw.livepeer.capabilities import compatible as _compatible
from mediagw.livepeer.proto import net

__all__ = [
    "DEFAULT_CAPABILITIES",
    "MANDATORY_CAPABILITIES",
    "bitstring",
    "compatible",
    "orchestrator_capabilities",
    "version_compatible",
]

# go-livepeer DefaultCapabilities: H264 .. AuthToken (0-12), MPEG7VideoSignature, SegmentSlicing
DEFAULT_CAPABILITIES = (*range(13), 14, 26)
MANDATORY_CAPABILITIES = (12,)  # AuthToken: a job without it is refused (MandatoryOCapabilities)


def orchestrator_capabilities(version: str) -> net.Capabilities:
    """What this orchestrator reports: default bits, AuthToken mandatory, capacity 1 each."""
    caps = net.Capabilities(
        bitstring=bitstring(DEFAULT_CAPABILITIES),
        mandatories=bitstring(MANDATORY_CAPABILITIES),
        version=version,
    )
    for cap in DEFAULT_CAPABILITIES:
        caps.capacities[cap] = 1
    caps.constraints.SetInParent()
    return caps


def compatible(job: net.Capabilities | None, orch: net.Capabilities) -> bool:
    """Capabilities.CompatibleWith, as an orchestrator runs it on every request: a request
    without capabilities counts as empty ones, which lack the mandatory AuthToken."""
    return _compatible(job if job is not None else net.Capabilities(), orch)
