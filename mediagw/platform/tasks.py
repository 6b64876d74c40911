"""``TaskSet``: work started in the background and not awaited where it starts.

The event loop keeps only a weak reference to a task: one nobody holds may be collected before it
ends. A ``TaskSet`` holds each task until it is done, logs a failure (nobody else would see it),
and at close waits for what is still running, or cancels it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

__all__ = ["TaskSet"]


class TaskSet:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what  # "quota work": "quota work failed" in the log
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run ``work`` in a task held here; None (and ``work`` closed) without a running loop
        (a unit test that calls synchronous code: there is nothing to run it on)."""
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()
            return None
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.log.error("%s failed", self.what, extra={"error": f"{type(exc).__name__}: {exc}"})

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    async def wait(self, timeout: float | None = None) -> None:
        """Until the tasks running now are done (at most ``timeout`` seconds)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def cancel(self) -> None:
        """Cancel the tasks running now and wait until they have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
