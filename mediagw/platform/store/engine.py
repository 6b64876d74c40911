"""Opening the store's database: URL rules, the async engine, SQLite pragmas, error translation.

``url_or_dir`` is either a directory (the embedded default: ``DIR/mediagw.db``, SQLite through
aiosqlite) or a URL: ``sqlite:///path``, ``postgresql://user@host/db`` (run through asyncpg).
Every driver is async, so no statement blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ...errors import StoreBadInput, StoreConflict, StoreError, StoreNotFound, StoreUnavailable
from .rows import MAX_LIMIT
from .schema import METADATA

__all__ = [
    "DB_FILE", "autocommit_engine", "check_limit", "connect", "engine_url", "one_statement",
    "transaction",
]  # fmt: skip

# aiosqlite logs every statement with its parameters at DEBUG: stream keys, webhook secrets.
# Its DEBUG lines never reach a handler, whatever -logLevel says.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

DB_FILE = "mediagw.db"
BUSY_TIMEOUT_MS = 5000  # a writer waits this long for another one before failing
CONNECT_TIMEOUT = 5.0  # seconds to reach PostgreSQL (asyncpg waits 60 by default)
# aiosqlite runs each connection on a thread of its own; SQLite writes one at a time anyway.
# SQLAlchemy's default pool (5 + 10 overflow, the overflow closed on return) started and ended
# a thread per overflow connection under a flood of publishes: at most this many, no overflow
# (a statement waits for a free connection instead).
SQLITE_POOL_SIZE = 4

_ASYNC_SCHEMES = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def engine_url(url_or_dir: str | Path) -> str:
    """The async SQLAlchemy URL for a directory or a database URL (see the module doc)."""
    text = str(url_or_dir)
    if "://" not in text:
        return f"sqlite+aiosqlite:///{Path(text).resolve() / DB_FILE}"
    scheme, _, rest = text.partition("://")
    if scheme not in _ASYNC_SCHEMES:
        raise StoreError(
            f"unsupported store URL scheme {scheme!r}: use a directory, sqlite:///FILE "
            "or postgresql://USER@HOST/DB"
        )
    return f"{_ASYNC_SCHEMES[scheme]}://{rest}"


async def connect(url_or_dir: str | Path) -> AsyncEngine:
    """An async engine for ``url_or_dir`` (a directory is created if missing, private to us:
    the store holds stream keys and webhook secrets)."""
    if "://" in str(url_or_dir):
        url = engine_url(url_or_dir)
    else:
        await asyncio.to_thread(Path(url_or_dir).mkdir, mode=0o700, parents=True, exist_ok=True)
        url = await asyncio.to_thread(engine_url, url_or_dir)  # resolving reads the disk
    # No pre-ping. A SQLite file has no server to restart, and the ping (a round trip to
    # aiosqlite's thread) cost 40% of a one-row transaction's CPU there. On PostgreSQL,
    # SQLAlchemy's ping is three round trips (BEGIN, an empty query, ROLLBACK) at every checkout,
    # more than the one-row read it guards: a connection the server closed (a restart) is seen
    # closed by asyncpg without one, and is replaced at checkout (_closed_by_server).
    connect_args = {"timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
    pool: dict[str, Any] = (
        {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 0} if url.startswith("sqlite") else {}
    )
    engine = create_async_engine(url, connect_args=connect_args, **pool)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        sa.event.listen(engine.sync_engine, "checkout", _closed_by_server)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection whose socket has closed (the server restarted or ended
    it) is not handed out: the pool discards it and checks out another, or connects anew.
    A connection that died silently fails its first statement instead, as a StoreUnavailable
    (callers retry those)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise sa.exc.DisconnectionError("the database closed this pooled connection")


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine single statements go through (``one_statement``): on PostgreSQL the same pool
    in autocommit, so a read, or a write whole in one statement, is one round trip rather than
    three (BEGIN and COMMIT around it add nothing: one statement sees one snapshot and is atomic
    by itself). SQLite: the engine itself."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable with WAL, without an fsync per commit
    cursor.close()


def check_limit(limit: int) -> int:
    """``limit`` if it is within 1..MAX_LIMIT, else StoreBadInput."""
    if not 1 <= limit <= MAX_LIMIT:
        raise StoreBadInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


@asynccontextmanager
async def transaction(engine: AsyncEngine, entity: str) -> AsyncIterator[AsyncConnection]:
    """One transaction; the database's refusals become the store's errors, named for ``entity``."""
    try:
        async with engine.begin() as connection:
            yield connection
    except (sa.exc.DBAPIError, OSError) as exc:  # asyncpg's connect raises OSError as is
        _store_error(entity, exc)


@asynccontextmanager
async def one_statement(engine: AsyncEngine, entity: str) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine`` (an ``autocommit_engine``) for one statement, with the errors
    of ``transaction``: on PostgreSQL in autocommit, elsewhere a transaction."""
    if engine.dialect.name != "postgresql":
        async with transaction(engine, entity) as connection:
            yield connection
        return
    try:
        async with engine.connect() as connection:
            yield connection
    except (sa.exc.DBAPIError, OSError) as exc:  # asyncpg's connect raises OSError as is
        _store_error(entity, exc)


def _store_error(entity: str, exc: sa.exc.DBAPIError | OSError) -> NoReturn:
    """Raise the store's error for a database failure on an ``entity``: a refused row as its
    typed error (without the driver's text: it may hold a secret value), else StoreUnavailable
    when the database may come back, else StoreError."""
    if isinstance(exc, sa.exc.IntegrityError):
        raise _integrity(entity, exc) from None
    kind = type(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).__name__
    error = StoreUnavailable if _unreachable(exc) else StoreError
    raise error(
        f"the store's database failed on a {entity} ({kind}): check that it is reachable, "
        "writable and migrated"
    ) from exc


def _unreachable(exc: sa.exc.DBAPIError | OSError) -> bool:
    """Whether the database was unreachable or dropped the connection (may succeed later)."""
    if isinstance(exc, OSError):
        return True
    return exc.connection_invalidated or isinstance(
        exc, (sa.exc.OperationalError, sa.exc.InterfaceError)
    )


# constraint name -> column: uq_<table>_<column>, and <table>_pkey (PostgreSQL) for the id
_CONSTRAINTS = {
    **{
        str(c.name): next(iter(c.columns)).name
        for table in METADATA.tables.values()
        for c in table.constraints
        if isinstance(c, sa.UniqueConstraint) and c.name
    },
    **{f"{name}_pkey": "id" for name in METADATA.tables},
}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: \w+\.(\w+)")


def _integrity(entity: str, exc: sa.exc.IntegrityError) -> StoreError:
    """The typed error for a refused row; it names the column, never the value (may be secret)."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = getattr(cause, "sqlstate", None)
    text = str(exc.orig)
    if sqlstate == "23503" or "FOREIGN KEY" in text:
        return StoreNotFound(f"the {entity} refers to a row that does not exist: create it first")
    field = _CONSTRAINTS.get(str(getattr(cause, "constraint_name", "")))
    if field is None and (match := _SQLITE_UNIQUE.search(text)):
        field = match.group(1)
    if sqlstate == "23505" or field is not None:
        return StoreConflict(entity, field or "unique field")
    return StoreError(f"the database refused the {entity}: a required field is missing or invalid")
