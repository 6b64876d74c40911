"""Capabilities an orchestrator reports, and the compatibility test (transcode spec §3.3-3.4).

Bit n lives in ``bitstring[n // 64]`` at position ``n % 64``.

Without live models the O reports go-livepeer's default transcoding bits with AuthToken
mandatory. With live models (live-AI spec §2) it adds bit 35 (LiveVideoToVideo), ``capacities
[35]`` and ``constraints.PerCapability[35].models[<id>] = {warm, capacity, runnerVersion,
capacityInUse}``, and reports **no** mandatory bits, as go-livepeer 0.9.1 does: a live job
carries bit 35 only, so an AuthToken mandatory would make every live job incompatible.
"""

from __future__ import annotations

from collections.abc import Mapping

from mediagw.livepeer.capabilities import bitstring, version_compatible
from mediagw.livepeer.capabilities import compatible as _compatible
from mediagw.livepeer.proto import net

__all__ = [
    "DEFAULT_CAPABILITIES",
    "LIVE_VIDEO_TO_VIDEO",
    "MANDATORY_CAPABILITIES",
    "bitstring",
    "compatible",
    "live_models_asked",
    "orchestrator_capabilities",
    "version_compatible",
]

# go-livepeer DefaultCapabilities: H264 .. AuthToken (0-12), MPEG7VideoSignature, SegmentSlicing
DEFAULT_CAPABILITIES = (*range(13), 14, 26)
MANDATORY_CAPABILITIES = (12,)  # AuthToken: a job without it is refused (MandatoryOCapabilities)
LIVE_VIDEO_TO_VIDEO = 35


def orchestrator_capabilities(
    version: str,
    live_models: Mapping[str, bool] | None = None,
    *,
    live_capacity: int = 1,
    runner_version: str = "",
) -> net.Capabilities:
    """What this orchestrator reports: default bits, capacity 1 each; AuthToken mandatory unless
    live models are offered (then bit 35 and one model constraint per model)."""
    bits: tuple[int, ...] = DEFAULT_CAPABILITIES
    if live_models:
        bits = (*DEFAULT_CAPABILITIES, LIVE_VIDEO_TO_VIDEO)
    caps = net.Capabilities(bitstring=bitstring(bits), version=version)
    if not live_models:
        caps.mandatories.extend(bitstring(MANDATORY_CAPABILITIES))
    for cap in DEFAULT_CAPABILITIES:
        caps.capacities[cap] = 1
    caps.constraints.SetInParent()
    if live_models:
        caps.capacities[LIVE_VIDEO_TO_VIDEO] = live_capacity * len(live_models)
        per = caps.constraints.PerCapability[LIVE_VIDEO_TO_VIDEO]
        for model, warm in live_models.items():
            constraint = per.models[model]
            constraint.warm = warm
            constraint.capacity = live_capacity
            constraint.runnerVersion = runner_version
    return caps


def live_models_asked(job: net.Capabilities | None) -> list[str] | None:
    """The models a job constrains for capability 35, or None when it sets no such constraint
    (then GetOrchestrator does no live capacity check)."""
    if job is None or LIVE_VIDEO_TO_VIDEO not in job.constraints.PerCapability:
        return None
    return list(job.constraints.PerCapability[LIVE_VIDEO_TO_VIDEO].models)


def compatible(job: net.Capabilities | None, orch: net.Capabilities) -> bool:
    """Capabilities.CompatibleWith, as an orchestrator runs it on every request: a request
    without capabilities counts as empty ones, which lack the mandatory AuthToken."""
    return _compatible(job if job is not None else net.Capabilities(), orch)
