"""What a live AI stream leaves for the next node that runs it (several nodes, ``-redisUrl``).

- ``ParamsMemory``: the params the orchestrator last saw (the start's, then each ``/update``'s),
  per stream. A publish that continues a stream another node owned (``StreamRequest.resume``)
  starts its session with them instead of the params its URL or ``/start`` carries, if it asks
  for the same pipeline: the AI output goes on as the viewers last saw it.
- ``StoppedStreams``: the streams the gateway stopped (the heartbeat's ``credit_exhaustion``)
  lately. A session about to start for one of them is stopped the same way instead, on every
  node, so a publisher reconnecting elsewhere gets no free AI until the heartbeat would see it.

Both are written in the background (``remember``, ``stopped``: never awaited by a request) and
read once per session start. Their implementation (``mediagw.platform.shared.live``) fails
open: Redis down, nothing is recalled and nothing is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ParamsMemory", "StoppedStreams"]


class ParamsMemory(Protocol):
    def remember(self, stream: str, model: str, params: Mapping[str, Any]) -> None:
        """``stream`` runs ``model`` with ``params`` now (written in the background, in order)."""
        ...

    async def recall(self, stream: str, model: str) -> dict[str, Any] | None:
        """The params ``stream`` last ran ``model`` with, on any node; None if unknown."""
        ...

    async def flush(self) -> None:
        """Until what was remembered so far is written (or failed)."""
        ...


class StoppedStreams(Protocol):
    def stopped(self, stream: str, reason: str) -> None:
        """The gateway stopped ``stream`` for ``reason`` (written in the background)."""
        ...

    async def stop_reason(self, stream: str) -> str | None:
        """Why ``stream`` was stopped lately, on any node; None if it was not (or unknown)."""
        ...
