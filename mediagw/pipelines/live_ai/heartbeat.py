"""The live AI heartbeat (``-liveAIHeartbeatURL``): an external credit-control hook.

Every ``interval`` seconds, while live AI streams run:

    POST <url>   (-liveAIHeartbeatHeaders 'k:v,...')   {"ids": [STREAM_ID, ...]}

A 2xx answer may hold ``{"terminatedStreamIds": [...]}``: those streams are stopped with the
reason ``credit_exhaustion`` (the AI session ends and the publisher is disconnected). A stream's id
is its ``streamID`` label (from ``?streamId=`` or an auth webhook), else its name. A failing or
slow heartbeat endpoint never stops a stream: it is logged and counted, and the next beat tries
again (go-livepeer does the same: the hook can end streams, never keep them from running).

Several nodes: each node heartbeats the streams it runs. What one stops is remembered in Redis
for a few intervals (the manager's ``StoppedStreams``), so a publisher that reconnects to another
node is stopped there too before its next heartbeat could.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import WebhookUnreachable
from ...webhook import JsonPoster

log = logging.getLogger("mediagw.live_ai.heartbeat")

__all__ = ["CREDIT_EXHAUSTION", "LiveHeartbeat", "terminated_ids"]

CREDIT_EXHAUSTION = "credit_exhaustion"
MAX_ANSWER = 1024 * 1024


def terminated_ids(body: bytes) -> list[str]:
    """The ``terminatedStreamIds`` of an answer; anything malformed counts as none."""
    if not body.strip():
        return []
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    ids = data.get("terminatedStreamIds") if isinstance(data, dict) else None
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, str) and i]


class LiveHeartbeat:
    def __init__(
        self,
        url: str,
        ids: Callable[[], Sequence[str]],
        terminate: Callable[[str, str], bool],
        *,
        headers: Mapping[str, str] | None = None,
        interval: float = 5.0,
    ) -> None:
        self.url = url
        self.ids = ids
        self.terminate = terminate
        self.interval = interval
        self.beats = 0
        self.failures = 0
        self.terminated = 0
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        # never longer than one interval: a hanging endpoint must not pile up beats
        self._poster = JsonPoster(
            url, timeout=max(1.0, interval), max_body=MAX_ANSWER, headers=headers
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            ids = list(self.ids())
            if ids:
                await self.beat(ids)

    async def beat(self, ids: Sequence[str]) -> list[str]:
        """One heartbeat; returns the stream ids it stopped."""
        self.beats += 1
        try:
            status, body = await self._poster.post({"ids": list(ids)})
        except WebhookUnreachable as exc:
            return self._failed(f"unreachable: {exc}")
        if not 200 <= status < 300:
            return self._failed(f"HTTP {status}")
        if len(body) > MAX_ANSWER:
            return self._failed("answer larger than 1 MiB")
        stopped = []
        for stream_id in terminated_ids(body):
            if self.terminate(stream_id, CREDIT_EXHAUSTION):
                stopped.append(stream_id)
        if stopped:
            self.terminated += len(stopped)
            log.info("heartbeat stopped live AI streams",
                     extra={"streams": stopped, "reason": CREDIT_EXHAUSTION})  # fmt: skip
        return stopped

    def _failed(self, error: str) -> list[str]:
        self.failures += 1
        self.last_error = error
        log.warning("live AI heartbeat failed: streams keep running",
                    extra={"url": self.url, "error": error})  # fmt: skip
        return []

    def stats(self) -> dict[str, Any]:
        return {
            "beats": self.beats,
            "failures": self.failures,
            "terminated": self.terminated,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._poster.close()
