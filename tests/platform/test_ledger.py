"""The usage ledger and plans on both backends: atomic hourly rollups, flush and restart,
plans and each key's plan, charge and cost."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from webhook_testkit import receiver

from mediagw.clock import ManualClock
from mediagw.errors import StoreConflict, StoreNotFound
from mediagw.platform.billing import BillingPush
from mediagw.platform.ledger import HOUR_MS, UsageLedger
from mediagw.platform.plans import DEFAULT_PLAN, Plan, plan_for_key
from mediagw.platform.store import ApiKey, SqlStore, Stream, UsageBatch, UsageRow
from mediagw.usage import LIVE_AI, PAYMENT, SOURCE, TRANSCODE, UsageEvent

HOUR0 = 1_800_000_000_000 // HOUR_MS * HOUR_MS


def _batch(*rows: UsageRow) -> UsageBatch:
    return UsageBatch(str(uuid.uuid4()), rows, 1)


def _key(n: int) -> ApiKey:
    return ApiKey(id=f"k{n}", name=f"key {n}", lookup_id=f"lk{n}", secret_hash="h", created_at=n)


PRO = Plan(
    id="pro",
    name="Pro",
    rate_limit=600,
    burst_limit=50,
    daily_quota=10_000,
    stream_minutes_monthly=60_000,
    max_concurrent_streams=5,
    price_per_transcoded_minute=Decimal("0.01"),
    price_per_live_ai_minute=Decimal("0.05"),
    price_per_delivered_minute=Decimal("0.001"),
    currency="EUR",
    created_at=1,
)


async def test_plans_round_trip_and_keys_are_assigned(store: SqlStore) -> None:
    await store.create_api_key(_key(1))
    assert await plan_for_key(store, "k1") == DEFAULT_PLAN  # nothing stored: the built-in
    assert await store.create_plan(PRO) == PRO
    assert await store.get_plan("pro") == PRO  # prices stay exact decimals
    with pytest.raises(StoreConflict):
        await store.create_plan(PRO)
    assert await store.set_key_plan("k1", "pro")
    assert await plan_for_key(store, "k1") == PRO
    with pytest.raises(StoreNotFound, match="create it first"):
        await store.set_key_plan("k1", "gold")
    assert not await store.set_key_plan("nobody", "pro")
    changed = await store.update_plan("pro", price_per_live_ai_minute=Decimal("0.07"))
    assert changed is not None and changed.price_per_live_ai_minute == Decimal("0.07")
    cheap = Plan(id="default", name="Cheap", rate_limit=10, created_at=2)
    await store.create_plan(cheap)
    await store.create_api_key(_key(2))
    assert await plan_for_key(store, "k2") == cheap  # no plan of its own: the stored default
    assert [p.id for p in await store.list_plans()] == ["pro", "default"]
    assert (await store.get_api_key("k1")).plan_id == "pro"  # type: ignore[union-attr]


async def test_add_usage_adds_to_the_hour_row(store: SqlStore) -> None:
    row = UsageRow(hour=HOUR0, key_id="k1", stream_id="s1", session=1, kind=TRANSCODE,
                   detail="720p0", quantity=10, ms=2000, pixels=10, wei=5, charge_micros=3,
                   wei_rate="2000", updated_at=1)  # fmt: skip
    await store.add_usage([_batch(row)], at=1)
    await asyncio.gather(*(store.add_usage([_batch(row)], at=1) for _ in range(5)))  # no lost adds
    (got,) = await store.usage(HOUR0, HOUR0 + HOUR_MS)
    assert (got.quantity, got.ms, got.pixels, got.wei, got.charge_micros) == (60, 12000, 60, 30, 18)
    assert got.wei_rate == "2000"
    other = UsageRow(hour=HOUR0 + HOUR_MS, key_id="k2", kind=SOURCE, ms=1000, quantity=1000)
    await store.add_usage([_batch(other)], at=1)
    assert len(await store.usage(HOUR0, HOUR0 + 2 * HOUR_MS)) == 2
    assert [r.key_id for r in await store.usage(HOUR0, HOUR0 + 2 * HOUR_MS, key_id="k2")] == ["k2"]
    assert await store.usage(HOUR0 + 2 * HOUR_MS, HOUR0 + 3 * HOUR_MS) == ()


async def test_billing_windows_are_recorded_once_sent(store: SqlStore) -> None:
    assert not await store.billing_window_sent(HOUR0)
    await store.record_billing_attempt(HOUR0, HOUR0 + HOUR_MS, 1, sent=False, error="503")
    assert not await store.billing_window_sent(HOUR0)
    await store.record_billing_attempt(HOUR0, HOUR0 + HOUR_MS, 2, sent=True)
    assert await store.billing_window_sent(HOUR0)


def _event(kind: str, quantity: int, **fields: object) -> UsageEvent:
    return UsageEvent("play1", 1, "stream:s1", "https://o:1", kind, quantity, "u", **fields)  # type: ignore[arg-type]


async def test_the_ledger_rolls_up_prices_and_flushes_only_when_told(store: SqlStore) -> None:
    await store.create_api_key(_key(1))
    await store.create_plan(PRO)
    await store.set_key_plan("k1", "pro")
    await store.create_stream(
        Stream(id="s1", name="a", stream_key="sk", playback_id="play1", created_at=1,
               owner_key_id="k1")
    )  # fmt: skip
    clock = ManualClock(HOUR0 / 1000 + 10)
    ledger = UsageLedger(store, wei_rate=Decimal("3000"), clock=clock)
    for _ in range(30):  # 30 two-second segments: one minute, 2 renditions
        ledger.emit(_event(SOURCE, 2000, ms=2000))
        ledger.emit(_event(TRANSCODE, 100, detail="360p0", ms=2000, pixels=100))
        ledger.emit(_event(TRANSCODE, 400, detail="720p0", ms=2000, pixels=400))
        ledger.emit(_event(PAYMENT, 1, wei=Fraction(10**15, 3)))
    ledger.emit(_event(LIVE_AI, 60_000, detail="live-video-to-video:noop", ms=60_000))
    assert await store.usage(HOUR0, HOUR0 + HOUR_MS) == ()  # nothing written per event
    assert await ledger.flush() == 5
    rows = {(r.kind, r.detail): r for r in await store.usage(HOUR0, HOUR0 + HOUR_MS)}
    assert {r.key_id for r in rows.values()} == {"k1"}
    assert {r.stream_id for r in rows.values()} == {"s1"}
    assert rows[(TRANSCODE, "720p0")].pixels == 12_000
    assert rows[(TRANSCODE, "720p0")].charge_micros == 10_000  # 1 min x 0.01 EUR
    assert rows[(LIVE_AI, "live-video-to-video:noop")].charge_micros == 50_000
    assert rows[(PAYMENT, "")].quantity == 30
    assert rows[(PAYMENT, "")].wei == 10**16
    assert rows[(PAYMENT, "")].wei_rate == "3000"
    assert rows[(SOURCE, "")].ms == 60_000
    # the next hour goes to a row of its own; a second flush adds, never replaces
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    clock.advance(3600)
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    await ledger.stop()  # flushes what is left
    source = [r for r in await store.usage(HOUR0, HOUR0 + 2 * HOUR_MS) if r.kind == SOURCE]
    assert [(r.hour, r.ms) for r in source] == [(HOUR0, 62_000), (HOUR0 + HOUR_MS, 2000)]


async def test_the_owner_of_a_granted_stream_is_not_read_again(
    counting_store: Any,
) -> None:
    """The stream's owner comes from the row its publish was granted with: a flush reads no
    stream. A stream granted under another id, or not granted, is read (once)."""
    store = counting_store.store
    await store.create_api_key(_key(1))
    row = Stream(id="s1", name="a", stream_key="sk", playback_id="play1", created_at=1,
                 owner_key_id="k1")  # fmt: skip
    await store.create_stream(row)
    granted = {"play1": row}
    clock = ManualClock(HOUR0 / 1000 + 10)
    ledger = UsageLedger(counting_store, clock=clock, granted=granted)
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    assert await ledger.flush() == 1
    assert counting_store.calls["get_stream"] == 0
    (usage,) = await store.usage(HOUR0, HOUR0 + HOUR_MS)
    assert usage.key_id == "k1"
    granted["play1"] = dataclasses.replace(row, id="s2", owner_key_id=None)  # not this stream
    clock.advance(3600)  # the next hour: the owners cache is dropped
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    assert await ledger.flush() == 1
    assert counting_store.calls["get_stream"] == 1
    rows = await store.usage(HOUR0 + HOUR_MS, HOUR0 + 2 * HOUR_MS)
    assert [(r.key_id, r.ms) for r in rows] == [("k1", 4000)]


async def test_a_flush_that_fails_keeps_its_rows_for_the_next(store_url: str) -> None:
    store = await SqlStore.open(store_url)
    clock = ManualClock(HOUR0 / 1000)
    ledger = UsageLedger(store, clock=clock)
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    failing = store.add_usage

    async def down(*args: object, **kwargs: object) -> None:
        raise OSError("database down")

    store.add_usage = down  # type: ignore[method-assign]
    with pytest.raises(OSError):
        await ledger.flush()
    store.add_usage = failing  # type: ignore[method-assign]
    ledger.emit(_event(SOURCE, 2000, ms=2000))
    await ledger.stop()
    await store.close()
    reopened = await SqlStore.open(store_url)  # a restart reads what was flushed
    try:
        rows = await reopened.usage(HOUR0, HOUR0 + HOUR_MS)
        assert sum(r.ms for r in rows) == 4000
        assert {r.key_id for r in rows} == {""}  # no stored stream: nobody's
    finally:
        await reopened.close()


async def test_billing_push_sends_each_closed_hour_once_and_retries_failures(
    store: SqlStore,
) -> None:
    clock = ManualClock(HOUR0 / 1000 + 60)
    ledger = UsageLedger(store, clock=clock)
    now = lambda: int(clock.wall() * 1000)  # noqa: E731
    ledger.emit(_event(TRANSCODE, 500, detail="720p0", ms=2000, pixels=500))
    ledger.emit(_event(LIVE_AI, 1000, detail="live-video-to-video:noop", ms=1000, pixels=7))
    ledger.emit(_event(PAYMENT, 3, wei=Fraction(5 * 10**17)))
    await ledger.flush()
    async with receiver() as rec:
        push = BillingPush(store, rec.url + "/usage", rate=Decimal("2000"), grace_ms=10_000,
                           now_ms=now)  # fmt: skip
        await push.push_closed()
        assert rec.got == []  # the hour is still open
        clock.advance(3545)  # 5 s past its end: closed, but within one flush of it
        await push.push_closed()
        assert rec.got == []
        clock.advance(10)
        rec.status = 503
        await push.push_closed()  # fails: recorded, retried
        rec.status = 200
        await push.push_closed()
        await push.push_closed()  # sent already: not again
        await push.close()
        # a new process (a restart) does not send it again either
        again = BillingPush(store, rec.url + "/usage", rate=Decimal("2000"), grace_ms=10_000,
                            now_ms=now)  # fmt: skip
        await again.push_closed()
        await again.close()
    assert len(rec.got) == 2
    assert (
        rec.got[0].doc
        == rec.got[1].doc
        == {
            "window": {"from": HOUR0, "to": HOUR0 + HOUR_MS},
            "sessions": 1,
            "tickets": 3,
            "feeWei": str(5 * 10**17),
            "networkFeeUsdMicros": 1_000_000_000,  # 0.5 ETH x 2000 USD
            "byCapability": {
                "transcode:720p0": {"seconds": 2, "pixels": 500},
                "live-video-to-video:noop": {"seconds": 1, "pixels": 7},
            },
        }
    )
