"""The control channel ``<mid>-control`` (live-ai spec §6): params as one JSON per segment.

- ``write(params)``: one segment holding the params object (what the user's ``/update`` sent);
- ``replay(params)``: after a (re)attach, the cached params again: up to 3 tries, 100 ms apart;
  the last failure propagates (the caller stops using this orchestrator);
- ``keepalive()``: ``{"keep":"alive"}`` whenever nothing was written for 10 s (the runner
  ignores exactly this object). Runs until the channel is gone (that error propagates).

Writes are serialized (a trickle publisher writes one segment at a time).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from mediagw.livepeer.trickle.errors import TrickleChannelGone, TrickleError
from mediagw.livepeer.trickle.publisher import TricklePublisher

from ...clock import SYSTEM

__all__ = ["KEEPALIVE", "ControlChannel"]

log = logging.getLogger("mediagw.live_ai.control")

KEEPALIVE = b'{"keep":"alive"}'


class ControlChannel:
    def __init__(
        self,
        publisher: TricklePublisher,
        *,
        clock: Callable[[], float] = SYSTEM.monotonic,
        keepalive_interval: float = 10.0,
    ) -> None:
        self.publisher = publisher
        self.clock = clock
        self.keepalive_interval = keepalive_interval
        self.writes = 0
        self.keepalives = 0
        self._lock = asyncio.Lock()
        self._last_write = clock()

    async def _send(self, data: bytes) -> None:
        async with self._lock:
            await self.publisher.write_segment(data)
            self._last_write = self.clock()

    async def write(self, params: Mapping[str, Any]) -> None:
        """Publish ``params`` as one segment; raises ``TrickleError`` (gone: terminal)."""
        await self._send(json.dumps(dict(params), separators=(",", ":")).encode())
        self.writes += 1

    async def replay(self, params: Mapping[str, Any], tries: int = 3, delay: float = 0.1) -> None:
        for attempt in range(1, tries + 1):
            try:
                await self.write(params)
                return
            except TrickleChannelGone:
                raise
            except TrickleError as exc:
                log.info("control replay failed", extra={"try": attempt, "error": str(exc)})
                if attempt == tries:
                    raise
                await asyncio.sleep(delay)

    async def keepalive(self) -> None:
        while True:
            wait = self._last_write + self.keepalive_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await self._send(KEEPALIVE)
                self.keepalives += 1
            except TrickleChannelGone:
                raise
            except TrickleError as exc:  # one lost keepalive is harmless; try again later
                log.info("control keepalive failed", extra={"error": str(exc)})
                self._last_write = self.clock()

    async def close(self) -> None:
        await self.publisher.close()
