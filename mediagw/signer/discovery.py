"""``GET /discover-orchestrators`` (live-AI spec §10.4; go-livepeer ``remote_discovery.go``).

``DiscoveryCache.refresh()`` lists the candidates of every source (``-orchAddr``,
``-orchWebhookUrl``), asks each for its OrchestratorInfo (GetOrchestrator signed with the
signer's key, all at once, ``timeout`` each) and keeps the answers. ``run()`` refreshes every
``interval`` seconds (``-liveAICapReportInterval``, 25 min). ``orchestrators(caps)`` answers a
request: entries offering one of ``caps`` (``pipeline/model``, OR-ed; none = all), priced within
the signer's caps (the per-capability price from ``capabilities_prices`` when O sends one, else
``price_info``), as ``{"address", "score": 1, "capabilities", "runners"}``. ``None`` while the
cache is empty (-> 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mediagw.livepeer.proto import net
from mediagw.pool.prices import PriceCaps, price_of
from mediagw.pool.sources import TRUSTED_SCORE, Source

from .pricing import AI_PIPELINE_BY_CAPABILITY, pipeline_models

__all__ = ["DiscoveryCache", "DiscoveryEntry"]

log = logging.getLogger("mediagw.signer.discovery")

FetchInfo = Callable[[str], Awaitable[net.OrchestratorInfo]]
MAX_CANDIDATES = 1000
MAX_QUERY_CAPS = 64
_CAPABILITY_BY_PIPELINE = {name: number for number, name in AI_PIPELINE_BY_CAPABILITY.items()}


@dataclass(frozen=True, slots=True)
class DiscoveryEntry:
    url: str
    info: net.OrchestratorInfo
    capabilities: tuple[str, ...]  # pipeline/model

    def price_for(self, capability: str | None) -> Fraction | None:
        """O's price for ``pipeline/model`` (its capabilities_prices entry), else price_info."""
        if capability is not None:
            pipeline, _, model = capability.partition("/")
            number = _CAPABILITY_BY_PIPELINE.get(pipeline)
            for p in self.info.capabilities_prices:
                if p.capability == number and p.constraint == model and p.pixelsPerUnit > 0:
                    return Fraction(p.pricePerUnit, p.pixelsPerUnit)
        return price_of(self.info)


class DiscoveryCache:
    def __init__(
        self,
        sources: Sequence[Source],
        fetch_info: FetchInfo,
        caps: PriceCaps,
        *,
        interval: float,
        timeout: float = 6.0,
    ) -> None:
        self._sources = list(sources)
        self._fetch = fetch_info
        self._caps = caps
        self._interval = interval
        self._timeout = timeout
        self._entries: list[DiscoveryEntry] = []

    def __len__(self) -> int:
        return len(self._entries)

    async def _query(self, url: str) -> DiscoveryEntry | None:
        try:
            info = await asyncio.wait_for(self._fetch(url), self._timeout)
        except Exception as exc:  # any failure: this O is left out of this round
            log.warning(
                "signer discovery: GetOrchestrator failed",
                extra={"orch": url, "reason": f"{type(exc).__name__}: {exc}"},
            )
            return None
        caps = pipeline_models(info.capabilities if info.HasField("capabilities") else None)
        return DiscoveryEntry(url, info, tuple(f"{p}/{m}" for p, m in caps))

    async def refresh(self) -> int:
        """One discovery round; keeps the previous list when nobody answered."""
        urls: list[str] = []
        for source in self._sources:
            try:
                found = await source.candidates()
            except Exception as exc:
                log.warning("signer discovery: source failed", extra={"reason": repr(exc)})
                continue
            urls.extend(c.url for c in found if c.url not in urls)
        urls = urls[:MAX_CANDIDATES]
        answers = await asyncio.gather(*(self._query(u) for u in urls))
        entries = [e for e in answers if e is not None and e.info.transcoder]
        if entries or not urls:
            self._entries = entries
        log.info(
            "signer discovery refreshed", extra={"candidates": len(urls), "kept": len(entries)}
        )
        return len(self._entries)

    async def run(self) -> None:
        """Refresh now, then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("signer discovery refresh failed")
            await asyncio.sleep(self._interval)

    def _acceptable(self, entry: DiscoveryEntry, capability: str | None) -> bool:
        if capability is None:
            cap = self._caps.global_cap
        else:
            pipeline, _, model = capability.partition("/")
            cap = self._caps.max_price(pipeline, model)
        if cap is None or not entry.info.HasField("price_info"):
            return True
        price = entry.price_for(capability)
        return price is not None and price <= cap

    def orchestrators(self, caps: Sequence[str]) -> list[dict[str, Any]] | None:
        if not self._entries:
            return None
        wanted = [c for c in caps if c][:MAX_QUERY_CAPS]
        out: list[dict[str, Any]] = []
        for entry in self._entries:
            if wanted:
                ok = any(c in entry.capabilities and self._acceptable(entry, c) for c in wanted)
            else:
                ok = self._acceptable(entry, None)
            if ok:
                out.append(
                    {
                        "address": entry.url,
                        "score": TRUSTED_SCORE,
                        "capabilities": list(entry.capabilities),
                        "runners": [],
                    }
                )
        return out
