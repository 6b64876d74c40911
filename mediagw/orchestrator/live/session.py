"""One live video-to-video session: the in-process "runner" and the O's own accounting reader.

Four tasks share the session's four trickle channels (all created by the O, read and written in
process, never over HTTP):

- **input** reads ``<mid>`` from seq 0: per segment it counts, runs the accounting (§9.2; an
  unpaid bill ends the session), and queues a job for the worker at the segment's first byte,
  then feeds the job each chunk as it arrives (a full queue drops its oldest waiting job; the
  one being worked on is never dropped, so a slow effect costs at most ``QUEUE_DEPTH`` waiting
  segments of memory, and input reading never waits on the worker). The channel closing
  (gateway ``DELETE``, idle sweep) ends the session once the worker has finished the queued
  segments (at most ``DRAIN_TIMEOUT`` s), so the last input segment still comes out;
- **worker** takes the jobs in order and writes one output segment on ``<mid>-out`` per job
  while its input still arrives (``progressive.py``, params current when it starts), as
  go-livepeer's ai-runner does: a pass-through pipeline writes each input chunk as it comes
  (frames counted with ``segmenter.tsdemux``); effects decode, transform and encode in the live
  thread pool (``media.process_stream``) and write what the muxer produces. An input segment
  that breaks mid-way (the gateway's POST died, or it went over the size limit) breaks its
  output segment off too: readers of ``<mid>-out`` are cut (over HTTP: an aborted body, which
  the gateway's subscriber reports as ``TrickleSegmentBroken``), so no short output passes for
  a complete one;
- **control** reads ``<mid>-control``: each segment one JSON object; exactly
  ``{"keep": "alive"}`` is ignored; other objects are validated and replace the params, or give
  an ``error`` event and the old params stay;
- **status** writes a ``status`` event on ``<mid>-events`` at once and then every
  ``live_status_interval`` seconds.

``end(reason)`` closes all four channels (subscribers see ``Lp-Trickle-Closed``, later requests
404), cancels the tasks and tells the manager. Fault switches (``config.faults.live_*``) are read
at each use; ``output_fault`` counts the gateway's GETs of ``<mid>-out`` and answers them
instead of the trickle server while ``live_output_404`` / ``live_output_470`` say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

from mediagw.livepeer.trickle import TrickleError
from mediagw.livepeer.trickle.wire import (
    H_LATEST,
    H_SEQ,
    NOT_FOUND_BODY,
    STATUS_UNAVAILABLE,
)

from ..config import OrchestratorConfig
from ..errors import LiveParamsError
from ..stats import OrchestratorStats
from ..trickle import LocalSegment, TrickleServer
from .accounting import LiveAccounting
from .events import (
    EVENTS_QUEUE,
    STATUS_QUEUE,
    TRACE_QUEUE,
    LiveStatus,
    encode_event,
    error_event,
    trace_event,
)
from .faults import Reply
from .jobs import Broken, InputJob
from .media import LiveMediaError
from .params import Luts, PipelineParams, parse_params
from .progressive import effect, forward

__all__ = ["KEEPALIVE", "LiveSession", "channel_names"]

log = logging.getLogger("mediagw.orchestrator.live")

KEEPALIVE = {"keep": "alive"}
QUEUE_DEPTH = 2  # segments waiting for the worker (besides its current one); more drops the oldest
CLOSED_LINGER = 5.0  # seconds the channels of a drained session stay readable, closed
DRAIN_TIMEOUT = 5.0  # after the input ended: finish the queued segments for at most this long


def channel_names(mid: str) -> tuple[str, str, str, str]:
    """(input, output, control, events)."""
    return mid, f"{mid}-out", f"{mid}-control", f"{mid}-events"


class _TooLarge(Exception):
    pass


async def _read(segment: LocalSegment, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in segment:
        size += len(chunk)
        if size > limit:
            segment.release()
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class LiveSession:
    def __init__(
        self,
        *,
        mid: str,
        params: PipelineParams,
        server: TrickleServer,
        config: OrchestratorConfig,
        stats: OrchestratorStats,
        executor: Executor,
        accounting: LiveAccounting | None,
        on_end: Callable[[LiveSession], None],
        request_id: str = "",
        stream_id: str = "",
    ) -> None:
        self.mid = mid
        self.model = params.model
        self.request_id = request_id
        self.stream_id = stream_id
        self.server = server
        self.config = config
        self.stats = stats
        self.accounting = accounting
        self.names = channel_names(mid)
        self.params = params
        self._luts: Luts | None = params.luts()
        self._executor = executor
        self._on_end = on_end
        self.status = LiveStatus(params.model, config.clock(), config.live_status_interval)
        self.status.params(params.raw, config.clock(), initial=True)
        self.inputs = 0
        self.outputs = 0
        self.output_requests = 0  # the gateway's GETs of <mid>-out
        self.output_faults = 0  # ... answered by a live_output_* fault switch
        self.ended = False
        self.end_reason = ""
        self._queue: asyncio.Queue[InputJob] = asyncio.Queue(QUEUE_DEPTH)
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifetime ---------------------------------------------------------------------------

    def start(self) -> None:
        for name, body in (
            ("input", self._read_input()),
            ("worker", self._work()),
            ("control", self._read_control()),
            ("status", self._report_status()),
        ):
            task = asyncio.create_task(self._guard(name, body), name=f"live-{self.mid}-{name}")
            self._tasks.append(task)

    def end(self, reason: str, *, linger: float = 0.0) -> None:
        """Close the four channels (removed after ``linger`` seconds), stop the tasks
        (idempotent)."""
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        for name in self.names:
            self.server.close_channel(name, linger=linger)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        log.info(
            "live session ended",
            extra={"mid": self.mid, "model": self.model, "reason": reason,
                   "segments_in": self.inputs, "segments_out": self.outputs},
        )  # fmt: skip
        self._on_end(self)

    async def wait(self) -> None:
        """Until every task has finished (after ``end``)."""
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _guard(self, name: str, body: Coroutine[Any, Any, None]) -> None:
        try:
            await body
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live session task failed", extra={"mid": self.mid, "task": name})
            self.end(f"{name} task failed")

    # --- faults -----------------------------------------------------------------------------

    @property
    def _faulty(self) -> bool:
        return self.config.faults.live_applies(self.stream_id)

    def output_fault(self, seq: int) -> Reply | None:
        """A GET of ``<mid>-out`` segment ``seq`` arrived: count it; the answer of a fault
        switch, or None (the trickle server serves it)."""
        self.output_requests += 1
        faults = self.config.faults
        if not self._faulty:
            return None
        text = [("Content-Type", "text/plain; charset=utf-8")]
        if faults.take_live_output("live_output_404"):
            reply: Reply = (404, text, b"Stream not found\n")
        elif faults.take_live_output("live_output_470"):
            channel = self.server.get_channel(self.names[1])
            latest = channel.next_write if channel is not None else 0
            headers = [(H_LATEST, str(latest)), (H_SEQ, str(seq)), *text]
            reply = (STATUS_UNAVAILABLE, headers, NOT_FOUND_BODY)
        else:
            return None
        self.output_faults += 1
        self.stats.faults_injected += 1
        return reply

    # --- events -----------------------------------------------------------------------------

    async def _emit(self, event: dict[str, Any], queue: str) -> None:
        if self.config.faults.live_no_events and self._faulty:
            return
        channel = self.server.get_channel(self.names[3])
        if channel is None or channel.closed:
            return
        try:
            await channel.write_segment(encode_event(event, queue))
        except TrickleError:
            return
        self.stats.live_events_sent += 1

    async def _error(self, message: str) -> None:
        now = self.config.clock()
        self.status.error(message, now)
        self.stats.live_errors += 1
        await self._emit(error_event(self.model, message, now), EVENTS_QUEUE)

    async def _report_status(self) -> None:
        while True:
            await self._emit(self.status.report(self.config.clock()), STATUS_QUEUE)
            await asyncio.sleep(self.config.live_status_interval)

    # --- input and accounting ---------------------------------------------------------------

    async def _read_input(self) -> None:
        subscription = self.server.subscribe(self.names[0], 0)
        try:
            async for segment in subscription:
                if not await self._on_input(segment):
                    return
        finally:
            subscription.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_TIMEOUT)
        # the last output may have been written an instant ago: a gateway whose next GET is
        # still on its way gets it (then Lp-Trickle-Closed), not a 404 for a removed channel
        self.end("input channel closed", linger=CLOSED_LINGER)

    async def _on_input(self, segment: LocalSegment) -> bool:
        """One input segment; False when the session ended."""
        self.inputs += 1
        self.stats.live_segments_in += 1
        self.status.input(0, self.config.clock())
        if self.inputs == 1:
            event = trace_event("runner_receive_first_ingest_segment", self.config.clock())
            await self._emit(event, TRACE_QUEUE)
        if self.accounting is not None:
            bill = self.accounting.on_segment(self.config.monotonic())
            if bill is not None and not bill.paid:
                self.stats.live_insufficient_balance += 1
                log.warning(bill.error(self.mid), extra={"mid": self.mid})
                self.end("insufficient balance")
                return False
            if bill is not None:
                self.stats.live_debits += 1
                self.stats.live_fees_debited += bill.fee
                self.stats.fees_debited += bill.fee
        close_after = self.config.faults.live_close_after
        if close_after is not None and self.inputs > close_after and self._faulty:
            self.stats.faults_injected += 1
            self.end(f"injected fault: close after {close_after} segments")
            return False
        job: InputJob | None = None
        size, limit = 0, self.server.limits.max_segment_bytes
        try:
            async for chunk in segment:
                size += len(chunk)
                if size > limit:
                    segment.release()
                    raise _TooLarge
                if job is None and chunk:
                    job = self._enqueue(segment.seq)
                if job is not None:
                    job.put(chunk)
        except (TrickleError, _TooLarge):
            if job is not None:
                job.end(broken=True)  # a broken segment: its output breaks off too
            return True
        if job is not None:
            job.end()
        return True

    def _enqueue(self, seq: int) -> InputJob:
        if self._queue.full():
            dropped = self._queue.get_nowait()
            dropped.end(broken=True)
            self._queue.task_done()
            self.stats.live_segments_dropped += 1
        job = InputJob(seq)
        self._queue.put_nowait(job)
        return job

    # --- processing -------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if not await self._process(job):
                    return
            finally:
                self._queue.task_done()

    async def _process(self, job: InputJob) -> bool:
        """One queued segment through the pipeline, progressively (``progressive.py``); False
        when the session ended."""
        if self._stalled():
            return True
        channel = self.server.get_channel(self.names[1])
        if channel is None or channel.closed:
            self.end("output channel closed")
            return False
        params = self.params
        try:
            if params.passthrough:
                frames_in = frames_out = await forward(job, channel)
            else:
                result = await effect(
                    job,
                    channel,
                    executor=self._executor,
                    luts=self._luts,
                    size=params.size,
                    preset=self.config.live_x264_preset,
                )
                frames_in, frames_out = result.frames_in, result.frames_out
        except Broken:
            self.stats.live_segments_broken += 1
            return True
        except LiveMediaError as exc:
            await self._error(f"processing failed: {exc}")
            return True
        except TrickleError:
            self.end("output channel closed")
            return False
        self.status.frames_in += frames_in
        return await self._published(frames_out)

    def _stalled(self) -> bool:
        stall = self.config.faults.live_stall_after
        if stall is not None and self.outputs >= stall and self._faulty:
            self.stats.faults_injected += 1
            return True
        return False

    async def _published(self, frames: int) -> bool:
        """After one output segment was written in full; False when the session ended."""
        faults = self.config.faults
        self.outputs += 1
        self.stats.live_segments_out += 1
        now = self.config.clock()
        self.status.output(frames, now)
        if self.outputs == 1:
            await self._emit(trace_event("runner_send_first_processed_segment", now), TRACE_QUEUE)
        close_after = faults.live_close_after
        if close_after is not None and self.outputs >= close_after and self._faulty:
            self.stats.faults_injected += 1
            self.end(f"injected fault: close after {close_after} segments")
            return False
        return True

    # --- control ----------------------------------------------------------------------------

    async def _read_control(self) -> None:
        subscription = self.server.subscribe(self.names[2], 0)
        try:
            async for segment in subscription:
                try:
                    data = await _read(segment, self.config.live_max_control_bytes)
                except _TooLarge:
                    await self._error("control message too large")
                    continue
                except TrickleError:
                    continue
                if data:
                    await self._on_control(data)
        finally:
            subscription.close()

    async def _on_control(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            self.stats.live_param_errors += 1
            await self._error(f"invalid control message: {exc}")
            return
        if message == KEEPALIVE:
            self.stats.live_keepalives += 1
            return
        try:
            params = parse_params(self.model, message)
        except LiveParamsError as exc:
            self.stats.live_param_errors += 1
            await self._error(f"invalid params: {exc}")
            return
        self.params = params
        self._luts = params.luts()
        self.status.params(params.raw, self.config.clock())
        self.stats.live_control_updates += 1
        log.info("live params updated", extra={"mid": self.mid, "params": params.raw})
