"""Two ``/api`` nodes on one store (SQLite file / PostgreSQL database), as two gateways behind a
load balancer: a key revoked or rotated through one is refused by the other at its next request
(keys are read from the store on every request: nothing to fan out)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from api_testkit import Server, api_server

from mediagw.platform import keys
from mediagw.platform.store import SqlStore
from mediagw.platform.streams import StreamService


@pytest.fixture
async def two_nodes(store_url: str) -> AsyncIterator[tuple[Server, Server]]:
    store_a, store_b = await SqlStore.open(store_url), await SqlStore.open(store_url)
    try:
        async with (
            api_server(store_a, {"streams": StreamService(store_a)}) as a,
            api_server(store_b, {"streams": StreamService(store_b)}) as b,
        ):
            yield a, b
    finally:
        await store_a.close()
        await store_b.close()


@pytest.mark.parametrize("how", ["revoke", "rotate"])
async def test_a_key_revoked_on_one_node_is_refused_on_the_other(
    two_nodes: tuple[Server, Server], how: str
) -> None:
    a, b = two_nodes
    row, text = await keys.create_key(a.store, "customer", ["streams"], clock=a.clock.wall)
    assert (await b.call("GET", "/api/stream", text))[0] == 200  # B has seen it: any cache is warm
    if how == "revoke":
        assert (await a.call("DELETE", f"/api/admin/keys/{row.id}", a.admin))[0] == 204
    else:
        status, body, _ = await a.call("POST", f"/api/admin/keys/{row.id}/rotate", a.admin)
        assert status == 201
        assert (await b.call("GET", "/api/stream", body["key"]))[0] == 200
    status, body, _ = await b.call("GET", "/api/stream", text)
    assert status == 401 and "revoked" in body["errors"][0]
