"""Plans' limits, enforced in memory: a sans-IO token bucket and fixed-window quotas, time is an
argument (unix seconds).

- **Rate**: a token bucket per API key holding at most ``burst_limit`` tokens (default: the
  minute's ``rate_limit``), refilled at ``rate_limit`` tokens a minute; a request takes one.
- **Quotas**: counters per UTC day and UTC month (fixed windows: a day's counter starts at 0 at
  00:00 UTC, a month's on the 1st at 00:00 UTC). ``UsageWindows`` keeps the same windows for
  amounts (stream minutes, live-AI minutes).
- **Refused requests count against nothing**: every limit is checked before any is charged.

``Limiter`` is the seam: ``MemoryLimiter`` is exact on one node; ``RedisLimiter``
(``platform/shared/limiter``) is exact across nodes and answers the same ``check`` with the same
``Decision`` (both through ``waits_of`` and ``decision_of``). ``check`` is a coroutine for that
reason only; the memory one never waits.

Memory is bounded: at most ``max_keys`` entries (least recently used first out). Before dropping
one that is still counting, entries equal to a fresh one (a full bucket, no usage in the current
day and month) are evicted, so nothing is lost until more than ``max_keys`` keys were busy in one
month.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "DEFAULT_LIMITS",
    "Decision",
    "Limiter",
    "MemoryLimiter",
    "PlanLimits",
    "TokenBucket",
    "UsageWindows",
    "Windows",
    "day_of",
    "decision_of",
    "month_of",
    "next_day",
    "next_month",
    "waits_of",
]

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """The limits of a plan (``platform/plans.Plan``'s fields of the same names); None:
    unlimited."""

    rate_limit: int | None = 100  # API requests per minute
    burst_limit: int | None = None  # bucket size; None: rate_limit
    daily_quota: int | None = None  # API requests per UTC day
    monthly_quota: int | None = None  # API requests per UTC month
    stream_minutes_daily: float | None = None
    stream_minutes_monthly: float | None = None
    live_ai_minutes_daily: float | None = None
    live_ai_minutes_monthly: float | None = None
    max_concurrent_streams: int | None = None

    @property
    def burst(self) -> int | None:
        return self.burst_limit if self.burst_limit is not None else self.rate_limit


DEFAULT_LIMITS = PlanLimits()  # NaaP's default: 100 requests a minute, no quotas


def day_of(now: float) -> int:
    """The UTC day ``now`` falls in (days since the epoch)."""
    return int(now // DAY)


def next_day(now: float) -> float:
    """When the UTC day of ``now`` ends."""
    return (day_of(now) + 1) * DAY


def month_of(now: float) -> int:
    """The UTC month ``now`` falls in (year * 12 + month - 1)."""
    t = datetime.fromtimestamp(now, UTC)
    return t.year * 12 + t.month - 1


def next_month(now: float) -> float:
    """When the UTC month of ``now`` ends."""
    year, month = divmod(month_of(now) + 1, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC).timestamp()


@dataclass(slots=True)
class TokenBucket:
    """``tokens`` as of ``at``; full when new."""

    tokens: float
    at: float
    full: float = 0.0  # when it is full again (as of its last use): dropping it then loses nothing

    def refill(self, rate: int, burst: int, now: float) -> None:
        if now > self.at:
            self.tokens = min(float(burst), self.tokens + (now - self.at) * rate / 60.0)
        self.at = max(self.at, now)

    def full_at(self, rate: int, burst: int) -> float:
        """When it holds ``burst`` tokens again."""
        return self.at + max(0.0, burst - self.tokens) * 60.0 / rate


@dataclass(slots=True)
class Windows:
    """What was used in one UTC day and one UTC month (fixed windows)."""

    day: int = 0
    day_used: float = 0.0
    month: int = 0
    month_used: float = 0.0

    def roll(self, now: float) -> None:
        """Start new windows if ``now`` is past the current ones."""
        day, month = day_of(now), month_of(now)
        if day != self.day:
            self.day, self.day_used = day, 0.0
        if month != self.month:
            self.month, self.month_used = month, 0.0

    def add(self, amount: float) -> None:
        self.day_used += amount
        self.month_used += amount

    def idle(self, now: float) -> bool:
        """Whether it holds nothing for the windows of ``now`` (dropping it loses nothing)."""
        return (self.day != day_of(now) or self.day_used == 0) and (
            self.month != month_of(now) or self.month_used == 0
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request. ``limit``/``remaining``/``reset`` are the rate limit's
    (``reset``: unix seconds when the bucket is full again); the quota fields count requests,
    including this one when it is allowed, and are counted only while the plan has that quota.
    None: unlimited."""

    allowed: bool
    limit: int | None
    remaining: int
    reset: float
    retry_after: float  # seconds until a request may be allowed (0 when allowed)
    daily_limit: int | None = None
    daily_used: int = 0
    monthly_limit: int | None = None
    monthly_used: int = 0
    exceeded: str = ""  # "rate", "daily" or "monthly" when refused


def waits_of(
    limits: PlanLimits, now: float, tokens: float | None, day_used: float, month_used: float
) -> list[tuple[str, float]]:
    """What a request at ``now`` would exceed, and how long until it would not, given the
    key's bucket (``tokens`` after refilling; None: no bucket, as with a rate of 0) and what it
    used in the current day and month. Empty: allowed."""
    rate = limits.rate_limit
    waits: list[tuple[str, float]] = []
    if rate is not None and (tokens is None or tokens < 1.0):
        need = 1.0 - (tokens if tokens is not None else 0.0)
        waits.append(("rate", need * 60.0 / rate if rate > 0 else next_day(now) - now))
    if limits.daily_quota is not None and day_used + 1 > limits.daily_quota:
        waits.append(("daily", next_day(now) - now))
    if limits.monthly_quota is not None and month_used + 1 > limits.monthly_quota:
        waits.append(("monthly", next_month(now) - now))
    return waits


def decision_of(
    limits: PlanLimits,
    now: float,
    waits: list[tuple[str, float]],
    *,
    tokens: float | None,
    full: float,
    day_used: float,
    month_used: float,
) -> Decision:
    """The ``Decision`` of a request that ``waits`` (``waits_of``) allowed or refused, from the
    state after it was charged: the bucket's ``tokens`` (None: no bucket), when it is ``full``
    again, and the day's and month's counts."""
    exceeded, retry = max(waits, key=lambda w: w[1]) if waits else ("", 0.0)
    return Decision(
        allowed=not waits,
        limit=limits.rate_limit,
        remaining=max(0, math.floor(tokens)) if tokens is not None else 0,
        reset=full,
        retry_after=retry,
        daily_limit=limits.daily_quota,
        daily_used=int(day_used),
        monthly_limit=limits.monthly_quota,
        monthly_used=int(month_used),
        exceeded=exceeded,
    )


class Limiter(Protocol):
    async def check(self, key_id: str, limits: PlanLimits, now: float) -> Decision:
        """Decide one request of ``key_id`` under ``limits`` at ``now`` (unix seconds), and
        count it if it is allowed (a refused one counts against nothing)."""
        ...


@dataclass(slots=True)
class _Entry:
    bucket: TokenBucket | None = None
    windows: Windows = field(default_factory=Windows)


class MemoryLimiter:
    """Exact limits of one node: a bucket and day/month windows per key, bounded."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._entries)

    async def check(self, key_id: str, limits: PlanLimits, now: float) -> Decision:
        return self.decide(key_id, limits, now)

    def decide(self, key_id: str, limits: PlanLimits, now: float) -> Decision:
        entry = self._entry(key_id, now)
        win = entry.windows
        win.roll(now)
        rate, burst = limits.rate_limit, limits.burst
        bucket = entry.bucket
        if rate is not None and burst is not None and rate > 0 and burst > 0:
            if bucket is None:
                bucket = entry.bucket = TokenBucket(float(burst), now)
            bucket.refill(rate, burst, now)
        else:
            bucket = None
        # every limit first, then charge them all (a refused request counts against nothing)
        tokens = bucket.tokens if bucket is not None else None
        waits = waits_of(limits, now, tokens, win.day_used, win.month_used)
        if not waits:
            if bucket is not None:
                bucket.tokens -= 1.0
            # counted only under a quota (an unlimited plan's windows stay empty, so idle)
            win.day_used += limits.daily_quota is not None
            win.month_used += limits.monthly_quota is not None
        if bucket is not None and rate and burst:
            bucket.full = bucket.full_at(rate, burst)
        return decision_of(
            limits,
            now,
            waits,
            tokens=bucket.tokens if bucket is not None else None,
            full=bucket.full if bucket is not None else now,
            day_used=win.day_used,
            month_used=win.month_used,
        )

    def _entry(self, key_id: str, now: float) -> _Entry:
        entry = self._entries.get(key_id)
        if entry is not None:
            self._entries.move_to_end(key_id)
            return entry
        if len(self._entries) >= self.max_keys:
            self.evict_idle(now)
        while len(self._entries) >= self.max_keys:
            self._entries.popitem(last=False)
        entry = self._entries[key_id] = _Entry()
        return entry

    def evict_idle(self, now: float) -> int:
        """Drop the entries that equal fresh ones at ``now``; how many went."""
        idle = [k for k, e in self._entries.items() if _fresh(e, now)]
        for key in idle:
            del self._entries[key]
        return len(idle)


def _fresh(entry: _Entry, now: float) -> bool:
    full = entry.bucket is None or now >= entry.bucket.full
    return full and entry.windows.idle(now)


class UsageWindows:
    """Day and month totals of an amount (minutes) per key, bounded like ``MemoryLimiter``."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._entries: OrderedDict[str, Windows] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key_id: str, amount: float, now: float) -> Windows:
        """Count ``amount`` for ``key_id`` at ``now``; its windows after that."""
        win = self.used(key_id, now)
        win.add(amount)
        return win

    def used(self, key_id: str, now: float) -> Windows:
        """The windows of ``key_id`` at ``now`` (kept: a new key starts at zero)."""
        win = self._entries.get(key_id)
        if win is None:
            if len(self._entries) >= self.max_keys:
                for key in [k for k, w in self._entries.items() if w.idle(now)]:
                    del self._entries[key]
            while len(self._entries) >= self.max_keys:
                self._entries.popitem(last=False)
            win = self._entries[key_id] = Windows()
        self._entries.move_to_end(key_id)
        win.roll(now)
        return win
