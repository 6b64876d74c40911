"""Usage: what work was done for whom, as events emitted where the work happens.

Producers (the transcode pipeline, live AI, payments) call ``UsageSink.emit`` with a frozen
``UsageEvent``; nothing else of theirs carries billing figures. The gateway hands them a
``UsageQueue``: ``emit`` never blocks and never raises; past ``maxsize`` waiting events it drops
the new one and counts it (``dropped``), so a slow consumer can never stall the media path. A
task drains the queue into the consumers (``UsageSink`` too): ``StreamUsage`` keeps per-stream
totals for ``/streams``; the usage ledger and the metrics come next.

Kinds and units:

    kind           unit    quantity                           ms, pixels, detail
    source         ms      ingest media of one segment        ms; pixels in; -
    transcode      pixel   output pixels of one rendition     segment ms; pixels; rendition
    live_ai        ms      input media handed to the O        ms; pixels in; "pipeline:model"
    delivery_hls   byte    HLS bytes served (summed a while)  viewer ms (served segments)
    delivery_whep  ms      WebRTC playback (summed a while)   viewer ms
    recording      ms      media written to a recording       ms
    payment        ticket  tickets sent                       wei: their expected value (cost)

Viewer-seconds are approximated by the durations of the segments served (HLS) or forwarded
(WHEP): a player that fetches each segment once counts its real watch time.

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
    "DELIVERY_HLS",
    "DELIVERY_WHEP",
    "KINDS",
    "LIVE_AI",
    "PAYMENT",
    "RECORDING",
    "SOURCE",
    "TRANSCODE",
    "NullUsage",
    "StreamMeter",
    "StreamUsage",
    "UsageEvent",
    "UsageQueue",
    "UsageSink",
    "UsageTotals",
    "media_pixels",
]

log = logging.getLogger("mediagw.usage")

TRANSCODE = "transcode"
LIVE_AI = "live_ai"
PAYMENT = "payment"
SOURCE = "source"
DELIVERY_HLS = "delivery_hls"
DELIVERY_WHEP = "delivery_whep"
RECORDING = "recording"
KINDS = (SOURCE, TRANSCODE, LIVE_AI, DELIVERY_HLS, DELIVERY_WHEP, RECORDING, PAYMENT)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    stream: str  # public stream id
    session: int  # publish session of the stream (1, 2, ... as the publisher reconnects)
    principal: str  # who the stream is for ("" when nobody in particular)
    orchestrator: str  # who did the work ("" for work of the gateway itself)
    kind: str  # one of KINDS
    quantity: int
    unit: str  # "pixel", "ms", "byte", "ticket"
    wei: Fraction = Fraction(0)  # what it cost in payments to orchestrators
    detail: str = ""  # the rendition (transcode) or "pipeline:model" (live AI)
    ms: int = 0  # media duration the event covers (viewer time for deliveries)
    pixels: int = 0  # pixels the event covers (input pixels for source and live AI)


def media_pixels(segment: object) -> int:
    """The video pixels of a segment (frames x width x height), 0 when it does not say."""
    video = getattr(segment, "video", None)
    frames = getattr(segment, "video_frames", 0)
    if video is None or not isinstance(frames, int):
        return 0
    return frames * int(getattr(video, "width", 0)) * int(getattr(video, "height", 0))


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
        *,
        detail: str = "",
        ms: int = 0,
        pixels: int = 0,
    ) -> None:
        self.sink.emit(
            UsageEvent(
                self.stream,
                self.session,
                self.principal,
                orchestrator,
                kind,
                quantity,
                unit,
                wei,
                detail,
                ms,
                pixels,
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
