"""Signing-key routes over real sockets (SQLite and PostgreSQL): Studio's status codes, the
private key once, and tokens signed with it verifying until the key is disabled or deleted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from api_testkit import Server, api_server

from mediagw.errors import AccessDenied
from mediagw.platform import keys
from mediagw.platform.access import PlaybackAccess, sign_token
from mediagw.platform.store import SqlStore, Stream

PATH = "/api/access-control/signing-key"


@pytest.fixture
async def access(store: SqlStore) -> PlaybackAccess:
    await store.create_stream(
        Stream(
            id="s1", name="gated", stream_key="abcd-efgh-ijkl-mnop", playback_id="pb1gated",
            created_at=1, playback_policy={"type": "jwt"},
        )
    )  # fmt: skip
    return PlaybackAccess(store)


@pytest.fixture
async def server(store: SqlStore, access: PlaybackAccess) -> AsyncIterator[Server]:
    async with api_server(store, {"access": access}) as running:
        yield running


async def test_signing_keys_sign_tokens_until_disabled_or_deleted(
    server: Server, access: PlaybackAccess
) -> None:
    _, app_key = await keys.create_key(server.store, "app", ["streams"])
    status, made, _ = await server.call("POST", PATH, app_key, json={"name": "web"})
    assert status == 200  # Studio's SDK accepts only 200 here
    assert {"id", "publicKey", "privateKey", "createdAt"} <= set(made) and not made["disabled"]
    token = sign_token(made["privateKey"], made["publicKey"], "pb1gated", expires_at=4_000_000_000)
    assert (await access.check("pb1gated", token)) is not None
    # the private key is never shown again
    status, listed, _ = await server.call("GET", PATH, app_key)
    assert status == 200 and [k["id"] for k in listed] == [made["id"]]
    assert made["privateKey"] not in json.dumps(listed)
    status, one, _ = await server.call("GET", f"{PATH}/{made['id']}", app_key)
    assert status == 200 and one["publicKey"] == made["publicKey"] and "privateKey" not in one
    # disabled: refused at once on this gateway (the cache is told)
    status, _, _ = await server.call(
        "PATCH", f"{PATH}/{made['id']}", app_key, json={"disabled": True}
    )
    assert status == 204
    with pytest.raises(AccessDenied) as refused:
        await access.check("pb1gated", token)
    assert refused.value.status == 403
    status, one, _ = await server.call("GET", f"{PATH}/{made['id']}", app_key)
    assert one["disabled"] is True
    status, body, _ = await server.call(
        "PATCH", f"{PATH}/{made['id']}", app_key, json={"disabled": "yes please"}
    )
    assert status == 422 and "disabled" in body["errors"][0]
    # deleted: gone, tokens refused
    assert (await server.call("DELETE", f"{PATH}/{made['id']}", app_key))[0] == 204
    assert (await server.call("GET", f"{PATH}/{made['id']}", app_key))[0] == 404
    assert (await server.call("DELETE", f"{PATH}/{made['id']}", app_key))[0] == 404
    with pytest.raises(AccessDenied):
        await access.check("pb1gated", token)
    # audited, without the private key
    status, log, _ = await server.call("GET", "/api/audit", server.admin)
    assert [e["action"] for e in log] == [
        "signing_key.delete", "signing_key.update", "signing_key.create",
    ]  # fmt: skip
    assert made["privateKey"] not in json.dumps(log)


async def test_a_playback_key_cannot_manage_signing_keys(server: Server) -> None:
    _, viewer = await keys.create_key(server.store, "player", ["playback"])
    assert (await server.call("POST", PATH, viewer, json={}))[0] == 403
