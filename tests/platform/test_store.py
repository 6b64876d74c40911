"""The platform store, one suite over both backends (the ``store_url`` and ``store`` fixtures of
``conftest.py``): SQLite always, PostgreSQL when ``MEDIAGW_TEST_POSTGRES_URL`` is set."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import sqlite3
import threading
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from mediagw.errors import StoreBadInput, StoreConflict, StoreError, StoreNotFound
from mediagw.platform.store import (
    MAX_LIMIT,
    ApiKey,
    AuditEntry,
    Delivery,
    Session,
    SigningKey,
    SqlStore,
    Store,
    Stream,
    Webhook,
    migrate,
    open_store,
)
from mediagw.platform.store.engine import DB_FILE, SQLITE_POOL_SIZE, engine_url
from mediagw.platform.store.schema import METADATA


def _stream(n: int, **fields: Any) -> Stream:
    return Stream(
        id=f"s{n}",
        name=f"stream {n}",
        stream_key=f"key-{n}",
        playback_id=f"play-{n}",
        created_at=1000 + n,
        **fields,
    )


def _key(n: int, **fields: Any) -> ApiKey:
    return ApiKey(
        id=f"k{n}", name=f"key {n}", lookup_id=f"lk{n}", secret_hash=f"h{n}", created_at=n, **fields
    )


# streams


async def test_streams_round_trip_and_lookups(store: SqlStore) -> None:
    stream = _stream(
        1,
        profiles=[{"name": "720p", "width": 1280, "height": 720, "bitrate": 3_000_000}],
        record=True,
        multistream={"targets": [{"id": "t1", "profile": "720p"}]},
        playback_policy={"type": "jwt"},
        user_tags={"team": "a", "n": 3},
        pipeline="comfyui",
        pipeline_params={"prompt": "x"},
        owner_key_id="k1",
    )
    assert await store.create_stream(stream) == stream
    assert await store.get_stream("s1") == stream
    assert await store.stream_by_key("key-1") == stream
    assert await store.stream_by_playback_id("play-1") == stream
    assert await store.get_stream("nope") is None
    assert await store.stream_by_key("play-1") is None
    assert await store.stream_by_playback_id("key-1") is None


@pytest.mark.parametrize("field", ["id", "stream_key", "playback_id"])
async def test_a_taken_unique_stream_field_is_a_conflict_naming_the_field(
    store: SqlStore, field: str
) -> None:
    await store.create_stream(_stream(1))
    clash = dataclasses.replace(_stream(2), **{field: getattr(_stream(1), field)})
    with pytest.raises(StoreConflict) as caught:
        await store.create_stream(clash)
    assert caught.value.field == field
    assert caught.value.entity == "stream"
    assert getattr(_stream(1), field) not in str(caught.value)  # never the (secret) value
    assert await store.get_stream("s2") is None


async def test_list_streams_filters_and_pages_newest_first(store: SqlStore) -> None:
    for n in range(7):
        await store.create_stream(_stream(n, is_active=n % 2 == 0))
    await store.create_stream(dataclasses.replace(_stream(7), created_at=1006))  # a tie on time
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_streams(limit=3, cursor=cursor)
        seen += [s.id for s in page.items]
        if page.cursor is None:
            break
        assert len(page.items) == 3
        cursor = page.cursor
    assert seen == ["s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    active = await store.list_streams(is_active=True)
    assert [s.id for s in active.items] == ["s6", "s4", "s2", "s0"]
    assert active.cursor is None
    named = await store.list_streams(name="stream 3")
    assert [s.id for s in named.items] == ["s3"]
    both = await store.list_streams(name="stream 3", is_active=True)
    assert both.items == ()
    exact = await store.list_streams(limit=8)
    assert len(exact.items) == 8
    assert exact.cursor is None


@pytest.mark.parametrize("cursor", ["", "abc", "x:s1", ":s1", "-1:s1"])
async def test_a_malformed_cursor_is_bad_input(store: SqlStore, cursor: str) -> None:
    with pytest.raises(StoreBadInput, match="cursor"):
        await store.list_streams(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
async def test_every_list_caps_its_limit(store: SqlStore, limit: int) -> None:
    calls = [
        store.list_streams(limit=limit),
        store.list_sessions("s1", limit=limit),
        store.list_api_keys(limit=limit),
        store.list_webhooks(limit=limit),
        store.due_deliveries(0, limit=limit),
        store.list_deliveries("w1", limit=limit),
        store.list_signing_keys(limit=limit),
        store.list_audit(limit=limit),
    ]
    for call in calls:
        with pytest.raises(StoreBadInput, match=f"between 1 and {MAX_LIMIT}"):
            await call
    assert (await store.list_streams(limit=MAX_LIMIT)).items == ()


async def test_update_stream(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.create_stream(_stream(2))
    updated = await store.update_stream(
        "s1", is_active=True, last_seen=5000, source_segments=3, source_bytes=2**40, suspended=True
    )
    assert updated == dataclasses.replace(
        _stream(1),
        is_active=True,
        last_seen=5000,
        source_segments=3,
        source_bytes=2**40,
        suspended=True,
    )
    assert await store.get_stream("s1") == updated
    assert await store.update_stream("s1") == updated  # nothing to change
    assert await store.update_stream("nope", name="x") is None
    with pytest.raises(StoreBadInput, match="created_at"):
        await store.update_stream("s1", created_at=1)
    with pytest.raises(StoreBadInput, match="colour"):
        await store.update_stream("s1", colour="red")
    with pytest.raises(StoreConflict) as caught:
        await store.update_stream("s1", stream_key="key-2")
    assert caught.value.field == "stream_key"
    assert await store.get_stream("s1") == updated


async def test_delete_stream_takes_its_sessions_and_webhooks(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.create_stream(_stream(2))
    await store.create_session(Session(id="a", stream_id="s1", created_at=1))
    hook = Webhook(id="w1", name="w", url="http://x", created_at=1, stream_id="s1")
    await store.create_webhook(hook)
    await store.create_webhook(Webhook(id="w2", name="w", url="http://x", created_at=2))
    assert await store.delete_stream("s1") is True
    assert await store.delete_stream("s1") is False
    assert await store.get_stream("s1") is None
    assert await store.get_session("a") is None
    assert [w.id for w in await store.list_webhooks()] == ["w2"]
    assert await store.get_stream("s2") == _stream(2)


# sessions


async def test_sessions(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    await store.create_stream(_stream(2))
    first = Session(id="a", stream_id="s1", created_at=10)
    assert await store.create_session(first) == first
    await store.create_session(Session(id="b", stream_id="s1", created_at=20, source_segments=2))
    await store.create_session(Session(id="c", stream_id="s2", created_at=30))
    assert await store.get_session("a") == first
    assert await store.get_session("nope") is None
    assert [s.id for s in await store.list_sessions("s1")] == ["b", "a"]
    assert [s.id for s in await store.list_sessions("s1", limit=1)] == ["b"]
    assert await store.list_sessions("nope") == ()
    ended = await store.end_session("a", 99, recording_url="https://rec/a.m3u8")
    assert ended == dataclasses.replace(first, ended_at=99, recording_url="https://rec/a.m3u8")
    assert await store.end_session("a", 100) == dataclasses.replace(ended, ended_at=100)
    assert await store.end_session("nope", 1) is None
    with pytest.raises(StoreConflict):
        await store.create_session(Session(id="a", stream_id="s2", created_at=1))
    with pytest.raises(StoreNotFound, match="session"):
        await store.create_session(Session(id="d", stream_id="nope", created_at=1))


# API keys


async def test_api_keys(store: SqlStore) -> None:
    key = _key(1, scopes=("streams:read", "streams:write"), cors_origins=("https://a",))
    assert await store.create_api_key(key) == key
    await store.create_api_key(_key(2, expires_at=10_000))
    assert await store.api_key_by_lookup("lk1") == key
    assert await store.api_key_by_lookup("nope") is None
    assert [k.id for k in await store.list_api_keys()] == ["k2", "k1"]
    assert [k.id for k in await store.list_api_keys(limit=1)] == ["k2"]
    with pytest.raises(StoreConflict) as caught:
        await store.create_api_key(dataclasses.replace(_key(3), lookup_id="lk1"))
    assert caught.value.field == "lookup_id"
    await store.touch_api_key("k1", 500)
    await store.touch_api_key("nope", 500)
    assert await store.revoke_api_key("k1", 600) is True
    assert await store.revoke_api_key("k1", 700) is True  # the first revocation stands
    assert await store.revoke_api_key("nope", 700) is False
    got = await store.get_api_key("k1")
    assert got is not None and got.revoked_at == 600
    assert await store.get_api_key("nope") is None
    assert await store.api_key_by_lookup("lk1") == dataclasses.replace(
        key, last_used_at=500, revoked_at=600
    )


# webhooks and deliveries


async def test_webhooks(store: SqlStore) -> None:
    await store.create_stream(_stream(1))
    everything = Webhook(
        id="w1", name="all", url="https://a/hook", created_at=1, events=("stream.started",)
    )
    mine = Webhook(
        id="w2", name="s1", url="https://b/hook", created_at=2, shared_secret="z", stream_id="s1"
    )
    assert await store.create_webhook(everything) == everything
    await store.create_webhook(mine)
    assert await store.get_webhook("w2") == mine
    assert await store.get_webhook("nope") is None
    assert [w.id for w in await store.list_webhooks()] == ["w2", "w1"]
    assert [w.id for w in await store.list_webhooks(stream_id="s1")] == ["w2", "w1"]
    assert [w.id for w in await store.list_webhooks(stream_id="other")] == ["w1"]
    with pytest.raises(StoreNotFound):
        await store.create_webhook(dataclasses.replace(mine, id="w3", stream_id="nope"))
    with pytest.raises(StoreConflict):
        await store.create_webhook(everything)
    assert await store.delete_webhook("w1") is True
    assert await store.delete_webhook("w1") is False
    assert [w.id for w in await store.list_webhooks()] == ["w2"]


def _delivery(n: int, webhook_id: str = "w1", **fields: Any) -> Delivery:
    return Delivery(
        id=f"d{n}",
        webhook_id=webhook_id,
        event="stream.started",
        payload={"n": n, "stream": {"id": "s1"}},
        created_at=100 + n,
        **fields,
    )


async def test_deliveries_are_a_queue_and_a_log(store: SqlStore) -> None:
    await store.create_webhook(Webhook(id="w1", name="a", url="https://a", created_at=1))
    await store.create_webhook(Webhook(id="w2", name="b", url="https://b", created_at=2))
    queued = await store.enqueue_delivery(_delivery(1))
    assert queued.next_attempt_at == 101  # due at once
    await store.enqueue_delivery(_delivery(2, "w2"))
    await store.enqueue_delivery(_delivery(3, next_attempt_at=500))  # due later
    assert [d.id for d in await store.due_deliveries(100)] == []
    assert [d.id for d in await store.due_deliveries(200)] == ["d1", "d2"]
    assert [d.id for d in await store.due_deliveries(200, limit=1)] == ["d1"]
    assert [d.id for d in await store.due_deliveries(500)] == ["d1", "d2", "d3"]

    await store.mark_failed("d1", 201, error="connection refused", next_attempt_at=300)
    await store.mark_delivered("d2", 202, 204)
    assert [d.id for d in await store.due_deliveries(299)] == []
    assert [d.id for d in await store.due_deliveries(10_000)] == ["d1", "d3"]
    await store.mark_failed("d1", 301, error="503", status_code=503, next_attempt_at=400)
    await store.mark_delivered("d1", 401, 200)
    await store.mark_failed("d3", 501, error="x" * 5000, status_code=500)  # given up
    assert await store.due_deliveries(10_000) == ()

    log = await store.list_deliveries("w1")
    assert [d.id for d in log] == ["d3", "d1"]
    gave_up, delivered = log
    assert delivered == dataclasses.replace(
        _delivery(1), attempts=3, delivered_at=401, status_code=200
    )
    assert (gave_up.attempts, gave_up.status_code, gave_up.next_attempt_at) == (1, 500, None)
    assert gave_up.error == "x" * 1000
    assert [d.id for d in await store.list_deliveries("w1", limit=1)] == ["d3"]
    assert [d.id for d in await store.list_deliveries("w2")] == ["d2"]

    w1, w2 = await store.get_webhook("w1"), await store.get_webhook("w2")
    assert w1 is not None and w2 is not None
    assert w1.last_triggered_at == 501  # the latest attempt
    assert w1.last_failure == {"at": 501, "statusCode": 500, "error": "x" * 1000}
    assert (w2.last_triggered_at, w2.last_failure) == (202, None)

    with pytest.raises(StoreNotFound):
        await store.enqueue_delivery(_delivery(9, "nope"))
    with pytest.raises(StoreConflict):
        await store.enqueue_delivery(_delivery(1))
    await store.delete_webhook("w1")
    assert await store.list_deliveries("w1") == ()


# signing keys and the audit log


async def test_signing_keys(store: SqlStore) -> None:
    key = SigningKey(id="sk1", name="main", public_key="-----BEGIN PUBLIC KEY-----", created_at=1)
    assert await store.create_signing_key(key) == key
    await store.create_signing_key(
        SigningKey(id="sk2", name="old", public_key="pk", created_at=2, disabled=True)
    )
    assert await store.get_signing_key("sk1") == key
    assert await store.get_signing_key("nope") is None
    assert [k.id for k in await store.list_signing_keys()] == ["sk2", "sk1"]
    assert [k.disabled for k in await store.list_signing_keys(limit=1)] == [True]
    with pytest.raises(StoreConflict) as caught:
        await store.create_signing_key(key)
    assert caught.value.field == "id"


async def test_signing_key_by_public_key_update_and_delete(store: SqlStore) -> None:
    key = SigningKey(id="sk1", name="main", public_key="LS0tLS1CRUdJTiBQVUJMSUMgS0VZ", created_at=1)
    other = SigningKey(id="sk2", name="other", public_key="cGsy", created_at=2)
    await store.create_signing_key(key)
    await store.create_signing_key(other)
    assert await store.signing_key_by_public_key(key.public_key) == key
    assert await store.signing_key_by_public_key("cGsy") == other
    assert await store.signing_key_by_public_key("LS0tLS1CRUdJTiBQVUJMSUMgS0V") is None

    disabled = await store.update_signing_key("sk1", disabled=True)
    assert disabled == dataclasses.replace(key, disabled=True)
    assert await store.signing_key_by_public_key(key.public_key) == disabled  # disabled: found
    renamed = await store.update_signing_key("sk1", name="renamed", disabled=False)
    assert renamed == dataclasses.replace(key, name="renamed")
    assert await store.update_signing_key("sk1") == renamed  # nothing to change
    assert await store.get_signing_key("sk2") == other  # the other key is untouched
    assert await store.update_signing_key("nope", disabled=True) is None

    assert await store.delete_signing_key("sk1") is True
    assert await store.delete_signing_key("sk1") is False
    assert await store.get_signing_key("sk1") is None
    assert await store.signing_key_by_public_key(key.public_key) is None
    assert [k.id for k in await store.list_signing_keys()] == ["sk2"]


async def test_audit_log_newest_first(store: SqlStore) -> None:
    entries = [
        await store.append_audit(
            AuditEntry(
                at=10 + n,
                action="stream.create",
                actor_key_id="k1",
                ip="10.0.0.1",
                target_type="stream",
                target_id=f"s{n}",
                details={"n": n},
            )
        )
        for n in range(3)
    ]
    assert [e.id for e in entries] == sorted({e.id for e in entries if e.id is not None})
    assert await store.list_audit() == tuple(reversed(entries))
    assert await store.list_audit(limit=2) == (entries[2], entries[1])
    assert await store.list_audit(before=entries[2].id) == (entries[1], entries[0])
    bare = await store.append_audit(AuditEntry(at=20, action="key.revoke"))
    assert (await store.list_audit(limit=1))[0] == bare


# the database itself


async def test_data_survives_a_restart(store_url: str) -> None:
    first = await SqlStore.open(store_url)
    await first.create_stream(_stream(1))
    await first.create_api_key(_key(1))
    await first.append_audit(AuditEntry(at=1, action="a"))
    await first.close()
    again = await SqlStore.open(store_url)  # migrating an up-to-date database is a no-op
    try:
        assert await again.get_stream("s1") == _stream(1)
        assert await again.api_key_by_lookup("lk1") == _key(1)
        assert [e.action for e in await again.list_audit()] == ["a"]
        entry = await again.append_audit(AuditEntry(at=2, action="b"))
        assert entry.id == 2
    finally:
        await again.close()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_pooled_connections_the_server_closed_are_replaced(store_url: str) -> None:
    """A PostgreSQL restart closes every pooled connection: the next read gets a new one, not
    an error, with no ping round trip at checkout (asyncpg has seen the socket close)."""
    store = await SqlStore.open(store_url)
    admin = await asyncpg.connect(
        make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await store.create_stream(_stream(1))
        assert await store.get_stream("s1") == _stream(1)
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert ended >= 1  # the pool's connections, as a restart ends them
        await asyncio.sleep(0.2)  # the client side sees the sockets close
        assert await store.get_stream("s1") == _stream(1)
    finally:
        await admin.close()
        await store.close()


async def test_the_database_is_at_the_newest_migration_and_matches_the_schema(
    store: SqlStore,
) -> None:
    script = migrate.load_scripts()
    head = script.get_current_head()
    assert head is not None
    assert await store.revision() == head
    async with store.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), METADATA)
        )
    assert diff == []  # schema.py and the migrations describe the same tables


async def test_a_store_opened_through_the_protocol(store_url: str) -> None:
    opened: Store = await open_store(store_url)
    try:
        assert await opened.list_audit() == ()
    finally:
        await opened.close()


def test_sql_store_implements_every_protocol_method() -> None:
    names = [n for n, v in vars(Store).items() if inspect.iscoroutinefunction(v)]
    assert len(names) >= 45 and "get_api_key" in names
    for name in names:
        assert inspect.signature(getattr(SqlStore, name)) == inspect.signature(
            getattr(Store, name)
        ), name


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(
    tmp_path: Path,
) -> None:
    store = await SqlStore.open(tmp_path)
    try:
        async with store.engine.connect() as connection:
            pragmas = [
                (await connection.execute(sa.text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
    finally:
        await store.close()
    assert pragmas == ["wal", 1, 5000]
    assert (tmp_path / DB_FILE).is_file()


async def test_a_new_data_directory_is_private(tmp_path: Path) -> None:
    store = await SqlStore.open(tmp_path / "a" / "data")
    await store.close()
    assert (tmp_path / "a" / "data" / DB_FILE).is_file()
    assert (tmp_path / "a" / "data").stat().st_mode & 0o077 == 0


async def test_sqlite_work_runs_off_the_event_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    store = await SqlStore.open(tmp_path / "data")
    try:
        await store.create_stream(_stream(1))
        assert await store.get_stream("s1") == _stream(1)
    finally:
        await store.close()
    assert threads, "sqlite3.connect was never called"
    assert threading.main_thread() not in threads  # aiosqlite's worker threads, never the loop


async def test_every_backend_is_driven_by_an_async_driver(store: SqlStore) -> None:
    assert store.engine.dialect.is_async
    assert store.engine.dialect.driver in ("aiosqlite", "asyncpg")
    assert store.dialect in ("sqlite", "postgresql")


def test_engine_urls(tmp_path: Path) -> None:
    assert engine_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path.resolve() / DB_FILE}"
    assert engine_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert engine_url("postgresql://u:p@h:5/db") == "postgresql+asyncpg://u:p@h:5/db"
    assert engine_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert engine_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    with pytest.raises(StoreError, match="unsupported store URL scheme 'mysql'"):
        engine_url("mysql://u@h/db")


async def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="reachable"):
        await SqlStore.open("postgresql://nobody@127.0.0.1:1/none")


async def test_a_flood_of_sqlite_statements_keeps_its_threads_bounded(tmp_path: Path) -> None:
    """aiosqlite runs each connection on a thread: 40 statements at once (a flood of publishes
    looking up their keys) hold at most SQLITE_POOL_SIZE connections; the others wait for one
    (SQLAlchemy's default pool opened up to 15, a thread started and ended per overflow)."""
    store = await SqlStore.open(tmp_path / "data")
    release = asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with store.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
            holding += 1
            await release.wait()

    try:
        before = threading.active_count()
        tasks = [asyncio.create_task(hold()) for _ in range(40)]
        for _ in range(100):  # until no more connections open (each one starts a thread)
            seen = holding
            await asyncio.sleep(0.05)
            if holding == seen and holding:
                break
        during = threading.active_count()
        release.set()
        await asyncio.gather(*tasks)
    finally:
        await store.close()
    assert holding == 40
    assert during - before <= SQLITE_POOL_SIZE, (before, during)
