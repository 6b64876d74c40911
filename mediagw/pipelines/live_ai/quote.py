"""Is an orchestrator's quote what a live stream expects? Checked before every prepayment
(live-ai spec §2, §3.3).

The quote is the ``price_info`` of the OrchestratorInfo the start request would be paid from
(the 60 s prepayment and every later payment of the session are computed from it). It is
refused when it is above

- the cap for this pipeline and model, ``PriceCaps.max_price("live-video-to-video", model)``
  (also applied in discovery and by the payment source: this is the last check, after a
  refetch may have brought a new price), or
- the model's own price, when the orchestrator lists it in ``capabilities_prices``
  (capability 35, constraint = the model), with the allowance below.

go-livepeer lists ``capabilities_prices`` only in an info built without job capabilities, so
an info from a GetOrchestrator with our job capabilities normally has none; when one does, a
quote far above it (go-livepeer quotes its transcoding price when a job's capabilities price
nothing, often 100x the live price) is caught here rather than paid for a minute.

Allowance over a listed price. go-livepeer 0.9.1 (``core/orchestrator.go``) lists the model
price unadjusted and rounded down to whole wei per pixel (``PriceToInt64``, ``pixelsPerUnit``
1), while ``price_info`` is the exact price times the ``-autoAdjustPrice`` overhead
1 + 1/txCostMultiplier, rounded down to 3 decimals. txCostMultiplier = faceValue / redeem cost,
faceValue being 100 x the redeem cost (100 x ticket EV when that is below the ticket EV), so the
overhead is at most 1 % unless the O's ``-maxFaceValue`` or our sender reserve caps the face
value. Hence a whole-wei entry may stand for up to 1 wei per pixel more, and 1 % is allowed on
top. At real live prices (thousands of wei per pixel) that is about 1 %, while the mistake this
check exists for is ~100x; an O whose overhead is above 1 % (a gateway with a small reserve) is
refused, and the log line shows by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mediagw.livepeer.capabilities import Capability
from mediagw.livepeer.proto import net
from mediagw.payments.params import float_string
from mediagw.pool.prices import price_of

__all__ = [
    "AUTO_ADJUST_ALLOWANCE",
    "ROUNDING_ALLOWANCE",
    "QuoteRefusal",
    "listed_price",
    "quote_refusal",
    "show_wei",
]

#: ``price_info`` may carry go-livepeer's auto-adjust overhead 1 + 1/txCostMultiplier (<= 1 %
#: with the default multiplier of 100); the listed price does not.
AUTO_ADJUST_ALLOWANCE = Fraction(101, 100)
#: go-livepeer rounds a listed model price down to whole wei per pixel.
ROUNDING_ALLOWANCE = Fraction(1)

_LIVE = int(Capability.LIVE_VIDEO_TO_VIDEO)


@dataclass(frozen=True, slots=True)
class QuoteRefusal:
    quoted: Fraction  # wei per pixel, the O's price_info
    expected: Fraction  # wei per pixel: the cap, or the model's listed price
    allowed: Fraction  # the highest quote that would have passed
    basis: str  # "max price" or "listed model price"

    def __str__(self) -> str:
        return (
            f"quoted {show_wei(self.quoted)} wei per pixel, expected {show_wei(self.expected)} "
            f"({self.basis}; up to {show_wei(self.allowed)} accepted)"
        )


def show_wei(value: Fraction) -> str:
    """A price for a log line: whole wei as is, else 3 decimals."""
    return str(value.numerator) if value.denominator == 1 else float_string(value, 3)


def listed_price(info: net.OrchestratorInfo, model: str) -> net.PriceInfo | None:
    """The O's ``capabilities_prices`` entry for live video-to-video ``model`` (usable ones)."""
    for entry in info.capabilities_prices:
        if (
            entry.capability == _LIVE
            and entry.constraint == model
            and entry.pixelsPerUnit > 0
            and entry.pricePerUnit >= 0
        ):
            return entry
    return None


def quote_refusal(
    info: net.OrchestratorInfo, *, model: str, max_price: Fraction | None
) -> QuoteRefusal | None:
    """Why the quote in ``info`` is not paid for a stream of ``model``, or None when it may be.
    No usable ``price_info`` passes here (off-chain: nothing is paid; unusable: the payment
    source refuses it)."""
    quoted = price_of(info)
    if quoted is None:
        return None
    if max_price is not None and quoted > max_price:
        return QuoteRefusal(quoted, max_price, max_price, "max price")
    entry = listed_price(info, model)
    if entry is None:
        return None
    listed = Fraction(entry.pricePerUnit, entry.pixelsPerUnit)
    rounding = ROUNDING_ALLOWANCE if entry.pixelsPerUnit == 1 else Fraction(0)
    allowed = (listed + rounding) * AUTO_ADJUST_ALLOWANCE
    if quoted > allowed:
        return QuoteRefusal(quoted, listed, allowed, "listed model price")
    return None
