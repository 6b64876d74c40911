"""``SharedOrchestrators``: what one node learns about an orchestrator, used by every node.

Three things, each a Redis hash (for a node that starts later, or missed messages) plus a
message on one pub/sub channel (for the nodes running now):

- **certificate pins** (``orch:pins``: host:port -> {"sha256", "repinned"}): the first pin of an
  orchestrator on any node is written with HSETNX, so the first writer wins; a node that lost the
  race takes the winner's pin. A re-pin (the O restarted) overwrites it and says when, so the
  re-pin window applies on every node. A node offered another certificate than the shared pin
  refuses it (or re-pins) exactly as with its own pin;
- **penalties** (``orch:penalties``: url -> {"until", "node"}): an O suspended for its fault on
  one node is avoided by new discoveries and selections on every node until ``until`` (wall);
- **latency scores** (``orch:latency``: url -> {"score", "node", "at"}): each node's EWMA,
  published at most every ``latency_every`` seconds (5 s), never per segment.

All Redis work runs in two background tasks (a subscriber, a sender); the TLS handshake and
the per-segment path only touch memory (``PinStore``, ``OrchNotes``). On (re)subscribing, the
hashes are read whole, so what was missed while Redis was away is caught up.

Redis down: each node keeps what it learned itself (its pins, its pools' suspensions, its
latencies) and pins on first use as a single node does (fail open for availability, logged
once). Penalties and latencies it could not send are dropped; its new pins are offered again
with the next change (at most ``MAX_PENDING_PINS``), and once Redis answers again the
subscriber reads the hashes whole: a shared pin then replaces one made here meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .redis import RedisError, SharedRedis

log = logging.getLogger("mediagw.redis")

__all__ = ["NotesLike", "PinsLike", "SharedOrchestrators"]

RETRY = 1.0  # seconds between reconnects of a lost subscription
COALESCE = 0.05  # seconds: changes made together go out together
LATENCY_EVERY = 5.0  # seconds between two publications of this node's latency scores
LATENCY_MAX_AGE = 3600.0  # seconds: older shared scores are not loaded at start
MAX_MESSAGE = 1 << 20
MAX_PENDING_PINS = 1024


class PinsLike(Protocol):
    """``livepeer.tls.PinStore`` as seen from here."""

    on_pin: Callable[[str, bytes, bool], None] | None

    def adopt(self, key: str, fingerprint: bytes, repinned_ago: float | None = None) -> None: ...


class NotesLike(Protocol):
    """``pool.notes.OrchNotes`` as seen from here."""

    on_change: Callable[[], None]

    def take_penalties(self) -> dict[str, float]: ...

    def take_latencies(self) -> dict[str, float]: ...

    @property
    def latencies_pending(self) -> bool: ...

    def learn_penalty(self, url: str, until: float, node: str) -> None: ...

    def learn_latency(self, url: str, score: float) -> None: ...


class SharedOrchestrators:
    def __init__(
        self,
        shared: SharedRedis,
        node: str,
        *,
        wall: Callable[[], float],
        pins: PinsLike | None = None,
        notes: NotesLike | None = None,
        latency_every: float = LATENCY_EVERY,
    ) -> None:
        self.shared = shared
        self.node = node
        self.pins = pins
        self.notes = notes
        self._wall = wall
        self.latency_every = latency_every
        self.channel = shared.key("orch", "news")
        self.pins_key = shared.key("orch", "pins")
        self.penalties_key = shared.key("orch", "penalties")
        self.latency_key = shared.key("orch", "latency")
        self._pins_out: list[tuple[str, bytes, bool]] = []
        self._wake = asyncio.Event()
        self._alone = False  # logged that pins are not shared (Redis down)
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()  # subscribed and caught up (a test waits for it)
        if pins is not None:
            pins.on_pin = self._pinned
        if notes is not None:
            notes.on_change = self._wake.set

    def _pinned(self, key: str, fingerprint: bytes, repinned: bool) -> None:
        self._pins_out.append((key, fingerprint, repinned))
        del self._pins_out[:-MAX_PENDING_PINS]
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Read what the other nodes know (if Redis answers), then listen and send."""
        with contextlib.suppress(RedisError):
            await self._load()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="orchestrators-listen"),
            loop.create_task(self._send_loop(), name="orchestrators-send"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- receiving --------------------------------------------------------------------------------
    async def _load(self) -> None:
        client = self.shared.client
        try:
            pins = await client.hgetall(self.pins_key) if self.pins is not None else {}
            penalties = latencies = {}
            if self.notes is not None:
                penalties = await client.hgetall(self.penalties_key)
                latencies = await client.hgetall(self.latency_key)
        except RedisError as exc:
            self.shared.failed(exc, counted=False)
            raise
        self.shared.ok()
        now = self._wall()
        for field, raw in pins.items():
            self._apply({"kind": "pin", "key": _text(field), **_record(raw)})
        expired = []
        for field, raw in penalties.items():
            record = _record(raw)
            if _number(record.get("until"), 0.0) <= now:
                expired.append(field)
            else:
                self._apply({"kind": "penalty", "url": _text(field), **record}, own_too=True)
        if expired:  # the hash does not grow with old penalties
            with contextlib.suppress(RedisError):
                await client.hdel(self.penalties_key, *expired)
        for field, raw in latencies.items():
            record = _record(raw)
            if now - _number(record.get("at"), 0.0) < LATENCY_MAX_AGE:
                self._apply({"kind": "latency", "scores": {_text(field): record.get("score")}})

    async def _listen(self) -> None:
        while True:
            try:
                async with self.shared.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    await self._load()  # what was published before we listened
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(_record(message.get("data")))
            except RedisError as exc:
                self.shared.failed(exc, counted=False)
                self.ready.clear()
                await asyncio.sleep(RETRY)

    def _apply(self, msg: Mapping[str, Any], *, own_too: bool = False) -> None:
        """One piece of news from a node (not this one, unless ``own_too``)."""
        node = msg.get("node")
        node = node if isinstance(node, str) else ""
        if node == self.node and not own_too:
            return
        try:
            kind = msg.get("kind")
            if kind == "pin" and self.pins is not None:
                fingerprint = bytes.fromhex(str(msg["sha256"]))
                if len(fingerprint) != 32:
                    raise ValueError("not a SHA-256")
                repinned = msg.get("repinned")
                ago = None if repinned is None else self._wall() - _number(repinned, 0.0)
                self.pins.adopt(str(msg["key"]), fingerprint, ago)
            elif kind == "penalty" and self.notes is not None:
                self.notes.learn_penalty(str(msg["url"]), _number(msg["until"], 0.0), node)
            elif kind == "latency" and self.notes is not None:
                scores = msg["scores"]
                for url, score in scores.items():
                    if isinstance(score, int | float) and score >= 0:
                        self.notes.learn_latency(str(url), float(score))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignored malformed orchestrator news", extra={"error": repr(exc)})

    # -- sending ----------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_latency = loop.time()
        while True:
            timeout = None
            if self.notes is not None and self.notes.latencies_pending:
                timeout = max(0.0, next_latency - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            await asyncio.sleep(COALESCE)
            try:
                await self._send_pins()
                if self.notes is not None:
                    await self._send_penalties(self.notes.take_penalties())
                    if loop.time() >= next_latency and self.notes.latencies_pending:
                        await self._send_latencies(self.notes.take_latencies())
                        next_latency = loop.time() + self.latency_every
            except RedisError as exc:  # dropped: each node keeps its own knowledge
                if self._pins_out and not self._alone:
                    self._alone = True
                    log.warning(
                        "redis is down: orchestrator certificates are pinned by this node alone"
                        " until it is back",
                        extra={"peers": [key for key, _, _ in self._pins_out][:10]},
                    )
                self.shared.failed(exc, counted=False)
            else:
                self._alone = False
                self.shared.ok()

    def _message(self, **fields: Any) -> str:
        return json.dumps({**fields, "node": self.node})

    async def _send_pins(self) -> None:
        client = self.shared.client
        while self._pins_out:
            key, fingerprint, repinned = self._pins_out[0]
            record = {"sha256": fingerprint.hex(), "repinned": self._wall() if repinned else None}
            value = json.dumps(record)
            if repinned or await client.hsetnx(self.pins_key, key, value):
                if repinned:  # the O restarted: its new pin replaces the shared one
                    await client.hset(self.pins_key, key, value)
                await client.publish(self.channel, self._message(kind="pin", key=key, **record))
            else:  # another node pinned it first
                winner = _record(await client.hget(self.pins_key, key))
                if winner.get("sha256") != record["sha256"]:
                    log.warning(
                        "another node pinned this orchestrator first: its pin is used",
                        extra={"peer": key, "sha256": winner.get("sha256")},
                    )
                    self._apply({"kind": "pin", "key": key, **winner})
            self._pins_out.pop(0)

    async def _send_penalties(self, penalties: dict[str, float]) -> None:
        if not penalties:
            return
        async with self.shared.client.pipeline(transaction=False) as pipe:
            for url, until in penalties.items():
                record = {"until": until, "node": self.node}
                pipe.hset(self.penalties_key, url, json.dumps(record))
                pipe.publish(self.channel, self._message(kind="penalty", url=url, until=until))
            await pipe.execute()

    async def _send_latencies(self, scores: dict[str, float]) -> None:
        if not scores:
            return
        at = self._wall()
        async with self.shared.client.pipeline(transaction=False) as pipe:
            for url, score in scores.items():
                record = {"score": score, "node": self.node, "at": at}
                pipe.hset(self.latency_key, url, json.dumps(record))
            pipe.publish(self.channel, self._message(kind="latency", scores=scores))
            await pipe.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _record(raw: Any) -> dict[str, Any]:
    parsed = _parse(raw)
    return parsed if parsed is not None else {}


def _parse(data: Any) -> dict[str, Any] | None:
    if isinstance(data, bytes | str) and len(data) > MAX_MESSAGE:
        return None
    try:
        msg = json.loads(data)
    except (TypeError, ValueError):
        return None
    return msg if isinstance(msg, dict) else None
