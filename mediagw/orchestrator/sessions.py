"""Transcode sessions: one in-order worker per ``auth_token.session_id`` (transcode spec §5.5).

- capacity: at most ``max_sessions`` sessions; a new one beyond that is ``OrchestratorCapped``;
- queue: ``queue_depth`` segments may wait behind the one in progress; more is
  ``OrchestratorBusy`` (go-livepeer's buffered channel of 4);
- end: after ``idle_timeout`` seconds without a segment, or ``end(session_id)``
  (EndTranscodingSession). Segments already queued are still processed, as go-livepeer drains
  its closed channel; a later segment with the same ID starts a new session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import TranscodeError
from .stats import OrchestratorStats

__all__ = ["ORCHESTRATOR_BUSY", "ORCHESTRATOR_CAPPED", "STOPPED", "TranscodeSessions"]

ORCHESTRATOR_BUSY = "OrchestratorBusy"
ORCHESTRATOR_CAPPED = "OrchestratorCapped"
STOPPED = "orchestrator stopped"

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class _Session(Generic[J, R]):
    session_id: str
    queue: asyncio.Queue[tuple[J, asyncio.Future[R]]]
    task: asyncio.Task[None] | None = None
    ended: bool = False
    busy: bool = False  # a job is running


class TranscodeSessions(Generic[J, R]):
    def __init__(
        self,
        run: Callable[[J], Awaitable[R]],
        *,
        max_sessions: int,
        queue_depth: int,
        idle_timeout: float,
        stats: OrchestratorStats,
    ) -> None:
        self._run = run
        self._max_sessions = max_sessions
        self._queue_depth = queue_depth
        self._idle_timeout = idle_timeout
        self._stats = stats
        self._sessions: dict[str, _Session[J, R]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._inflight: set[asyncio.Future[R]] = set()

    @property
    def active(self) -> int:
        return len(self._sessions)

    def has_capacity(self, session_id: str) -> bool:
        """CheckCapacity: an existing session, or room for a new one ("" never exists)."""
        return session_id in self._sessions or len(self._sessions) < self._max_sessions

    async def submit(self, session_id: str, job: J) -> R:
        session = self._sessions.get(session_id)
        if session is None:
            if len(self._sessions) >= self._max_sessions:
                raise TranscodeError(ORCHESTRATOR_CAPPED)
            session = self._start(session_id)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            session.queue.put_nowait((job, future))
        except asyncio.QueueFull:
            raise TranscodeError(ORCHESTRATOR_BUSY) from None
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await future

    def end(self, session_id: str) -> bool:
        """Tear a session down (queued segments still finish). False if there was none."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        session.ended = True
        self._stats.sessions_ended += 1
        if not session.busy and session.queue.empty() and session.task is not None:
            session.task.cancel()  # idle: nothing to drain
        return True

    async def close(self) -> None:
        """Stop every worker; segments still waiting fail with ``STOPPED``."""
        for session_id in list(self._sessions):
            self.end(session_id)
        for future in list(self._inflight):
            if not future.done():
                future.set_exception(TranscodeError(STOPPED))
        for task in list(self._workers):
            task.cancel()
        for task in list(self._workers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self, session_id: str) -> _Session[J, R]:
        session: _Session[J, R] = _Session(session_id, asyncio.Queue(self._queue_depth))
        self._sessions[session_id] = session
        self._stats.sessions_started += 1
        task = asyncio.create_task(self._worker(session), name=f"orch-session-{session_id}")
        session.task = task
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)
        return session

    async def _worker(self, session: _Session[J, R]) -> None:
        while True:
            if session.ended:
                if session.queue.empty():
                    return
                job, future = session.queue.get_nowait()
            else:
                try:
                    job, future = await asyncio.wait_for(session.queue.get(), self._idle_timeout)
                except TimeoutError:
                    if self._sessions.get(session.session_id) is session:
                        self.end(session.session_id)
                    continue
            if future.cancelled():
                continue
            session.busy = True
            try:
                result = await self._run(job)
            except Exception as exc:  # handed to the request that queued the job
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
            finally:
                session.busy = False
