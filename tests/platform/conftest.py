"""Fixtures of the platform tests: a fresh store on each backend, SQLite always, PostgreSQL when
``MEDIAGW_TEST_POSTGRES_URL`` is set (a fresh database per test; skipped without it on a laptop,
failing under ``CI=true``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nodes_testkit import pg_database

from mediagw.platform.store import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where a fresh, empty store lives: a data directory, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "data")
        return
    async with pg_database() as url:
        yield url


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
