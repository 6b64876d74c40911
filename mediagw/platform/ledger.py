"""The usage ledger: usage events rolled up per hour into the store, with cost and charge.

``UsageLedger`` is a ``UsageSink`` consumer (the gateway's ``UsageQueue`` feeds it). ``emit``
adds the event to an in-memory bucket keyed by (hour, principal, stream, session, orchestrator,
kind, detail): a dict add, no I/O. Every ``interval`` seconds (default 10) and at stop,
``flush`` resolves each bucket's API key (a stored stream's ``owner_key_id``, found through the
principal ``stream:<id>``), prices it with the key's plan, and adds the rows to the store in one
transaction of atomic increments (``usage_hourly``). Nothing touches the database per segment.

A crash loses what was counted since the last flush: at most ``interval`` seconds of usage
(10 s by default). Each flush cuts a batch of rows with a unique id and sends every batch not
yet known to be added, in one transaction that records their ids; a batch whose id the store
has recorded is skipped. So a flush that failed after its commit (the connection dropped, the
database restarted) is retried without counting twice, and one that failed before is added once
it succeeds; several nodes add to the same rows. While batches are pending the events keep
adding up in memory (a new batch only while the pending ones hold fewer than ``MAX_BUCKETS``
rows); one pending for a day (the store forgets batch ids after one) is dropped with an error.

Charge (in the plan's currency): transcoded minutes (per rendition) x
``price_per_transcoded_minute``, live-AI minutes x ``price_per_live_ai_minute``, delivered
viewer minutes (HLS and WHEP) x ``price_per_delivered_minute``. Cost: wei paid x ``wei_rate``
(currency per ETH); every row records the rate it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from ..clock import SYSTEM, Clock
from ..usage import (
    DELIVERY_HLS,
    DELIVERY_WHEP,
    LIVE_AI,
    TRANSCODE,
    UsageEvent,
)
from .plans import Plan, plan_for_key
from .store import USAGE_BATCH_RETENTION_MS, Store, Stream, UsageBatch, UsageRow, stream_or_read

__all__ = ["HOUR_MS", "UsageLedger", "charge_micros"]

log = logging.getLogger("mediagw.ledger")

HOUR_MS = 3_600_000
STREAM_PRINCIPAL = "stream:"
MAX_BUCKETS = 200_000  # in memory between flushes; past it, events are counted as dropped
RETRY_FOR_MS = USAGE_BATCH_RETENTION_MS - HOUR_MS  # a batch is retried this long (clock skew)


@dataclass(slots=True)
class _Sums:
    quantity: int = 0
    ms: int = 0
    pixels: int = 0
    wei: Fraction = field(default_factory=Fraction)


_Key = tuple[int, str, str, int, str, str, str]  # hour, principal, stream, session, O, kind, detail


def charge_micros(plan: Plan, kind: str, ms: int) -> int:
    """What ``plan`` charges for ``ms`` of ``kind``, in millionths of its currency."""
    if kind == TRANSCODE:
        price = plan.price_per_transcoded_minute
    elif kind == LIVE_AI:
        price = plan.price_per_live_ai_minute
    elif kind in (DELIVERY_HLS, DELIVERY_WHEP):
        price = plan.price_per_delivered_minute
    else:
        return 0
    micros = Decimal(ms) * price * 1_000_000 / 60_000
    return int(micros.to_integral_value(ROUND_HALF_EVEN))


class UsageLedger:
    """Aggregates usage events in memory and flushes hourly rollups to the store."""

    def __init__(
        self,
        store: Store,
        *,
        wei_rate: Decimal = Decimal(0),
        interval: float = 10.0,
        clock: Clock = SYSTEM,
        before_flush: Callable[[], None] | None = None,
        after_flush: Callable[[], Awaitable[None]] | None = None,
        granted: Mapping[str, Stream] | None = None,
    ) -> None:
        self.store = store
        # public stream id -> its row as its publish was authorized (its owner, unread)
        self.granted: Mapping[str, Stream] = granted if granted is not None else {}
        self.wei_rate = wei_rate  # currency per ETH
        self.interval = interval
        self.clock = clock
        self.before_flush = before_flush  # e.g. the delivery meter emits its counts
        self.after_flush = after_flush  # e.g. the billing push of closed hours
        self.dropped = 0
        self.flushes = 0
        self._buckets: dict[_Key, _Sums] = {}
        self._pending: list[UsageBatch] = []  # cut, not known to be added: sent at each flush
        self._owners: dict[str, str] = {}  # stored stream id -> owner key id ("" none)
        self._owners_hour = 0  # the cache is dropped every hour (a key rotation moves streams)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def emit(self, event: UsageEvent) -> None:
        hour = int(self.clock.wall() * 1000) // HOUR_MS * HOUR_MS
        key = (
            hour,
            event.principal,
            event.stream,
            event.session,
            event.orchestrator,
            event.kind,
            event.detail,
        )
        sums = self._buckets.get(key)
        if sums is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self.dropped += 1
                return
            sums = self._buckets[key] = _Sums()
        sums.quantity += event.quantity
        sums.ms += event.ms
        sums.pixels += event.pixels
        if event.wei:
            sums.wei += event.wei

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self.before_flush is not None:
                    self.before_flush()
                await self.flush()
                if self.after_flush is not None:
                    await self.after_flush()
            except Exception:  # the store is down: the rows wait for the next flush
                log.exception("usage flush failed; retried at the next one")

    async def stop(self) -> None:
        """Stop the periodic flush and flush what is left."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush()
        except Exception:
            log.exception("usage flush at stop failed: the last interval is lost")

    async def flush(self) -> int:
        """Add what was counted to the store; how many rows were written."""
        async with self._lock:
            now = int(self.clock.wall() * 1000)
            self._drop_stale(now)
            if sum(len(batch.rows) for batch in self._pending) < MAX_BUCKETS:
                await self._cut(now)  # else the events keep adding up in their buckets
            batches = self._pending
            if not batches:
                return 0
            added = await self.store.add_usage(batches, at=now)  # raises: all are retried
            self._pending = []
            self.flushes += 1
        for batch in batches:
            if batch.id not in added:
                log.warning(
                    "usage batch was added before (its flush failed after the commit): not again",
                    extra={"batch": batch.id, "rows": len(batch.rows)},
                )
        return sum(len(batch.rows) for batch in batches if batch.id in added)

    async def _cut(self, now: int) -> None:
        """Turn the buckets into a new pending batch (priced rows with a fresh id)."""
        buckets, self._buckets = self._buckets, {}
        if not buckets:
            return
        try:
            rows = await self._rows(buckets, now)
        except Exception:  # the store is down: the buckets wait, with what came in meanwhile
            self._restore(buckets)
            raise
        self._pending.append(UsageBatch(str(uuid.uuid4()), tuple(rows), now))

    def _restore(self, buckets: dict[_Key, _Sums]) -> None:
        for key, sums in buckets.items():
            into = self._buckets.setdefault(key, _Sums())
            into.quantity += sums.quantity
            into.ms += sums.ms
            into.pixels += sums.pixels
            into.wei += sums.wei

    def _drop_stale(self, now: int) -> None:
        """Drop the batches pending for longer than the store remembers added ones: retried
        now, one already added could be added again."""
        keep = []
        for batch in self._pending:
            if now - batch.created_at < RETRY_FOR_MS:
                keep.append(batch)
            else:
                log.error(
                    "usage batch dropped: its flushes failed for a day, so the store may have"
                    " forgotten that it was added (check the database; this usage may be lost)",
                    extra={"batch": batch.id, "rows": len(batch.rows)},
                )
        self._pending = keep

    async def _rows(self, buckets: dict[_Key, _Sums], now: int) -> list[UsageRow]:
        """The buckets as rows: each with its owner key and priced with the key's plan."""
        if now // HOUR_MS != self._owners_hour:
            self._owners.clear()
            self._owners_hour = now // HOUR_MS
        rows = []
        plans: dict[str, Plan] = {}
        for (hour, principal, stream, session, orch, kind, detail), sums in buckets.items():
            stream_id, key_id = await self._owner(principal, stream)
            plan = plans.get(key_id)
            if plan is None:
                plan = plans[key_id] = await plan_for_key(self.store, key_id or None)
            wei = int(sums.wei)  # whole wei (below one wei per row and flush is dropped)
            rows.append(
                UsageRow(
                    hour=hour,
                    key_id=key_id,
                    stream_id=stream_id,
                    session=session,
                    orchestrator=orch,
                    kind=kind,
                    detail=detail,
                    quantity=sums.quantity,
                    ms=sums.ms,
                    pixels=sums.pixels,
                    wei=wei,
                    charge_micros=charge_micros(plan, kind, sums.ms),
                    wei_rate=str(self.wei_rate),
                    currency=plan.currency,
                    updated_at=now,
                )
            )
        return rows

    async def _owner(self, principal: str, stream: str) -> tuple[str, str]:
        """The stored stream id and its owner key for a usage event's principal."""
        if not principal.startswith(STREAM_PRINCIPAL):
            return stream, ""
        stream_id = principal[len(STREAM_PRINCIPAL) :]
        owner = self._owners.get(stream_id)
        if owner is None:
            # its row as its publish was authorized, if it is that stream's
            stored = await stream_or_read(self.store, stream_id, self.granted.get(stream))
            owner = (stored.owner_key_id or "") if stored is not None else ""
            if len(self._owners) >= 100_000:
                self._owners.clear()
            self._owners[stream_id] = owner
        return stream_id, owner
