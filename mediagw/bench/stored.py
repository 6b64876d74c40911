"""What the benches that run gateways on PostgreSQL need: a fresh database on a server they may
create one in (dropped after), and a customer's key on a plan with its stored streams, made
through the admin and Studio APIs of a running gateway (``bench nodes``, ``bench ingest
--workers``, the fault cases)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

__all__ = ["database", "stored_streams"]


@asynccontextmanager
async def database(admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database on ``admin_url``'s server, dropped after."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from ..platform.store.engine import engine_url

    name = f"mediagw_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(engine_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def stored_streams(url: str, admin_key: str, streams: int) -> list[tuple[str, str]]:
    """A customer's key on a plan with quotas, and ``streams`` of its streams: their stream
    keys and playback ids."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin_key}"}) as http:
        plan = {"id": "bench", "name": "bench", "streamMinutesDaily": 10**6,
                "streamMinutesMonthly": 10**6, "maxConcurrentStreams": streams + 10,
                "rateLimit": 10 * streams + 100}  # fmt: skip
        async with http.post(f"{url}/api/admin/plans", json=plan) as resp:
            assert resp.status == 201, await resp.text()
        body = {"name": "bench customer", "scopes": ["streams"]}
        async with http.post(f"{url}/api/admin/keys", json=body) as resp:
            assert resp.status == 201, await resp.text()
            key = await resp.json()
        async with http.patch(f"{url}/api/admin/keys/{key['id']}", json={"planId": "bench"}) as r:
            assert r.status == 204, await r.text()
    out = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key['key']}"}) as http:
        for i in range(streams):
            async with http.post(f"{url}/api/stream", json={"name": f"bench{i}"}) as resp:
                assert resp.status == 201, await resp.text()
                body = await resp.json()
                out.append((str(body["streamKey"]), str(body["playbackId"])))
    return out
