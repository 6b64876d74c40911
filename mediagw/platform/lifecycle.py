"""What really happens to a stored stream when it is published: sessions, ``isActive``,
``lastSeen``, counters, and the Studio events, driven by the hub's listener callbacks.

A hub listener (its callbacks are synchronous and cheap): a publish of a stream granted by
``StoreStreamAuth`` starts a session in memory and queues the store work; nothing touches the
store per segment. Every ``interval`` seconds the counters of each live session (the hub's
source counts, the transcoder's totals) are turned into deltas and added with one atomic
increment, with ``lastSeen``. At the end: the last deltas, the session ended (with its
``recordingUrl`` when recorded), the stream inactive. One worker runs the queued store work in
order, so a session's start is written before its counters and its end; a failing store is
logged and never reaches ingest. A job the store missed because it was unreachable (a database
restart) is retried every second until it is written, the jobs behind it waiting (a job whose
commit went through unseen may add its counters twice: they are Studio's counters, not the
ledger's usage).

Events (``EventSink.emit``, e.g. the webhook service): ``stream.started`` (and
``recording.started`` when the session records) when the session is stored, ``stream.idle``
(and ``recording.ready``) when it has ended, with ``"reason"`` when ``end_reason`` knows why (a
plan's quota: ``quota_exhausted``); ``multistream.connected`` / ``.error`` /
``.disconnected`` when the multistream listener reports a target's transition
(``multistream_event``: ``{"target": {"id", "name", "profile"}}``, plus ``"error"``). Bodies carry
the stream without its key.

After an unclean stop (``kill -9``) streams stay ``isActive`` with open sessions:
``recover()``, run once at start, ends them when they were last seen.

Several nodes on one store (``node_id`` and ``owner``, the stream leases' holder lookup): each
session is stored with its node. ``recover()`` then ends only the sessions this node left and
those whose stream nobody holds a lease on (their node died), never another live node's. A
publish that takes over a stream whose previous session is still open (its node was killed) ends
that session first (``stream.idle`` with reason ``node lost``). A session is ended by one
conditional update, so its ``stream.idle`` is sent once, whichever node ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..clock import SYSTEM, Clock
from ..errors import StoreConflict, StoreUnavailable
from ..request import StreamRequest
from .store import Counters, Session, Store, Stream
from .studio_json import session_to_studio, to_studio

log = logging.getLogger("mediagw.platform.lifecycle")

__all__ = ["EventSink", "NullEvents", "StreamLifecycle"]

Transcoded = Callable[[str], tuple[int, float, int]]  # playback id -> (segments, seconds, bytes)
RecordingUrl = Callable[[str], str | None]  # session id -> where its recording plays, or None
Owner = Callable[[str], Awaitable[str | None]]  # playback id -> the node holding its lease
# playback id -> set once its recording's end is written (None: not recorded)
RecordingEnded = Callable[[str], asyncio.Event | None]
RECORDING_WAIT = 10.0  # seconds a recorded session's end waits for its recording's end
NODE_LOST = "node lost"


class EventSink(Protocol):
    async def emit(
        self,
        event: str,
        *,
        stream_id: str,
        stream_doc: dict[str, Any],
        payload: dict[str, Any],
        stream_row: Stream | None = None,
    ) -> object:
        """Queue a Studio event (``stream.started`` ...) about a stream (what it returns is
        not used); ``stream_row``: its stored row, just read."""


class NullEvents:
    """No webhooks: events go nowhere."""

    async def emit(
        self,
        event: str,
        *,
        stream_id: str,
        stream_doc: dict[str, Any],
        payload: dict[str, Any],
        stream_row: Stream | None = None,
    ) -> None:
        return None


class _Stats(Protocol):
    segments: int
    bytes: int
    media_seconds: float


class LiveStream(Protocol):
    """What the lifecycle reads of the hub's stream (``mediagw.stream.hub.Stream``)."""

    @property
    def id(self) -> str: ...

    @property
    def request(self) -> StreamRequest: ...

    @property
    def stats(self) -> _Stats: ...


def _no_transcoding(_playback_id: str) -> tuple[int, float, int]:
    return 0, 0.0, 0


@dataclass(eq=False)
class _Session:
    row: Stream  # the stored stream, as granted
    session_id: str
    hub: LiveStream
    base: tuple[int, float, int, int, float, int]  # the counts when the session began
    flushed: tuple[int, float, int, int, float, int] = (0, 0.0, 0, 0, 0.0, 0)
    record: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class StreamLifecycle:
    """A hub listener keeping stored streams' sessions, activity and counters true."""

    def __init__(
        self,
        store: Store,
        granted: Mapping[str, Stream],
        *,
        events: EventSink | None = None,
        transcoded: Transcoded = _no_transcoding,
        recording_url: RecordingUrl | None = None,
        recording_ended: RecordingEnded | None = None,
        interval: float = 10.0,
        clock: Clock = SYSTEM,
        end_reason: Callable[[str], str | None] | None = None,
        node_id: str = "",
        owner: Owner | None = None,
    ) -> None:
        self.store = store
        self.granted = granted  # playback id -> stream (StoreStreamAuth.granted)
        self.events: EventSink = events or NullEvents()
        self.transcoded = transcoded
        self.recording_url = recording_url
        self.recording_ended = recording_ended
        self.interval = interval
        self.clock = clock
        self.end_reason = end_reason  # stream id -> why its publisher was ended, if known
        self.node_id = node_id  # this node among several ("" alone)
        self.owner = owner  # None: one node (every open session is this node's)
        self.live: dict[str, _Session] = {}  # playback id -> its live session
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.retry_interval = 1.0  # seconds between the attempts of a job the store missed

    def _now(self) -> int:
        return int(self.clock.wall() * 1000)

    # -- hub listener ---------------------------------------------------------------------------
    def on_stream_start(self, stream: LiveStream) -> None:
        row = self.granted.get(stream.id)
        if row is None or stream.request.stream_id != row.id:
            return  # not a stored stream's publish
        live = _Session(row, str(uuid.uuid4()), stream, self._counts(stream), record=row.record)
        self.live[stream.id] = live
        self._queue(lambda: self._start(live, self._now()))

    def on_segment(self, stream: LiveStream, segment: object) -> None:
        pass

    def on_stream_end(self, stream: LiveStream) -> None:
        live = self.live.pop(stream.id, None)
        if live is not None:
            deltas = self._deltas(live)
            reason = self.end_reason(live.row.id) if self.end_reason else None
            # a recorded session is stored ended (recording.ready) once its recording plays to
            # its end: the recorder writes that end after the segments it still has queued
            ended = None
            if live.record and self.recording_ended is not None:
                ended = self.recording_ended(stream.id)
            self._queue(lambda: self._finish(live, deltas, self._now(), reason, ended))

    def on_stream_removed(self, stream: LiveStream) -> None:
        pass

    def multistream_event(
        self, playback_id: str, event: str, target: Mapping[str, Any], error: str = ""
    ) -> None:
        """Queue ``multistream.<event>`` about a stored stream's target (from the event loop;
        it may come after the session has ended: a target disconnects as the stream ends)."""
        live = self.live.get(playback_id)
        row = live.row if live is not None else self.granted.get(playback_id)
        if row is None or event not in ("connected", "error", "disconnected"):
            return
        payload: dict[str, Any] = {"target": dict(target)}
        if event == "error":
            payload["error"] = error
        self._queue(lambda: self._target_event(row, f"multistream.{event}", payload))

    def recording_session(self, playback_id: str) -> str | None:
        """The id of the live session of this stream if it records (the recorder's folder)."""
        live = self.live.get(playback_id)
        return live.session_id if live is not None and live.record else None

    # -- counters -------------------------------------------------------------------------------
    def _counts(self, stream: LiveStream) -> tuple[int, float, int, int, float, int]:
        s = stream.stats
        return (s.segments, s.media_seconds, s.bytes, *self.transcoded(stream.id))

    def _deltas(self, live: _Session) -> Counters:
        """What the session did since the last flush (and remember it as flushed)."""
        now = self._counts(live.hub)
        totals = tuple(a - b for a, b in zip(now, live.base, strict=True))
        d = [a - b for a, b in zip(totals, live.flushed, strict=True)]
        live.flushed = totals  # type: ignore[assignment]
        return Counters(
            source_segments=int(d[0]),
            source_segments_duration=float(d[1]),
            source_bytes=int(d[2]),
            transcoded_segments=int(d[3]),
            transcoded_segments_duration=float(d[4]),
            transcoded_bytes=int(d[5]),
        )

    def flush(self) -> None:
        """Queue the counters of every live session (the ticker calls this): one store call
        for all of them, so its cost does not grow with the number of streams."""
        updates = [(live, self._deltas(live)) for live in list(self.live.values())]
        if updates:
            self._queue(self._adder(updates))

    def _adder(self, updates: list[tuple[_Session, Counters]]) -> Callable[[], Awaitable[None]]:
        return lambda: self._add(updates, self._now())

    # -- the store work, in order ---------------------------------------------------------------
    def _queue(self, job: Callable[[], Awaitable[None]]) -> None:
        self._jobs.put_nowait(job)

    async def _start(self, live: _Session, at: int) -> None:
        session = Session(
            id=live.session_id, stream_id=live.row.id, created_at=at, last_seen=at,
            record=live.record, node=self.node_id or None,
        )  # fmt: skip
        if self.owner is not None and live.row.is_active:
            # a takeover: the session its dead node left ends first (read as the publish was
            # authorized: a stream not active then has no session open)
            for old in await self.store.open_sessions(live.row.id):
                await self._end_left(old, NODE_LOST)
        try:
            stream = await self.store.start_session(session)
        except StoreConflict:  # a retry: stored by the attempt whose answer was lost
            stream = await self.store.get_stream(live.row.id) or live.row
        doc = to_studio(stream, with_key=False)
        await self._emit("stream.started", stream, doc, {"sessionId": session.id})
        if live.record:
            payload = {"session": session_to_studio(session, stream)}
            await self._emit("recording.started", stream, doc, payload)

    async def _end_left(self, session: Session, reason: str) -> bool:
        """End a session a node left open; tell the webhooks if this call ended it."""
        if not await self.store.end_open_session(session):
            return False  # ended meanwhile, and told, by whoever ended it
        stream = await self.store.get_stream(session.stream_id)
        if stream is not None:
            doc = to_studio(stream, with_key=False)
            await self._emit(
                "stream.idle", stream, doc, {"sessionId": session.id, "reason": reason}
            )
        return True

    async def _add(self, updates: list[tuple[_Session, Counters]], at: int) -> None:
        rows = [(live.row.id, live.session_id, deltas) for live, deltas in updates]
        await self.store.add_counters_many(rows, at)

    async def _finish(
        self,
        live: _Session,
        deltas: Counters,
        at: int,
        reason: str | None = None,
        recording_ended: asyncio.Event | None = None,
    ) -> None:
        if recording_ended is not None:
            with contextlib.suppress(TimeoutError):  # a stuck disk: ended all the same
                await asyncio.wait_for(recording_ended.wait(), RECORDING_WAIT)
        url = None
        if live.record and self.recording_url is not None:
            url = self.recording_url(live.session_id)
        finished = await self.store.finish_session(live.row.id, live.session_id, deltas, at, url)
        if finished is None:
            return  # deleted or ended meanwhile: nobody to tell, or told already
        session, stream = finished
        doc = to_studio(stream, with_key=False)
        idle: dict[str, Any] = {"sessionId": session.id}
        if reason:
            idle["reason"] = reason
        await self._emit("stream.idle", stream, doc, idle)
        if live.record:
            payload: dict[str, Any] = {"session": session_to_studio(session, stream)}
            if url:
                payload["recordingUrl"] = url
            await self._emit("recording.ready", stream, doc, payload)

    async def _target_event(self, row: Stream, event: str, payload: dict[str, Any]) -> None:
        stream = await self.store.get_stream(row.id)
        if stream is not None:  # deleted meanwhile: nobody to tell
            await self._emit(event, stream, to_studio(stream, with_key=False), payload)

    async def _emit(
        self, event: str, stream: Stream, doc: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        try:
            await self.events.emit(
                event, stream_id=stream.id, stream_doc=doc, payload=payload, stream_row=stream
            )
        except StoreUnavailable:
            raise  # the job is retried: webhooks are delivered at least once
        except Exception:  # an event sink's failure never stops the lifecycle
            log.exception("event not queued", extra={"event": event, "stream": stream.id})

    async def _work(self) -> None:
        while (job := await self._jobs.get()) is not None:
            failures = 0
            while True:
                try:
                    await job()
                except StoreUnavailable as exc:  # a restart: retried (the jobs behind wait)
                    failures += 1
                    if failures == 1:
                        log.warning("stream state not stored yet: the store is unreachable;"
                                    " retrying", extra={"error": str(exc)})  # fmt: skip
                    await asyncio.sleep(self.retry_interval)
                    continue
                except Exception as exc:  # the store refused it: lost, ingest goes on
                    log.error(
                        "stream state not stored", extra={"error": f"{type(exc).__name__}: {exc}"}
                    )
                if failures:
                    log.warning("stream state stored after the store came back",
                                extra={"failures": failures})  # fmt: skip
                break

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    # -- running --------------------------------------------------------------------------------
    async def recover(self) -> tuple[str, ...]:
        """End what an unclean stop left live; the ids of the streams that were active."""
        if self.owner is not None:
            return await self._recover_node()
        ids = await self.store.end_stale_sessions()
        if ids:
            log.warning("streams left active by an unclean stop marked inactive",
                        extra={"streams": len(ids)})  # fmt: skip
        for stream_id in ids:  # their webhooks heard stream.started: tell them it ended
            stream = await self.store.get_stream(stream_id)
            if stream is not None:
                doc = to_studio(stream, with_key=False)
                await self._emit("stream.idle", stream, doc, {"reason": "unclean stop"})
        return ids

    async def _recover_node(self) -> tuple[str, ...]:
        """``recover`` among several nodes: the sessions this node left, and those of streams
        nobody holds (their node died); another live node's are left alone."""
        ended: list[str] = []
        for session in await self.store.open_sessions():
            reason = "unclean stop" if session.node == self.node_id else await self._orphan(session)
            if reason and await self._end_left(session, reason):
                ended.append(session.stream_id)
        if ended:
            log.warning("sessions left open by an unclean stop ended",
                        extra={"sessions": len(ended)})  # fmt: skip
        return tuple(dict.fromkeys(ended))

    async def _orphan(self, session: Session) -> str | None:
        """``NODE_LOST`` if no node holds the session's stream now, else None (also when it
        cannot be known: a live node's session is never ended on a guess)."""
        assert self.owner is not None
        stream = await self.store.get_stream(session.stream_id)
        if stream is None:
            return None
        try:
            holder = await self.owner(stream.playback_id)
        except Exception as exc:  # Redis down: leave it to a takeover or a later start
            error = str(exc) or type(exc).__name__
            log.warning(
                "open session kept: its stream's owner is unknown",
                extra={"stream": stream.id, "error": error},
            )
            return None
        return NODE_LOST if holder is None else None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._worker = loop.create_task(self._work(), name="stream-lifecycle")
            self._ticker = loop.create_task(self._tick(), name="stream-lifecycle-tick")

    async def drain(self) -> None:
        """Wait until the queued store work is done (tests, shutdown)."""
        done = asyncio.Event()

        async def mark() -> None:
            done.set()

        self._queue(mark)
        await done.wait()

    async def close(self) -> None:
        """Finish the queued work (the hub has ended every stream by now), then stop."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._worker is not None:
            self._jobs.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._worker, 10.0)
        self._worker = self._ticker = None
