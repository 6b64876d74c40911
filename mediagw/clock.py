"""Time, passed in: one clock for the whole gateway.

Code that needs the time takes it as an argument, never from ``time`` directly, so timers,
expiries, rates and timestamps are testable (aioquic's ``now=``). Two readings:

- ``monotonic()``: seconds that never go back, for durations, timeouts and rates;
- ``wall()``: unix seconds, for timestamps shown to users or sent on the wire.

Most constructors take the reading they use as a ``Callable[[], float]`` (``clock=`` /
``wall=``), defaulting to ``SYSTEM.monotonic`` or ``SYSTEM.wall``; the composition root may pass
one ``Clock``'s readings everywhere. Tests pass a ``ManualClock``, which moves only when told
and is itself callable, so it stands in for either reading.

Ground floor: imports nothing of mediagw. The sans-IO cores (RTMP, trickle rules, ticket, fee
and params math, playlists) do not even import this: time is an argument of their calls.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


SYSTEM = SystemClock()


class ManualClock:
    """A clock that moves only when told (``advance`` or setting ``now``). Both readings are
    ``now``; calling it returns ``now`` too, and ``ns()`` gives it in integer nanoseconds."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    def ns(self) -> int:
        return round(self.now * 1_000_000_000)

    def advance(self, seconds: float) -> None:
        self.now += seconds
