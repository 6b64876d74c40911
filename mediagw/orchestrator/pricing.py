"""How the reference orchestrator prices a request, as go-livepeer 0.9.1 does (transcode spec
§4.4; go-livepeer ``core/orchestrator.go`` priceInfo, ``server/rpc.go``
orchestratorInfoWithCaps, ``server/segment_rpc.go`` Payment):

    a price fixed for (sender, key)  -> that price (set by the session's first payment)
    no job capabilities              -> the transcoding price; only such an info also lists
                                        ``capabilities_prices`` (one entry per live model)
    job capabilities                 -> the sum of the per-model prices of every capability
                                        listed in ``capacities`` that also has PerCapability
                                        constraints; a sum of 0 -> the transcoding price

Which capabilities a request carries:

    GetOrchestrator  the request's, as sent (no ``capabilities`` field: none). A job without
                     ``capacities`` is therefore quoted the transcoding price
    /payment         the SegData's, read as go-livepeer reads any SegData: without
                     ``capacities``, capacity 1 for each bit of the bitstring; a SegData without
                     capabilities counts as empty ones (so: the transcoding price)
    /segment         none

``capabilities_prices`` entries are what go-livepeer lists: the per-pixel price rounded down to
whole wei (``PriceToInt64``), ``pixelsPerUnit`` 1, without the auto-adjust overhead. The fault
``price_factor`` multiplies them as it does every advertised price. go-livepeer's
``-autoAdjustPrice`` overhead (1 + 1/txCostMultiplier on ``price_info``) is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from mediagw.livepeer.capabilities import bits_of
from mediagw.livepeer.proto import net

__all__ = ["ModelPrice", "job_price", "listed_price", "segdata_capabilities"]

#: (capability, model) -> wei per pixel, None when that pair has no price
ModelPrice = Callable[[int, str], Fraction | None]


def job_price(caps: net.Capabilities, price_of: ModelPrice) -> Fraction:
    """The sum over the capabilities in ``caps.capacities`` that have PerCapability
    constraints, of the price of each constrained model (0 when nothing is priced)."""
    total = Fraction(0)
    per_capability = caps.constraints.PerCapability
    for cap in caps.capacities:
        if cap not in per_capability:
            continue  # go-livepeer prices a capability only together with a model
        for model in per_capability[cap].models:
            price = price_of(cap, model)
            if price is not None:
                total += price
    return total


def segdata_capabilities(sd: net.SegData) -> net.Capabilities:
    """The job capabilities of a SegData as go-livepeer's CapabilitiesFromNetCapabilities
    rebuilds them: capacity 1 per bit when ``capacities`` is empty; none -> empty ones."""
    caps = net.Capabilities()
    if not sd.HasField("capabilities"):
        return caps
    caps.CopyFrom(sd.capabilities)
    if not caps.capacities:
        for bit in bits_of(caps.bitstring):
            caps.capacities[bit] = 1
    return caps


def listed_price(capability: int, model: str, price: Fraction) -> net.PriceInfo:
    """A ``capabilities_prices`` entry: whole wei per pixel, rounded down, as go-livepeer's
    GetCapabilitiesPrices lists it."""
    whole = price.numerator // price.denominator
    return net.PriceInfo(
        pricePerUnit=whole, pixelsPerUnit=1, capability=capability, constraint=model
    )
