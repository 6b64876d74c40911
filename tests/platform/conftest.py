"""Fixtures of the platform tests: a fresh store on each backend, SQLite always, PostgreSQL when
``MEDIAGW_TEST_POSTGRES_URL`` is set (a fresh database per test; skipped without it on a laptop,
failing under ``CI=true``)."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mediatools import IN_CI
from sqlalchemy.engine import make_url

from mediagw.platform.store import SqlStore

PG_ENV = "MEDIAGW_TEST_POSTGRES_URL"


def _pg_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is required under CI (a PostgreSQL the tests may create DBs in)")
        pytest.skip(f"{PG_ENV} not set")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where a fresh, empty store lives: a data directory, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "data")
        return
    admin = make_url(_pg_admin_url())
    name = f"mediagw_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(store_url)
    yield opened
    await opened.close()


class CountingStore:
    """The real store, with a count of the calls made to it (by method name)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted


@pytest.fixture
def counting_store(store: SqlStore) -> CountingStore:
    """``store``, counting the calls made to it."""
    return CountingStore(store)
