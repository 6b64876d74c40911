"""Release timestamped media at wall-clock speed (for media that arrives in bursts).

``await pacer.wait(pts)`` sleeps until the media time ``pts`` is due, counted from the first call.
A jump (pts far ahead or behind the wall clock, e.g. a new source or a stall) re-anchors instead
of sleeping long or bursting. Clock and sleep are arguments, so tests need no real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    def __init__(
        self,
        *,
        clock_rate: int = 90_000,
        resync_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock_rate = clock_rate
        self.resync_after = resync_after
        self.resyncs = 0
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[float, int] | None = None

    def reset(self) -> None:
        self._anchor = None

    async def wait(self, pts: int) -> None:
        now = self._clock()
        if self._anchor is None:
            self._anchor = (now, pts)
            return
        wall0, pts0 = self._anchor
        due = wall0 + (pts - pts0) / self.clock_rate
        ahead = due - now
        if ahead > self.resync_after or ahead < -self.resync_after:
            self.resyncs += 1
            self._anchor = (now, pts)
            return
        if ahead > 0:
            await self._sleep(ahead)
