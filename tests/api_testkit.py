"""An ``/api`` server over real sockets on a test store, and a client that calls it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from mediatools import serve_app

from mediagw.api.guard import client_errors
from mediagw.api.http import cors
from mediagw.api.studio import ApiContext, mount_api
from mediagw.clock import ManualClock
from mediagw.platform import keys
from mediagw.platform.plan_limits import PlanCache, PlanLookup, RequestLimits
from mediagw.platform.store import SqlStore
from mediagw.platform.throttle import FailureThrottle


@dataclass
class Server:
    url: str
    admin: str  # an admin key's text
    store: SqlStore
    clock: ManualClock
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, key: str | None = None, **kw: object
    ) -> tuple[int, Any, Any]:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.http.request(method, self.url + path, headers=headers, **kw) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None), resp.headers


@asynccontextmanager
async def api_server(
    store: SqlStore, services: dict[str, Any] | None = None, plans: PlanLookup | None = None
) -> AsyncIterator[Server]:
    """``plans``: each key's limits (None: no limits, as before plans existed)."""
    clock = ManualClock(1_700_000_000.0)
    app = web.Application(middlewares=[cors, client_errors])
    ctx = ApiContext(
        store,
        clock=clock,
        throttle=FailureThrottle(limit=10, window=60, block=300),
        services=services or {},
        limits=None if plans is None else RequestLimits(PlanCache(plans, clock=clock), clock=clock),
    )
    mount_api(app, ctx)
    _, admin = await keys.create_key(store, "root", ["admin"], clock=clock.wall)
    async with aiohttp.ClientSession() as http, serve_app(app) as url:
        yield Server(url, admin, store, clock, http)
