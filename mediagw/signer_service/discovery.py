"""``GET /discover-orchestrators`` (live-AI spec §10.4; go-livepeer ``remote_discovery.go``).

``DiscoveryCache.refresh()`` lists the candidates of every source (``-orchAddr``,
``-orchWebhookUrl``), asks each for its OrchestratorInfo (GetOrchestrator signed with the
signer's key and no job capabilities, all at once, ``timeout`` each) and keeps a snapshot of
the orchestrators the signer would pay. ``run()`` refreshes every ``interval`` seconds
(``-liveAICapReportInterval``, 25 min).

What is listed, as go-livepeer decides it: each AI ``pipeline/model`` an O constrains in its
capabilities is *eligible* when it has a price within the signer's caps. Its price is the O's
``capabilities_prices`` entry for that capability and model, else its ``price_info``; none (or a
``pixelsPerUnit`` <= 0) -> not eligible. The cap is ``PriceCaps.max_price(pipeline, model)``
(the model's entry, else the pipeline's ``default``, else ``-maxPricePerUnit``). An O is listed
with its eligible capabilities only, and not at all without one; so an O without a price, or
offering no AI pipeline, is never listed. One deliberate difference: a price of 0 is not
eligible (go-livepeer lists it), because the signer refuses to pay a zero ``price_info``
(``missing or zero priceInfo``) and a go-livepeer O quotes a job whose model is priced 0 at its
transcoding price.

``orchestrators(caps)`` answers a request: the listed Os offering one of ``caps`` (``pipeline/
model``, OR-ed; none = all) as ``{"address", "score": 1, "capabilities", "runners"}``; ``None``
while the snapshot is empty (-> 503). An empty snapshot (every O down at start, or none
eligible) is not kept until the next scheduled refresh: ``refresh_if_empty()``, called on each
request, refreshes again at most once every ``retry_interval`` seconds (5 s), concurrent
requests sharing the one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mediagw.livepeer.candidates import TRUSTED_SCORE
from mediagw.livepeer.proto import net
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import Source

from .pricing import AI_PIPELINE_BY_CAPABILITY, pipeline_models

__all__ = ["EMPTY_RETRY_INTERVAL", "DiscoveryCache", "DiscoveryEntry", "capability_price"]

log = logging.getLogger("mediagw.signer.discovery")

FetchInfo = Callable[[str], Awaitable[net.OrchestratorInfo]]
MAX_CANDIDATES = 1000
MAX_QUERY_CAPS = 64
EMPTY_RETRY_INTERVAL = 5.0  # seconds between refreshes of an empty snapshot on requests
_CAPABILITY_BY_PIPELINE = {name: number for number, name in AI_PIPELINE_BY_CAPABILITY.items()}


def capability_price(info: net.OrchestratorInfo, pipeline: str, model: str) -> Fraction | None:
    """go-livepeer capabilityPrice: the O's ``capabilities_prices`` entry for ``pipeline`` and
    ``model``, else its ``price_info``; None without a usable one."""
    number = _CAPABILITY_BY_PIPELINE.get(pipeline)
    for p in info.capabilities_prices:
        if p.capability == number and p.constraint == model and p.pixelsPerUnit > 0:
            return Fraction(p.pricePerUnit, p.pixelsPerUnit)
    if info.HasField("price_info") and info.price_info.pixelsPerUnit > 0:
        return Fraction(info.price_info.pricePerUnit, info.price_info.pixelsPerUnit)
    return None


@dataclass(frozen=True, slots=True)
class DiscoveryEntry:
    url: str
    info: net.OrchestratorInfo
    capabilities: tuple[str, ...]  # the eligible pipeline/model pairs, sorted


class DiscoveryCache:
    def __init__(
        self,
        sources: Sequence[Source],
        fetch_info: FetchInfo,
        caps: PriceCaps,
        *,
        interval: float,
        timeout: float = 6.0,
        retry_interval: float = EMPTY_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = list(sources)
        self._fetch = fetch_info
        self._caps = caps
        self._interval = interval
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._clock = clock
        self._entries: list[DiscoveryEntry] = []
        self._running: asyncio.Task[int] | None = None
        self._last_start: float | None = None
        self.rounds = 0  # refreshes completed

    def __len__(self) -> int:
        return len(self._entries)

    def eligible(self, info: net.OrchestratorInfo) -> tuple[str, ...]:
        """The ``pipeline/model`` pairs of ``info`` priced (> 0) within the signer's caps."""
        found = []
        capabilities = info.capabilities if info.HasField("capabilities") else None
        for pipeline, model in pipeline_models(capabilities):
            price = capability_price(info, pipeline, model)
            if price is None or price <= 0:
                continue
            cap = self._caps.max_price(pipeline, model)
            if cap is None or price <= cap:
                found.append(f"{pipeline}/{model}")
        return tuple(sorted(found))

    async def _query(self, url: str) -> net.OrchestratorInfo | None:
        try:
            return await asyncio.wait_for(self._fetch(url), self._timeout)
        except Exception as exc:  # any failure: this O is left out of this round
            log.warning(
                "signer discovery: GetOrchestrator failed",
                extra={"orch": url, "reason": f"{type(exc).__name__}: {exc}"},
            )
            return None

    async def _refresh(self) -> int:
        self._last_start = self._clock()
        urls: list[str] = []
        for source in self._sources:
            try:
                found = await source.candidates()
            except Exception as exc:
                log.warning("signer discovery: source failed", extra={"reason": repr(exc)})
                continue
            urls.extend(c.url for c in found if c.url not in urls)
        urls = urls[:MAX_CANDIDATES]
        infos = await asyncio.gather(*(self._query(u) for u in urls))
        answered = 0
        entries: list[DiscoveryEntry] = []
        for url, info in zip(urls, infos, strict=True):
            if info is None or not info.transcoder:
                continue
            answered += 1
            eligible = self.eligible(info)
            if eligible:
                entries.append(DiscoveryEntry(url, info, eligible))
            else:
                log.info(
                    "signer discovery: not listed",
                    extra={"orch": url, "reason": "no AI pipeline priced within the caps"},
                )
        if answered or not urls:  # nobody answered: keep the previous snapshot
            self._entries = entries
        self.rounds += 1
        log.info(
            "signer discovery refreshed",
            extra={"candidates": len(urls), "answered": answered, "kept": len(self._entries)},
        )
        return len(self._entries)

    async def refresh(self) -> int:
        """One discovery round (or join the one running); returns the snapshot's size."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._refresh(), name="signer-discovery")
        return await asyncio.shield(self._running)

    async def refresh_if_empty(self) -> None:
        """Refresh now when the snapshot is empty and the last refresh began at least
        ``retry_interval`` seconds ago (or one is running: join it)."""
        if self._entries:
            return
        running = self._running is not None and not self._running.done()
        last = self._last_start
        if running or last is None or self._clock() - last >= self._retry_interval:
            if not running:
                log.info("signer discovery: no orchestrator listed, refreshing on request")
            await self.refresh()

    async def run(self) -> None:
        """Refresh now, then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("signer discovery refresh failed")
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        task, self._running = self._running, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def orchestrators(self, caps: Sequence[str]) -> list[dict[str, Any]] | None:
        if not self._entries:
            return None
        wanted = [c for c in caps if c][:MAX_QUERY_CAPS]
        return [
            {
                "address": entry.url,
                "score": TRUSTED_SCORE,
                "capabilities": list(entry.capabilities),
                "runners": [],
            }
            for entry in self._entries
            if not wanted or any(c in entry.capabilities for c in wanted)
        ]
