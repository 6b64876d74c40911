"""Each usage-ledger flush is added once, on both backends: a flush whose commit reached the
database but whose caller saw an error is not counted again when retried, a flush whose store
reads fail keeps its usage, and two nodes flushing into one database at once get exact totals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from mediagw.clock import ManualClock
from mediagw.errors import StoreError
from mediagw.platform.ledger import HOUR_MS, UsageLedger
from mediagw.platform.store import USAGE_BATCH_RETENTION_MS, SqlStore, UsageBatch, UsageRow
from mediagw.platform.store.schema import usage_batches
from mediagw.usage import SOURCE, TRANSCODE, UsageEvent

HOUR0 = 1_800_000_000_000 // HOUR_MS * HOUR_MS


class LostAnswers:
    """The real store whose ``add_usage`` commits, then raises (the connection dropped after
    the commit) while ``lose`` says so; its reads fail while ``down``."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.lose = False
        self.down = False
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreError("the store's database failed on a stream (OSError)")
            return await method(*args, **kwargs)

        return call

    async def add_usage(self, batches: Any, *, at: int) -> frozenset[str]:
        if self.down:
            raise StoreError("the store's database failed on a usage (OSError)")
        added: frozenset[str] = await self.store.add_usage(batches, at=at)
        if self.lose:
            self.lost += 1
            raise StoreError("the store's database failed on a usage (ConnectionResetError)")
        return added


def _event(kind: str, ms: int, *, session: int = 1, detail: str = "") -> UsageEvent:
    return UsageEvent("play1", session, "", "https://o:1", kind, ms, "u", detail=detail, ms=ms)


async def _totals(store: SqlStore) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await store.usage(HOUR0, HOUR0 + HOUR_MS)
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for r in rows:
        q, ms = totals.get((r.kind, r.detail), (0, 0))
        totals[(r.kind, r.detail)] = (q + r.quantity, ms + r.ms)
    return totals


async def test_a_flush_committed_but_seen_failing_is_not_counted_twice(store: SqlStore) -> None:
    flaky = LostAnswers(store)
    ledger = UsageLedger(flaky, clock=ManualClock(HOUR0 / 1000 + 1))  # type: ignore[arg-type]
    ledger.emit(_event(SOURCE, 2000))
    ledger.emit(_event(TRANSCODE, 2000, detail="360p0"))
    flaky.lose = True
    with pytest.raises(StoreError):
        await ledger.flush()  # written, but the ledger cannot know
    with pytest.raises(StoreError):
        await ledger.flush()  # the retry is written (skipped) and lost again
    ledger.emit(_event(SOURCE, 1000))  # new usage meanwhile: a batch of its own
    with pytest.raises(StoreError):
        await ledger.flush()
    flaky.lose = False
    ledger.emit(_event(SOURCE, 500))
    assert await ledger.flush() == 1  # only the last batch is new
    assert await ledger.flush() == 0  # nothing pending
    assert flaky.lost == 3
    assert await _totals(store) == {(SOURCE, ""): (3500, 3500), (TRANSCODE, "360p0"): (2000, 2000)}


async def test_a_flush_whose_reads_fail_keeps_its_usage(store: SqlStore) -> None:
    flaky = LostAnswers(store)
    ledger = UsageLedger(flaky, clock=ManualClock(HOUR0 / 1000 + 1))  # type: ignore[arg-type]
    ledger.emit(UsageEvent("play1", 1, "stream:s1", "", SOURCE, 2000, "u", ms=2000))
    flaky.down = True  # the stream's owner cannot be read: nothing to write
    with pytest.raises(StoreError):
        await ledger.flush()
    ledger.emit(UsageEvent("play1", 1, "stream:s1", "", SOURCE, 2000, "u", ms=2000))
    flaky.down = False
    assert await ledger.flush() == 1
    assert await _totals(store) == {(SOURCE, ""): (4000, 4000)}


async def test_the_store_adds_a_batch_once_and_forgets_old_ids(store: SqlStore) -> None:
    row = UsageRow(hour=HOUR0, kind=SOURCE, quantity=1, ms=10)
    old, new = UsageBatch("b-old", (row,), 0), UsageBatch("b-new", (row, row), 0)
    assert await store.add_usage([old], at=1000) == {"b-old"}
    assert await store.add_usage([old, new], at=2000) == {"b-new"}  # one row twice: summed
    assert await store.add_usage([old, new], at=3000) == frozenset()
    assert await _totals(store) == {(SOURCE, ""): (3, 30)}
    later = 1000 + USAGE_BATCH_RETENTION_MS + 1  # b-old is a day old: forgotten
    assert await store.add_usage([UsageBatch("b-3", (row,), later)], at=later) == {"b-3"}
    async with store.engine.connect() as connection:
        ids = (await connection.execute(sa.select(usage_batches.c.id))).scalars().all()
    assert sorted(ids) == ["b-3", "b-new"]


async def test_two_nodes_flushing_into_one_database_at_once_count_exactly(
    store_url: str,
) -> None:
    """Two ledgers on two engines (two gateway nodes) add to the same hour rows at once; each
    loses the answer of every third flush (committed, then an error): totals are exact."""
    nodes = [await SqlStore.open(store_url), await SqlStore.open(store_url)]
    try:
        clock = ManualClock(HOUR0 / 1000 + 1)
        flaky = [LostAnswers(s) for s in nodes]
        ledgers = [UsageLedger(f, clock=clock) for f in flaky]  # type: ignore[arg-type]

        async def run(n: int) -> None:
            for i in range(30):
                for session in (1, 2):  # two rows both nodes write to
                    ledgers[n].emit(_event(SOURCE, 100 + n, session=session))
                flaky[n].lose = i % 3 == 2
                try:
                    await ledgers[n].flush()
                except StoreError:
                    assert flaky[n].lose
                await asyncio.sleep(0)
            flaky[n].lose = False
            await ledgers[n].flush()

        await asyncio.gather(run(0), run(1))
        assert all(f.lost == 10 for f in flaky)
        expect = 2 * 30 * (100 + 101)
        assert await _totals(nodes[0]) == {(SOURCE, ""): (expect, expect)}
        async with nodes[0].engine.connect() as connection:
            count = sa.select(sa.func.count()).select_from(usage_batches)
            assert (await connection.execute(count)).scalar() == 2 * 30  # one per flush cut
    finally:
        for node in nodes:
            await node.close()
