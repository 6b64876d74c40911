"""One publish session: FLV-tag media in (from RTMP), keyframe-aligned segments out to the hub.

The demuxer and segmenter (PyAV muxing) run in a thread pool, never on the event loop. Media
waits in a per-session batch while the previous batch is being cut, so a busy machine makes
fewer, larger executor calls instead of falling behind. The batch is bounded in bytes: when it
is full, ``media()`` waits, which stops the RTMP connection from reading its socket (TCP
backpressure). Nothing is ever dropped.

RTMP media is handed over in batches, not message by message: a thread hand-off costs more
than demuxing and muxing a frame. A batch goes to the executor when a video keyframe arrives
(it may cut a segment: the cut is never held back), ``KEY_LEAD`` before the next keyframe is
expected (the GOP the last two keyframes gave; so the batch that cuts is small), when it spans
``BATCH_SECONDS`` of arrival time or ``BATCH_BYTES``, when the session closes, and for every
unit while a consumer reads the progress stream (live AI, LL-HLS: media leaves packet by
packet) or before any video came (an audio-only stream cuts on audio). Other ingests
(``unit()``: WHIP) hand over every unit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

from segmenter import (
    CLOCK,
    AudioConfig,
    FlvDemuxer,
    MediaPacket,
    Progress,
    Segment,
    SegmenterError,
    SegmentStart,
    VideoConfig,
)
from segmenter.flv import MSG_VIDEO

from ..clock import SYSTEM
from ..errors import MediaError
from .hub import Stream, StreamHub

log = logging.getLogger("mediagw.publisher")

__all__ = ["Publisher"]

KEY_LEAD = 0.5  # seconds before an expected keyframe that the batch waiting for it is sent
# from this long before an expected keyframe until it comes, the RTMP connection's reads are
# never held (see mediagw.ingest.rtmp.moderation): the cut is not delayed by a held read (a hold,
# at most 150 ms, and its tick end before the keyframe is due)
HOLD_LEAD = 0.2

# (arguments of the demuxer's feed(), arrival time.monotonic())
_Msg = tuple[tuple[Any, ...], float]
# what one executor call hands back, in cut order: a segment to list (with the arrival of the
# unit that cut it; its progress flag: it also ends a progress stream), or a progress item
_Cut = tuple[Segment, float | None, bool] | Progress


class Demuxer(Protocol):
    """One ingest unit -> segmenter items: ``FlvDemuxer`` (RTMP), ``RtpDemuxer`` (WebRTC).

    ``flush`` hands over what the demuxer held back (video waiting for audio: ``RtpDemuxer``
    for the AAC encoder's delay, ``FlvDemuxer`` for an announced AAC config) when the session
    ends, before the segmenter's last cut."""

    def feed(self, *args: Any) -> Sequence[VideoConfig | AudioConfig | MediaPacket]: ...

    def flush(self) -> Sequence[VideoConfig | AudioConfig | MediaPacket]: ...


class Publisher:
    """One publish session of any ingest: the RTMP server's ``PublishSink`` (``media()``), or
    any other source through ``unit()`` with the arguments its demuxer's ``feed`` takes."""

    MAX_PENDING_BYTES = 8 * 1024 * 1024
    # RTMP media held for one executor call: the arrival time it spans, its bytes. A keyframe
    # hands the batch over whatever its age (and the one before it went KEY_LEAD ahead).
    BATCH_SECONDS = 1.0
    BATCH_BYTES = 512 * 1024

    def __init__(
        self,
        hub: StreamHub,
        stream: Stream,
        executor: Executor | None = None,
        *,
        demuxer: Demuxer | None = None,
        wallclock: Callable[[], float] = SYSTEM.wall,
        monotonic: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self.hub = hub
        self.stream = stream
        self._executor = executor
        self._wallclock = wallclock
        self._monotonic = monotonic
        self._demuxer: Demuxer = demuxer if demuxer is not None else FlvDemuxer()
        self._pending: list[_Msg] = []
        self._pending_bytes = 0
        self._has_work = asyncio.Event()
        self._due = False  # the pending batch must be cut now (see the module docstring)
        self._batch_t0 = 0.0  # arrival of the pending batch's first unit
        self._seen_video = False
        self._key_at = 0.0  # arrival of the last video keyframe
        self._gop = 0.0  # seconds between the last two (0: not known yet)
        self._early = False  # this GOP's batch went ahead of its keyframe already
        self._drained = asyncio.Event()
        self._drained.set()
        self._closing = False
        self._close_error: str | None = None
        self._closed = asyncio.Event()
        self._done = False  # the worker has exited
        self._ended = asyncio.Event()
        self._error: str | None = None
        self._session_wall0 = 0.0
        self._session_pts0: int | None = None
        self.stream_metadata: dict[str, Any] = {}
        self._worker = asyncio.get_running_loop().create_task(
            self._run(), name=f"publisher:{stream.id}"
        )
        self._worker.add_done_callback(self._worker_done)
        self._stopping: asyncio.Task[None] | None = None
        stream.stop_ingest = self.stop

    # -- PublishSink ---------------------------------------------------------------------------
    @property
    def public_id(self) -> str:
        return self.stream.id

    async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
        self._media(msg_type, timestamp, payload)
        await self._wait_drained()

    def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
        """``media()`` without the wait, for a connection that reads on: False (not taken)
        while the pending batch is full, so the connection awaits ``media()`` for it."""
        if self._pending_bytes >= self.MAX_PENDING_BYTES:
            return False
        self._media(msg_type, timestamp, payload)
        return True

    def hold_reads(self) -> bool:
        """The RTMP connection's next read may wait (``-rtmpReadHold``): the GOP is
        known, the next keyframe is not due within ``HOLD_LEAD``, and nobody reads the progress
        stream (live AI, LL-HLS: media leaves packet by packet). A keyframe that comes earlier
        than the last two foretold may wait up to the hold."""
        gop = self._gop
        return (
            gop > 0.0
            and self._monotonic() < self._key_at + gop - HOLD_LEAD
            and not self.stream.segmenter.progress
        )

    def _media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
        now = self._monotonic()
        if msg_type == MSG_VIDEO:
            self._seen_video = True
            keyframe = bool(payload) and payload[0] >> 4 == 1
        else:
            keyframe = False
        # an RTMP message waits for its batch unless it may cut or someone wants packets now
        due = keyframe or not self._seen_video or self.stream.segmenter.progress
        if keyframe:
            if self._key_at:
                self._gop = now - self._key_at
            self._key_at, self._early = now, False
        elif (
            not due and self._gop and not self._early and now >= self._key_at + self._gop - KEY_LEAD
        ):
            # the next keyframe is near (as far as the last two were apart): what waits goes
            # now, so the batch that cuts holds a few frames only (in a busy process, each
            # frame muxed in the segmenter's thread may wait for the GIL: the cut's latency)
            due = self._early = True
        self._queue((msg_type, timestamp, payload), len(payload), due, now)

    async def unit(self, *args: Any) -> None:
        """Queue one ingest unit for the demuxer (in the executor). Waits when the queue is full:
        the caller stops reading its source, nothing is dropped."""
        size = sum(len(a) for a in args if isinstance(a, bytes | bytearray))
        self._queue(args, size, True, self._monotonic())
        await self._wait_drained()

    def _queue(self, args: tuple[Any, ...], size: int, due: bool, now: float) -> None:
        """Add one unit to the pending batch; wake the worker when the batch is ``due`` or has
        grown past ``BATCH_SECONDS``/``BATCH_BYTES``."""
        if self._error is not None:
            raise MediaError(self._error)
        if self._done:  # the worker is gone (cancelled): nothing would ever cut this
            raise MediaError("publisher closed")
        if not self._session_wall0:
            self._session_wall0 = self._wallclock()
        if not self._pending:
            self._batch_t0 = now
        self._pending.append((args, now))
        self._pending_bytes += size
        if (
            due
            or now - self._batch_t0 >= self.BATCH_SECONDS
            or self._pending_bytes >= self.BATCH_BYTES
        ):
            self._due = True
            self._has_work.set()

    async def _wait_drained(self) -> None:
        """Wait while the pending batch holds too many bytes (the worker takes it whole)."""
        if self._pending_bytes >= self.MAX_PENDING_BYTES:
            self._drained.clear()
            await self._drained.wait()

    def stop(self, reason: str) -> None:
        """Take no more media (operator's or credit-control decision): the ingest's next
        ``unit()``/``media()`` raises, so its connection closes; what was cut stays listed."""
        if self._error is None and not self._closing:
            self._error = reason
            log.info("publisher stopped", extra={"stream": self.stream.id, "reason": reason})
            # end the stream now (ENDLIST), even if the publisher sends nothing more
            self._stopping = asyncio.get_running_loop().create_task(self.close(reason))

    async def metadata(self, meta: dict[str, Any]) -> None:
        self.stream_metadata = dict(meta)

    async def close(self, error: str | None) -> None:
        """Cut what is pending, then end the stream. Any caller may finish the job: one that
        was cancelled while waiting leaves it to the next (the stream never stays live)."""
        if not self._closing:
            self._closing = True
            self._close_error = error
            self._has_work.set()
        await self._closed.wait()
        if not self._ended.is_set():
            try:
                self.hub.end_publish(self.stream, self._close_error or self._error)
            finally:
                self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def closing(self) -> bool:
        return self._closing and not self._ended.is_set()

    async def wait_ended(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._ended.wait()), timeout)
        except TimeoutError:
            pass

    # -- worker --------------------------------------------------------------------------------
    async def _run(self) -> None:
        """Cut what is pending until the session closes.

        Whether to wait is decided from the state (pending media, closing), never from the
        event alone: the event only wakes the worker, so no path through the loop (an error
        included) can sleep through a ``close()`` that came while a batch was being cut."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not (self._due and self._pending) and not self._closing:
                    self._has_work.clear()
                    await self._has_work.wait()
                self._due = False
                batch, self._pending = self._pending, []
                self._pending_bytes = 0
                self._drained.set()
                if self._error is not None:
                    batch = []  # the session is failing: cut nothing more, only flush
                final = self._closing and not batch
                cut: list[_Cut] = []
                if batch or final:
                    try:
                        cut = await loop.run_in_executor(
                            self._executor, self._process, batch, final
                        )
                    except SegmenterError as exc:
                        self._fail(f"{type(exc).__name__}: {exc}")
                for item in cut:
                    if isinstance(item, tuple):
                        self._publish(*item)
                    else:
                        self._progress(item)
                if final:
                    return
        except Exception as exc:  # never let one stream's bug leak out of its task
            log.exception("publisher failed", extra={"stream": self.stream.id})
            self._fail(f"internal error: {exc}")

    def _worker_done(self, _task: asyncio.Task[None]) -> None:
        """However the worker ended (returned, failed, cancelled even before it ran)."""
        self._done = True
        self._drained.set()
        self._closed.set()

    def _fail(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
            log.warning("stream media error", extra={"stream": self.stream.id, "error": reason})

    def _process(self, batch: list[_Msg], final: bool) -> list[_Cut]:
        """Runs in the executor: demux ingest units and cut segments (and, when a consumer
        asked for it, the progress stream after every push: media leaves packet by packet)."""
        segmenter = self.stream.segmenter
        out: list[_Cut] = []
        for args, arrival in batch:
            for item in self._demuxer.feed(*args):
                self._collect(out, segmenter.push(item), arrival)
        if final:  # closed by the end of the session, not by a keyframe: no latency sample
            try:
                for item in self._demuxer.flush():
                    self._collect(out, segmenter.push(item), None)
            except SegmenterError as exc:  # keep what was cut: the last segment still closes
                log.warning(
                    "demuxer flush failed", extra={"stream": self.stream.id, "error": str(exc)}
                )
            self._collect(out, segmenter.flush(), None)
        return out

    def _collect(self, out: list[_Cut], cut: list[Segment], arrival: float | None) -> None:
        """``cut`` and the progress items since the last push, in cut order: a segment that
        ends a progress stream takes its place in it; one opened before progress was on (no
        progress stream) was closed before anything in it."""
        segmenter = self.stream.segmenter
        events = segmenter.take_progress() if segmenter.progress else []
        marked = {id(e) for e in events if isinstance(e, Segment)}
        out.extend((seg, arrival, False) for seg in cut if id(seg) not in marked)
        for event in events:
            if isinstance(event, SegmentStart) and arrival is not None:
                event.meta["arrival"] = arrival  # the unit that opened it (its first keyframe)
            out.append((event, arrival, True) if isinstance(event, Segment) else event)

    def _pdt(self, start_pts: int) -> float:
        if self._session_pts0 is None:
            self._session_pts0 = start_pts
        return self._session_wall0 + (start_pts - self._session_pts0) / CLOCK

    def _progress(self, item: Progress) -> None:
        if isinstance(item, SegmentStart):
            item.meta["pdt"] = self._pdt(item.start_pts)
        self.hub.add_progress(self.stream, item)

    def _publish(self, segment: Segment, arrival: float | None, progress: bool = False) -> None:
        pdt = self._pdt(segment.start_pts)
        segment = dataclasses.replace(segment, meta={**segment.meta, "pdt": pdt})
        # listed in the playlist from here on
        self.hub.add_segment(self.stream, segment, progress=progress)
        if arrival is not None:
            self.stream.stats.ingest_latency.append(self._monotonic() - arrival)
