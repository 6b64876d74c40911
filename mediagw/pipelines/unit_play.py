"""Play H.264 access units that arrive as they are demuxed (the live AI output) to a WHEP source.

The output reader offers each access unit to a ``UnitFeed`` the moment it is complete; one
``play_units`` task per stream pushes them to the shared ``EncodedSource`` (viewers cost no
work here). The feed never blocks the reader: when it holds ``maxsize`` units (the player is
far behind) they are all dropped (counted) and the feed takes nothing until the next keyframe,
so what is played always decodes.

Pacing only smooths bursts. A unit the player had to wait for arrived in real time: it is
pushed at once and the pacer re-anchors on it, so units that arrive on time get no added
latency. Units already queued behind others (a whole segment read at once after a swap or a
backlog) are released at their timestamps' pace from that anchor; if the queue holds more than
``MAX_LAG`` of media, play jumps to the newest keyframe in it (counted in ``skips``).

A burst must not cost latency for good: once it is out, units arrive in real time again but the
queue never empties (each one comes while the pacer holds the one before), so the pacer would
keep the burst's delay forever. When ``CATCH_UP_UNITS`` units in a row each spent more than
``CATCH_UP_DELAY`` in the feed, the pacer re-anchors on the next one (counted in
``catch_ups``): the queued units go out at once (a viewer sees a few frames quickly, none is
dropped) and play is back at the arrival time. The start of a run is such a burst: the input
waits in the gateway while the orchestrator session starts, then comes out at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from webrtc import Pacer, VideoAccessUnit

from ..clock import SYSTEM
from .whep_play import MAX_LAG, VideoSink

__all__ = ["UnitFeed", "UnitStats", "play_units"]

MAX_UNITS = 240  # about 8 s at 30 fps
CATCH_UP_DELAY = 0.05  # seconds in the feed that count as held back
CATCH_UP_UNITS = 30  # ... for this many units in a row (about a second at 30 fps)


@dataclass
class UnitStats:
    units: int = 0  # access units pushed to the source
    dropped: int = 0  # dropped because the player was a whole feed behind (or waiting a key)
    skips: int = 0  # times play jumped ahead to the newest keyframe to stay live
    catch_ups: int = 0  # times the pacer let go of a delay left by a burst


class UnitFeed:
    """A bounded, never-blocking queue of access units (None: the end)."""

    def __init__(
        self,
        stats: UnitStats,
        maxsize: int = MAX_UNITS,
        clock: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self.stats = stats
        self.maxsize = maxsize
        self.clock = clock
        self._units: deque[VideoAccessUnit | None] = deque()
        self._arrived: deque[float] = deque()  # when each queued unit was offered
        self._wake = asyncio.Event()
        self._need_key = False

    def __len__(self) -> int:
        return len(self._units)

    def offer(self, unit: VideoAccessUnit) -> None:
        if self._need_key:
            if not unit.keyframe:
                self.stats.dropped += 1
                return
            self._need_key = False
        if len(self._units) >= self.maxsize:
            self.stats.dropped += len(self._units)
            self._units.clear()
            self._arrived.clear()
            if not unit.keyframe:
                self.stats.dropped += 1
                self._need_key = True
                return
        self._units.append(unit)
        self._arrived.append(self.clock())
        self._wake.set()

    def end(self) -> None:
        self._units.append(None)
        self._arrived.append(self.clock())
        self._wake.set()

    def lag(self, pts: int) -> int:
        """How far (90 kHz) the newest queued unit is ahead of ``pts``."""
        for unit in reversed(self._units):
            if unit is not None:
                return unit.pts - pts
        return 0

    def skip_to_last_keyframe(self) -> int:
        """Drop what is queued before the newest keyframe; the number of units dropped, or -1
        when no keyframe is queued (nothing dropped)."""
        units = self._units
        last = max((i for i, u in enumerate(units) if u is not None and u.keyframe), default=-1)
        for _ in range(last):
            units.popleft()
            self._arrived.popleft()
        return last

    async def get(self) -> tuple[VideoAccessUnit | None, bool, float]:
        """The next unit, whether it had to be waited for (it arrived in real time), and when
        it was offered."""
        waited = False
        while not self._units:
            waited = True
            self._wake.clear()
            await self._wake.wait()
        return self._units.popleft(), waited, self._arrived.popleft()


async def play_units(sink: VideoSink, feed: UnitFeed, pacer: Pacer | None = None) -> None:
    """``feed`` -> ``sink`` until the end is taken (see the module docstring for the pacing)."""
    pacer = pacer or Pacer()
    stats = feed.stats
    held = 0  # units in a row that spent more than CATCH_UP_DELAY in the feed
    release = 0  # units to push at once (a catch-up)
    while True:
        unit, waited, arrived = await feed.get()
        if unit is None:
            return
        if waited:
            pacer.reset()
            held = 0
        elif held >= CATCH_UP_UNITS:
            # a burst's delay outlived the burst: what is queued goes now, the next unit to
            # arrive anchors the pace at its arrival time
            release = len(feed) + 1
            held = 0
            stats.catch_ups += 1
        elif feed.lag(unit.pts) > MAX_LAG:
            skipped = feed.skip_to_last_keyframe()
            if skipped >= 0:
                stats.dropped += skipped + 1
                stats.skips += 1
                pacer.reset()
                continue
        if release:
            release -= 1
            pacer.reset()
        else:
            await pacer.wait(unit.pts)
        sink.push_video(unit)
        stats.units += 1
        held = held + 1 if feed.clock() - arrived > CATCH_UP_DELAY else 0
