"""``SharedLiveState``: what a live AI stream leaves in Redis for the next node that runs it.

The pipelines' ``ParamsMemory`` and ``StoppedStreams`` (``mediagw.pipelines.live_ai.memory``)
on ``SharedRedis``, under its prefix:

    live:params:{stream}   JSON {"model", "params", "node"}   PX params_ttl (the ended-stream TTL)
    live:stopped:{stream}  the reason (credit_exhaustion)      PX stopped_ttl

Params change rarely (a session start, an ``/update``): each change is queued and one writer
task per gateway writes them in order, only the latest per stream if several wait, so an
``/update`` never waits for Redis. Reads happen once per session start.

Redis down: fails open. A write is dropped (logged once, counted in ``SharedRedis.failures``);
a read answers None: a stream continued on another node starts with its request's params, and a
stream stopped elsewhere runs until its node's heartbeat stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from .redis import RedisError, SharedRedis

log = logging.getLogger("mediagw.redis")

__all__ = ["SharedLiveState", "stopped_ttl"]

MAX_RECORD = 64 * 1024  # bytes of a params record read back (the API caps params below this)


def stopped_ttl(heartbeat_interval: float) -> float:
    """How long a stopped stream stays refused on every node: 4 heartbeat intervals, at least
    30 s (after that its node's heartbeat asks the operator again)."""
    return max(30.0, 4 * heartbeat_interval)


class SharedLiveState:
    def __init__(
        self,
        shared: SharedRedis,
        *,
        params_ttl: float,
        stopped_ttl: float,
        node: str = "",
    ) -> None:
        self.shared = shared
        self.params_ttl = params_ttl
        self.stopped_ttl = stopped_ttl
        self.node = node
        self._pending: dict[str, tuple[str, float]] = {}  # key -> (value, TTL s) to write
        self._writer: asyncio.Task[None] | None = None

    # -- ParamsMemory ------------------------------------------------------------------------
    def remember(self, stream: str, model: str, params: Mapping[str, Any]) -> None:
        record = {"model": model, "params": dict(params), "node": self.node}
        key = self.shared.key("live", "params", stream)
        self._queue(key, json.dumps(record), self.params_ttl)

    async def recall(self, stream: str, model: str) -> dict[str, Any] | None:
        raw = await self._get(self.shared.key("live", "params", stream))
        if raw is None or len(raw) > MAX_RECORD:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("model") != model:
            return None  # another pipeline's params would not fit
        params = record.get("params")
        return params if isinstance(params, dict) else None

    async def flush(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    # -- StoppedStreams ----------------------------------------------------------------------
    def stopped(self, stream: str, reason: str) -> None:
        self._queue(self.shared.key("live", "stopped", stream), reason, self.stopped_ttl)

    async def stop_reason(self, stream: str) -> str | None:
        raw = await self._get(self.shared.key("live", "stopped", stream))
        return raw.decode("utf-8", "replace")[:200] if raw else None

    # -- Redis ---------------------------------------------------------------------------------
    def _queue(self, key: str, value: str, ttl: float) -> None:
        self._pending.pop(key, None)  # a later value goes after the others
        self._pending[key] = (value, ttl)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="live-state")

    async def _write(self) -> None:
        while self._pending:
            key = next(iter(self._pending))
            value, ttl = self._pending.pop(key)
            try:
                await self.shared.client.set(key, value, px=max(1, round(ttl * 1000)))
            except RedisError as exc:
                self.shared.failed(exc)
            else:
                self.shared.ok()

    async def _get(self, key: str) -> bytes | None:
        try:
            raw = await self.shared.client.get(key)
        except RedisError as exc:
            self.shared.failed(exc)
            return None
        self.shared.ok()
        return raw if isinstance(raw, bytes) else None
