"""Live AI for live streams: a ``LiveSession`` per stream that asks for a pipeline.

A stream asks with ``?pipeline=MODEL&params=JSON`` on its RTMP or WHIP URL, or through
``POST /live/video-to-video/{stream}/start`` (before or while it is live). Its source segments
go to the session while they are cut, packet by packet (the progress stream); the AI output is
published as HLS under ``{stream}-out``
(``/stream/{stream}-out.m3u8``, cut by the orchestrator's segments) and, with a ``WhepEgress``,
to WebRTC viewers: each output segment is demuxed as its bytes arrive (``output.OutputStream``,
``segmenter.tsdemux``) and each H.264 access unit goes to one shared encoded source the moment it
is complete (``unit_play``), so viewers cost no encoding and wait for no segment's end. The same
demux feeds ``on_output_progress`` (the output's progress stream, for LL-HLS). Streams without a
pipeline are left to the transcoder.

Several nodes (``memory``): each session start, before the orchestrator is asked, looks up
whether the stream was stopped lately on any node (then it is stopped again, the same way) and,
for a publish that continues a stream another node owned, the params the orchestrator last saw
(replayed instead of the request's; the status's ``params_from`` says ``replayed``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

from segmenter import CLOCK, Progress, Segment, SegmentProgress, SegmentStart
from segmenter.probe import probe_ts
from webrtc import WhepEgress

from ...clock import SYSTEM, Clock
from ...errors import LimitExceeded
from ...livepeer.rpc import OrchestratorRPC
from ...livepeer.tls import PinStore
from ...metrics import NULL_METRICS, Metrics
from ...payments.live import LivePaymentSource
from ...pool.notes import OrchNotes
from ...pool.prices import PriceCaps
from ...pool.sources import Blocklist, Source
from ...publish.hls import SOURCE, HLSPublisher
from ...publish.llhls import LLHLSPublisher
from ...publish.rtmp_out import RtmpOutput
from ...request import StreamRequest, frozen_params
from ...stream.fanout import Subscription
from ...stream.hub import Stream
from ...usage import NullUsage, StreamMeter, UsageSink
from ..unit_play import UnitFeed, UnitStats, play_units
from .config import LiveConfig
from .memory import ParamsMemory, StoppedStreams
from .output import OutputStream
from .selection import LiveSelector, OrchestratorRequests
from .session import LiveSession
from .stats import Timing
from .transport import LiveHTTP

log = logging.getLogger("mediagw.live_ai")

__all__ = ["LiveAIManager"]

PLAYOUT_TIMEOUT = 10.0  # seconds WHEP viewers get to see the end of an ended stream's output
MAX_PENDING = 256  # streams asked for with /start before they are live


def _run_status(run: _Run) -> dict[str, Any]:
    status = run.session.status()
    if run.video_out is not None:  # the API makes it absolute
        status["whep_url"] = f"/live/video-to-video/{run.stream.id}/whep"
    status["gateway_status"]["params_from"] = run.params_from
    if run.outputs:
        status["gateway_status"]["rtmp_outputs"] = [
            {"url": o.redacted, **dataclasses.asdict(o.stats)} for o in run.outputs
        ]
    return status


@dataclass(eq=False)
class _Run:
    stream: Stream
    session: LiveSession
    feeder: asyncio.Task[None] = field(init=False)  # set at once: ``_feed`` takes the run
    subscription: Subscription[Progress]
    output: OutputStream
    video_out: UnitFeed | None = None
    player: asyncio.Task[None] | None = None
    outputs: list[RtmpOutput] = field(default_factory=list)  # RTMP pushes of the AI output
    stop_reason: str = ""  # set when the gateway stops the stream (heartbeat, operator)
    publish_session: int = 0  # the input's publish session: the output's playlist follows it
    started_at: float = 0.0  # monotonic, for the first output's delay
    first_output: bool = False
    updated: bool = False  # params changed by /update since the run started
    params_from: str = "request"  # or "replayed": the stream's last params on its last node


PaymentsFactory = Callable[[], LivePaymentSource | None]


class LiveAIManager:
    """A hub listener: starts, feeds and ends live AI sessions; the user API calls into it."""

    def __init__(
        self,
        hls: HLSPublisher,
        rpc: OrchestratorRPC,
        pins: PinStore,
        sources: Sequence[Source],
        requests: OrchestratorRequests,
        *,
        payments: PaymentsFactory = lambda: None,
        caps: PriceCaps | None = None,
        blocklist: Blocklist | None = None,
        executor: Executor | None = None,
        config: LiveConfig | None = None,
        whep: WhepEgress | None = None,
        max_pending: int = MAX_PENDING,
        usage: UsageSink | None = None,
        metrics: Metrics = NULL_METRICS,
        clock: Clock = SYSTEM,
        memory: ParamsMemory | None = None,
        stopped: StoppedStreams | None = None,
        notes: OrchNotes | None = None,
    ) -> None:
        self.memory = memory  # the streams' last params, shared by the nodes (module doc)
        self.stopped = stopped  # the streams stopped lately, shared by the nodes
        self.notes = notes  # node-wide, shared by the nodes: orchestrators suspended anywhere
        self.outputs_allow_private = False  # RTMP outputs to loopback / private addresses
        self.usage = usage or NullUsage()
        self.metrics = metrics  # per run: attempts, start errors, the first output's delay
        self.clock = clock
        self.hls = hls
        self.rpc = rpc
        self.http = LiveHTTP(pins)
        self.sources = list(sources)
        self.requests = requests
        self.payments = payments
        self.caps = caps or PriceCaps()
        self.blocklist = blocklist
        self.executor = executor
        self.config = config or LiveConfig()
        self.whep = whep
        # /start calls for streams not live yet: the live AI part of their requests
        self.pending: dict[str, StreamRequest] = {}
        self.max_pending = max_pending
        self.pending_refused = 0  # /start calls refused because ``pending`` was full
        self.runs: dict[str, _Run] = {}
        # output stream id -> run, until its last output is out (after the input has ended)
        self.outputs: dict[str, _Run] = {}
        self.finished: dict[str, dict[str, Any]] = {}  # last status of ended runs
        self.whep_play = UnitStats()  # WHEP play of the outputs: units, dropped, skipped ahead
        # the outputs' progress streams (out stream id, item); see output.OutputStream
        self.on_output_progress: Callable[[str, Progress], None] = lambda out_id, item: None
        self.llhls: LLHLSPublisher | None = None  # LL-HLS of the outputs (the gateway sets it)
        self.publish_time = Timing()  # output segment handed to us -> listed in HLS / queued
        self.listed_at: dict[tuple[str, int], float] = {}  # (output stream, seq) -> monotonic
        # output stream id -> (publish session, seq of its first output in the HLS playlist)
        self._seq_bases: dict[str, tuple[int, int]] = {}

        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- user API ------------------------------------------------------------------------------
    def request(self, stream: Stream | None, name: str, req: StreamRequest) -> None:
        """``/start``: run ``req`` (its live AI part, ``StreamRequest.with_live``) on stream
        ``name`` now if it is live, else when it starts. At most ``max_pending`` streams wait:
        past that, ``LimitExceeded``."""
        if stream is not None and stream.live and name not in self.runs:
            stream.request = stream.request.with_live(req)
            self._start(stream)
        elif name in self.pending or len(self.pending) < self.max_pending:
            self.pending[name] = req
        else:
            self.pending_refused += 1
            raise LimitExceeded(
                f"{self.max_pending} live AI requests already wait for their streams to go "
                "live: publish the stream first, then call /start"
            )

    async def update(self, name: str, params: Mapping[str, Any]) -> bool:
        run = self.runs.get(name)
        if run is not None:
            run.updated = True
            await run.session.update(params)
            if self.memory is not None:
                self.memory.remember(name, run.session.model, run.session.params)
            return True
        if name in self.pending:
            self.pending[name] = replace(self.pending[name], params=frozen_params(params))
            return True
        return False

    def status(self, name: str) -> dict[str, Any] | None:
        """By stream name, or by stream ID (go-livepeer keys ``/status`` by stream ID)."""
        run = self.runs.get(name) or next(
            (r for r in self.runs.values() if r.stream.request.user_stream_id == name), None
        )
        if run is not None:
            return _run_status(run)
        return self.finished.get(name)

    def live_counts(self) -> dict[str, int]:
        """Live runs per pipeline (model), for the metrics."""
        counts: dict[str, int] = {}
        for run in self.runs.values():
            counts[run.stream.request.pipeline] = counts.get(run.stream.request.pipeline, 0) + 1
        return counts

    def stream_ids(self) -> list[str]:
        """The ids of the running live AI streams (what the heartbeat reports)."""
        return [run.stream.request.user_stream_id for run in self.runs.values()]

    def terminate(self, stream_id: str, reason: str) -> bool:
        """Stop a live AI stream by name or stream ID: its AI session ends with ``reason`` and
        its publisher is disconnected. False if no such stream runs."""
        for name, run in list(self.runs.items()):
            if stream_id in (name, run.stream.request.user_stream_id):
                if self.stopped is not None:  # refused on every node for a while
                    self.stopped.stopped(name, reason)
                self._stop(run, reason)
                return True
        return False

    def _stop(self, run: _Run, reason: str) -> None:
        run.stop_reason = reason
        log.info("live AI stream stopped", extra={"stream": run.stream.id, "reason": reason})
        if run.stream.stop_ingest is not None:
            run.stream.stop_ingest(reason)  # the hub then calls on_stream_end
        else:
            self.on_stream_end(run.stream)

    # -- StreamListener ------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        req = self.pending.pop(stream.id, None)
        if req is not None:
            stream.request = stream.request.with_live(req)
        if stream.request.pipeline:
            self._start(stream)

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        pass

    def on_stream_end(self, stream: Stream) -> None:
        run = self.runs.pop(stream.id, None)
        if run is not None:
            run.subscription.unsubscribe()
            self._spawn(self._finish(run))

    def on_stream_removed(self, stream: Stream) -> None:
        self.finished.pop(stream.id, None)
        self._seq_bases.pop(f"{stream.id}-out", None)
        if self.llhls is not None:
            self.llhls.remove(f"{stream.id}-out")

    # -- runs ----------------------------------------------------------------------------------
    def _start(self, stream: Stream) -> None:
        req = stream.request
        if self.config.segment_duration is not None:
            stream.segmenter.set_target(self.config.segment_duration)
        selector = LiveSelector(
            self.sources,
            self.requests.fetch,
            model=req.pipeline,
            caps=self.caps,
            blocklist=self.blocklist,
            notes=self.notes,
        )
        out_id = f"{stream.id}-out"
        publish_session = stream.stats.sessions
        if stream.resume is not None:  # continued from another node: so is the output
            at = (stream.resume.next_seq, stream.resume.discontinuity)
            self.hls.continue_stream(out_id, *at)
            if self.llhls is not None:
                self.llhls.continue_stream(out_id, *at)
        feed = UnitFeed(self.whep_play) if self.whep is not None else None

        def progress(oid: str, item: Progress) -> None:
            self.on_output_progress(oid, item)
            if self.llhls is not None:
                self.llhls.feed(oid, item, session=publish_session)

        output = OutputStream(
            out_id,
            feed=feed,
            hook=lambda: progress,
            seq_base=lambda: self._seq_base(out_id, publish_session),
            clock=self.clock.monotonic,
        )
        session = LiveSession(
            stream_id=stream.id,
            selector=selector,
            http=self.http,
            on_output=lambda seq, data: self._output(out_id, publish_session, seq, data),
            on_progress=output,
            model=req.pipeline,
            params=dict(req.params),
            payments=self.payments(),
            config=self.config,
            meter=StreamMeter(self.usage, stream.id, publish_session, req.principal),
        )
        # progress items (~2 per frame) held while the session starts: a slow consumer loses
        # the oldest, and the session skips their segment (``LiveSession.lose``)
        subscription = stream.subscribe_progress(
            maxsize=max(1024, 256 * self.config.max_queue),
            name="live-ai",
            on_drop=lambda item: session.lose(item.seq),
            ts=True,
            whole=True,
        )
        run = _Run(stream, session, subscription, output, publish_session=publish_session,
                   started_at=self.clock.monotonic())  # fmt: skip
        run.feeder = asyncio.get_running_loop().create_task(
            self._feed(run), name=f"live-ai:{stream.id}"
        )
        self.metrics.ai_live_attempt(stream.id, req.pipeline)
        if self.whep is not None and feed is not None:
            run.video_out = feed
            play = play_units(self.whep.add_source(out_id), feed)
            run.player = asyncio.get_running_loop().create_task(play, name=f"whep:{out_id}")
        self.runs[stream.id] = run
        self.outputs[out_id] = run
        log.info("live AI started", extra={"stream": stream.id, "pipeline": req.pipeline})
        for url in req.outputs:
            push = RtmpOutput(url, name=out_id, allow_private=self.outputs_allow_private)
            push.start()
            run.outputs.append(push)

    async def _prepare(self, run: _Run) -> bool:
        """What other nodes left for this run (module doc); False: it was stopped."""
        stream, session = run.stream, run.session
        resumed = self.memory is not None and stream.request.resume is not None
        reason, params = await asyncio.gather(
            self.stopped.stop_reason(stream.id) if self.stopped is not None else _none(),
            self.memory.recall(stream.id, session.model) if resumed and self.memory else _none(),
        )
        if reason:
            run.stop_reason = reason
            if self.runs.get(stream.id) is run:  # not ended (or republished) meanwhile
                self._stop(run, reason)
            return False
        if params is not None and not run.updated:
            session.params = params
            run.params_from = "replayed"
            log.info("live AI params replayed", extra={"stream": stream.id, "params": params})
        if self.memory is not None and not run.updated:  # /update remembered its own
            self.memory.remember(stream.id, session.model, session.params)
        return True

    async def _feed(self, run: _Run) -> None:
        session, subscription = run.session, run.subscription
        if (self.memory is not None or self.stopped is not None) and not await self._prepare(run):
            return
        try:
            await session.start()
        except Exception as exc:  # no orchestrator: the status says why
            self.metrics.ai_request_error(
                session.stream_id, type(exc).__name__, "live-video-to-video", session.model
            )
            log.warning("live AI could not start", extra={"stream": session.stream_id,
                                                          "error": str(exc)})  # fmt: skip
        async for item in subscription:
            if isinstance(item, SegmentProgress):
                session.extend(item)
            elif isinstance(item, SegmentStart):
                session.begin(item)
            else:
                session.complete(item)

    def _seq_base(self, out_id: str, publish_session: int) -> int:
        """Each live session numbers its output from 0; in the HLS playlist a later publish
        session goes on after the last segment listed (as the source does). A stream continued
        from another node starts its output at the source's ``next_seq`` there: that node's
        output never got that far, as the orchestrator returns at most one output segment per
        input segment and both numberings started together (at 0, or here, at a continuation)."""
        known = self._seq_bases.get(out_id)
        if known is None or publish_session > known[0]:
            known = (publish_session, self.hls.next_seq(out_id, SOURCE))
            self._seq_bases[out_id] = known
        return known[1]

    async def _output(self, out_id: str, publish_session: int, seq: int, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        started = self.clock.monotonic()
        run = self.outputs.get(out_id)
        if run is not None:
            run.output.finish()  # its last access unit to the viewers before anything else
        try:
            probe = await loop.run_in_executor(self.executor, lambda: probe_ts(data, decode=False))
        except Exception as exc:
            log.warning("AI output segment unreadable", extra={"stream": out_id, "error": str(exc)})
            return
        duration = 2.0
        if probe.first_pts is not None and probe.last_pts is not None and probe.video_frames > 1:
            step = (probe.last_pts - probe.first_pts) / (probe.video_frames - 1)
            duration = (probe.last_pts - probe.first_pts + step) / CLOCK
        resolution = (probe.width, probe.height) if probe.width else None
        seq += self._seq_base(out_id, publish_session)
        codecs = run.output.codecs if run is not None else ""
        listed = self.hls.publish(out_id, SOURCE, seq, data, duration, resolution=resolution,
                                  codecs=codecs, session=publish_session)  # fmt: skip
        if run is not None and listed:
            run.output.complete(seq, data, round(duration * CLOCK))
        if run is not None and not run.first_output:
            run.first_output = True
            att = run.session.current
            delay_ms = (started - run.started_at) * 1000
            self.metrics.ai_first_segment_delay(run.stream.id, att.url if att else "", delay_ms)
        if run is not None:
            for output in run.outputs:
                output.push(data)
        now = self.clock.monotonic()
        self.publish_time.add(now - started)
        if len(self.listed_at) < 100_000:  # for the benchmark; bounded
            self.listed_at[(out_id, seq)] = now

    async def _finish(self, run: _Run) -> None:
        try:
            await run.feeder
            if run.stop_reason:
                await run.session.close(run.stop_reason)
            else:
                await run.session.end()
        finally:
            if self.outputs.get(f"{run.stream.id}-out") is run:  # not a newer run's
                del self.outputs[f"{run.stream.id}-out"]
            await asyncio.gather(*(o.close() for o in run.outputs), return_exceptions=True)
            self.finished[run.stream.id] = _run_status(run)
            # after its last output (a newer publish session's playlist is left alone)
            self.hls.end(f"{run.stream.id}-out", session=run.publish_session)
            if self.llhls is not None:
                self.llhls.end(f"{run.stream.id}-out", session=run.publish_session)
            if run.player is not None:
                if run.video_out is not None and not run.stop_reason and not self._closing:
                    # let viewers see the last output to its end (bounded: one feed of units)
                    run.video_out.end()
                    await asyncio.wait({run.player}, timeout=PLAYOUT_TIMEOUT)
                run.player.cancel()
                if self.whep is not None:
                    await self.whep.remove_source(f"{run.stream.id}-out")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True  # no play-out to WHEP viewers at shutdown
        for run in list(self.runs.values()):
            self.on_stream_end(run.stream)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.close()
        if self.memory is not None:
            await self.memory.flush()


async def _none() -> Any:
    return None
