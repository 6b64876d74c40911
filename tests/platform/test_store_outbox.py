"""The webhook outbox's claims and records (``store/outbox.py``) and the webhook update, over
SQLite and PostgreSQL: leases, one delivery per webhook, the lease as a fence, and concurrent
claimers (two store objects on one database, as two gateway nodes) getting disjoint rows."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from mediagw.errors import StoreBadInput, StoreNotFound
from mediagw.platform.store import Delivery, SqlStore, Stream, Webhook


def _delivery(n: int, webhook_id: str = "w1", created_at: int | None = None) -> Delivery:
    return Delivery(
        id=f"d{n:03d}",
        webhook_id=webhook_id,
        event="stream.started",
        payload={"n": n},
        created_at=100 + n if created_at is None else created_at,
    )


async def _hooks(store: SqlStore, *ids: str) -> None:
    for n, hook_id in enumerate(ids):
        await store.create_webhook(Webhook(id=hook_id, name=hook_id, url="https://a", created_at=n))


async def test_update_webhook_and_get_delivery(store: SqlStore) -> None:
    await store.create_stream(
        Stream(id="s1", name="s", stream_key="k", playback_id="p", created_at=1)
    )
    await _hooks(store, "w1")
    changed = await store.update_webhook(
        "w1",
        name="new",
        url="https://b",
        events=("stream.idle",),
        shared_secret="x",
        stream_id="s1",
    )
    assert changed == Webhook(
        id="w1",
        name="new",
        url="https://b",
        created_at=0,
        events=("stream.idle",),
        shared_secret="x",
        stream_id="s1",
    )
    assert await store.get_webhook("w1") == changed
    assert await store.update_webhook("nope", name="x") is None
    with pytest.raises(StoreNotFound):
        await store.update_webhook("w1", stream_id="missing")
    with pytest.raises(StoreBadInput, match="created_at"):
        await store.update_webhook("w1", created_at=5)
    await store.enqueue_delivery(_delivery(1))
    assert await store.get_delivery("d001") == dataclasses.replace(
        _delivery(1), next_attempt_at=101
    )
    assert await store.get_delivery("nope") is None


async def test_claim_leases_each_webhooks_oldest_pending_delivery_in_order(
    store: SqlStore,
) -> None:
    await _hooks(store, "w1", "w2", "w3")
    for n in (1, 2, 3):
        await store.enqueue_delivery(_delivery(n))
    await store.enqueue_delivery(_delivery(4, "w2"))
    await store.enqueue_delivery(dataclasses.replace(_delivery(5, "w3"), next_attempt_at=900))
    claimed = await store.claim_deliveries(200, lease_ms=50)
    assert [(d.id, d.next_attempt_at) for d in claimed] == [("d001", 250), ("d004", 250)]
    # w1's later events wait while its oldest is leased: its receiver hears them in order
    assert await store.claim_deliveries(200, lease_ms=50) == ()
    await store.mark_delivered("d001", 210, 200)
    assert [d.id for d in await store.claim_deliveries(220, lease_ms=50)] == ["d002"]
    # ... and while it waits for a retry
    await store.mark_failed("d002", 230, error="boom", status_code=500, next_attempt_at=600)
    assert await store.claim_deliveries(300, lease_ms=50, exclude_webhooks=["w2"]) == ()
    # a lease that ran out (the node died mid-send) makes the delivery due again
    again = await store.claim_deliveries(300, lease_ms=50, exclude_webhooks=["w1"])
    assert [d.id for d in again] == ["d004"]
    assert [d.id for d in await store.claim_deliveries(600, lease_ms=50)] == ["d002", "d004"]
    await store.mark_delivered("d002", 610, 200)
    await store.mark_delivered("d004", 610, 200)
    later = await store.claim_deliveries(900, lease_ms=50)
    assert [d.id for d in later] == ["d003", "d005"]
    with pytest.raises(StoreBadInput):
        await store.claim_deliveries(200, lease_ms=50, limit=0)


async def test_record_needs_the_lease(store: SqlStore) -> None:
    await _hooks(store, "w1")
    await store.enqueue_delivery(_delivery(1))
    (claimed,) = await store.claim_deliveries(200, lease_ms=50)
    assert claimed.next_attempt_at == 250
    failure = {"timestamp": 210, "error": "boom", "statusCode": 500, "response": "no"}
    assert await store.record_attempt(
        "d001",
        250,
        210,
        payload={"n": 1, "attempts": [1]},
        status_code=500,
        error="boom",
        next_attempt_at=400,
        last_failure=failure,
    )
    row = await store.get_delivery("d001")
    assert row is not None
    assert (row.attempts, row.next_attempt_at, row.status_code, row.error) == (1, 400, 500, "boom")
    assert row.payload == {"n": 1, "attempts": [1]}
    hook = await store.get_webhook("w1")
    assert hook is not None and (hook.last_triggered_at, hook.last_failure) == (210, failure)
    # a stale lease (another node claimed the row since) changes nothing
    assert not await store.record_attempt("d001", 250, 260, payload={}, delivered=True)
    (claimed,) = await store.claim_deliveries(400, lease_ms=50)
    assert await store.record_attempt(
        "d001", 450, 420, payload={"done": True}, status_code=204, delivered=True
    )
    row = await store.get_delivery("d001")
    assert row is not None
    assert (row.attempts, row.next_attempt_at, row.delivered_at, row.error) == (2, None, 420, None)
    hook = await store.get_webhook("w1")
    assert hook is not None and (hook.last_triggered_at, hook.last_failure) == (420, failure)
    assert await store.claim_deliveries(10_000, lease_ms=50) == ()
    # given up: not delivered, never due again
    await store.enqueue_delivery(_delivery(2))
    await store.claim_deliveries(500, lease_ms=50)
    assert await store.record_attempt("d002", 550, 510, payload={}, error="dead")
    assert await store.claim_deliveries(10_000, lease_ms=50) == ()


async def _race(stores: list[SqlStore], now: int) -> list[list[str]]:
    async def claimer(store: SqlStore) -> list[str]:
        got: list[str] = []
        while True:
            batch = await store.claim_deliveries(now, lease_ms=60_000, limit=3)
            if not batch:
                return got
            got += [d.id for d in batch]
            for d in batch:  # sent: the webhook's next event may be claimed
                await store.mark_delivered(d.id, now, 200)

    return list(await asyncio.gather(*(claimer(store) for store in stores)))


@pytest.mark.parametrize("nodes", [2, 4])
async def test_concurrent_claimers_get_disjoint_rows(
    store: SqlStore, store_url: str, nodes: int
) -> None:
    hooks = [f"w{n}" for n in range(20)]
    await _hooks(store, *hooks)
    deliveries = [_delivery(n, hooks[n % 20]) for n in range(100)]
    for delivery in deliveries:
        await store.enqueue_delivery(delivery)
    others = [await SqlStore.open(store_url) for _ in range(nodes - 1)]
    try:
        claims = await _race([store, *others], now=10_000)
    finally:
        for other in others:
            await other.close()
    every: list[Any] = [d for got in claims for d in got]
    assert sorted(every) == sorted(d.id for d in deliveries)  # each row leased exactly once
