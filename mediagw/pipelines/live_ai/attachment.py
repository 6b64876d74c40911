"""One run of a live stream on one orchestrator: its four trickle channels, payments, health.

An ``Attachment`` is made after a successful start request and lives until the stream ends or
the session leaves the orchestrator (a swap). It never swaps by itself: every problem goes
through ``fail(reason)``, which sets ``lost`` once and tells the host; the host decides.

    input    TricklePublisher(<mid>), explicit seqs from 0; ``publish`` streams one segment's
             bytes as its source yields them, racing the write against ``lost``; max_drops
             dropped segments in a row count as the channel gone
    output   TrickleSubscriber(<mid>-out) from seq 0; each segment read chunk by chunk (the host
             follows them as they arrive), then handed to the host whole
    events   TrickleSubscriber(<mid>-events); each JSON event -> monitor.event + host
    control  ControlChannel(<mid>-control): replay, updates, keepalive
    payments LivePayer, triggered by published input segments

A subscriber that ends (404 / Lp-Trickle-Closed) or gives up (TrickleUnavailable) means the
channel is gone (the detail says which). ``closing`` silences all of that while the session
itself takes it down. The output subscriber counts into ``output_stats`` (the session's, summed
over its orchestrators); ``output_unavailable`` is the current run of 470 answers on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from mediagw.livepeer.trickle.errors import (
    TrickleChannelGone,
    TrickleError,
    TrickleSegmentBroken,
    TrickleSegmentDropped,
    TrickleSegmentTooLarge,
    TrickleUnavailable,
)
from mediagw.livepeer.trickle.publisher import TricklePublisher
from mediagw.livepeer.trickle.subscriber import (
    SubscriberStats,
    TrickleSegment,
    TrickleSubscriber,
)
from mediagw.pool.session import OrchSession

from ...clock import SYSTEM
from .config import LiveConfig
from .control import ControlChannel
from .events import EventError, parse_event
from .monitor import HealthMonitor, SwapReason
from .payer import LivePayer, PayOutcome
from .start import LiveChannels
from .transport import LiveHTTP

__all__ = ["Attachment", "AttachmentHost"]

log = logging.getLogger("mediagw.live_ai.attachment")


class AttachmentHost(Protocol):
    def attachment_output_begin(self, att: Attachment) -> bool: ...

    def attachment_output_chunk(self, att: Attachment, data: bytes) -> None: ...

    def attachment_output_broken(self, att: Attachment) -> None: ...

    def attachment_output(
        self, att: Attachment, data: bytes, received_at: float
    ) -> Awaitable[None]: ...

    def attachment_event(self, att: Attachment, kind: str, event: dict[str, Any]) -> None: ...

    def attachment_failed(self, att: Attachment) -> None: ...


class Attachment:
    def __init__(
        self,
        host: AttachmentHost,
        session: OrchSession,
        channels: LiveChannels,
        payer: LivePayer,
        *,
        http: LiveHTTP,
        config: LiveConfig,
        clock: Callable[[], float] = SYSTEM.monotonic,
        output_stats: SubscriberStats | None = None,
    ) -> None:
        self.host = host
        self.session = session
        self.channels = channels
        self.payer = payer
        self.http = http
        self.config = config
        self.clock = clock
        self.attached_at = clock()
        self.monitor = HealthMonitor(
            started_at=self.attached_at,
            output_timeout=config.output_timeout,
            events_timeout=config.events_timeout,
            max_in_flight=config.max_in_flight,
            max_payment_failures=config.max_payment_failures,
        )
        self.input = self._publisher(channels.publish_url, "video/MP2T")
        self.control = ControlChannel(
            self._publisher(channels.control_url, "application/json"),
            clock=clock,
            keepalive_interval=config.keepalive_interval,
        )
        self.lost = asyncio.Event()
        self.reason: SwapReason | None = None
        self.detail = ""
        self.closing = False
        self.published = 0
        self.outputs = 0
        self.output_begun = 0  # output segments whose first bytes arrived
        self.events = 0
        self.broken_outputs = 0
        self._drops = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.output_stats = output_stats if output_stats is not None else SubscriberStats()
        self._output_sub: TrickleSubscriber | None = None

    @property
    def url(self) -> str:
        return self.session.transcoder

    @property
    def output_unavailable(self) -> int:
        """470 answers in a row on the output channel right now (0: segments are coming)."""
        sub = self._output_sub
        return sub.position.unavailable if sub is not None else 0

    def _publisher(self, url: str, mime: str) -> TricklePublisher:
        return TricklePublisher(
            url, mime, session=self.http.session, ssl=self.http.ssl_for(url), start_seq=0
        )

    def _subscriber(self, url: str, stats: SubscriberStats | None = None) -> TrickleSubscriber:
        cfg = self.config
        return TrickleSubscriber(
            url,
            session=self.http.session,
            start_seq=0,
            ssl=self.http.ssl_for(url),
            max_errors=cfg.subscriber_max_errors,
            retry_delay=cfg.subscriber_retry_delay,
            stats=stats,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"live-{name}-{self.channels.manifest_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- life --------------------------------------------------------------------------------

    def begin(self, replay: Mapping[str, Any] | None) -> None:
        """Start reading output and events, the control keepalive, and replay ``replay``."""
        self._spawn(self._read_output(), "output")
        self._spawn(self._read_events(), "events")
        self._spawn(self._guard_control(self.control.keepalive()), "keepalive")
        if replay is not None:
            cfg = self.config
            again = self.control.replay(replay, cfg.replay_tries, cfg.replay_delay)
            self._spawn(self._guard_control(again), "replay")

    def fail(self, reason: SwapReason, detail: str) -> None:
        """Mark this orchestrator as lost (first reason wins) and tell the host."""
        if self.closing or self.lost.is_set():
            return
        self.reason, self.detail = reason, detail
        self.lost.set()
        log.warning(
            "live orchestrator lost",
            extra={"orch": self.url, "mid": self.channels.manifest_id, "reason": reason.name,
                   "detail": detail},
        )  # fmt: skip
        self.host.attachment_failed(self)

    def wind_down(self) -> None:
        """Left by the session: stop everything but the output reader (``close`` ends it)."""
        self.closing = True
        for task in list(self._tasks):
            if not task.get_name().startswith("live-output"):
                task.cancel()

    async def close(self, *, end_of_stream: bool = False, drain_timeout: float = 0.0) -> None:
        """Take the attachment down. ``end_of_stream``: close our input channel first (the O
        ends the run) and give the output ``drain_timeout`` seconds to finish."""
        if end_of_stream and not self.lost.is_set():
            with contextlib.suppress(TrickleError):
                await self.input.close()
            outputs = [t for t in self._tasks if t.get_name().startswith("live-output")]
            self.closing = True
            if outputs and drain_timeout > 0:
                await asyncio.wait(outputs, timeout=drain_timeout)
        self.closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for closer in (self.input.close, self.control.close):
            try:  # DELETE our channels; a dead orchestrator just does not answer
                await asyncio.wait_for(closer(), self.config.retire_timeout)
            except (TrickleError, TimeoutError):
                pass

    # -- input -------------------------------------------------------------------------------

    async def _write(self, body: AsyncIterable[bytes | memoryview]) -> float:
        first: float | None = None
        async with self.input.segment() as upload:  # the POST (preconnected) opens now
            async for chunk in body:  # each chunk is written as soon as the source has it
                await upload.write(chunk)
                if first is None:
                    first = self.clock()
        return self.clock() if first is None else first

    async def publish(self, body: AsyncIterable[bytes | memoryview]) -> float | None:
        """Publish one input segment, streaming ``body`` into its POST; the time its first
        byte went out, or None when it was not published: its POST failed (dropped: what went
        out of it is deleted) or this orchestrator is lost (check ``lost``). An exception of
        ``body`` drops the segment's POST and is raised here."""
        if self.lost.is_set():
            return None
        write = asyncio.create_task(self._write(body))
        lost = asyncio.create_task(self.lost.wait())
        try:
            await asyncio.wait({write, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not write.done():
                write.cancel()
            await asyncio.gather(write, lost, return_exceptions=True)
        if write.cancelled():
            return None
        exc = write.exception()
        if exc is None:
            self._drops = 0
            self.published += 1
            return write.result()
        if isinstance(exc, TrickleChannelGone):
            self.fail(SwapReason.CHANNEL_GONE, f"input channel: {exc}")
        elif isinstance(exc, TrickleSegmentDropped):
            self._drops += 1
            if self._drops >= self.config.max_drops:
                self.fail(SwapReason.CHANNEL_GONE, f"{self._drops} input segments dropped: {exc}")
        elif isinstance(exc, TrickleError):
            self.fail(SwapReason.CHANNEL_GONE, f"input channel: {exc}")
        else:
            raise exc
        return None

    def input_published(self, counted: bool, now: float) -> None:
        """After a published segment: ``counted`` if it was begun on this attachment."""
        if counted:
            self.monitor.input_done()
        if self.payer.due(now):
            self._spawn(self._pay(), "payment")

    async def _pay(self) -> None:
        outcome = await self.payer.pay()
        if outcome in (PayOutcome.SKIPPED, PayOutcome.SIGNER_FAILED):
            return  # the signer's trouble is no reason to leave this orchestrator
        reason = self.monitor.payment(
            outcome is PayOutcome.PAID,
            client_error=outcome in (PayOutcome.REFUSED, PayOutcome.REJECTED),
        )
        if reason is not None:
            self.fail(reason, f"payment {outcome.value}: {self.payer.counters.last_error}")

    # -- output, events, control ----------------------------------------------------------------

    async def _read_output(self) -> None:
        sub = self._output_sub = self._subscriber(self.channels.subscribe_url, self.output_stats)
        try:
            async with sub:
                async for segment in sub:
                    data = await self._read_segment(segment)
                    if data is None:
                        continue
                    now = self.clock()
                    self.monitor.output(now)
                    self.outputs += 1
                    if data:
                        await self.host.attachment_output(self, data, now)
        except TrickleUnavailable as exc:
            detail = f"output channel unavailable: {exc}"
        else:
            detail = f"output channel ended: {sub.ended_by}"
        self.fail(SwapReason.CHANNEL_GONE, detail)

    async def _read_segment(self, segment: TrickleSegment) -> bytes | None:
        """Read one output segment chunk by chunk, telling the host as they arrive. Its bytes
        (``b""`` if empty or refused by the host as late); None if it broke off."""
        chunks: list[bytes] = []
        host = self.host
        accepted: bool | None = None
        try:
            async for chunk in segment:
                if accepted is None:
                    self.output_begun += 1
                    accepted = host.attachment_output_begin(self)
                chunks.append(chunk)
                if accepted:
                    host.attachment_output_chunk(self, chunk)
        except (TrickleSegmentBroken, TrickleSegmentTooLarge) as exc:
            self.broken_outputs += 1
            log.info("output segment broken", extra={"error": str(exc)})
            if accepted:
                host.attachment_output_broken(self)
            return None
        return b"".join(chunks) if accepted else b""

    async def _read_events(self) -> None:
        sub = self._subscriber(self.channels.events_url)
        try:
            async with sub:
                async for segment in sub:
                    try:
                        kind, event = parse_event(await segment.read())
                    except (TrickleSegmentBroken, TrickleSegmentTooLarge, EventError) as exc:
                        log.info("bad events segment", extra={"error": str(exc)})
                        continue
                    self.monitor.event(self.clock())
                    self.events += 1
                    self.host.attachment_event(self, kind, event)
        except TrickleUnavailable as exc:
            detail = f"events channel unavailable: {exc}"
        else:
            detail = f"events channel ended: {sub.ended_by}"
        self.fail(SwapReason.CHANNEL_GONE, detail)

    async def _guard_control(self, work: Awaitable[None]) -> None:
        try:
            await work
        except TrickleError as exc:
            self.monitor.channel_gone(control=True)
            self.fail(SwapReason.CONTROL_FAILED, f"control channel: {exc}")

    def send_params(self, params: Mapping[str, Any]) -> None:
        """Write ``params`` on the control channel (in the background)."""
        if not self.lost.is_set():
            self._spawn(self._guard_control(self.control.write(params)), "control")
