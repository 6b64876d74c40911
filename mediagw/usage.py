"""Usage: what work was done for whom, as events emitted where the work happens.

Producers (the transcode pipeline, live AI, payments) call ``UsageSink.emit`` with a frozen
``UsageEvent``; nothing else of theirs carries billing figures. The gateway hands them a
``UsageQueue``: ``emit`` never blocks and never raises; past ``maxsize`` waiting events it drops
the new one and counts it (``dropped``), so a slow consumer can never stall the media path. A
task drains the queue into the consumers (``UsageSink`` too): ``StreamUsage`` keeps per-stream
totals for ``/streams``; the usage ledger and the metrics come next.

Kinds and units:

    kind          unit      quantity                       wei
    transcode     pixel     output pixels of one segment   -
    live_ai       ms        input media handed to the O    -
    payment       ticket    tickets sent                   their expected value (the cost)

Ground floor: imports nothing of mediagw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

__all__ = [
    "LIVE_AI",
    "PAYMENT",
    "TRANSCODE",
    "NullUsage",
    "StreamMeter",
    "StreamUsage",
    "UsageEvent",
    "UsageQueue",
    "UsageSink",
    "UsageTotals",
]

log = logging.getLogger("mediagw.usage")

TRANSCODE = "transcode"
LIVE_AI = "live_ai"
PAYMENT = "payment"


@dataclass(frozen=True, slots=True)
class UsageEvent:
    stream: str  # public stream id
    session: int  # publish session of the stream (1, 2, ... as the publisher reconnects)
    principal: str  # who the stream is for ("" when nobody in particular)
    orchestrator: str  # who did the work ("" for work of the gateway itself)
    kind: str  # TRANSCODE, LIVE_AI, PAYMENT
    quantity: int
    unit: str  # "pixel", "ms", "ticket"
    wei: Fraction = Fraction(0)  # what it cost in payments to orchestrators


class UsageSink(Protocol):
    def emit(self, event: UsageEvent) -> None:
        """Take one event; never blocks, never raises."""
        ...


class NullUsage:
    """A sink that keeps nothing (library use without metering)."""

    def emit(self, event: UsageEvent) -> None:
        pass


@dataclass(frozen=True, slots=True)
class StreamMeter:
    """Emits the usage of one publish session of one stream into ``sink``."""

    sink: UsageSink
    stream: str
    session: int = 0
    principal: str = ""

    def emit(
        self,
        kind: str,
        quantity: int,
        unit: str,
        orchestrator: str = "",
        wei: Fraction = Fraction(0),
    ) -> None:
        self.sink.emit(
            UsageEvent(
                self.stream, self.session, self.principal, orchestrator, kind, quantity, unit, wei
            )
        )


class UsageQueue:
    """A bounded queue in front of the consumers; ``emit`` drops (counted) when it is full."""

    def __init__(self, consumers: Sequence[UsageSink], *, maxsize: int = 10_000) -> None:
        self.consumers = list(consumers)
        self.maxsize = maxsize
        self.dropped = 0
        self.delivered = 0
        self._queue: asyncio.Queue[UsageEvent] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: UsageEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("usage events dropped", extra={"dropped": self.dropped})

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage")

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            self._deliver(event)

    def _deliver(self, event: UsageEvent) -> None:
        for consumer in self.consumers:
            try:
                consumer.emit(event)
            except Exception:  # one broken consumer never loses the others their events
                log.exception("usage consumer failed", extra={"consumer": repr(consumer)})
        self.delivered += 1

    def drain(self) -> None:
        """Deliver what is waiting now (tests, shutdown)."""
        while not self._queue.empty():
            self._deliver(self._queue.get_nowait())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.drain()


@dataclass(slots=True)
class UsageTotals:
    transcode_pixels: int = 0
    live_ai_ms: int = 0
    tickets_sent: int = 0
    ev_sent_wei: Fraction = field(default_factory=Fraction)

    def add(self, event: UsageEvent) -> None:
        if event.kind == TRANSCODE:
            self.transcode_pixels += event.quantity
        elif event.kind == LIVE_AI:
            self.live_ai_ms += event.quantity
        elif event.kind == PAYMENT:
            self.tickets_sent += event.quantity
            self.ev_sent_wei += event.wei


class StreamUsage:
    """A consumer: per-stream totals since the gateway started (shown by ``/streams``)."""

    def __init__(self, max_streams: int = 100_000) -> None:
        self.max_streams = max_streams
        self._totals: dict[str, UsageTotals] = {}

    def emit(self, event: UsageEvent) -> None:
        totals = self._totals.get(event.stream)
        if totals is None:
            if len(self._totals) >= self.max_streams:  # bounded: the oldest stream goes
                del self._totals[next(iter(self._totals))]
            totals = self._totals[event.stream] = UsageTotals()
        totals.add(event)

    def of(self, stream: str) -> UsageTotals:
        return self._totals.get(stream) or UsageTotals()

    def forget(self, stream: str) -> None:
        self._totals.pop(stream, None)
