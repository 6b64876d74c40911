"""Job capabilities of a live video-to-video stream (live-ai spec §2).

Bit 35 only; ``capacities {35: 1}``; ``constraints.PerCapability[35].models[model] = {warm,
runnerVersion}`` and ``constraints.minVersion``. go-livepeer queries a warm pool (warm=true)
and a cold pool (warm=false).

``capacities`` is not optional: the orchestrator ignores it when matching capabilities but
**prices** by it. go-livepeer's ``priceInfo`` sums the per-model prices of the capabilities
listed in ``capacities`` that also carry ``PerCapability`` constraints; with none it quotes its
transcoding price (often 100x the live price) in GetOrchestrator, and every live payment would
be computed from that quote. ``version`` is left out (the orchestrator ignores it).
"""

from __future__ import annotations

from mediagw.livepeer.capabilities import Capability, bitstring
from mediagw.livepeer.proto import net

__all__ = ["DEFAULT_MODEL", "PIPELINE", "lv2v_capabilities"]

PIPELINE = "live-video-to-video"
DEFAULT_MODEL = "noop"


def lv2v_capabilities(
    model: str = DEFAULT_MODEL,
    *,
    warm: bool = True,
    runner_version: str = "",
    min_version: str = "",
) -> net.Capabilities:
    """The capabilities sent wherever a live job is described: GetOrchestrator, the SegData of
    the start request and of every ``/payment``, and the remote signer's ``capabilities``."""
    if not model:
        raise ValueError("a live video-to-video job needs a model id")
    cap = int(Capability.LIVE_VIDEO_TO_VIDEO)
    caps = net.Capabilities(bitstring=bitstring([cap]))
    caps.capacities[cap] = 1
    caps.constraints.SetInParent()
    caps.constraints.minVersion = min_version
    per = caps.constraints.PerCapability[cap]
    per.models[model].warm = warm
    per.models[model].runnerVersion = runner_version
    return caps
