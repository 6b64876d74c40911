"""Which limits apply to an API key, and the requests of the ``/api`` checked against them.

``PlanLookup`` is the seam to the plans: ``await lookup(key)`` gives the key's ``PlanLimits``
(the ledger's ``plans.plan_for_key`` adapted by the gateway; until then every key has NaaP's
default, ``default_plans``). Lookups are cached ``ttl`` seconds per key (5 s by default), so a
request costs no plan query; a change through ``/api/admin`` drops what it changed (``forget``,
on every node with ``-redisUrl``), any other change applies within the ``ttl``.

Admin keys are exempt (``limits_of`` answers None): the operator's own key is never locked out
of its gateway by a plan, and streams owned by an admin key (or by nobody: the operator's) have
no quotas either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..clock import SYSTEM, Clock
from .limits import DEFAULT_LIMITS, Decision, Limiter, MemoryLimiter, PlanLimits
from .plans import Plan
from .store import ApiKey, Store
from .ttl_cache import TtlCache

__all__ = ["PlanCache", "PlanLookup", "RequestLimits", "default_plans", "limits_of_plan"]

PlanLookup = Callable[[ApiKey], Awaitable[PlanLimits]]


def limits_of_plan(plan: Plan) -> PlanLimits:
    """The limit fields of a stored plan (``platform/plans``); prices are the ledger's."""
    return PlanLimits(
        rate_limit=plan.rate_limit,
        burst_limit=plan.burst_limit,
        daily_quota=plan.daily_quota,
        monthly_quota=plan.monthly_quota,
        stream_minutes_daily=plan.stream_minutes_daily,
        stream_minutes_monthly=plan.stream_minutes_monthly,
        live_ai_minutes_daily=plan.live_ai_minutes_daily,
        live_ai_minutes_monthly=plan.live_ai_minutes_monthly,
        max_concurrent_streams=plan.max_concurrent_streams,
    )


async def default_plans(key: ApiKey) -> PlanLimits:
    """Every key on NaaP's default plan: 100 requests a minute, no quotas."""
    return DEFAULT_LIMITS


class PlanCache:
    """The limits of keys, cached briefly; None for an admin key (exempt)."""

    def __init__(
        self,
        lookup: PlanLookup = default_plans,
        *,
        store: Store | None = None,
        ttl: float = 5.0,
        clock: Clock = SYSTEM,
        max_keys: int = 100_000,
    ) -> None:
        self.lookup = lookup
        self.store = store  # to find a stream owner's key (set when the gateway opens it)
        self.ttl = ttl
        self._cache: TtlCache[str, PlanLimits | None] = TtlCache(
            max_entries=max_keys, clock=clock.monotonic
        )
        self.announce: Callable[[str | None], None] | None = None

    async def limits_of(self, key: ApiKey) -> PlanLimits | None:
        if "admin" in key.scopes:
            return None
        return await self._cache.get(key.id, lambda: self.lookup(key), self.ttl)

    async def limits_of_owner(self, owner_key_id: str | None) -> PlanLimits | None:
        """The limits of a stream's owner: None for the operator's (no owner, an admin key).
        A deleted owner's streams keep the default plan."""
        if owner_key_id is None:
            return None
        found, limits = self._cache.peek(owner_key_id)
        if found:
            return limits
        key = await self.store.get_api_key(owner_key_id) if self.store is not None else None
        if key is None:
            return DEFAULT_LIMITS
        return await self.limits_of(key)

    def cached(self, key_id: str) -> tuple[bool, PlanLimits | None]:
        """The cached limits of ``key_id`` (no lookup): (found, limits)."""
        return self._cache.peek(key_id)

    def forget(self, key_id: str | None = None) -> None:
        """Look ``key_id`` (None: every key) up again at its next use, on every node
        (``announce``: set by ``shared.fanout.share_plans``)."""
        self._cache.forget(key_id)
        if self.announce is not None:
            self.announce(key_id)

    def forget_here(self, key_id: str | None = None) -> None:
        """``forget`` on this node only (what another node announced)."""
        self._cache.forget(key_id)


class RequestLimits:
    """The rate limit and request quotas of the ``/api``, per key (``Limiter``: in memory)."""

    def __init__(
        self,
        plans: PlanCache | None = None,
        limiter: Limiter | None = None,
        *,
        clock: Clock = SYSTEM,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.plans = plans or PlanCache(clock=clock)
        self.limiter: Limiter = limiter or MemoryLimiter()
        self.clock = clock
        self.refused = 0  # requests answered 429
        self.on_refused = on_refused  # told of each (the metrics count them)

    async def check(self, key: ApiKey) -> Decision | None:
        """Decide (and count, if allowed) one request of ``key``; None: exempt."""
        limits = await self.plans.limits_of(key)
        if limits is None:
            return None
        decision = await self.limiter.check(key.id, limits, self.clock.wall())
        if not decision.allowed:
            self.refused += 1
            if self.on_refused is not None:
                self.on_refused()
        return decision
