"""``TtlCache``: a bounded, expiring, single-flight cache of async lookups.

    cache = TtlCache[str, Policy](max_entries=10_000, clock=clock.monotonic)
    policy = await cache.get(playback_id, lambda: load(playback_id), ttl=5.0)

An entry lives ``ttl`` seconds (of the given monotonic clock) or until it is the least recently
used one of a full cache. Concurrent ``get`` calls of a key that is not cached share one load
(single flight): a thousand players asking at the moment an entry expires make one store call.
A load that raises caches nothing; every waiter gets its exception, or, with ``stale``, the
key's value that expired at most ``stale`` seconds ago (stale-if-error: what was last known
while the store is unreachable).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, *, max_entries: int, clock: Callable[[], float], stale: float = 0.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.stale = stale  # seconds an expired value still answers a failed load
        self.stale_served = 0  # failed loads answered with an expired value
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> tuple[bool, V | None]:
        """(True, value) if ``key`` is cached and fresh, else (False, None); no load."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        deadline, value = entry
        if deadline <= self._clock():
            if deadline + self.stale <= self._clock():
                del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: K, value: V, ttl: float) -> None:
        """Cache ``value`` for ``ttl`` seconds (nothing if ``ttl`` is not positive)."""
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: K | None = None) -> None:
        """Drop one entry (None: all of them); a load under way still caches its result."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    async def get(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        ttl: float | Callable[[V], float],
    ) -> V:
        """The cached value of ``key``, else ``await load()``, cached for ``ttl`` seconds (or
        ``ttl(value)`` seconds, so an entry may live as long as what it holds is valid)."""
        found, value = self.peek(key)
        if found:
            return value  # type: ignore[return-value]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load, ttl))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    async def _load(
        self, key: K, load: Callable[[], Awaitable[V]], ttl: float | Callable[[V], float]
    ) -> V:
        try:
            value = await load()
        except Exception:
            entry = self._entries.get(key)
            if entry is None or entry[0] + self.stale <= self._clock():
                raise
            self.stale_served += 1
            return entry[1]
        self.put(key, value, ttl(value) if callable(ttl) else ttl)
        return value

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved: a load whose waiters all went away logs nothing
