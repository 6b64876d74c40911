"""Bounded fan-out: one queue per subscriber; a slow subscriber drops its oldest items, counted
(and handed to its ``on_drop``, so it can account for them in order).

The publisher never waits on a subscriber: ``Fanout.publish`` is synchronous and O(subscribers).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Fanout", "Subscription"]


class Subscription(Generic[T]):
    """An async iterator of items; ends after the fan-out closes and the queue drains."""

    def __init__(
        self,
        fanout: Fanout[T],
        maxsize: int,
        name: str,
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        self._fanout = fanout
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._on_drop = on_drop
        self._wakeup = asyncio.Event()
        self._closed = False
        self.name = name
        self.dropped = 0
        self.delivered = 0

    def _put(self, item: T) -> None:
        if len(self._items) >= self._maxsize:
            dropped = self._items.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(dropped)
        self._items.append(item)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def unsubscribe(self) -> None:
        self._fanout._remove(self)
        self._close()

    def drain(self) -> list[T]:
        """Take every item still waiting (a consumer that stops early accounts for them)."""
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            while self._items:
                self.delivered += 1
                yield self._items.popleft()
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


class Fanout(Generic[T]):
    def __init__(self) -> None:
        self._subs: list[Subscription[T]] = []

    def subscribe(
        self, maxsize: int = 16, name: str = "", on_drop: Callable[[T], None] | None = None
    ) -> Subscription[T]:
        sub: Subscription[T] = Subscription(self, maxsize, name, on_drop)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription[T]) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, item: T) -> None:
        for sub in self._subs:
            sub._put(item)

    def close(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            sub._close()

    @property
    def subscribers(self) -> int:
        return len(self._subs)
