"""The platform's one store: API keys, streams, sessions, webhooks and their outbox, signing
keys and the audit log, in SQLite (embedded default) or PostgreSQL.

    store = await open_store("/var/lib/mediagw")            # DIR/mediagw.db, SQLite (WAL)
    store = await open_store("postgresql://u@db/mediagw")   # asyncpg
    ...
    await store.close()

Opening migrates the database to the newest revision (Alembic, ``migrations/``). The platform
codes against ``Store`` (``protocol``); rows are frozen dataclasses (``rows``); the errors are
``StoreError`` and its children in ``mediagw.errors``.
"""

from __future__ import annotations

from pathlib import Path

from .protocol import Store
from .rows import (
    MAX_LIMIT,
    USAGE_BATCH_RETENTION_MS,
    ApiKey,
    AuditEntry,
    Counters,
    Delivery,
    MultistreamTarget,
    Page,
    Session,
    SigningKey,
    Stream,
    UsageBatch,
    UsageRow,
    Webhook,
)
from .sql import SqlStore

__all__ = [
    "MAX_LIMIT",
    "USAGE_BATCH_RETENTION_MS",
    "ApiKey",
    "AuditEntry",
    "Counters",
    "Delivery",
    "MultistreamTarget",
    "Page",
    "Session",
    "SigningKey",
    "SqlStore",
    "Store",
    "Stream",
    "UsageBatch",
    "UsageRow",
    "Webhook",
    "open_store",
    "stream_or_read",
]


async def open_store(url_or_dir: str | Path) -> Store:
    """Open (and migrate) the store at a data directory or database URL."""
    return await SqlStore.open(url_or_dir)


async def stream_or_read(store: Store, stream_id: str, known: Stream | None) -> Stream | None:
    """``known`` when it is the row of ``stream_id`` (one the caller already has), else the
    stored row (None: gone)."""
    if known is not None and known.id == stream_id:
        return known
    return await store.get_stream(stream_id)
