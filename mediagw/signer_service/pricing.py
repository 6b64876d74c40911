"""Price ceilings of the signer (live-AI spec §10.1, §10.3, §10.4).

- ``pipeline_models(caps)``: the (pipeline, model) pairs a Capabilities message constrains
  (``constraints.PerCapability[cap].models``), pipeline named by its capability number;
- ``configured_ceiling(caps, job)``: ``-maxPricePerUnit / -pixelsPerUnit``, or the
  ``-maxPricePerCapability`` entry of the job's pipeline/model (several: the lowest);
- ``price_over_ceiling(price, ceilings)``: the lowest of the given ceilings wins; the text names
  its source, as go-livepeer's ``checkRemotePaymentPrice`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from mediagw.livepeer.proto import net
from mediagw.payments.params import float_string
from mediagw.pool.prices import PriceCaps

__all__ = [
    "AI_PIPELINE_BY_CAPABILITY",
    "capability_strings",
    "configured_ceiling",
    "pipeline_models",
    "price_over_ceiling",
]

#: go-livepeer capability numbers of the AI pipelines and their names.
AI_PIPELINE_BY_CAPABILITY = {
    27: "text-to-image",
    28: "image-to-image",
    29: "image-to-video",
    30: "upscale",
    31: "audio-to-text",
    32: "segment-anything-2",
    33: "llm",
    34: "image-to-text",
    35: "live-video-to-video",
    36: "text-to-speech",
}
MAX_MODELS = 256


def pipeline_models(caps: net.Capabilities | None) -> list[tuple[str, str]]:
    """(pipeline, model) for every AI capability/model constrained in ``caps``."""
    if caps is None or not caps.HasField("constraints"):
        return []
    found: list[tuple[str, str]] = []
    for number, constraints in sorted(caps.constraints.PerCapability.items()):
        pipeline = AI_PIPELINE_BY_CAPABILITY.get(number)
        if pipeline is None:
            continue
        for model in sorted(constraints.models):
            found.append((pipeline, model))
            if len(found) >= MAX_MODELS:
                return found
    return found


def capability_strings(caps: net.Capabilities | None) -> list[str]:
    """``pipeline/model`` strings, the form ``/discover-orchestrators`` lists and filters by."""
    return [f"{p}/{m}" for p, m in pipeline_models(caps)]


def configured_ceiling(caps: PriceCaps, job: net.Capabilities | None) -> Fraction | None:
    pairs = pipeline_models(job)
    if not pairs:
        return caps.global_cap
    found = [c for p, m in pairs if (c := caps.max_price(p, m)) is not None]
    return min(found) if found else None


def price_over_ceiling(
    price: Fraction, ceilings: Iterable[tuple[str, Fraction | None]]
) -> str | None:
    """Why ``price`` is refused (the lowest ceiling, named by its source), or None."""
    effective: tuple[str, Fraction] | None = None
    for source, ceiling in ceilings:
        if ceiling is not None and (effective is None or ceiling < effective[1]):
            effective = (source, ceiling)
    if effective is not None and price > effective[1]:
        return (
            f"orchestrator price {float_string(price, 3)} exceeds {effective[0]} ceiling"
            f" {float_string(effective[1], 3)}"
        )
    return None
