"""Job capabilities of a live video-to-video stream (live-ai spec §2).

Bit 35 only; ``constraints.PerCapability[35].models[model] = {warm, runnerVersion}`` and
``constraints.minVersion``. go-livepeer queries a warm pool (warm=true) and a cold pool
(warm=false); ``capacities`` and ``version`` are left out (the orchestrator ignores both).
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
    """The capabilities sent in GetOrchestrator and in the start request's SegData."""
    if not model:
        raise ValueError("a live video-to-video job needs a model id")
    caps = net.Capabilities(bitstring=bitstring([Capability.LIVE_VIDEO_TO_VIDEO]))
    caps.constraints.SetInParent()
    caps.constraints.minVersion = min_version
    per = caps.constraints.PerCapability[int(Capability.LIVE_VIDEO_TO_VIDEO)]
    per.models[model].warm = warm
    per.models[model].runnerVersion = runner_version
    return caps
