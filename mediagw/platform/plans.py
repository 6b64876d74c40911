"""Plans: what an API key may do (rate limits, quotas) and what it pays (prices per minute).

Every key is on one plan: the one named by ``api_keys.plan_id``, else the default plan (the
row with id ``default``, else ``DEFAULT_PLAN``). Limits of ``None`` are unlimited. Prices are
exact decimals in ``currency`` per minute of work; the cost side (wei paid to orchestrators) is
converted with the configured wei rate (``-weiRate``, currency per ETH).

    plan = await plan_for_key(store, key_id)     # the rate limiter and the ledger read this
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

__all__ = ["DEFAULT_PLAN", "DEFAULT_PLAN_ID", "Plan", "PlanReader", "plan_for_key"]

DEFAULT_PLAN_ID = "default"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One plan. Request limits count API requests; stream and live-AI quotas count minutes
    of ingest and of live AI; prices are per minute in ``currency``."""

    id: str
    name: str
    rate_limit: int | None = 100  # API requests per minute (NaaP's default)
    burst_limit: int | None = None  # requests at once above the steady rate (None: rate_limit)
    daily_quota: int | None = None  # API requests per UTC day
    monthly_quota: int | None = None  # API requests per UTC month
    stream_minutes_daily: int | None = None
    stream_minutes_monthly: int | None = None
    live_ai_minutes_daily: int | None = None
    live_ai_minutes_monthly: int | None = None
    max_concurrent_streams: int | None = None
    price_per_transcoded_minute: Decimal = Decimal(0)
    price_per_live_ai_minute: Decimal = Decimal(0)
    price_per_delivered_minute: Decimal = Decimal(0)
    currency: str = "USD"
    created_at: int = 0


DEFAULT_PLAN = Plan(id=DEFAULT_PLAN_ID, name="Default")


class PlanReader(Protocol):
    async def plan_of_key(self, key_id: str) -> Plan | None:
        """The plan of this key (its own, else the stored default), or None: neither."""
        ...


async def plan_for_key(store: PlanReader, key_id: str | None) -> Plan:
    """The plan of an API key: its assigned plan, else the default one (also for None, the
    operator's requests without a key)."""
    if key_id is None:
        return DEFAULT_PLAN
    return await store.plan_of_key(key_id) or DEFAULT_PLAN
