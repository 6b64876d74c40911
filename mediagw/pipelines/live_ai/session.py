"""``LiveSession``: one stream's live video-to-video run (live-ai spec §4-§9).

    session = LiveSession(stream_id="s", selector=sel, http=http, on_output=cb, params={...})
    await session.start()            # discovery, start request, channels (NoOrchestrator if none)
    session.push(segment)            # or: await session.feed(async_iterator_of_segments)
    session.begin(start); session.extend(progress); session.complete(segment)  # progressive
    await session.update({...})      # cached; written on the control channel
    await session.end()              # input closed, last output drained
    session.status()                 # runner status + gateway status + timings

Input segments go into a bounded queue and a pump publishes them in order on the attached
orchestrator's input channel. A stream's segments are handed over progressively (inflow.py):
one enters the queue at its first keyframe (``begin``) and, when its turn comes, its POST opens
and its bytes go out as they are muxed (``extend``), what was held first in a burst; the POST
closes at the cut (``complete``). A segment is only taken off the queue once published, so
while no orchestrator is attached (a swap) the input keeps queueing and goes to the next one,
a segment that was half sent starting over from its first byte; when the queue is over
``max_queue`` the oldest waiting segment is dropped (counted). A segment whose POST fails (the
publisher deletes what went out) is dropped once that orchestrator takes the next one (counted
``failed``), or goes whole to the next orchestrator if it is left; one whose progress the
gateway lost, or that the segmenter abandoned, is dropped (``skipped``): an orchestrator never
gets a spliced or truncated segment.

A supervisor swaps the orchestrator when the attachment reports a loss (channel gone, control
failure, payments refused) or the health rules fire (slow O, output watchdog, events
heartbeat): the old attachment is retired in the background, suspended if the reason says so,
and the next pre-discovered candidate is started at once. ``SwapLimiter``: a third swap within
3 minutes of the previous ones ends the stream (state ``failed``, with the reason).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any, Protocol

from mediagw.livepeer.trickle.subscriber import SubscriberStats
from mediagw.payments.live import LivePaymentSource
from segmenter import Segment, SegmentProgress, SegmentStart

from ...clock import SYSTEM
from ...usage import LIVE_AI, StreamMeter
from .attachment import Attachment
from .caps import PIPELINE
from .config import LiveConfig
from .connect import Connector
from .errors import NoOrchestrator
from .events import RunnerEvents
from .inflow import InputQueue, SegmentAbandoned
from .monitor import SwapLimiter, SwapReason
from .payer import PaymentCounters
from .selection import LiveSelector
from .state import SessionState
from .stats import SessionCounters, Timing
from .status import session_status
from .transport import LiveHTTP

__all__ = ["LiveSession", "OutputCallback"]

log = logging.getLogger("mediagw.live_ai.session")

OutputCallback = Callable[[int, bytes], Awaitable[None] | None]


class OutputWatcher(Protocol):
    """Sees each output segment while it is read (``output.OutputStream``): ``begin(seq)`` at
    its first chunk (``seq`` as ``on_output`` will get it if it completes; a new ``begin``
    supersedes an open segment), ``chunk`` per chunk, ``broken`` if it breaks off."""

    def begin(self, seq: int) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def broken(self) -> None: ...


class HasData(Protocol):
    @property
    def data(self) -> bytes: ...


MARKS = 4096


def _mark(marks: dict[int, float], seq: int, at: float) -> None:
    if len(marks) >= MARKS:
        del marks[next(iter(marks))]
    marks[seq] = at


class LiveSession:
    def __init__(
        self,
        *,
        stream_id: str,
        selector: LiveSelector,
        http: LiveHTTP,
        on_output: OutputCallback,
        on_progress: OutputWatcher | None = None,
        model: str = "noop",
        params: Mapping[str, Any] | None = None,
        payments: LivePaymentSource | None = None,
        config: LiveConfig | None = None,
        meter: StreamMeter | None = None,
        clock: Callable[[], float] = SYSTEM.monotonic,
        wall: Callable[[], float] = SYSTEM.wall,
    ) -> None:
        self.stream_id = stream_id
        self.meter = meter  # usage: input media handed over, payments (connect.py, payer.py)
        self.request_id = uuid.uuid4().hex[:8]
        self.selector = selector
        self.on_output = on_output
        self.on_progress = on_progress
        self.model = model
        self.params: dict[str, Any] = dict(params or {})
        self.config = config or LiveConfig()
        self.clock = clock
        self.wall = wall
        self.counters = SessionCounters()
        self.payments = PaymentCounters()
        self.events = RunnerEvents()
        # input handed to us (a stream's segment: its first keyframe cut) -> its first byte
        # written on the input channel's POST
        self.first_byte = Timing()
        # its first keyframe reached the gateway's Publisher -> that first byte (the ingest +
        # segmenter + queue share of capture -> first byte on trickle; progressive input only)
        self.ingest_first_byte = Timing()
        self.handoff = Timing()  # output segment fully received -> on_output called
        self.swap_time = Timing()  # loss detected -> next orchestrator attached
        self.output_gaps = Timing()  # between consecutive output segments
        self.swap_gaps: list[float] = []  # the output gap (no output bytes) across each swap
        self.output_stats = SubscriberStats()  # the output channels' GETs, 470s, ...
        self.connector = Connector(
            selector=selector,
            http=http,
            payments=payments,
            stream_id=stream_id,
            model=model,
            config=self.config,
            counters=self.payments,
            clock=clock,
            wall=wall,
            output_stats=self.output_stats,
            meter=meter,
        )
        self.state = SessionState.IDLE
        self.end_reason = ""
        self.limiter: SwapLimiter | None = None
        self.current: Attachment | None = None
        self.history: list[dict[str, Any]] = []
        self._updated = False  # params changed by update(): replay them after each attach
        self.input = InputQueue(
            self.config, self.counters, clock, lambda: self.current, self._notify
        )
        self._input_ended = False
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._out_seq = 0
        self._last_output: float | None = None
        self._last_media: float | None = None  # the last output chunk followed
        self._gap_pending = False
        self._swap_gap = 0.0
        self._draining: Attachment | None = None  # a left O whose output is still read
        self._streaming: Attachment | None = None  # whose output segment is being read
        # for the benchmark's stage split (bounded): input seq -> its first byte on trickle,
        # output seq (from 0 in this session) -> its first byte received
        self.input_first_byte_at: dict[int, float] = {}
        self.output_first_byte_at: dict[int, float] = {}
        self._drain_timer: asyncio.TimerHandle | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in (SessionState.ENDED, SessionState.FAILED)

    async def start(self) -> None:
        """Attach to the first orchestrator; raises ``NoOrchestrator`` when none takes it."""
        self.state = SessionState.STARTING
        self.limiter = SwapLimiter(
            started_at=self.clock(),
            window=self.config.swap_window,
            max_swaps=self.config.max_swaps,
        )
        att = await self.connector.connect(self, self.params)
        if att is None:
            await self._finish(SessionState.FAILED, "no orchestrator could start the stream")
            raise NoOrchestrator(self.end_reason)
        self._attach(att)
        self._pump = asyncio.create_task(self._run_pump(), name=f"live-pump-{self.stream_id}")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"live-sup-{self.stream_id}")

    def push(self, segment: HasData | bytes, *, cut_at: float | None = None) -> None:
        """Hand one whole keyframe-aligned MPEG-TS segment over (never blocks). ``cut_at``:
        when it was cut (session clock), for the first-byte timing; default now."""
        if not (self.finished or self._input_ended):
            self.input.push(segment, cut_at)

    def begin(self, start: SegmentStart) -> None:
        """A stream's segment opened at its first keyframe: queued now, its bytes follow
        (``extend``) until it is cut (``complete``); see ``InputQueue``."""
        if not (self.finished or self._input_ended):
            self.input.begin(start)

    def extend(self, progress: SegmentProgress) -> None:
        """The open segment's TS bytes muxed since the previous call."""
        self.input.extend(progress)

    def complete(self, segment: Segment) -> None:
        """A stream's segment was cut (one without progress is pushed whole)."""
        if not (self.finished or self._input_ended):
            self.input.complete(segment)

    def lose(self, seq: int) -> None:
        """A progress item of segment ``seq`` was lost on its way to us: it is skipped."""
        self.input.lose(seq)

    async def feed(self, source: AsyncIterable[HasData | bytes]) -> None:
        """Push every segment of ``source``, then end the stream."""
        async for segment in source:
            if self.finished:
                break
            self.push(segment)
        await self.end()

    async def update(self, params: Mapping[str, Any]) -> None:
        """Cache ``params`` and write them on the control channel (cached only while no
        orchestrator is attached; replayed after every attach)."""
        self.params = dict(params)
        self._updated = True
        att = self.current
        if att is not None:
            att.send_params(self.params)

    async def end(self) -> None:
        """The input ended: publish what is queued, close the input channel, drain the
        output for up to ``drain_timeout`` s, close everything."""
        self._input_ended = True
        self.input.end()
        self._notify()
        if self.finished:
            await self._shutdown()
            return
        if self._pump is not None:
            await asyncio.wait({self._pump}, timeout=self.config.drain_timeout)
        self.state = SessionState.ENDING
        await self._stop_tasks()
        att = self.current  # stays current while it drains: its last outputs are delivered
        if att is not None:
            await att.close(end_of_stream=True, drain_timeout=self.config.drain_timeout)
        self.current = None
        await self._finish(SessionState.ENDED, "input ended")
        await self._shutdown()

    async def close(self, reason: str = "closed") -> None:
        """Stop now (no drain)."""
        if not self.finished:
            await self._finish(SessionState.ENDED, reason)
        await self._shutdown()

    async def wait(self) -> None:
        """Until the stream has ended or failed."""
        await self._done.wait()

    # -- attachment host ---------------------------------------------------------------------

    def attachment_output_begin(self, att: Attachment) -> bool:
        """An output segment of ``att`` starts arriving: False if it is late (a left O's, once
        the new one delivers), else its chunks are followed (``on_progress``) from now on."""
        if att is self._draining:
            current = self.current
            if current is not None and current.output_begun > 0:
                self._end_drain()  # the new orchestrator delivers: the old one is done
                self.counters.late_outputs += 1
                return False
        elif att is not self.current:
            self.counters.late_outputs += 1
            return False
        elif self._draining is not None:
            self._end_drain()
        self._streaming = att
        _mark(self.output_first_byte_at, self._out_seq, self.clock())
        if self.on_progress is not None:
            self.on_progress.begin(self._out_seq)
        return True

    def attachment_output_chunk(self, att: Attachment, data: bytes) -> None:
        if att is not self._streaming:
            return
        # the output gap across a swap: the longest time without output bytes from the swap
        # until the next orchestrator's first bytes (what a WHEP viewer sees as a pause)
        now = self.clock()
        if self._gap_pending and self._last_media is not None:
            self._swap_gap = max(self._swap_gap, now - self._last_media)
            if att is self.current:
                self.swap_gaps.append(self._swap_gap)
                self._gap_pending = False
        self._last_media = now
        if self.on_progress is not None:
            self.on_progress.chunk(data)

    def attachment_output_broken(self, att: Attachment) -> None:
        if att is self._streaming:
            self._streaming = None
            if self.on_progress is not None:
                self.on_progress.broken()

    async def attachment_output(self, att: Attachment, data: bytes, received_at: float) -> None:
        """A whole output segment of ``att`` whose begin was accepted."""
        if att is not self._streaming:  # superseded by another O's segment meanwhile
            self.counters.late_outputs += 1
            return
        self._streaming = None
        now = self.clock()
        if self._last_output is not None:
            self.output_gaps.add(now - self._last_output)
        self._last_output = now
        seq, self._out_seq = self._out_seq, self._out_seq + 1
        self.counters.segments_out += 1
        self.handoff.add(self.clock() - received_at)
        try:
            result = self.on_output(seq, data)
            if inspect.isawaitable(result):
                await result
        except Exception:  # the consumer's bug must not stop the stream
            self.counters.callback_errors += 1
            log.exception("on_output failed", extra={"stream": self.stream_id, "seq": seq})

    def attachment_event(self, att: Attachment, kind: str, event: dict[str, Any]) -> None:
        self.counters.events += 1
        extra = {
            "stream_id": self.stream_id,
            "request_id": self.request_id,
            "manifest_id": att.channels.manifest_id,
            "orchestrator_info": {"address": "0x" + att.session.address.hex(), "url": att.url},
        }
        self.events.add(kind, event, extra)

    def attachment_failed(self, att: Attachment) -> None:
        self._notify()

    # -- internals ---------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _attach(self, att: Attachment) -> None:
        self.current = att
        self.state = SessionState.RUNNING
        self.history.append(
            {"orchestrator": att.url, "manifest_id": att.channels.manifest_id, "at": self.wall()}
        )
        self._notify()

    async def _current(self) -> Attachment | None:
        while True:
            if self.finished:
                return None
            att = self.current
            if att is not None and not att.lost.is_set():
                return att
            await self._changed.wait()

    async def _run_pump(self) -> None:
        queue = self.input
        while True:
            while not queue.items:
                if self._input_ended or self.finished:
                    queue.fail_held()
                    return
                await self._changed.wait()
            item = queue.items[0]
            if item.abandoned:
                queue.items.popleft()
                continue
            att = await self._current()
            if att is None:
                return
            if queue.failed_on is not None and queue.failed_on is not att:
                queue.requeue_held()  # their orchestrator was left: the next one gets them
                continue
            queue.publishing = item
            try:
                first = await att.publish(item.body())
            except SegmentAbandoned:
                first = None
            finally:
                queue.publishing = None
            if first is None:
                if att.lost.is_set() and not item.abandoned:
                    continue  # the next orchestrator gets it, from its first byte
                queue.failed(item, att)
                continue
            queue.done(item)
            if queue.failed_on is att:
                queue.fail_held()  # the orchestrator is fine: they were lost on the way
            self.counters.segments_published += 1
            if self.meter is not None and item.duration > 0:
                ms = round(item.duration * 1000)
                detail = f"{PIPELINE}:{self.model}"
                self.meter.emit(
                    LIVE_AI, ms, "ms", att.url, detail=detail, ms=ms, pixels=item.pixels
                )
            self.first_byte.add(first - item.arrived)
            _mark(self.input_first_byte_at, item.seq, first)
            if item.captured is not None:
                self.ingest_first_byte.add(first - item.captured)
            att.input_published(item.counted is att, self.clock())

    async def _supervise(self) -> None:
        interval = self.config.check_interval
        while not self.finished:
            att = self.current
            if att is None:
                return
            if not att.lost.is_set():
                try:
                    await asyncio.wait_for(att.lost.wait(), interval)
                except TimeoutError:
                    pass
            if self.finished or self.state is SessionState.ENDING:
                return
            reason = att.reason if att.lost.is_set() else att.monitor.check(self.clock())
            if reason is not None:
                att.fail(reason, att.detail or reason.value)
                await self._swap(att, reason)
            else:
                self.selector.prefetch()

    async def _swap(self, old: Attachment, reason: SwapReason) -> None:
        detected = self.clock()
        self.state = SessionState.SWAPPING
        self.current = None
        self._drain(old)
        self.counters.swaps += 1
        self.history[-1].update({"left": self.wall(), "reason": reason.name, "detail": old.detail})
        assert self.limiter is not None
        if not self.limiter.swap(detected, reason.value):
            await self._finish(
                SessionState.FAILED,
                f"too many orchestrator swaps: {self.limiter.count} within "
                f"{self.config.swap_window:g} s (last: {reason.value}: {old.detail})",
            )
            return
        if reason.suspends:
            self.selector.suspend(old.session.url)
        self._gap_pending, self._swap_gap = True, 0.0
        replay = self.params if self._updated else None
        att = await self.connector.connect(
            self, self.params, exclude=(old.session.url, old.session.transcoder), replay=replay
        )
        if att is None:
            await self._finish(
                SessionState.FAILED,
                f"no orchestrator to swap to after: {reason.value} ({old.detail})",
            )
            return
        self.swap_time.add(self.clock() - detected)
        self._attach(att)

    def _drain(self, att: Attachment) -> None:
        """Leave ``att`` but keep reading its output (make-before-break) until the next O
        delivers or ``drain_timeout`` passes: a segment it was processing is not lost."""
        self._end_drain()
        att.wind_down()
        self._draining = att
        loop = asyncio.get_running_loop()
        self._drain_timer = loop.call_later(self.config.drain_timeout, self._end_drain)

    def _end_drain(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        att, self._draining = self._draining, None
        if att is not None:
            self._retire(att)

    def _retire(self, att: Attachment) -> None:
        task = asyncio.create_task(att.close(), name=f"live-retire-{att.channels.manifest_id}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _finish(self, state: SessionState, reason: str) -> None:
        if self.finished:
            return
        self.state = state
        self.end_reason = reason
        att, self.current = self.current, None
        if att is not None:
            self._retire(att)
        log.info("live stream finished", extra={"stream": self.stream_id, "state": state.value,
                                                "reason": reason})  # fmt: skip
        self._done.set()
        self._notify()

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in (self._pump, self._supervisor) if t is not None and t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _shutdown(self) -> None:
        await self._stop_tasks()
        self._end_drain()
        if self._retiring:
            await asyncio.wait(list(self._retiring), timeout=self.config.retire_timeout + 1)
        await self.selector.close()

    # -- status ------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self.input.items)

    def status(self) -> dict[str, Any]:
        """The runner's latest status, the gateway's view and the timings (status.py)."""
        return session_status(self)
