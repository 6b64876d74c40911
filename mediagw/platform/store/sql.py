"""``SqlStore``: the one ``Store``, over SQLAlchemy Core (async), for SQLite and PostgreSQL.

Both dialects run the same statements; the only difference is at connect time (SQLite pragmas,
see ``engine``). Opening migrates the database to the newest revision first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ...errors import StoreBadInput
from . import migrate, outbox
from .engine import autocommit_engine, check_limit, connect, one_statement, transaction
from .rows import (
    ApiKey,
    AuditEntry,
    Delivery,
    Page,
    Session,
    SigningKey,
    Stream,
    Webhook,
    from_row,
)
from .schema import (
    api_keys,
    audit_log,
    sessions,
    signing_keys,
    streams,
    webhook_deliveries,
    webhooks,
)
from .sql_live import LiveStore
from .sql_owners import OwnerStore
from .sql_usage import UsageStore

__all__ = ["SqlStore"]

R = TypeVar("R")
MAX_ERROR = 1000  # characters of a delivery's error kept
_STREAM_FIXED = {"id", "created_at"}
_STREAM_FIELDS = {f.name for f in dataclasses.fields(Stream)} - _STREAM_FIXED
_WEBHOOK_FIELDS = {"name", "url", "events", "shared_secret", "stream_id"}


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}


def _cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    at, sep, last_id = cursor.partition(":")
    if not sep or not at.isdigit():
        raise StoreBadInput("malformed cursor: pass back the cursor of the previous page as is")
    return int(at), last_id


class SqlStore(LiveStore, OwnerStore, UsageStore):
    """The platform's store over one database (see ``Store`` for what each method does)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._single = autocommit_engine(engine)  # one-statement reads (_one, _all) and writes
        self.statements = 0  # statements sent to the database (mediagw_store_statements_total)
        sa.event.listen(engine.sync_engine, "before_cursor_execute", self._counted)

    def _counted(self, *_args: object) -> None:
        self.statements += 1

    @classmethod
    async def open(cls, url_or_dir: str | Path) -> SqlStore:
        """Connect to ``url_or_dir`` (a data directory or a database URL) and migrate to head."""
        engine = await connect(url_or_dir)
        try:
            script = await asyncio.to_thread(migrate.load_scripts)
            async with transaction(engine, "migration") as connection:
                await connection.run_sync(migrate.upgrade, script)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """The async engine (for tests and the migration check)."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        await self._engine.dispose()

    async def revision(self) -> str | None:
        """The migration revision the database is at."""
        async with self._engine.connect() as connection:
            return await connection.run_sync(migrate.current)

    async def _one(self, cls: type[R], query: sa.Select[Any]) -> R | None:
        async with one_statement(self._single, cls.__name__.lower()) as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else from_row(cls, row)

    async def _all(self, cls: type[R], query: sa.Select[Any]) -> tuple[R, ...]:
        async with one_statement(self._single, cls.__name__.lower()) as connection:
            rows = (await connection.execute(query)).all()
        return tuple(from_row(cls, row) for row in rows)

    async def _insert(self, table: sa.Table, entity: str, values: dict[str, Any]) -> None:
        async with transaction(self._engine, entity) as connection:
            await connection.execute(table.insert().values(**values))

    # streams

    async def create_stream(self, stream: Stream) -> Stream:
        """Store a new stream; StoreConflict if its id, stream key or playback id is taken."""
        await self._insert(streams, "stream", _values(stream))
        return stream

    async def get_stream(self, stream_id: str) -> Stream | None:
        """The stream with this id, or None."""
        return await self._one(Stream, streams.select().where(streams.c.id == stream_id))

    async def stream_by_key(self, stream_key: str) -> Stream | None:
        """The stream published with this stream key, or None."""
        query = streams.select().where(streams.c.stream_key == stream_key)
        return await self._one(Stream, query)

    async def stream_by_playback_id(self, playback_id: str) -> Stream | None:
        """The stream played back with this playback id, or None."""
        query = streams.select().where(streams.c.playback_id == playback_id)
        return await self._one(Stream, query)

    async def list_streams(
        self,
        *,
        name: str | None = None,
        is_active: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        owner_key_id: str | None = None,
    ) -> Page[Stream]:
        """Streams, newest first, optionally only those with this name, activity or owner."""
        query = streams.select()
        if owner_key_id is not None:
            query = query.where(streams.c.owner_key_id == owner_key_id)
        if name is not None:
            query = query.where(streams.c.name == name)
        if is_active is not None:
            query = query.where(streams.c.is_active == is_active)
        if (after := _cursor(cursor)) is not None:
            at, last_id = after
            query = query.where(
                sa.or_(
                    streams.c.created_at < at,
                    sa.and_(streams.c.created_at == at, streams.c.id < last_id),
                )
            )
        query = query.order_by(streams.c.created_at.desc(), streams.c.id.desc())
        items = await self._all(Stream, query.limit(check_limit(limit) + 1))
        if len(items) <= limit:
            return Page(items)
        last = items[limit - 1]
        return Page(items[:limit], f"{last.created_at}:{last.id}")

    async def update_stream(self, stream_id: str, **changes: Any) -> Stream | None:
        """Change these fields of a stream; the stream as stored after, or None if it is gone."""
        if unknown := set(changes) - _STREAM_FIELDS:
            raise StoreBadInput(
                f"cannot update stream field(s) {sorted(unknown)}: "
                f"updatable are {sorted(_STREAM_FIELDS)}"
            )
        where = streams.c.id == stream_id
        async with transaction(self._engine, "stream") as connection:
            if changes:
                await connection.execute(streams.update().where(where).values(**changes))
            row = (await connection.execute(streams.select().where(where))).first()
        return None if row is None else from_row(Stream, row)

    async def delete_stream(self, stream_id: str) -> bool:
        """Delete a stream with its sessions and webhooks; False if there was none."""
        async with transaction(self._engine, "stream") as connection:
            result = await connection.execute(streams.delete().where(streams.c.id == stream_id))
        return bool(result.rowcount)

    # sessions

    async def create_session(self, session: Session) -> Session:
        """Store a new session; StoreNotFound if its stream does not exist."""
        await self._insert(sessions, "session", _values(session))
        return session

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or None."""
        return await self._one(Session, sessions.select().where(sessions.c.id == session_id))

    async def end_session(
        self, session_id: str, ended_at: int, recording_url: str | None = None
    ) -> Session | None:
        """Mark a session ended (and where its recording is); the session after, or None."""
        where = sessions.c.id == session_id
        values: dict[str, Any] = {"ended_at": ended_at}
        if recording_url is not None:
            values["recording_url"] = recording_url
        async with transaction(self._engine, "session") as connection:
            await connection.execute(sessions.update().where(where).values(**values))
            row = (await connection.execute(sessions.select().where(where))).first()
        return None if row is None else from_row(Session, row)

    async def list_sessions(self, stream_id: str, *, limit: int = 100) -> tuple[Session, ...]:
        """A stream's sessions, newest first."""
        query = (
            sessions.select()
            .where(sessions.c.stream_id == stream_id)
            .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
            .limit(check_limit(limit))
        )
        return await self._all(Session, query)

    # API keys

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Store a new API key; StoreConflict if its id or lookup id is taken."""
        await self._insert(api_keys, "API key", _values(key))
        return key

    async def api_key_by_lookup(self, lookup_id: str) -> ApiKey | None:
        """The API key with this lookup id (revoked or not), or None."""
        query = api_keys.select().where(api_keys.c.lookup_id == lookup_id)
        return await self._one(ApiKey, query)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The API key with this id, revoked or not, or None."""
        return await self._one(ApiKey, api_keys.select().where(api_keys.c.id == key_id))

    async def list_api_keys(self, *, limit: int = 100) -> tuple[ApiKey, ...]:
        """API keys, newest first."""
        query = api_keys.select().order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
        return await self._all(ApiKey, query.limit(check_limit(limit)))

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        """Revoke a key at ``at`` (kept if already revoked); False if there is no such key."""
        where = api_keys.c.id == key_id
        async with transaction(self._engine, "API key") as connection:
            await connection.execute(
                api_keys.update()
                .where(where, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            found = (await connection.execute(sa.select(api_keys.c.id).where(where))).first()
        return found is not None

    async def touch_api_key(self, key_id: str, at: int) -> None:
        """Record that a key was used at ``at``."""
        async with transaction(self._engine, "API key") as connection:
            await connection.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=at)
            )

    # webhooks and their deliveries

    async def create_webhook(self, webhook: Webhook) -> Webhook:
        """Store a new webhook; StoreNotFound if it names a stream that does not exist."""
        await self._insert(webhooks, "webhook", _values(webhook))
        return webhook

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        """The webhook with this id, or None."""
        return await self._one(Webhook, webhooks.select().where(webhooks.c.id == webhook_id))

    async def list_webhooks(
        self, *, stream_id: str | None = None, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[Webhook, ...]:
        """Webhooks, newest first; with ``stream_id``, those that fire for that stream (its own
        and the global ones); with ``owner_key_id``, only that key's."""
        query = webhooks.select()
        if owner_key_id is not None:
            query = query.where(webhooks.c.owner_key_id == owner_key_id)
        if stream_id is not None:
            query = query.where(
                sa.or_(webhooks.c.stream_id.is_(None), webhooks.c.stream_id == stream_id)
            )
        query = query.order_by(webhooks.c.created_at.desc(), webhooks.c.id.desc())
        return await self._all(Webhook, query.limit(check_limit(limit)))

    async def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook | None:
        """Change a webhook's name, url, events, shared_secret or stream_id; the webhook after,
        or None if there is none (StoreNotFound if it names a missing stream)."""
        if unknown := set(changes) - _WEBHOOK_FIELDS:
            raise StoreBadInput(
                f"cannot update webhook field(s) {sorted(unknown)}: "
                f"updatable are {sorted(_WEBHOOK_FIELDS)}"
            )
        if "events" in changes:
            changes["events"] = list(changes["events"])
        where = webhooks.c.id == webhook_id
        async with transaction(self._engine, "webhook") as connection:
            if changes:
                await connection.execute(webhooks.update().where(where).values(**changes))
            row = (await connection.execute(webhooks.select().where(where))).first()
        return None if row is None else from_row(Webhook, row)

    async def delete_webhook(self, webhook_id: str) -> bool:
        """Delete a webhook with its deliveries; False if there was none."""
        async with transaction(self._engine, "webhook") as connection:
            result = await connection.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
        return bool(result.rowcount)

    async def enqueue_delivery(self, delivery: Delivery) -> Delivery:
        """Queue an event for a webhook (due at ``next_attempt_at``, else at once)."""
        if delivery.next_attempt_at is None and delivery.delivered_at is None:
            delivery = dataclasses.replace(delivery, next_attempt_at=delivery.created_at)
        await self._insert(webhook_deliveries, "webhook delivery", _values(delivery))
        return delivery

    async def due_deliveries(self, now: int, *, limit: int = 100) -> tuple[Delivery, ...]:
        """Undelivered deliveries whose next attempt is due at ``now``, the oldest due first."""
        column = webhook_deliveries.c.next_attempt_at
        query = (
            webhook_deliveries.select()
            .where(column.is_not(None), column <= now)
            .order_by(column, webhook_deliveries.c.id)
            .limit(check_limit(limit))
        )
        return await self._all(Delivery, query)

    async def mark_delivered(self, delivery_id: str, at: int, status_code: int) -> None:
        """Record a successful attempt: the delivery leaves the queue."""
        await self._attempted(
            delivery_id,
            at,
            {"delivered_at": at, "status_code": status_code, "error": None},
            None,
        )

    async def mark_failed(
        self,
        delivery_id: str,
        at: int,
        *,
        error: str,
        status_code: int | None = None,
        next_attempt_at: int | None = None,
    ) -> None:
        """Record a failed attempt; retried at ``next_attempt_at`` (None: given up)."""
        error = error[:MAX_ERROR]
        failure = {"at": at, "statusCode": status_code, "error": error}
        values = {"status_code": status_code, "error": error, "next_attempt_at": next_attempt_at}
        await self._attempted(delivery_id, at, values, failure)

    async def _attempted(
        self, delivery_id: str, at: int, values: dict[str, Any], failure: dict[str, Any] | None
    ) -> None:
        table = webhook_deliveries
        if "delivered_at" in values:
            values = {**values, "next_attempt_at": None}
        async with transaction(self._engine, "webhook delivery") as connection:
            await connection.execute(
                table.update()
                .where(table.c.id == delivery_id)
                .values(attempts=table.c.attempts + 1, **values)
            )
            hook = sa.select(table.c.webhook_id).where(table.c.id == delivery_id).scalar_subquery()
            hook_values: dict[str, Any] = {"last_triggered_at": at}
            if failure is not None:
                hook_values["last_failure"] = failure
            await connection.execute(
                webhooks.update().where(webhooks.c.id == hook).values(**hook_values)
            )

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id, or None."""
        table = webhook_deliveries
        return await self._one(Delivery, table.select().where(table.c.id == delivery_id))

    async def claim_deliveries(
        self,
        now: int,
        *,
        lease_ms: int,
        limit: int = 100,
        exclude_webhooks: Collection[str] = (),
    ) -> tuple[Delivery, ...]:
        """Lease due deliveries for sending (see ``outbox``): at most one per webhook, none of
        ``exclude_webhooks``, each now due again at ``now + lease_ms``; the oldest first."""
        rows = await outbox.claim(
            self._engine, now, lease_ms=lease_ms, limit=limit, exclude_webhooks=exclude_webhooks
        )
        return tuple(from_row(Delivery, row) for row in rows)

    async def record_attempt(
        self,
        delivery_id: str,
        claimed_until: int,
        at: int,
        *,
        payload: dict[str, Any],
        status_code: int | None = None,
        error: str | None = None,
        delivered: bool = False,
        next_attempt_at: int | None = None,
        last_failure: dict[str, Any] | None = None,
    ) -> bool:
        """Record an attempt on a leased delivery (see ``outbox``); False if the lease was lost."""
        return await outbox.record(
            self._engine,
            delivery_id,
            claimed_until,
            at,
            payload=payload,
            status_code=status_code,
            error=error,
            delivered=delivered,
            next_attempt_at=next_attempt_at,
            last_failure=last_failure,
        )

    async def list_deliveries(self, webhook_id: str, *, limit: int = 100) -> tuple[Delivery, ...]:
        """A webhook's deliveries (its log), newest first."""
        table = webhook_deliveries
        query = (
            table.select()
            .where(table.c.webhook_id == webhook_id)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(check_limit(limit))
        )
        return await self._all(Delivery, query)

    # signing keys

    async def create_signing_key(self, key: SigningKey) -> SigningKey:
        """Store a new signing key; StoreConflict if its id is taken."""
        await self._insert(signing_keys, "signing key", _values(key))
        return key

    async def get_signing_key(self, key_id: str) -> SigningKey | None:
        """The signing key with this id, or None."""
        query = signing_keys.select().where(signing_keys.c.id == key_id)
        return await self._one(SigningKey, query)

    async def list_signing_keys(
        self, *, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[SigningKey, ...]:
        """Signing keys, newest first; with ``owner_key_id``, only that key's."""
        table = signing_keys
        query = table.select()
        if owner_key_id is not None:
            query = query.where(table.c.owner_key_id == owner_key_id)
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc())
        return await self._all(SigningKey, query.limit(check_limit(limit)))

    async def signing_key_by_public_key(self, public_key: str) -> SigningKey | None:
        """The signing key with this public key (disabled or not), or None."""
        query = signing_keys.select().where(signing_keys.c.public_key == public_key)
        return await self._one(SigningKey, query.limit(1))

    async def update_signing_key(
        self, key_id: str, *, name: str | None = None, disabled: bool | None = None
    ) -> SigningKey | None:
        """Rename and/or disable (enable) a signing key; the key after, or None if it is gone."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if disabled is not None:
            changes["disabled"] = disabled
        where = signing_keys.c.id == key_id
        async with transaction(self._engine, "signing key") as connection:
            if changes:
                await connection.execute(signing_keys.update().where(where).values(**changes))
            row = (await connection.execute(signing_keys.select().where(where))).first()
        return None if row is None else from_row(SigningKey, row)

    async def delete_signing_key(self, key_id: str) -> bool:
        """Delete a signing key; False if there was none."""
        async with transaction(self._engine, "signing key") as connection:
            result = await connection.execute(
                signing_keys.delete().where(signing_keys.c.id == key_id)
            )
        return bool(result.rowcount)

    # audit log

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry to the audit log; the entry with the id it was given."""
        values = _values(entry)
        del values["id"]
        async with transaction(self._engine, "audit entry") as connection:
            result = await connection.execute(audit_log.insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return dataclasses.replace(entry, id=int(key[0]))

    async def list_audit(
        self, *, limit: int = 100, before: int | None = None
    ) -> tuple[AuditEntry, ...]:
        """The newest audit entries (older than id ``before``), newest first."""
        query = audit_log.select().order_by(audit_log.c.id.desc()).limit(check_limit(limit))
        if before is not None:
            query = query.where(audit_log.c.id < before)
        return await self._all(AuditEntry, query)
