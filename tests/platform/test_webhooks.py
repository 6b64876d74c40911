"""``WebhookService`` over the real store (SQLite and PostgreSQL): validation (the URL rules
above all), Studio's JSON without the secret, emit's matching and its cache, update, resend."""

from __future__ import annotations

from typing import Any

import pytest

from mediagw.clock import ManualClock
from mediagw.destinations import address_refusal, check_url
from mediagw.errors import InvalidInput
from mediagw.platform.store import SqlStore, Stream
from mediagw.platform.webhooks import EVENTS, WebhookService, delivery_json, webhook_json

STREAM_DOC = {"id": "s1", "name": "cam", "streamKey": "abcd-efgh-ijkl-mnop", "isActive": True}


async def _stream(store: SqlStore, stream_id: str = "s1") -> None:
    await store.create_stream(
        Stream(
            id=stream_id,
            name="cam",
            stream_key=f"k-{stream_id}",
            playback_id=stream_id,
            created_at=1,
        )
    )


def _refused(field: str, call: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://localhost:8080/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    error = _refused("url", lambda: check_url(url, allow_private=False))
    assert "public" in str(error)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://token@example.com/", "credentials"),
        ("https:///path", "host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com/a b", "spaces"),
        ("http://127.1/", "not an IP address"),
        ("http://2130706433/", "not an IP address"),
        ("https://example.com/" + "a" * 2048, "2048"),
        ("", "give the URL"),
    ],
)
def test_malformed_urls_are_refused_even_when_private_is_allowed(url: str, words: str) -> None:
    assert words in str(_refused("url", lambda: check_url(url, allow_private=True)))


def test_public_urls_pass() -> None:
    for url in (
        "https://example.com/hook?x=1",
        "http://8.8.8.8:8080/",
        "https://[2001:4860::8888]/",
    ):
        assert check_url(url, allow_private=False) == url
    assert address_refusal("93.184.216.34") is None
    assert address_refusal("::ffff:192.168.0.1") == "private"


async def test_create_validates_every_field(store: SqlStore) -> None:
    service = WebhookService(store)
    good: dict[str, Any] = {"name": "n", "url": "https://example.com/h", "events": ["stream.idle"]}

    async def refused(field: str, **bad: Any) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.create(**{**good, **bad})
        assert caught.value.field == field

    await refused("name", name="")
    await refused("name", name="x" * 201)
    await refused("name", name=5)
    await refused("url", url="http://[::ffff:127.0.0.1]/")
    await refused("url", url="http://localhost/")
    await refused("events", events=[])
    await refused("events", events="stream.idle")
    await refused("events", events=["stream.exploded"])
    await refused("sharedSecret", shared_secret="")
    await refused("streamId", stream_id="nope")
    assert await store.list_webhooks() == ()
    for event in ("recording.waiting", "playback.accessControl", *EVENTS):
        await service.create(**{**good, "events": [event]})


async def test_studio_json_never_shows_the_secret(store: SqlStore) -> None:
    await _stream(store)
    clock = ManualClock(1700000000.0)
    service = WebhookService(store, clock=clock)
    hook = await service.create(
        "mine", "https://example.com/h", ["stream.started", "stream.started"], "s3cret", "s1"
    )
    doc = webhook_json(hook)
    assert doc == {
        "id": hook.id,
        "name": "mine",
        "url": "https://example.com/h",
        "events": ["stream.started"],
        "streamId": "s1",
        "createdAt": 1700000000000,
        "status": {},
    }
    assert "s3cret" not in repr(doc)
    stored = await service.get(hook.id)
    assert stored is not None and stored.shared_secret == "s3cret"
    failure = {"timestamp": 5, "error": "HTTP 500", "statusCode": 500, "response": "no"}
    await store.update_webhook(hook.id)  # nothing changes
    hook = stored.__class__(**{**stored.__dict__, "last_failure": failure, "last_triggered_at": 6})
    assert webhook_json(hook)["status"] == {"lastFailure": failure, "lastTriggeredAt": 6}
    assert "s3cret" not in repr(webhook_json(hook))


async def test_emit_queues_for_matching_webhooks_without_the_stream_key(store: SqlStore) -> None:
    await _stream(store, "s1")
    await _stream(store, "s2")
    service = WebhookService(store)
    woken: list[int] = []
    service.subscribe(lambda: woken.append(1))
    everything = await service.create(
        "all", "https://a.example/", ["stream.started", "stream.idle"]
    )
    mine = await service.create("s1", "https://b.example/", ["stream.started"], stream_id="s1")
    other = await service.create("s2", "https://c.example/", ["stream.started"], stream_id="s2")
    await service.create("rec", "https://d.example/", ["recording.ready"])

    queued = await service.emit("stream.started", stream_id="s1", stream_doc=STREAM_DOC)
    assert sorted(d.webhook_id for d in queued) == sorted([everything.id, mine.id])
    assert woken == [1]
    for delivery in queued:
        assert delivery.payload["stream"] == {"id": "s1", "name": "cam", "isActive": True}
        assert delivery.payload["payload"] == {}
    idle = await service.emit("stream.idle", stream_id="s2", stream_doc=None, payload={"a": 1})
    assert [d.webhook_id for d in idle] == [everything.id]
    assert await service.emit("multistream.error", stream_id="s1", stream_doc=None) == ()
    assert woken == [1, 1]
    with pytest.raises(ValueError):
        await service.emit("stream.nope", stream_id=None, stream_doc=None)
    assert other.id not in {d.webhook_id for d in queued + idle}
    log = await service.log(everything.id)
    assert log is not None and [d.event for d in log] == ["stream.idle", "stream.started"]
    assert await service.log("nope") is None


async def test_emit_caches_the_webhooks_and_the_service_clears_the_cache(store: SqlStore) -> None:
    clock = ManualClock()
    service = WebhookService(store, clock=clock, cache_ttl=5.0)
    first = await service.create("a", "https://a.example/", ["stream.started"])
    assert len(await service.emit("stream.started", stream_id=None, stream_doc=None)) == 1
    # a webhook added behind the service's back (another node) is seen once the cache expires
    await WebhookService(store).create("b", "https://b.example/", ["stream.started"])
    assert len(await service.emit("stream.started", stream_id=None, stream_doc=None)) == 1
    clock.advance(5.0)
    assert len(await service.emit("stream.started", stream_id=None, stream_doc=None)) == 2
    # changes through this service are seen at once
    await service.update(first.id, "a", "https://a.example/", ["stream.idle"])
    assert len(await service.emit("stream.started", stream_id=None, stream_doc=None)) == 1
    assert await service.delete(first.id)
    assert len(await service.emit("stream.idle", stream_id=None, stream_doc=None)) == 0


class _CountingStore:
    """The store, counting its ``get_stream`` calls."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def get_stream(self, stream_id: str) -> Stream | None:
        self.reads += 1
        return await self._store.get_stream(stream_id)


async def test_emit_reads_the_stream_only_for_a_global_webhook_listening(store: SqlStore) -> None:
    """A session's events cost no store read when no webhook listens, or only the stream's
    own do; a global one needs the stream's owner, read unless the caller passes the row."""
    await _stream(store, "s1")
    counting = _CountingStore(store)
    service = WebhookService(counting)  # type: ignore[arg-type]
    assert await service.emit("stream.started", stream_id="s1", stream_doc=STREAM_DOC) == ()
    own = await service.create("own", "https://a.example/", ["stream.idle"], stream_id="s1")
    counting.reads = 0  # (creating it checked that the stream exists)
    idle = await service.emit("stream.idle", stream_id="s1", stream_doc=STREAM_DOC)
    assert [d.webhook_id for d in idle] == [own.id]
    assert counting.reads == 0
    everything = await service.create("all", "https://b.example/", ["stream.started"])
    started = await service.emit("stream.started", stream_id="s1", stream_doc=STREAM_DOC)
    assert [d.webhook_id for d in started] == [everything.id] and counting.reads == 1
    row = await store.get_stream("s1")
    again = await service.emit(
        "stream.started", stream_id="s1", stream_doc=STREAM_DOC, stream_row=row
    )
    assert [d.webhook_id for d in again] == [everything.id] and counting.reads == 1


async def test_update_replaces_everything_like_studios_put(store: SqlStore) -> None:
    await _stream(store)
    service = WebhookService(store)
    hook = await service.create("a", "https://a.example/", ["stream.started"], "secret", "s1")
    updated = await service.update(hook.id, "b", "https://b.example/", ["stream.idle"])
    assert updated is not None
    assert (updated.name, updated.url, updated.events) == (
        "b",
        "https://b.example/",
        ("stream.idle",),
    )
    assert (updated.shared_secret, updated.stream_id, updated.created_at) == (
        None,
        None,
        hook.created_at,
    )
    with pytest.raises(InvalidInput) as caught:
        await service.update(hook.id, "b", "http://10.0.0.1/", ["stream.idle"])
    assert caught.value.field == "url"
    assert await service.update("nope", "b", "https://b.example/", ["stream.idle"]) is None


async def test_resend_queues_the_event_again(store: SqlStore) -> None:
    service = WebhookService(store)
    hook = await service.create("a", "https://a.example/", ["stream.started"])
    other = await service.create("b", "https://b.example/", ["stream.idle"])
    (first,) = await service.emit("stream.started", stream_id="s9", stream_doc={"id": "s9"})
    again = await service.resend(hook.id, first.id)
    assert again is not None and again.id != first.id
    assert (again.event, again.payload, again.next_attempt_at) == (
        first.event,
        first.payload,
        again.created_at,
    )
    assert await service.resend(other.id, first.id) is None  # not that webhook's delivery
    assert await service.resend(hook.id, "nope") is None
    log = await service.log(hook.id)
    assert log is not None and {d.id for d in log} == {first.id, again.id}


async def test_delivery_ids_sort_in_emit_order(store: SqlStore) -> None:
    clock = ManualClock(1700000000.0)  # the same millisecond for every event
    service = WebhookService(store, clock=clock)
    await service.create("a", "https://a.example/", ["stream.started", "stream.idle"])
    ids = []
    for _ in range(50):
        (queued,) = await service.emit("stream.started", stream_id=None, stream_doc=None)
        ids.append(queued.id)
    assert ids == sorted(ids)


def test_a_log_entry_before_any_attempt() -> None:
    from mediagw.platform.store import Delivery

    pending = Delivery(
        id="d1",
        webhook_id="w1",
        event="stream.idle",
        payload={"stream": None, "payload": {}, "attempts": []},
        created_at=5,
        next_attempt_at=5,
    )
    assert delivery_json(pending) == {
        "id": "d1",
        "webhookId": "w1",
        "event": "stream.idle",
        "createdAt": 5,
        "success": False,
        "attempts": 0,
        "nextAttemptAt": 5,
        "attemptLog": [],
    }
