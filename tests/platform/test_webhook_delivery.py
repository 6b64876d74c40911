"""``WebhookDispatcher`` against real HTTP receivers on 127.0.0.1 (so ``allow_private=True``)
over the real store, SQLite and PostgreSQL: signatures, order, restart, back-off and giving up,
a hanging endpoint next to a healthy one, DNS rebinding, and two nodes sharing one database."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mediatools import wait_until
from webhook_testkit import receiver

from mediagw.clock import ManualClock
from mediagw.platform.store import Delivery, SqlStore, Stream
from mediagw.platform.webhook_delivery import RetryPolicy, WebhookDispatcher
from mediagw.platform.webhook_wire import USER_AGENT, verify
from mediagw.platform.webhooks import WebhookService, delivery_json, webhook_json

STREAM = {"id": "s1", "name": "cam", "streamKey": "abcd-efgh-ijkl-mnop", "playbackId": "p1"}
T0 = 1_700_000_000.0


@asynccontextmanager
async def running(
    store: SqlStore, clock: ManualClock | None = None, allow_private: bool = True, **options: Any
) -> AsyncIterator[tuple[WebhookService, WebhookDispatcher]]:
    clock = clock or ManualClock(T0)
    service = WebhookService(store, clock=clock, allow_private=allow_private)
    options.setdefault("rand", lambda: 0.0)
    dispatcher = WebhookDispatcher(store, service, clock=clock, **options)
    dispatcher.start()
    try:
        yield service, dispatcher
    finally:
        await dispatcher.close()
        await service.close()


async def _row(store: SqlStore, delivery_id: str) -> Delivery:
    row = await store.get_delivery(delivery_id)
    assert row is not None
    return row


async def _until(store: SqlStore, delivery_id: str, cond: Callable[[Delivery], bool]) -> Delivery:
    for _ in range(200):
        row = await _row(store, delivery_id)
        if cond(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} never reached the state: {row}")


async def test_signed_studio_body_in_order(store: SqlStore) -> None:
    await store.create_stream(
        Stream(id="s1", name="cam", stream_key="k", playback_id="p1", created_at=1)
    )
    async with receiver() as rec, running(store) as (service, _):
        hook = await service.create(
            "mine", rec.url + "/hook", ["stream.started", "stream.idle"], "s3cret", "s1"
        )
        plain = await service.create("plain", rec.url + "/plain", ["stream.started"])
        both = await service.emit("stream.started", stream_id="s1", stream_doc=STREAM)
        (started,) = [d for d in both if d.webhook_id == hook.id]
        (idle,) = await service.emit(
            "stream.idle", stream_id="s1", stream_doc=STREAM, payload={"reason": "done"}
        )
        await wait_until(lambda: len(rec.on("/hook")) == 2 and len(rec.on("/plain")) == 1)
        await _until(store, idle.id, lambda d: d.delivered_at is not None)

        first, second = rec.on("/hook")
        assert [r.doc["event"] for r in (first, second)] == ["stream.started", "stream.idle"]
        for got in (first, second):
            assert got.headers["Content-Type"] == "application/json"
            assert got.headers["User-Agent"] == USER_AGENT
            header = got.headers["Livepeer-Signature"]
            doc = got.doc
            assert list(doc) == [
                "id", "webhookId", "createdAt", "timestamp", "event", "stream", "payload",
            ]  # fmt: skip
            assert verify("s3cret", got.body, header, scheme="v1") == doc["timestamp"]
            assert verify("s3cret", got.body, header, scheme="v2") == doc["timestamp"]
            assert verify("wrong", got.body, header, scheme="v2") is None
            assert verify("s3cret", got.body + b" ", header, scheme="v1") is None
            assert doc["webhookId"] == hook.id
            assert doc["createdAt"] == doc["timestamp"] == int(T0 * 1000)
            assert doc["stream"] == {"id": "s1", "name": "cam", "playbackId": "p1"}
        assert first.doc["id"] == started.id and first.doc["payload"] == {}
        assert second.doc["id"] == idle.id and second.doc["payload"] == {"reason": "done"}
        # the v2 MAC covers the timestamp: the same body with another t does not verify
        moved = header.replace(f"t={doc['timestamp']}", f"t={doc['timestamp'] + 1}")
        assert verify("s3cret", second.body, moved, scheme="v2") is None
        assert "Livepeer-Signature" not in rec.on("/plain")[0].headers  # no secret, no signature

        log = await service.log(hook.id)
        assert log is not None
        entry = delivery_json(log[0])
        assert entry["success"] is True and entry["attempts"] == 1
        assert entry["request"]["headers"]["Livepeer-Signature"] == header
        assert entry["request"]["body"] == second.body.decode()  # the bytes that were signed
        assert entry["response"] == {"status": 204, "statusText": "No Content", "body": ""}
        assert "s3cret" not in json.dumps(entry)
        status = webhook_json((await service.get(hook.id)) or hook)["status"]
        assert status == {"lastTriggeredAt": int(T0 * 1000)}
        assert (await service.get(plain.id)) is not None


async def test_an_event_queued_before_a_restart_is_delivered_after_it(
    store: SqlStore, store_url: str
) -> None:
    async with receiver() as rec:
        url = rec.url
        down = rec.url + "/hook"
    # the endpoint is down: nothing listens on that port any more
    clock = ManualClock(T0)
    async with running(store, clock) as (service, _):
        hook = await service.create("h", down, ["stream.started"], "secret")
        (queued,) = await service.emit("stream.started", stream_id=None, stream_doc=STREAM)
        failed = await _until(store, queued.id, lambda d: d.attempts == 1)
    assert failed.delivered_at is None and failed.next_attempt_at == int(T0 * 1000) + 5000
    assert failed.error is not None and "Connect" in failed.error
    await store.close()

    port = int(url.rsplit(":", 1)[1])
    reopened = await SqlStore.open(store_url)
    try:
        clock.advance(5.0)
        async with receiver(port) as rec, running(reopened, clock):
            await wait_until(lambda: len(rec.got) == 1)
            done = await _until(reopened, queued.id, lambda d: d.delivered_at is not None)
        assert rec.got[0].doc["id"] == queued.id
        assert verify("secret", rec.got[0].body, rec.got[0].headers["Livepeer-Signature"])
        assert done.attempts == 2
        attempts = done.payload["attempts"]
        assert [a["statusCode"] for a in attempts] == [None, 204]
        assert attempts[0]["error"] and attempts[1]["error"] is None
        hook_after = await reopened.get_webhook(hook.id)
        assert hook_after is not None and hook_after.last_failure is not None
    finally:
        await reopened.close()


async def test_a_failing_endpoint_is_retried_with_back_off_then_given_up(store: SqlStore) -> None:
    clock = ManualClock(T0)
    policy = RetryPolicy(max_attempts=4)
    async with receiver() as rec, running(store, clock, retry=policy) as (service, dispatcher):
        rec.status = 503
        hook = await service.create("h", rec.url + "/h", ["stream.idle"])
        (queued,) = await service.emit("stream.idle", stream_id=None, stream_doc=None)
        start = int(T0 * 1000)
        expected = [start + 5_000, start + 15_000, start + 35_000, None]
        for n, due in enumerate(expected, start=1):
            row = await _until(store, queued.id, lambda d, n=n: d.attempts == n)
            assert row.next_attempt_at == due
            assert (row.status_code, row.error) == (503, "HTTP 503")
            # not due yet: nothing more is sent however often the dispatcher looks
            dispatcher.wake()
            await asyncio.sleep(0.2)
            assert len(rec.got) == n
            if due is not None:
                clock.now = due / 1000
                dispatcher.wake()
        assert len(rec.got) == 4
        entry = delivery_json(await _row(store, queued.id))
        assert entry["success"] is False and entry["attempts"] == 4
        assert "nextAttemptAt" not in entry  # given up
        assert [a["at"] for a in entry["attemptLog"]] == [start, *expected[:3]]
        assert [a["statusCode"] for a in entry["attemptLog"]] == [503] * 4
        assert entry["response"] == {
            "status": 503, "statusText": "Service Unavailable", "body": "answer",
        }  # fmt: skip
        failure = webhook_json((await service.get(hook.id)) or hook)["status"]["lastFailure"]
        assert failure == {
            "timestamp": start + 35_000,
            "error": "HTTP 503",
            "statusCode": 503,
            "response": "answer",
        }


def test_the_retry_schedule() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n, 0.0) for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert policy.delay(3, 0.999) == pytest.approx(20 * 1.24975)
    assert policy.next_attempt_at(0, 1, 1000, 0.0) == 6000
    day = 24 * 3600 * 1000
    assert policy.next_attempt_at(0, 150, day - 600_000, 0.0) == day
    assert policy.next_attempt_at(0, 150, day - 599_999, 0.0) is None  # past 24 h: given up
    assert RetryPolicy(max_attempts=3).next_attempt_at(0, 3, 0, 0.0) is None


async def test_a_hanging_endpoint_does_not_stall_another_webhook(store: SqlStore) -> None:
    async with receiver() as rec, running(store, timeout=60.0, concurrency=4) as (service, _):
        rec.hang.add("/slow")
        await service.create("slow", rec.url + "/slow", ["stream.started"])
        fast = await service.create("fast", rec.url + "/fast", ["stream.started"])
        for _ in range(5):
            await service.emit("stream.started", stream_id=None, stream_doc=STREAM)
        await wait_until(lambda: len(rec.on("/fast")) == 5)
        assert len(rec.on("/slow")) == 1  # one call in flight per webhook, still hanging
        log: tuple[Delivery, ...] = ()
        for _ in range(100):
            log = await service.log(fast.id) or ()
            if all(d.delivered_at is not None for d in log):
                break
            await asyncio.sleep(0.05)
        assert all(d.delivered_at is not None for d in log)


async def test_a_name_resolving_to_a_private_address_is_refused_when_called(
    store: SqlStore,
) -> None:
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    if not addresses or not all(
        a.startswith(("127.", "10.", "192.168.", "::1")) for a in addresses
    ):
        pytest.skip(f"{name} resolves to {addresses}, not a private address")
    async with receiver() as rec:
        port = rec.url.rsplit(":", 1)[1]
        url = f"http://{name}:{port}/hook"
        async with running(store, allow_private=False, retry=RetryPolicy(max_attempts=1)) as (
            service,
            _,
        ):
            await service.create("h", url, ["stream.started"])  # a name: saved as is
            (queued,) = await service.emit("stream.started", stream_id=None, stream_doc=None)
            row = await _until(store, queued.id, lambda d: d.attempts == 1)
        async with running(store, allow_private=True) as (service, _):
            other = await service.create("ok", url, ["stream.idle"])  # allowed: delivered
            await service.emit("stream.idle", stream_id=None, stream_doc=None)
            await wait_until(lambda: len(rec.got) >= 1)
    assert row.error is not None and "refused" in row.error and "not a public address" in row.error
    assert row.next_attempt_at is None and row.delivered_at is None
    assert all(r.doc["webhookId"] == other.id for r in rec.got)  # the refused one never came


async def test_a_literal_private_address_is_refused_when_called(store: SqlStore) -> None:
    # saved while private addresses were allowed, called after the operator turned that off
    async with receiver() as rec:
        async with running(store, allow_private=True, poll_interval=3600) as (service, d):
            await d.close()  # not sending here
            hook = await service.create("h", rec.url + "/h", ["stream.started"])
            (queued,) = await service.emit("stream.started", stream_id=None, stream_doc=None)
        async with running(store, allow_private=False, retry=RetryPolicy(max_attempts=1)):
            row = await _until(store, queued.id, lambda d: d.attempts == 1)
    assert rec.got == []
    assert row.error is not None and row.error.startswith("refused: url: 127.0.0.1")
    assert hook.id == row.webhook_id


async def test_two_nodes_deliver_each_event_exactly_once(store: SqlStore, store_url: str) -> None:
    other = await SqlStore.open(store_url)
    try:
        async with (
            receiver() as rec,
            running(store, concurrency=3) as (service, _),
            running(other, concurrency=3) as (service2, _),
        ):
            for n in range(6):
                await service.create(f"h{n}", f"{rec.url}/h{n}", ["stream.started"])
            ids = []
            for n in range(10):
                emitter = service if n % 2 else service2
                ids += [
                    d.id
                    for d in await emitter.emit("stream.started", stream_id=None, stream_doc=None)
                ]
            assert len(ids) == 60
            await wait_until(lambda: len(rec.got) >= 60)
            for delivery_id in ids:
                await _until(store, delivery_id, lambda d: d.delivered_at is not None)
            await asyncio.sleep(0.3)  # let a duplicate, if any, arrive
        got = [r.doc["id"] for r in rec.got]
        assert sorted(got) == sorted(ids)  # each exactly once
        assert all(len(rec.on(f"/h{n}")) == 10 for n in range(6))
    finally:
        await other.close()
