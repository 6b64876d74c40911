"""``StoreStreamAuth``: publishing with a stored stream's key (Studio's ``rtmp://HOST/live/KEY``,
or WHIP with the key as the stream name or ``?key=``).

A known key is granted with the stream's PUBLIC playback id as the manifest id (it plays at
``/stream/{playbackId}.m3u8``, never at its key), its profiles as the ladder, its pipeline and
params for live AI, its enabled ``rtmp://`` / ``rtmps://`` multistream targets as RTMP outputs
(at most ``inputs.MAX_OUTPUTS``; SRT targets are not pushed yet and are skipped with a warning),
and the stream's id as the request's ``stream_id``. Which stored target each output URL is
(``{"id", "name", "profile"}``, for the ``multistream.*`` events) is kept in ``targets``, by
playback id, like the stream in ``granted``: in memory only, never logged (the URL holds the
destination's stream key).

Refusals, all ``NetStream.Publish.Unauthorized``:
- an unknown key goes to the next authorizer (static keys, webhook, open); with
  ``-requireStreamKey`` the open mode is gone, so only the store, the static list or the webhook
  can admit it. Whatever the next authorizer grants, it never gets a stored stream's playback id
  (that would let anybody publish over a stream by its public id).
- a stream its owner's plan does not allow now (``admit``, ``platform/stream_quota``: too many
  live streams, minutes used up) is refused with the gate's message.
- a suspended stream is refused as "stream suspended". This tells a publisher that its key is
  right, which only its owner knows; an unknown key and a key of a deleted stream get the same
  "unknown stream key" as each other, so a refusal reveals nothing about other keys.
- if the store cannot be read, the publish is refused (fail closed), never waved through.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import PublishRejected, StoreError
from .inputs import MAX_OUTPUTS
from .store import Store, Stream
from .stream_auth import UNAUTHORIZED, PublishAttempt, StreamAuthorizer, StreamGrant

log = logging.getLogger("mediagw.auth.store")

__all__ = ["UNKNOWN_KEY", "StoreStreamAuth"]

UNKNOWN_KEY = "unknown stream key"
MAX_KEY = 128  # longer names are not stream keys: not looked up
MAX_GRANTS = 10_000

V = TypeVar("V")


def _remember(table: OrderedDict[str, V], key: str, value: V) -> None:
    """``table[key] = value`` as the newest entry, keeping at most ``MAX_GRANTS``."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_GRANTS:
        table.popitem(last=False)


class StoreStreamAuth:
    """The store's stream keys first, then ``fallback`` (None: nobody else may publish)."""

    def __init__(self, store: Store | None, fallback: StreamAuthorizer | None) -> None:
        self.store = store  # None until the gateway has opened it: every publish is refused
        self.fallback = fallback
        # playback id -> the stream as it was granted (for the lifecycle), newest last
        self.granted: OrderedDict[str, Stream] = OrderedDict()
        # playback id -> output URL -> the target it is ({"id", "name", "profile"}), as granted
        self.targets: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        # the plan's gate (raises PublishRejected), None: every stored stream may publish
        self.admit: Callable[[Stream], Awaitable[None]] | None = None

    async def authorize(self, attempt: PublishAttempt) -> StreamGrant:
        key = attempt.key
        if self.store is None:
            raise PublishRejected("the gateway is starting: publish again shortly", UNAUTHORIZED)
        try:
            stream = await self.store.stream_by_key(key) if 0 < len(key) <= MAX_KEY else None
        except StoreError as exc:
            log.error("stream keys cannot be checked: the store failed", extra={"error": str(exc)})
            raise PublishRejected("stream keys cannot be checked now", UNAUTHORIZED) from None
        if stream is None:
            return await self._fallback(attempt)
        if stream.suspended:
            raise PublishRejected("stream suspended", UNAUTHORIZED)
        if self.admit is not None:
            try:
                await self.admit(stream)
            except StoreError:
                raise PublishRejected("stream limits cannot be checked now", UNAUTHORIZED) from None
        grant = StreamGrant(
            stream.playback_id,
            principal=f"stream:{stream.id}",
            profiles=[dict(p) for p in stream.profiles] or None,
            pipeline=stream.pipeline or None,
            params=dict(stream.pipeline_params or {}) if stream.pipeline else None,
            stream_id=stream.id,
            rtmp_output=",".join(targets := await self._outputs(stream)),
        )
        _remember(self.granted, stream.playback_id, stream)
        _remember(self.targets, stream.playback_id, targets)
        return grant

    async def _fallback(self, attempt: PublishAttempt) -> StreamGrant:
        assert self.store is not None
        if self.fallback is None:
            raise PublishRejected(UNKNOWN_KEY, UNAUTHORIZED)
        grant = await self.fallback.authorize(attempt)
        try:
            taken = await self.store.stream_by_playback_id(grant.manifest_id)
        except StoreError:
            raise PublishRejected("stream keys cannot be checked now", UNAUTHORIZED) from None
        if taken is not None:
            raise PublishRejected(UNKNOWN_KEY, UNAUTHORIZED)
        return grant

    async def _outputs(self, stream: Stream) -> dict[str, dict[str, Any]]:
        """Output URL -> its target, in the stream's order."""
        assert self.store is not None
        urls: dict[str, dict[str, Any]] = {}
        for entry in (stream.multistream or {}).get("targets", []):
            target = await self.store.get_multistream_target(str(entry.get("id", "")))
            if target is None or target.disabled:
                continue
            if not target.url.startswith(("rtmp://", "rtmps://")):
                log.warning(
                    "multistream target skipped: only rtmp:// and rtmps:// are pushed",
                    extra={"stream": stream.playback_id, "target": target.id},
                )
                continue
            if len(urls) == MAX_OUTPUTS:
                log.warning(
                    f"multistream target skipped: at most {MAX_OUTPUTS} are pushed",
                    extra={"stream": stream.playback_id, "target": target.id},
                )
                continue
            profile = str(entry.get("profile", "source"))
            urls[target.url] = {"id": target.id, "name": target.name, "profile": profile}
        return urls

    async def close(self) -> None:
        close = getattr(self.fallback, "close", None)
        if close is not None:
            await close()
