"""Fixtures of the platform tests: a fresh store on each backend, SQLite always, PostgreSQL when
``MEDIAGW_TEST_POSTGRES_URL`` is set (a fresh database per test; skipped without it on a laptop,
failing under ``CI=true``); real gateways started on free local ports."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from gateway_streams import GatewayFactory
from nodes_testkit import pg_database

from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform.plan_limits import PlanLookup
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


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``await gateways(plans=lookup, store=where, **settings)``: a started gateway on free local
    ports (stopped at the test's end), its store in ``store`` (a data directory or a database
    URL; by default SQLite in the test's data directory), 1 s segments, a long HLS window."""
    data_dir = str(tmp_path / "data")
    async with AsyncExitStack() as stack:

        async def start(
            *, plans: PlanLookup | None = None, store: str = data_dir, **overrides: Any
        ) -> Gateway:
            values: dict[str, Any] = {
                "rtmp_addr": "127.0.0.1:0",
                "http_addr": "127.0.0.1:0",
                "hls_window": 200,
                "segment_duration": 1.0,
                "data_dir": data_dir,
            }
            values["store_url" if "://" in store else "data_dir"] = store
            values.update(overrides)
            gw = Gateway(Settings(**values), plans=plans)
            await gw.start()
            stack.push_async_callback(gw.stop)
            return gw

        yield start


@pytest.fixture
def stored_gateways(store_url: str, gateways: GatewayFactory) -> GatewayFactory:
    """``gateways`` on ``store_url``: the fresh store of each backend in turn (``store_url``
    first: set up before the gateways, torn down after they stopped)."""
    return functools.partial(gateways, store=store_url)
