"""``RedisLimiter``: the ``Limiter`` of ``platform/limits``, exact across gateway nodes.

The same token bucket and UTC day/month quota windows as ``MemoryLimiter``, kept in Redis so
that every node counts against one allowance. Each decision is one Lua script run atomically by
Redis (``EVALSHA``: one round trip; the script is loaded once per Redis, on first use): it
refills the bucket, checks every limit, and only if none is exceeded takes a token and counts
the request, so two nodes deciding at once cannot both take the last token. The ``Decision``
is then built by the same ``waits_of`` and ``decision_of`` as the memory limiter's.

Keys, per API key (``{id}`` is a hash tag: a key's three live in one cluster slot):
``PREFIX limit:{id}:b`` (the bucket: tokens, as of when), ``limit:{id}:d:DAY`` and
``limit:{id}:m:MONTH`` (request counts). None grows without bound: the bucket expires when it is
full again (a fresh one is full: nothing is lost), a window's count when the window is over.

The time is the caller's (``now``): nodes keep their clocks in sync (NTP); a node whose clock
is behind adds no tokens (the bucket never goes back in time).

Redis unreachable (or timing out): the request is **allowed** (fail open: the API stays up;
limits protect capacity, they are not a security boundary), counted in ``SharedRedis.failures``
(``mediagw_redis_failures_total``), and the log says once that Redis is down.
"""

from __future__ import annotations

import math

from ..limits import (
    Decision,
    PlanLimits,
    day_of,
    decision_of,
    month_of,
    next_day,
    next_month,
    waits_of,
)
from .redis import RedisError, SharedRedis

__all__ = ["RedisLimiter"]

WINDOW_GRACE_MS = 3_600_000  # a window's count outlives it by an hour (clock skew between nodes)
BUCKET_GRACE_MS = 1_000

# KEYS: bucket, day count, month count. ARGV: now, rate, burst, daily, monthly (-1: none),
# the day's and the month's count lifetimes (ms). Returns allowed (1/0) and, before any charge,
# the bucket's tokens after refilling (-1: no bucket), then after the charge when the bucket is
# full again, then the day's and month's counts before the charge.
SCRIPT = """
local now = tonumber(ARGV[1])
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local daily, monthly = tonumber(ARGV[4]), tonumber(ARGV[5])
local day_used = tonumber(redis.call('GET', KEYS[2]) or '0')
local month_used = tonumber(redis.call('GET', KEYS[3]) or '0')
local bucket = rate > 0 and burst > 0
local tokens, at = -1, now
if bucket then
  local state = redis.call('HMGET', KEYS[1], 't', 'a')
  if state[1] then
    tokens, at = tonumber(state[1]), tonumber(state[2])
  else
    tokens = burst
  end
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate / 60.0)
    at = now
  end
end
local allowed = 1
if rate >= 0 and (not bucket or tokens < 1.0) then allowed = 0 end
if daily >= 0 and day_used + 1 > daily then allowed = 0 end
if monthly >= 0 and month_used + 1 > monthly then allowed = 0 end
local full = now
if bucket then
  local left = tokens
  if allowed == 1 then left = tokens - 1.0 end
  full = at + math.max(0.0, burst - left) * 60.0 / rate
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', left), 'a', string.format('%.17g', at))
  redis.call('PEXPIRE', KEYS[1], math.ceil((full - now) * 1000) + tonumber(ARGV[8]))
end
if allowed == 1 then
  if daily >= 0 then
    redis.call('INCR', KEYS[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  end
  if monthly >= 0 then
    redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
  end
end
return {allowed, string.format('%.17g', tokens), string.format('%.17g', full),
        string.format('%.17g', day_used), string.format('%.17g', month_used)}
"""


def _arg(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    """Exact limits of every node sharing ``shared``'s Redis (and prefix)."""

    def __init__(self, shared: SharedRedis) -> None:
        self.shared = shared
        self._script = shared.client.register_script(SCRIPT)

    async def check(self, key_id: str, limits: PlanLimits, now: float) -> Decision:
        day, month = day_of(now), month_of(now)
        tag = "{" + key_id + "}"
        keys = [
            self.shared.key("limit", tag, "b"),
            self.shared.key("limit", tag, "d", str(day)),
            self.shared.key("limit", tag, "m", str(month)),
        ]
        args: list[str | int] = [
            repr(float(now)),
            _arg(limits.rate_limit),
            _arg(limits.burst),
            _arg(limits.daily_quota),
            _arg(limits.monthly_quota),
            math.ceil((next_day(now) - now) * 1000) + WINDOW_GRACE_MS,
            math.ceil((next_month(now) - now) * 1000) + WINDOW_GRACE_MS,
            BUCKET_GRACE_MS,
        ]
        try:
            reply = await self._script(keys=keys, args=args)
        except RedisError as exc:
            self.shared.failed(exc)
            return _allowed(limits, now)
        self.shared.ok()
        allowed = int(reply[0]) == 1
        tokens_before = float(reply[1])
        tokens = tokens_before if tokens_before >= 0 else None
        day_used, month_used = float(reply[3]), float(reply[4])
        waits = waits_of(limits, now, tokens, day_used, month_used)
        if allowed != (not waits):  # the script and waits_of are one rule written twice
            raise AssertionError(f"limiter script disagrees with waits_of: {reply!r}")
        if allowed:
            tokens = tokens - 1.0 if tokens is not None else None
            day_used += limits.daily_quota is not None
            month_used += limits.monthly_quota is not None
        return decision_of(
            limits,
            now,
            waits,
            tokens=tokens,
            full=float(reply[2]),
            day_used=day_used,
            month_used=month_used,
        )


def _allowed(limits: PlanLimits, now: float) -> Decision:
    """A request allowed because Redis cannot be asked (nothing is known of its usage)."""
    return Decision(
        allowed=True,
        limit=limits.rate_limit,
        remaining=max(0, (limits.burst or 1) - 1),
        reset=now,
        retry_after=0.0,
        daily_limit=limits.daily_quota,
        monthly_limit=limits.monthly_quota,
    )
