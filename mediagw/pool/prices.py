"""Price caps: which orchestrator prices the gateway accepts (transcode spec §9.4, payments §8.5).

Flags (go-livepeer names):

``-maxPricePerUnit``
    ``0`` (default) means no cap. A wei amount, integer or decimal (``1200``, ``0.5``), optionally
    suffixed ``wei`` or ``eth`` (``eth`` is multiplied by 10**18). Other currencies (``0.5USD``)
    need a price feed and are refused with a ConfigError for now.
``-pixelsPerUnit``
    Integer > 0, default 1. The cap per pixel is ``maxPricePerUnit / pixelsPerUnit``.
``-maxPricePerCapability``
    Inline JSON (text starting with ``{`` or ``[``) or a path to a JSON file::

        {"capabilities_prices": [{"pipeline": "text-to-image", "model_id": "stabilityai/sd-turbo",
          "price_per_unit": 1000, "pixels_per_unit": 1, "currency": "wei"}]}

    Missing ``model_id`` is ``"default"`` (used for models without their own entry); missing or
    non-positive ``pixels_per_unit`` takes ``-pixelsPerUnit``; missing ``price_per_unit`` takes
    ``-maxPricePerUnit``; missing ``currency`` is wei. An entry priced 0 falls back to the global
    cap. Unknown keys, unknown pipelines and duplicate entries are errors (a typo must not
    silently lift a cap).

Unlike go-livepeer (which filters only in on-chain selection) mediagw enforces the cap in every
mode: an O priced above the cap is never selected. An O that sends no ``price_info`` at all
(off-chain) is not refused here; the payment layer rejects a missing price when it has to pay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from mediagw.errors import ConfigError
from mediagw.livepeer.proto import net

__all__ = [
    "AI_PIPELINES",
    "PriceCaps",
    "parse_max_price_per_capability",
    "parse_max_price_per_unit",
    "parse_pixels_per_unit",
    "price_jumped",
    "price_of",
    "price_refusal",
]

#: Pipeline names accepted in ``-maxPricePerCapability`` (go-livepeer AI pipelines).
AI_PIPELINES = frozenset(
    {
        "text-to-image",
        "image-to-image",
        "image-to-video",
        "upscale",
        "audio-to-text",
        "segment-anything-2",
        "llm",
        "image-to-text",
        "live-video-to-video",
        "text-to-speech",
    }
)

_PRICE_RE = re.compile(r"^(\d+(?:\.\d+)?)([A-Za-z][A-Za-z0-9]*)?$")
_ENTRY_KEYS = frozenset({"pipeline", "model_id", "price_per_unit", "pixels_per_unit", "currency"})
_WEI_PER_ETH = 10**18
_MAX_FILE = 1 << 20


def _currency_factor(currency: str, where: str) -> int:
    unit = currency.strip().lower()
    if unit in ("", "wei"):
        return 1
    if unit == "eth":
        return _WEI_PER_ETH
    raise ConfigError(
        f"{where}: currency {currency!r} is not supported yet (it needs a price feed): "
        "give the price in wei, e.g. 1200 or 1200wei"
    )


def parse_max_price_per_unit(text: str) -> Fraction:
    """Parse ``-maxPricePerUnit`` into wei per unit; 0 means no cap."""
    value = str(text).strip()
    match = _PRICE_RE.match(value)
    if match is None:
        raise ConfigError(
            f"-maxPricePerUnit: {text!r} is not a price: give a non-negative wei amount "
            "such as 1200 or 0.5 (0 = no cap)"
        )
    amount, currency = match.group(1), match.group(2) or ""
    if re.fullmatch(r"[eE]\d+", currency):
        raise ConfigError(
            f"-maxPricePerUnit: {text!r}: write the full wei amount, exponents are not accepted"
        )
    return Fraction(amount) * _currency_factor(currency, "-maxPricePerUnit")


def parse_pixels_per_unit(text: str | int) -> int:
    """Parse ``-pixelsPerUnit``: an integer > 0."""
    if isinstance(text, bool):
        raise ConfigError(f"-pixelsPerUnit: {text!r} is not an integer > 0")
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise ConfigError(f"-pixelsPerUnit: {text!r} is not an integer > 0") from None
    if value <= 0:
        raise ConfigError(f"-pixelsPerUnit: must be an integer > 0, got {value}")
    return value


def _json_number(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ConfigError(f"{where} must be a JSON number, got {value!r}")
    if not isinstance(value, int) and not value.is_finite():
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    number = Fraction(value)
    if number < 0:
        raise ConfigError(f"{where} must not be negative, got {value}")
    return number


def _load_capability_json(text: str) -> Any:
    source = text.strip()
    if source.startswith(("{", "[")):
        label = "inline JSON"
    else:
        path = Path(source).expanduser()
        try:
            with path.open("rb") as fh:
                raw = fh.read(_MAX_FILE + 1)
        except OSError as exc:
            raise ConfigError(
                f"-maxPricePerCapability: cannot read file {source!r} ({exc.strerror or exc}); "
                "give inline JSON starting with '{' or the path of a JSON file"
            ) from None
        if len(raw) > _MAX_FILE:
            raise ConfigError(f"-maxPricePerCapability: file {source!r} is larger than 1 MiB")
        source = raw.decode("utf-8", errors="replace")
        label = f"file {path}"
    try:
        return json.loads(source, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"-maxPricePerCapability: {label} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno}"
        ) from None


def parse_max_price_per_capability(
    text: str, *, max_price_per_unit: Fraction, pixels_per_unit: int
) -> dict[tuple[str, str], Fraction]:
    """Parse ``-maxPricePerCapability`` into ``{(pipeline, model_id): wei per pixel}``."""
    if not text.strip():
        return {}
    doc = _load_capability_json(text)
    where = "-maxPricePerCapability"
    if not isinstance(doc, dict) or "capabilities_prices" not in doc:
        raise ConfigError(f'{where}: expected an object {{"capabilities_prices": [...]}}')
    entries = doc["capabilities_prices"]
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: capabilities_prices must be a list")
    table: dict[tuple[str, str], Fraction] = {}
    for i, entry in enumerate(entries):
        at = f"{where}: capabilities_prices[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be an object")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"{at}: unknown key(s) {', '.join(unknown)}")
        pipeline = entry.get("pipeline")
        if not isinstance(pipeline, str) or not pipeline:
            raise ConfigError(f"{at}: 'pipeline' must be a non-empty string")
        if pipeline not in AI_PIPELINES:
            known = ", ".join(sorted(AI_PIPELINES))
            hint = (
                " (set the transcoding cap with -maxPricePerUnit)" if "transc" in pipeline else ""
            )
            raise ConfigError(f"{at}: unknown pipeline {pipeline!r}{hint}; known: {known}")
        model = entry.get("model_id", "default")
        if not isinstance(model, str):
            raise ConfigError(f"{at}: 'model_id' must be a string")
        model = model or "default"
        currency = entry.get("currency", "wei")
        if not isinstance(currency, str):
            raise ConfigError(f"{at}: 'currency' must be a string")
        if "price_per_unit" in entry:
            factor = _currency_factor(currency, at)
            price = _json_number(entry["price_per_unit"], f"{at}: price_per_unit") * factor
        else:
            price = max_price_per_unit
        pixels = pixels_per_unit
        if "pixels_per_unit" in entry:
            given = _json_number(entry["pixels_per_unit"], f"{at}: pixels_per_unit")
            if given.denominator != 1:
                raise ConfigError(f"{at}: pixels_per_unit must be an integer, got {given}")
            if given > 0:
                pixels = int(given)
        key = (pipeline, model)
        if key in table:
            raise ConfigError(f"{at}: duplicate entry for pipeline {pipeline!r} model {model!r}")
        table[key] = price / pixels
    return table


class PriceCaps:
    """The maximum price per pixel the gateway accepts, per pipeline and model."""

    def __init__(
        self,
        max_price_per_unit: Fraction | int = 0,
        pixels_per_unit: int = 1,
        per_capability: Mapping[tuple[str, str], Fraction] | None = None,
    ) -> None:
        if pixels_per_unit <= 0:
            raise ConfigError(f"-pixelsPerUnit: must be an integer > 0, got {pixels_per_unit}")
        if max_price_per_unit < 0:
            raise ConfigError(f"-maxPricePerUnit: must not be negative, got {max_price_per_unit}")
        per_unit = Fraction(max_price_per_unit)
        self._global: Fraction | None = per_unit / pixels_per_unit if per_unit else None
        self._table = dict(per_capability or {})

    @classmethod
    def from_flags(
        cls,
        max_price_per_unit: str = "0",
        pixels_per_unit: str | int = "1",
        max_price_per_capability: str = "",
    ) -> PriceCaps:
        """Build from the three flags' text; every problem is a ConfigError naming the flag."""
        per_unit = parse_max_price_per_unit(max_price_per_unit)
        pixels = parse_pixels_per_unit(pixels_per_unit)
        table = parse_max_price_per_capability(
            max_price_per_capability, max_price_per_unit=per_unit, pixels_per_unit=pixels
        )
        return cls(per_unit, pixels, table)

    @property
    def global_cap(self) -> Fraction | None:
        """``-maxPricePerUnit / -pixelsPerUnit``; None when no cap is set."""
        return self._global

    def max_price(self, pipeline: str = "transcode", model: str = "") -> Fraction | None:
        """The cap in wei per pixel for a job, None when no cap applies.

        A model's own entry wins, else the pipeline's ``default`` entry, else the global cap;
        an entry priced 0 also falls back to the global cap.
        """
        cap = self._table.get((pipeline, model or "default"))
        if cap is None:
            cap = self._table.get((pipeline, "default"))
        return cap if cap else self._global

    def __repr__(self) -> str:
        return f"PriceCaps(global={self._global}, per_capability={self._table})"


def price_of(info: net.OrchestratorInfo) -> Fraction | None:
    """The O's price in wei per pixel, None when ``price_info`` is missing or unusable."""
    if not info.HasField("price_info"):
        return None
    price = info.price_info
    if price.pixelsPerUnit <= 0 or price.pricePerUnit < 0:
        return None
    return Fraction(price.pricePerUnit, price.pixelsPerUnit)


def price_refusal(
    info: net.OrchestratorInfo, caps: PriceCaps, pipeline: str = "transcode", model: str = ""
) -> str | None:
    """Why this O's price is not acceptable, or None when it is.

    With a cap set: a present but unusable ``price_info`` is refused, and so is any price above
    the cap. No ``price_info`` at all (an off-chain O, which is never paid) passes.
    """
    cap = caps.max_price(pipeline, model)
    if cap is None or not info.HasField("price_info"):
        return None
    price = price_of(info)
    if price is None:
        p = info.price_info
        return (
            f"unusable price {p.pricePerUnit}/{p.pixelsPerUnit} wei per pixel "
            f"(max price {_show(cap)} wei per pixel is set)"
        )
    if price > cap:
        return f"price {_show(price)} wei per pixel is above the max price {_show(cap)}"
    return None


def price_jumped(initial: Fraction | None, current: Fraction | None) -> bool:
    """The payments §8.5 guard: True when ``current`` is more than twice ``initial``."""
    if initial is None or current is None:
        return False
    return current > 2 * initial


def _show(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator} (~{float(value):.6g})"
