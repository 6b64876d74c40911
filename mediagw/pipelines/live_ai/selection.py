"""Which orchestrator a live stream uses (live-ai spec §2).

``OrchestratorRequests`` makes the signed ``OrchestratorRequest`` (remote-signer credentials,
our key, or off-chain: 20 zero bytes) and calls GetOrchestrator with the job capabilities.

``LiveSelector`` keeps one stream's pool of pre-discovered orchestrators, so a swap can send
its start request at once:

- discovery asks every candidate (``pool.discover``) with the warm job capabilities, then, if
  nobody qualifies, with the cold ones; Os above ``PriceCaps.max_price("live-video-to-video",
  model)`` are dropped; the rest is ordered by GetOrchestrator latency (go-livepeer
  LiveSelectionAlgorithm). A user filter keeps only Os whose URL contains a substring;
- the pool is refreshed every 6 min (ticket params stay fresh) and when it runs dry;
- ``suspend(url)``: penalty 5 refreshes (about 30 min); ``drop(url)``: out of this stream's
  pool until the next scheduled refresh (start errors ``insufficient capacity``, ``invalid
  ticket sendernonce``, anything unknown). ``ticketparams expired`` is retried on the same O
  by the caller after ``refetch``.
- node-wide ``notes`` (``pool/notes``, shared by the nodes of a deployment): a suspension here
  is noted for every node for ``penalty x refresh_interval`` (about 30 min), and an O noted as
  penalised (here or on another node) is taken only when no other candidate is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from fractions import Fraction

from mediagw.livepeer.capabilities import compatible
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRequests
from mediagw.pool.discovery import discover
from mediagw.pool.notes import OrchNotes
from mediagw.pool.prices import PriceCaps
from mediagw.pool.session import OrchSession
from mediagw.pool.sources import Blocklist, Source
from mediagw.pool.suspension import Suspensions

from ...clock import SYSTEM
from .caps import PIPELINE, lv2v_capabilities

__all__ = ["FetchInfo", "LiveSelector", "OrchestratorRequests"]

log = logging.getLogger("mediagw.live_ai.selection")

#: GetOrchestrator(url, job caps, timeout) -> OrchestratorInfo
FetchInfo = Callable[[str, net.Capabilities, float], Awaitable[net.OrchestratorInfo]]

REFRESH_INTERVAL = 360.0  # go-livepeer refreshes the live pool every 6 min
SUSPEND_PENALTY = 5  # refreshes, about 30 min


class LiveSelector:
    """One stream's orchestrators. ``clock``: monotonic seconds."""

    def __init__(
        self,
        sources: Sequence[Source],
        fetch: FetchInfo,
        *,
        model: str,
        caps: PriceCaps | None = None,
        blocklist: Blocklist | None = None,
        min_version: str = "",
        runner_version: str = "",
        orchestrator_filter: str = "",
        clock: Callable[[], float] = SYSTEM.monotonic,
        refresh_interval: float = REFRESH_INTERVAL,
        penalty: int = SUSPEND_PENALTY,
        fetch_timeout: float = 2.0,
        notes: OrchNotes | None = None,
    ) -> None:
        self.sources = list(sources)
        self.fetch = fetch
        self.model = model
        self.price_caps = caps or PriceCaps()
        self.blocklist = blocklist or Blocklist()
        self.filter = orchestrator_filter
        self.clock = clock
        self.refresh_interval = refresh_interval
        self.penalty = penalty
        self.fetch_timeout = fetch_timeout
        self.notes = notes
        self.warm_caps = lv2v_capabilities(
            model, warm=True, runner_version=runner_version, min_version=min_version
        )
        self.cold_caps = lv2v_capabilities(
            model, warm=False, runner_version=runner_version, min_version=min_version
        )
        self.suspensions = Suspensions()
        self.refreshes = 0
        self._pool: list[OrchSession] = []
        self._caps: dict[str, net.Capabilities] = {}  # url -> the caps it was found with
        self._dropped: dict[str, float] = {}  # url -> when
        self._refreshed_at: float | None = None
        self._refreshing: asyncio.Task[int] | None = None

    # -- pool ----------------------------------------------------------------------------------

    @property
    def candidates(self) -> list[OrchSession]:
        """The idle pre-discovered sessions, best first."""
        return [s for s in self._pool if self._usable(s.url)]

    @property
    def max_price(self) -> Fraction | None:
        """The cap in wei per pixel for this pipeline and model (None: no cap)."""
        return self.price_caps.max_price(PIPELINE, self.model)

    def caps_for(self, session: OrchSession) -> net.Capabilities:
        """The job capabilities ``session`` was found with (warm or cold)."""
        return self._caps.get(session.url, self.warm_caps)

    def needs_refresh(self) -> bool:
        at = self._refreshed_at
        return at is None or self.clock() - at >= self.refresh_interval or not self.candidates

    def suspend(self, url: str) -> None:
        self.suspensions.suspend(url, self.penalty)
        if self.notes is not None:
            self.notes.suspend(url, self.penalty * self.refresh_interval)
        self._pool = [s for s in self._pool if s.url != url]
        log.info("live orchestrator suspended", extra={"orch": url, "penalty": self.penalty})

    def drop(self, url: str) -> None:
        self._dropped[url] = self.clock()
        self._pool = [s for s in self._pool if s.url != url]

    def _usable(self, url: str) -> bool:
        if url in self.suspensions:
            return False
        dropped = self._dropped.get(url)
        return dropped is None or self.clock() - dropped >= self.refresh_interval

    # -- discovery -----------------------------------------------------------------------------

    async def _round(self, caps: net.Capabilities) -> list[OrchSession]:
        candidates = []
        for source in self.sources:
            candidates.extend(await source.candidates())
        if self.filter:
            candidates = [c for c in candidates if self.filter in c.url]
        candidates = [c for c in candidates if self._usable(c.url)]

        async def fetch(url: str) -> net.OrchestratorInfo:
            return await self.fetch(url, caps, self.fetch_timeout)

        return await discover(
            candidates,
            fetch,
            job_caps=caps,
            compatible=compatible,
            caps=self.price_caps,
            blocklist=self.blocklist,
            clock=self.clock,
            pipeline=PIPELINE,
            model=self.model,
        )

    async def _refresh(self) -> int:
        self.suspensions.signal_refresh()
        self.refreshes += 1
        found = await self._round(self.warm_caps)
        caps = self.warm_caps
        if not found:
            found, caps = await self._round(self.cold_caps), self.cold_caps
        self._refreshed_at = self.clock()
        now = self._refreshed_at
        self._dropped = {u: t for u, t in self._dropped.items() if now - t < self.refresh_interval}
        self._pool = found  # fresh infos replace the old ones, fastest first
        for session in found:
            self._caps[session.url] = caps
        log.info(
            "live orchestrator pool refreshed",
            extra={"model": self.model, "orchs": [s.url for s in found]},
        )
        return len(found)

    async def refresh(self) -> int:
        """Run a discovery round now (or join the one running); returns the pool size."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh(), name="live-discovery")
        return await asyncio.shield(self._refreshing)

    def prefetch(self) -> None:
        """Refresh in the background when due, so the next swap finds candidates ready."""
        if self.needs_refresh() and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh(), name="live-discovery")
            self._refreshing.add_done_callback(_log_failure)

    async def next(self, exclude: Collection[str] = ()) -> OrchSession | None:
        """Take the best usable session not in ``exclude`` (discovery or transcoder URLs),
        discovering first when the pool is stale or has nothing left."""
        refreshed = False
        if self._refreshing is not None and not self._refreshing.done():
            await asyncio.shield(self._refreshing)
            refreshed = True
        elif self.needs_refresh():
            await self.refresh()
            refreshed = True
        session = self._take(exclude)
        if session is None and not refreshed:
            await self.refresh()
            session = self._take(exclude)
        return session

    def _take(self, exclude: Collection[str]) -> OrchSession | None:
        usable = [
            s for s in self.candidates if s.url not in exclude and s.transcoder not in exclude
        ]
        if self.notes is not None:  # penalised on some node: last (stable sort)
            notes = self.notes
            usable.sort(key=lambda s: notes.penalized(s.url))
        if not usable:
            return None
        self._pool.remove(usable[0])
        return usable[0]

    async def refetch(self, session: OrchSession) -> None:
        """GetOrchestrator again (expired ticket params, auth token near expiry): adopt it."""
        session.adopt(await self.fetch(session.url, self.caps_for(session), self.fetch_timeout))

    async def close(self) -> None:
        task, self._refreshing = self._refreshing, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("live discovery failed", extra={"error": repr(task.exception())})
