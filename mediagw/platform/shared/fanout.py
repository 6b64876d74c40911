"""``Invalidations``: what one node changed, told to every node through Redis pub/sub.

A node that changes something other nodes cache (a signing key disabled or deleted, a stream's
playback policy) drops it from its own cache at once and ``publish``es which entry changed; every
node's subscriber (its own included: harmless) drops that entry from its cache, so the change
applies on all nodes within a round trip, not after the cache's seconds (5 s).

Redis down: the publish is lost (logged once, counted in ``SharedRedis.failures``) and the
other nodes apply the change when their cache entry expires (5 s), as without Redis; the
subscriber reconnects every second and, once back, clears its caches whole (what it missed
cannot be known). API keys are not cached: they need no fan-out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from ..access import PlaybackAccess
from ..plan_limits import PlanCache
from ..tasks import TaskSet
from .redis import RedisError, SharedRedis

log = logging.getLogger("mediagw.redis")

__all__ = ["Invalidations", "share_access", "share_plans"]

RETRY = 1.0  # seconds between reconnects of a lost subscription
Handler = Callable[[dict[str, Any] | None], None]  # None: forget everything


class Invalidations:
    def __init__(self, shared: SharedRedis) -> None:
        self.shared = shared
        self.channel = shared.key("invalidate")
        self.handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None
        self._sends = TaskSet(log, "invalidation publish")
        self.ready = asyncio.Event()  # subscribed (a test waits for it)

    def announce(self, change: dict[str, Any]) -> None:
        """``publish`` in the background (called where the change is made, not awaited)."""
        self._sends.spawn(self.publish(change))

    async def publish(self, change: dict[str, Any]) -> None:
        try:
            await self.shared.client.publish(self.channel, json.dumps(change))
        except RedisError as exc:
            self.shared.failed(exc)
        else:
            self.shared.ok()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="invalidations")

    async def _listen(self) -> None:
        missed = False
        while True:
            try:
                async with self.shared.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if missed:  # changes made while we were not listening: forget everything
                        self._apply(None)
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(_parse(message.get("data")))
            except RedisError as exc:
                self.shared.failed(exc, counted=False)  # reconnecting serves no request
                self.ready.clear()
                missed = True
                await asyncio.sleep(RETRY)

    def _apply(self, change: dict[str, Any] | None) -> None:
        for handler in self.handlers:
            try:
                handler(change)
            except Exception:  # one bad handler must not stop the others
                log.exception("invalidation handler failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._sends.wait()


def _parse(data: Any) -> dict[str, Any] | None:
    try:
        change = json.loads(data)
    except (TypeError, ValueError):
        return {}  # not ours: nothing to forget
    return change if isinstance(change, dict) else {}


def share_access(access: PlaybackAccess, invalidations: Invalidations) -> None:
    """What ``access.forget`` drops on one node, dropped on every node."""

    def announce(playback_id: str | None, public_key: str | None) -> None:
        invalidations.announce({"playbackId": playback_id, "publicKey": public_key})

    def apply(change: dict[str, Any] | None) -> None:
        if change is None:
            access.forget_here()
            return
        playback_id, public_key = change.get("playbackId"), change.get("publicKey")
        if isinstance(playback_id, str) or isinstance(public_key, str):
            access.forget_here(
                playback_id=playback_id if isinstance(playback_id, str) else None,
                public_key=public_key if isinstance(public_key, str) else None,
            )

    access.announce = announce
    invalidations.handlers.append(apply)


def share_plans(plans: PlanCache, invalidations: Invalidations) -> None:
    """What ``plans.forget`` drops on one node (a plan changed, a key put on another plan),
    dropped on every node."""

    def announce(key_id: str | None) -> None:
        invalidations.announce({"planKey": key_id} if key_id else {"plans": True})

    def apply(change: dict[str, Any] | None) -> None:
        if change is None or change.get("plans") is True:
            plans.forget_here()
        elif isinstance(key_id := change.get("planKey"), str):
            plans.forget_here(key_id)

    plans.announce = announce
    invalidations.handlers.append(apply)
