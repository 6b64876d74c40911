"""``StreamLeases``: which gateway node owns a live stream, through a lease in Redis.

Keys, under the ``SharedRedis`` prefix::

    lease:stream:{id}    {"node", "url", "since"}  PX ttl         the node its publisher is on
    cursor:stream:{id}   {"next_seq", "discontinuity", "session", "node", "life"}  PX cursor_ttl

- Claim (``claim``, from admission, before the hub's ``begin_publish``): one Lua script sets the
  lease if nobody holds it or this node does, and returns the stream's cursor. Held by another
  node: the publish is refused as a second publisher on one node is (``StreamBusy``, naming
  that node). Redis unreachable: the publish goes ahead (fail open: ingest is never cut because
  of Redis), logged and counted in ``SharedRedis.failures``; the renewal takes the lease once
  Redis answers again. A publish refused after its claim gives it back (``abandon``); a claim
  whose publish never starts (a WHIP negotiation that failed) is renewed for ``PENDING``
  seconds, then left to expire.
- Renewal: one task renews every lease this node holds every ``ttl / 3`` seconds, in one round
  trip (a Lua script that checks ownership, and takes back a lease that expired while Redis was
  away). A lease held by another node (after a partition) stops that stream's ingest; Redis
  unreachable: streams go on. So when a node dies, its leases end within ``ttl`` seconds.
  At the end of a publish the lease is released (deleted only if still ours).
- Cursor: while a node owns a stream it keeps the stream's cursor current, in the background
  and never awaited by ingest: one writer a node sends the cursors that have news, those of
  ``COALESCE`` (50 ms) in one pipelined round trip (a task and a round trip a segment had been
  150 a second at 300 streams). ``next_seq`` is the last listed source segment's seq +
  ``RESERVE`` (2): a write may be one segment behind when the
  node is killed, and a seq that was listed is then still never listed again. ``discontinuity``
  is that segment's discontinuity number, ``session`` the stream's publish session. A claim
  that finds a cursor written by another node (or by this node before a restart: ``life``
  differs) admits the publish with ``resume`` set, so the stream continues (``request.Resume``).
  At the end of a publish its last cursor is written before its lease is released.
- ``owner_url``: the URL of the other node owning a stream (the playback proxy's lookup),
  cached ``CACHE`` seconds so a burst of playlist requests costs one Redis call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ...clock import SYSTEM, Clock
from ...errors import StreamBusy
from ...request import Resume, StreamRequest
from ..tasks import TaskSet
from .redis import RedisError, SharedRedis

log = logging.getLogger("mediagw.leases")

__all__ = ["RESERVE", "LeasedStream", "StreamLeases", "StreamLiveElsewhere"]

DEFAULT_TTL = 3.0  # seconds
PENDING = 15.0  # seconds a claim is kept for a publish that has not started yet
CACHE = 0.5  # seconds owner_url remembers an answer
RESERVE = 2  # the cursor's next_seq is the last listed seq + RESERVE
COALESCE = 0.05  # seconds of this node's cursor news that go to Redis in one round trip
MAX_CACHED = 10_000

# KEYS: lease, cursor. ARGV: node, lease value, ttl ms. -> {status, holder, cursor}:
# 0 held by another node (holder: its lease), 1 claimed, 2 already ours (claimed again)
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, held = pcall(cjson.decode, cur)
  if ok and type(held) == 'table' and held['node'] and held['node'] ~= ARGV[1] then
    return {0, cur, ''}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {cur and 2 or 1, '', redis.call('GET', KEYS[2]) or ''}
"""

# KEYS: leases. ARGV: node, ttl ms, then each lease's value (to take back one that expired).
# -> per lease: '' renewed (ours), else the other holder's lease
RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  local node = nil
  if cur then
    local ok, held = pcall(cjson.decode, cur)
    if ok and type(held) == 'table' then node = held['node'] end
  end
  if cur and node and node ~= ARGV[1] then
    out[i] = cur
  else
    if cur then
      redis.call('PEXPIRE', key, ARGV[2])
    else
      redis.call('SET', key, ARGV[i + 2], 'PX', ARGV[2])
    end
    out[i] = ''
  end
end
return out
"""

# KEYS: lease. ARGV: node. Deletes it only if this node holds it.
RELEASE = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, held = pcall(cjson.decode, cur)
if ok and type(held) == 'table' and held['node'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class StreamLiveElsewhere(StreamBusy):
    """The stream's publisher is live on another gateway node (its lease is held there)."""

    def __init__(self, stream_id: str, node: str) -> None:
        super().__init__(stream_id)
        self.description = f"stream {stream_id!r} is already being published on node {node}"
        self.args = (self.description,)
        self.node = node


class _Stats(Protocol):
    @property
    def sessions(self) -> int: ...


class _Segment(Protocol):
    @property
    def seq(self) -> int: ...


class LeasedStream(Protocol):
    """What the leases read of the hub's stream (``mediagw.stream.hub.Stream``)."""

    @property
    def id(self) -> str: ...

    @property
    def stats(self) -> _Stats: ...

    @property
    def stop_ingest(self) -> Callable[[str], None] | None: ...


@dataclass(eq=False)
class _Held:
    stream: LeasedStream
    last_seq: int = -1  # the last listed source segment, -1: none yet
    lost: bool = False  # another node holds the lease: the cursor is its now


def _parse(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class StreamLeases:
    """This node's leases on the streams published to it (a hub listener, through Protocols:
    the platform imports no stream code). ``discontinuity(stream_id)``: the discontinuity number
    of the stream's last listed source segment (its HLS playlist)."""

    def __init__(
        self,
        redis: SharedRedis,
        node_id: str,
        node_url: str | Callable[[], str],
        *,
        ttl: float = DEFAULT_TTL,
        cursor_ttl: float = 300.0,
        discontinuity: Callable[[str], int] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.redis = redis
        self.node_id = node_id
        self._url = node_url
        self.ttl = ttl
        self.cursor_ttl = cursor_ttl
        self.discontinuity = discontinuity or (lambda _id: 0)
        self.life = uuid.uuid4().hex[:12]  # this process: a cursor of another life resumes
        self.held: dict[str, _Held] = {}  # stream id -> its live publish here
        self.pending: dict[str, float] = {}  # stream id -> when claimed (monotonic)
        self.lost = 0  # streams stopped because another node held their lease
        self._claim = redis.client.register_script(CLAIM)
        self._renew = redis.client.register_script(RENEW)
        self._release = redis.client.register_script(RELEASE)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._tasks = TaskSet(log, "lease work")
        self._dirty: dict[str, _Held] = {}  # streams whose cursor has news, not yet sent
        self._flying: dict[str, asyncio.Future[None]] = {}  # stream id -> its write under way
        self._writer: asyncio.Task[None] | None = None

    def node_url(self) -> str:
        return self._url() if callable(self._url) else self._url

    def _lease_key(self, stream_id: str) -> str:
        return self.redis.key("lease", "stream", stream_id)

    def _cursor_key(self, stream_id: str) -> str:
        return self.redis.key("cursor", "stream", stream_id)

    def _value(self) -> str:
        return json.dumps(
            {"node": self.node_id, "url": self.node_url(), "since": round(self.clock.wall(), 3)}
        )

    def _ms(self, seconds: float) -> int:
        return max(1, int(seconds * 1000))

    # -- claim, at admission ------------------------------------------------------------------
    async def claim(self, request: StreamRequest) -> StreamRequest:
        """Claim ``request``'s stream for this node: the request, with ``resume`` when it
        continues a stream another node (or an earlier life of this one) owned.
        ``StreamLiveElsewhere`` when another node holds it; Redis down: the request as is."""
        stream_id = request.id
        keys = [self._lease_key(stream_id), self._cursor_key(stream_id)]
        args: list[str | int] = [self.node_id, self._value(), self._ms(self.ttl)]
        try:
            status, holder, cursor = await self._claim(keys=keys, args=args)
        except RedisError as exc:
            self.redis.failed(exc)
            log.warning(
                "stream lease not claimed: redis is unreachable, the publish goes ahead (a"
                " second publisher on another node is not refused until it is back)",
                extra={"stream": stream_id, "error": str(exc) or type(exc).__name__},
            )
            self.pending[stream_id] = self.clock.monotonic()
            return request
        self.redis.ok()
        if int(status) == 0:
            node = (_parse(holder) or {}).get("node", "another node")
            raise StreamLiveElsewhere(stream_id, str(node))
        self.pending[stream_id] = self.clock.monotonic()
        resume = self._resume(_parse(cursor))
        if resume is None:
            return request
        log.info(
            "stream continues from another node",
            extra={"stream": stream_id, "next_seq": resume.next_seq, "session": resume.session},
        )
        return replace(request, resume=resume)

    def _resume(self, cursor: dict[str, Any] | None) -> Resume | None:
        if cursor is None or (cursor.get("node"), cursor.get("life")) == (self.node_id, self.life):
            return None  # none, or this process's own: the hub continues the stream itself
        try:
            return Resume(
                int(cursor["next_seq"]), int(cursor["discontinuity"]), int(cursor["session"])
            )
        except (KeyError, TypeError, ValueError):
            log.warning("stream cursor ignored: malformed", extra={"cursor": str(cursor)[:200]})
            return None

    def abandon(self, request: StreamRequest) -> None:
        """A publish claimed but then refused (the hub's StreamBusy, a limit): give its lease
        back, unless a publish of the stream is live here."""
        stream_id = request.id
        self.pending.pop(stream_id, None)
        if stream_id not in self.held:
            self._tasks.spawn(self._give_back(stream_id))

    # -- hub listener -------------------------------------------------------------------------
    def on_stream_start(self, stream: LeasedStream) -> None:
        self.pending.pop(stream.id, None)
        self.held[stream.id] = _Held(stream)
        self._cache.pop(stream.id, None)

    def on_segment(self, stream: LeasedStream, segment: _Segment) -> None:
        held = self.held.get(stream.id)
        if held is None:
            return
        held.last_seq = segment.seq
        self._dirty[stream.id] = held  # its cursor has news
        if self._writer is None:  # else the writer running sends this with its next batch
            self._writer = self._tasks.spawn(self._write_cursors())

    def on_stream_end(self, stream: LeasedStream) -> None:
        held = self.held.pop(stream.id, None)
        if held is not None:
            self._tasks.spawn(self._end(stream.id, held))

    def on_stream_removed(self, stream: LeasedStream) -> None:
        pass

    # -- the background work ------------------------------------------------------------------
    async def _write_cursors(self) -> None:
        """Send the cursors with news, ``COALESCE`` seconds' worth in one pipelined round trip,
        until none has news (one writer a node, never awaited by ingest)."""
        try:
            while self._dirty:
                await asyncio.sleep(COALESCE)
                batch, self._dirty = self._dirty, {}
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: dict[str, _Held]) -> None:
        """Write each stream's cursor in one round trip. A failure is logged and counted; each
        stream's next segment tries again."""
        pipe = self.redis.client.pipeline(transaction=False)
        sent = []
        for stream_id, held in batch.items():
            if held.lost:
                continue
            cursor = {
                "next_seq": held.last_seq + RESERVE,
                "discontinuity": self.discontinuity(stream_id),
                "session": held.stream.stats.sessions,
                "node": self.node_id,
                "life": self.life,
            }
            pipe.set(self._cursor_key(stream_id), json.dumps(cursor), px=self._ms(self.cursor_ttl))
            sent.append(stream_id)
        if not sent:
            return
        landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flying.update(dict.fromkeys(sent, landed))
        self.redis.client.commands += 1  # a round trip (mediagw_redis_commands_total counts those)
        try:
            await pipe.execute()
        except RedisError as exc:
            self.redis.failed(exc, counted=False)
            return
        finally:
            landed.set_result(None)
            for stream_id in sent:
                if self._flying.get(stream_id) is landed:
                    del self._flying[stream_id]
        self.redis.ok()

    async def _end(self, stream_id: str, held: _Held) -> None:
        """A publish ended: its last cursor written (a node taking over reads it) after any
        write of it under way has landed, then its lease given back."""
        news = self._dirty.pop(stream_id, None) is not None  # not taken by a batch yet
        flying = self._flying.get(stream_id)
        if flying is not None:
            await asyncio.shield(flying)
        if news and not held.lost:
            await self._write({stream_id: held})
        await self._give_back(stream_id)

    async def _give_back(self, stream_id: str) -> None:
        self._cache.pop(stream_id, None)
        if stream_id in self.held or stream_id in self.pending:
            return  # claimed again meanwhile (a publisher reconnecting at once): it stays
        try:
            await self._release(keys=[self._lease_key(stream_id)], args=[self.node_id])
        except RedisError as exc:
            self.redis.failed(exc, counted=False)  # it expires within ttl

    async def renew(self) -> None:
        """One renewal round: every lease held here (and every recent claim), one round trip."""
        now = self.clock.monotonic()
        for stream_id, at in list(self.pending.items()):
            if now - at > PENDING:
                del self.pending[stream_id]  # its publish never started: the lease expires
        ids = list(self.held) + [i for i in self.pending if i not in self.held]
        if not ids:
            return
        value = self._value()
        try:
            replies = await self._renew(
                keys=[self._lease_key(i) for i in ids],
                args=[self.node_id, self._ms(self.ttl), *([value] * len(ids))],
            )
        except RedisError as exc:
            self.redis.failed(exc, counted=False)  # fail open: the streams go on
            return
        self.redis.ok()
        for stream_id, reply in zip(ids, replies, strict=True):
            if reply:
                self._lost(stream_id, str((_parse(reply) or {}).get("node", "another node")))

    def _lost(self, stream_id: str, node: str) -> None:
        """Another node holds the lease of a stream live here: this node stops its ingest."""
        self.pending.pop(stream_id, None)
        held = self.held.pop(stream_id, None)
        if held is None:
            return
        held.lost = True
        self.lost += 1
        reason = f"stream {stream_id!r} is now published on node {node}: this node lost its lease"
        log.warning("stream lease lost", extra={"stream": stream_id, "node": node})
        if held.stream.stop_ingest is not None:
            held.stream.stop_ingest(reason)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew()
            except Exception:  # one bad round never ends the renewal
                log.exception("stream leases not renewed")

    # -- lookups ------------------------------------------------------------------------------
    async def holder(self, stream_id: str) -> str | None:
        """The node holding the stream's lease now, or None; RedisError when unreachable."""
        lease = _parse(await self.redis.client.get(self._lease_key(stream_id)))
        return str(lease["node"]) if lease and lease.get("node") else None

    async def owner_url(self, stream_id: str) -> str | None:
        """The URL of the other node that owns the stream now; None if this node does, nobody
        does, or Redis is unreachable (then this node answers as it can)."""
        now = self.clock.monotonic()
        cached = self._cache.get(stream_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        url: str | None = None
        try:
            lease = _parse(await self.redis.client.get(self._lease_key(stream_id)))
        except RedisError as exc:
            self.redis.failed(exc)
        else:
            self.redis.ok()
            if lease and lease.get("node") != self.node_id and lease.get("url"):
                url = str(lease["url"])
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[stream_id] = (now + CACHE, url)
        return url

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._renewer is None:
            loop = asyncio.get_running_loop()
            self._renewer = loop.create_task(self._renew_forever(), name="stream-leases")

    async def close(self) -> None:
        """Stop renewing; give back what is still held (the hub has ended its streams)."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        for stream_id, held in list(self.held.items()):
            self.held.pop(stream_id)
            self._tasks.spawn(self._end(stream_id, held))
        await self._tasks.wait(timeout=2.0)
