"""Two ``/api`` nodes on one store and one Redis: a signing key disabled through node A stops
playing on node B within a second (Redis pub/sub, ``platform/shared/fanout``); without the
fan-out B keeps accepting tokens until its cache entry expires (5 s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from api_testkit import Server, api_server
from redis_testkit import fresh_redis

from mediagw.errors import AccessDenied
from mediagw.platform.access import PlaybackAccess, create_signing_key, sign_token
from mediagw.platform.shared.fanout import Invalidations, share_access
from mediagw.platform.store import SqlStore, Stream


@dataclass
class Node:
    server: Server
    access: PlaybackAccess


async def _node(stack: AsyncExitStack, store_url: str, prefix: str | None) -> Node:
    store = await SqlStore.open(store_url)
    stack.push_async_callback(store.close)
    services: dict[str, object] = {"access": None}  # the API tells it what it changes
    server = await stack.enter_async_context(api_server(store, services))
    access = services["access"] = PlaybackAccess(store, clock=server.clock)
    if prefix is not None:
        shared = await stack.enter_async_context(fresh_redis(prefix))
        invalidations = Invalidations(shared)
        share_access(access, invalidations)
        invalidations.start()
        stack.push_async_callback(invalidations.close)
        await asyncio.wait_for(invalidations.ready.wait(), 5)
    return Node(server, access)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as running:
        yield running


async def _denied(node: Node, token: str) -> bool:
    try:
        await node.access.check("gated", token)
    except AccessDenied as exc:
        assert exc.status == 403 and "disabled" in str(exc)
        return True
    return False


async def _setup(a: Node, b: Node) -> tuple[str, str]:
    """A token-gated stream and a signing key; B has checked a token (its caches are warm)."""
    store = a.server.store
    await store.create_stream(
        Stream(
            id="s1",
            name="gated",
            stream_key="key-gated",
            playback_id="gated",
            created_at=1,
            playback_policy={"type": "jwt"},
        )
    )
    key = await create_signing_key(store, "main", clock=a.server.clock)
    token = sign_token(
        key.private_key, key.public_key, "gated", expires_at=a.server.clock.wall() + 300
    )
    assert await b.access.check("gated", token) is not None
    status, _, _ = await a.server.call(
        "PATCH", f"/api/access-control/signing-key/{key.key.id}", a.server.admin,
        json={"disabled": True},
    )  # fmt: skip
    assert status == 204
    return key.key.id, token


async def test_a_key_disabled_on_one_node_is_refused_on_the_other(
    stack: AsyncExitStack, store_url: str
) -> None:
    async with fresh_redis() as shared:
        a = await _node(stack, store_url, shared.prefix)
        b = await _node(stack, store_url, shared.prefix)
        _, token = await _setup(a, b)
        for _ in range(20):  # up to a second
            if await _denied(b, token):
                break
            await asyncio.sleep(0.05)
        assert await _denied(b, token)
        assert await _denied(a, token)


async def test_without_the_fan_out_the_other_node_accepts_until_its_cache_expires(
    stack: AsyncExitStack, store_url: str
) -> None:
    a = await _node(stack, store_url, None)
    b = await _node(stack, store_url, None)
    _, token = await _setup(a, b)
    assert await _denied(a, token)  # the node that made the change knows at once
    await asyncio.sleep(0.2)
    assert not await _denied(b, token)  # B still plays it ...
    b.server.clock.advance(b.access.key_ttl + 0.1)
    assert await _denied(b, token)  # ... until its cache entry expires
