"""``SharedStreamLimits``: plans' stream limits (``platform/stream_quota``) exact across nodes.

- **Concurrent streams**: per API key, a sorted set of the playback ids it has live (or admitted,
  about to go live) on any node, each scored by when it expires (Redis's own clock: nodes' clocks
  do not matter). ``reserve`` is one Lua script: it drops expired entries, then admits the stream
  if it is there already (its own publish again) or the set holds fewer than the plan's maximum,
  adding it; so two nodes admitting at once cannot both take the last place. Every ``interval``
  the node renews its entries (``held``); a stream's end removes its entry; a dead node's entries
  expire ``ttl`` seconds after its last renewal.
- **Stream and live-AI minutes**: per key, counters of the UTC day and month (floats, living an
  hour past their window). The per-segment path only adds to a sum in memory (``add``); every
  ``interval`` one pipelined round trip adds each key's sum to its counters (the renewals ride
  along, one script per key) and reads back the totals of every key this node has streams of,
  which ``on_totals`` hands to ``StreamQuotas``: it judges against what all nodes used, so a
  key's minutes run out at the same total whatever the split across nodes, and every node ends
  that key's streams at its next flush (within ``interval`` + a round trip of the total being
  reached; overshoot at most ``interval`` of each live stream, as on one node a segment).

Redis keys (``{id}`` a hash tag: one key's live in one cluster slot): ``PREFIX streams:{id}``,
``quota:{id}:s:d:DAY``, ``quota:{id}:s:m:MONTH``, ``quota:{id}:ai:d:DAY``,
``quota:{id}:ai:m:MONTH``.

Redis unreachable: **fail open**. A publish is admitted by this node's own count (exact on one
node), totals are this node's; sums not flushed are kept and added once Redis is back (usage is
not lost, only late); a live stream is never cut because Redis is down. Admissions served
without Redis count in ``SharedRedis.failures``; the log says once that Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..limits import day_of, month_of, next_day, next_month
from ..tasks import TaskSet
from .redis import RedisError, SharedRedis

log = logging.getLogger("mediagw.redis")

__all__ = ["LIVE_AI", "STREAM", "SharedStreamLimits", "Totals"]

STREAM, LIVE_AI = "s", "ai"
WINDOW_GRACE_MS = 3_600_000

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the key's streams. ARGV: playback id, maximum, ttl (ms). 1: admitted, 0: full.
RESERVE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)

# Several keys at once. KEYS, five a key: its streams, stream day, stream month, live-AI day,
# live-AI month. ARGV: ttl, day and month lifetimes (ms), then a key's stream minutes, live-AI
# minutes, how many playback ids to renew and those ids, and so on for the next key. Returns
# the four totals of each key after the additions, space-separated (one reply to parse).
FLUSH = (
    _NOW
    + """
local ttl, lives = tonumber(ARGV[1]), {ARGV[2], ARGV[3], ARGV[2], ARGV[3]}
local out, a = {}, 4
for k = 0, #KEYS / 5 - 1 do
  local streams, sums = KEYS[k * 5 + 1], {ARGV[a], ARGV[a], ARGV[a + 1], ARGV[a + 1]}
  local held = tonumber(ARGV[a + 2])
  for i = a + 3, a + 2 + held do redis.call('ZADD', streams, now + ttl, ARGV[i]) end
  if held > 0 then redis.call('PEXPIRE', streams, ttl) end
  redis.call('ZREMRANGEBYSCORE', streams, '-inf', now)
  for i = 1, 4 do
    local key = KEYS[k * 5 + 1 + i]
    if tonumber(sums[i]) > 0 then
      out[#out + 1] = redis.call('INCRBYFLOAT', key, sums[i])
      redis.call('PEXPIRE', key, lives[i])
    else
      out[#out + 1] = redis.call('GET', key) or '0'
    end
  end
  a = a + 3 + held
end
return table.concat(out, ' ')
"""
)
BATCH = 200  # keys per script run (Redis runs nothing else meanwhile)


@dataclass(frozen=True, slots=True)
class Totals:
    """What a key used on all nodes in the windows of ``day`` and ``month`` (minutes),
    this node's sums not yet flushed included."""

    day: int
    month: int
    stream_day: float
    stream_month: float
    live_ai_day: float
    live_ai_month: float


Held = Callable[[], dict[str, set[str]]]  # owner -> its playback ids live or admitted here
OnTotals = Callable[[str, Totals], None]


class SharedStreamLimits:
    def __init__(self, shared: SharedRedis, *, ttl: float = 6.0, interval: float = 1.0) -> None:
        self.shared = shared
        self.ttl_ms = math.ceil(ttl * 1000)
        self.interval = interval
        self.held: Held = dict
        self.on_totals: OnTotals = lambda owner, totals: None
        self._reserve = shared.client.register_script(RESERVE)
        self._flush = shared.client.register_script(FLUSH)
        self._pending: dict[tuple[str, str], float] = {}  # (owner, kind) -> minutes not flushed
        self._task: asyncio.Task[None] | None = None
        self._sends = TaskSet(log, "stream limits work")

    def _streams(self, owner: str) -> str:
        return self.shared.key("streams", "{" + owner + "}")

    def _keys(self, owner: str, now: float) -> list[str]:
        tag, day, month = "{" + owner + "}", str(day_of(now)), str(month_of(now))
        return [
            self._streams(owner),
            *(self.shared.key("quota", tag, kind, w, n) for kind in (STREAM, LIVE_AI)
              for w, n in (("d", day), ("m", month))),
        ]  # fmt: skip

    # -- concurrent streams -----------------------------------------------------------------------
    async def reserve(self, owner: str, playback_id: str, cap: int) -> bool:
        """Whether ``owner`` may have ``playback_id`` live besides its other streams on every
        node (held until ``release`` or ``ttl`` after the last renewal); True if Redis is down."""
        try:
            reply = await self._reserve(
                keys=[self._streams(owner)], args=[playback_id, cap, self.ttl_ms]
            )
        except RedisError as exc:
            self.shared.failed(exc)
            return True
        self.shared.ok()
        return int(reply) == 1

    def release(self, owner: str, playback_id: str) -> None:
        """Free ``playback_id``'s place (in the background; Redis down: it expires)."""

        async def remove() -> None:
            try:
                await self.shared.client.zrem(self._streams(owner), playback_id)
            except RedisError as exc:
                self.shared.failed(exc, counted=False)

        self._sends.spawn(remove())

    # -- minutes ----------------------------------------------------------------------------------
    def add(self, owner: str, kind: str, minutes: float) -> None:
        """Count ``minutes`` of ``kind`` (``STREAM``, ``LIVE_AI``) for ``owner``: memory only."""
        self._pending[owner, kind] = self._pending.get((owner, kind), 0.0) + minutes

    async def totals(self, owner: str, now: float) -> Totals | None:
        """``owner``'s totals on every node now (one round trip); None if Redis is down."""
        keys = self._keys(owner, now)
        try:
            values = await self.shared.client.mget(keys[1:])
        except RedisError as exc:
            self.shared.failed(exc)
            return None
        self.shared.ok()
        return self._totals(owner, now, [v or 0 for v in values])

    def _totals(self, owner: str, now: float, values: list[bytes | str | int]) -> Totals:
        s, ai = self._pending.get((owner, STREAM), 0.0), self._pending.get((owner, LIVE_AI), 0.0)
        sd, sm, ad, am = (float(v) for v in values)
        return Totals(day_of(now), month_of(now), sd + s, sm + s, ad + ai, am + ai)

    async def flush(self, now: float) -> None:
        """Add the sums to Redis, renew the held streams, and report the totals of every key
        with streams here (``on_totals``). Redis down: the sums wait for the next flush."""
        held = self.held()
        sums, self._pending = self._pending, {}
        owners = set(held) | {owner for owner, _ in sums}
        if not owners:
            return
        day_life = math.ceil((next_day(now) - now) * 1000) + WINDOW_GRACE_MS
        month_life = math.ceil((next_month(now) - now) * 1000) + WINDOW_GRACE_MS
        order = sorted(owners)
        try:
            async with self.shared.client.pipeline(transaction=False) as pipe:
                for first in range(0, len(order), BATCH):
                    keys: list[str] = []
                    args: list[str | int] = [self.ttl_ms, day_life, month_life]
                    for owner in order[first : first + BATCH]:
                        ids = sorted(held.get(owner, ()))
                        keys += self._keys(owner, now)
                        args += [
                            repr(sums.get((owner, STREAM), 0.0)),
                            repr(sums.get((owner, LIVE_AI), 0.0)),
                            len(ids),
                            *ids,
                        ]
                    await self._flush(keys=keys, args=args, client=pipe)
                replies = await pipe.execute()
        except RedisError as exc:
            self.shared.failed(exc, counted=False)  # nothing lost: the sums go back
            for key, minutes in sums.items():
                self.add(*key, minutes)
            return
        self.shared.ok()
        values = [v for reply in replies for v in _text(reply).split()]
        for i, owner in enumerate(order):
            if owner in held:
                self.on_totals(owner, self._totals(owner, now, list(values[i * 4 : i * 4 + 4])))

    # -- running ----------------------------------------------------------------------------------
    def start(self, now: Callable[[], float]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.flush(now())
                except Exception:  # a bug must not stop the counting
                    log.exception("stream limits flush failed")

        self._task = asyncio.get_running_loop().create_task(loop(), name="stream-limits")

    async def close(self, now: float) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush(now)  # the last sums (the held streams ended: none renewed)
        await self._sends.wait()


def _text(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply
