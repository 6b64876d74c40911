"""Tenancy of the ``/api`` over real sockets (SQLite and PostgreSQL): two customers' ``streams``
keys (A, B) and the operator's admin key. B never sees, changes or uses A's streams, sessions,
targets, webhooks or signing keys (404, not 403); B's global webhook does not fire for A's
stream; B's signing key does not sign for A's gated stream; the admin sees everything; rotating
A's key keeps A's objects with the new key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_testkit import Server, api_server
from mediatools import wait_until
from webhook_testkit import receiver

from mediagw.errors import AccessDenied
from mediagw.platform import keys
from mediagw.platform.access import PlaybackAccess, sign_token
from mediagw.platform.store import Session, SqlStore
from mediagw.platform.streams import StreamService
from mediagw.platform.webhook_delivery import WebhookDispatcher
from mediagw.platform.webhooks import WebhookService


@dataclass
class Tenants:
    server: Server
    webhooks: WebhookService
    a: str  # customer A's key text
    b: str  # customer B's key text
    a_id: str

    async def call(self, method: str, path: str, key: str, **kw: Any) -> tuple[int, Any]:
        status, doc, _ = await self.server.call(method, path, key, **kw)
        return status, doc

    async def ok(self, method: str, path: str, key: str, **kw: Any) -> Any:
        status, doc = await self.call(method, path, key, **kw)
        assert status in (200, 201, 204), (method, path, status, doc)
        return doc


@pytest.fixture
async def tenants(store: SqlStore) -> AsyncIterator[Tenants]:
    webhooks = WebhookService(store, allow_private=True)
    dispatcher = WebhookDispatcher(store, webhooks)
    dispatcher.start()
    services = {"streams": StreamService(store), "webhooks": webhooks}
    async with api_server(store, services) as server:
        row_a, a = await keys.create_key(store, "customer a", ["streams"])
        _, b = await keys.create_key(store, "customer b", ["streams"])
        yield Tenants(server, webhooks, a, b, row_a.id)
    await dispatcher.close()
    await webhooks.close()


def _ids(docs: list[dict[str, Any]]) -> set[str]:
    return {d["id"] for d in docs}


async def test_streams_sessions_and_targets_belong_to_their_key(tenants: Tenants) -> None:
    t, admin = tenants, tenants.server.admin
    target = await t.ok("POST", "/api/multistream/target", t.a, json={"url": "rtmp://x/live/k"})
    body = {
        "name": "a-cam",
        "multistream": {"targets": [{"id": target["id"], "profile": "source"}]},
    }
    a_stream = await t.ok("POST", "/api/stream", t.a, json=body)
    sid = a_stream["id"]
    session = Session(id="sess-a", stream_id=sid, created_at=1)
    await t.server.store.create_session(session)
    b_streams = [await t.ok("POST", "/api/stream", t.b, json={"name": f"b{n}"}) for n in range(2)]

    # B lists only its own streams, page by page (the filter is in the query)
    assert _ids(await t.ok("GET", "/api/stream", t.b)) == _ids(b_streams)
    status, page, headers = await t.server.call("GET", "/api/stream?limit=1", t.b)
    assert status == 200 and [s["id"] for s in page] == [b_streams[1]["id"]]
    next_url = headers["Link"].split(">")[0].removeprefix("<").removeprefix(t.server.url)
    assert [s["id"] for s in await t.ok("GET", next_url, t.b)] == [b_streams[0]["id"]]
    # and cannot see, change, end or delete A's: 404, as if it did not exist
    for method, path, kw in [
        ("GET", f"/api/stream/{sid}", {}),
        ("PATCH", f"/api/stream/{sid}", {"json": {"name": "taken"}}),
        ("DELETE", f"/api/stream/{sid}/terminate", {}),
        ("DELETE", f"/api/stream/{sid}", {}),
        ("GET", f"/api/stream/{sid}/sessions", {}),
        ("GET", "/api/session/sess-a", {}),
        ("GET", f"/api/multistream/target/{target['id']}", {}),
        ("DELETE", f"/api/multistream/target/{target['id']}", {}),
    ]:
        status, doc = await t.call(method, path, t.b, **kw)
        assert status == 404, (method, path, status, doc)
    assert await t.ok("GET", "/api/multistream/target", t.b) == []
    # B's streams may not name A's target
    status, doc = await t.call("POST", "/api/stream", t.b, json={**body, "name": "b-steal"})
    assert status == 422 and "multistream.targets.0.id" in doc["errors"][0], doc
    patch = {"multistream": body["multistream"]}
    status, doc = await t.call("PATCH", f"/api/stream/{b_streams[0]['id']}", t.b, json=patch)
    assert status == 422 and "multistream.targets.0.id" in doc["errors"][0], doc

    # A still has all of it, untouched
    mine = await t.ok("GET", f"/api/stream/{sid}", t.a)
    assert mine["name"] == "a-cam" and mine["streamKey"] == a_stream["streamKey"]
    assert _ids(await t.ok("GET", "/api/stream", t.a)) == {sid}
    assert _ids(await t.ok("GET", f"/api/stream/{sid}/sessions", t.a)) == {"sess-a"}
    assert (await t.ok("GET", "/api/session/sess-a", t.a))["id"] == "sess-a"
    assert _ids(await t.ok("GET", "/api/multistream/target", t.a)) == {target["id"]}
    # playback info answers any key: it holds only what the playback id itself gives
    info = await t.ok("GET", f"/api/playback/{a_stream['playbackId']}", t.b)
    assert a_stream["playbackId"] in info["meta"]["source"][0]["url"]

    # the operator sees and changes everyone's
    everyone = _ids(await t.ok("GET", "/api/stream", admin))
    assert everyone == {sid} | _ids(b_streams)
    assert _ids(await t.ok("GET", "/api/multistream/target", admin)) == {target["id"]}
    await t.ok("PATCH", f"/api/stream/{sid}", admin, json={"name": "renamed"})
    assert (await t.ok("GET", f"/api/stream/{sid}", t.a))["name"] == "renamed"
    await t.ok("DELETE", f"/api/stream/{b_streams[0]['id']}", admin)


async def test_webhooks_belong_to_their_key_and_fire_for_its_streams(tenants: Tenants) -> None:
    t, admin = tenants, tenants.server.admin
    a_stream = await t.ok("POST", "/api/stream", t.a, json={"name": "a"})
    b_stream = await t.ok("POST", "/api/stream", t.b, json={"name": "b"})
    async with receiver() as rec:

        def hook(path: str, **extra: Any) -> dict[str, Any]:
            return {"name": path, "url": rec.url + path, "events": ["stream.started"], **extra}

        a_own = await t.ok(
            "POST", "/api/webhook", t.a, json=hook("/a-own", streamId=a_stream["id"])
        )
        a_all = await t.ok("POST", "/api/webhook", t.a, json=hook("/a"))
        b_all = await t.ok("POST", "/api/webhook", t.b, json=hook("/b"))
        op_all = await t.ok("POST", "/api/webhook", admin, json=hook("/op"))

        # B may not name A's stream: it is unknown to B
        status, doc = await t.call(
            "POST", "/api/webhook", t.b, json=hook("/b-spy", streamId=a_stream["id"])
        )
        assert status == 422 and doc["errors"][0].startswith("streamId"), doc
        status, doc = await t.call(
            "PUT", f"/api/webhook/{b_all['id']}", t.b, json=hook("/b", streamId=a_stream["id"])
        )
        assert status == 422 and doc["errors"][0].startswith("streamId"), doc

        # an event of A's stream: A's webhooks and the operator's, never B's
        queued = await t.webhooks.emit(
            "stream.started", stream_id=a_stream["id"], stream_doc={"id": a_stream["id"]}
        )
        assert {d.webhook_id for d in queued} == {a_own["id"], a_all["id"], op_all["id"]}
        await wait_until(lambda: all(rec.on(p) for p in ("/a-own", "/a", "/op")))
        queued = await t.webhooks.emit(
            "stream.started", stream_id=b_stream["id"], stream_doc={"id": b_stream["id"]}
        )
        assert {d.webhook_id for d in queued} == {b_all["id"], op_all["id"]}
        await wait_until(lambda: len(rec.on("/b")) == 1 and len(rec.on("/op")) == 2)
        assert len(rec.on("/a")) == 1 and len(rec.on("/a-own")) == 1

    # B sees only its own webhook, and A's are 404 to it (the log and resend too)
    assert _ids(await t.ok("GET", "/api/webhook", t.b)) == {b_all["id"]}
    listed = await t.ok("GET", f"/api/webhook?streamId={a_stream['id']}", t.b)
    assert listed == []
    assert _ids(await t.ok("GET", "/api/webhook", t.a)) == {a_own["id"], a_all["id"]}
    log: list[dict[str, Any]] = []
    for _ in range(100):  # the log is written just after the answer came
        log = await t.ok("GET", f"/api/webhook/{a_all['id']}/log", t.a)
        if log and log[0].get("success"):
            break
        await asyncio.sleep(0.05)
    assert log, "A's webhook has a log"
    entry = log[0]["id"]
    wid = a_all["id"]
    for method, path, kw in [
        ("GET", f"/api/webhook/{wid}", {}),
        ("PUT", f"/api/webhook/{wid}", {"json": hook("/stolen")}),
        ("GET", f"/api/webhook/{wid}/log", {}),
        ("GET", f"/api/webhook/{wid}/log/{entry}", {}),
        ("POST", f"/api/webhook/{wid}/log/{entry}/resend", {}),
        ("DELETE", f"/api/webhook/{wid}", {}),
    ]:
        status, doc = await t.call(method, path, t.b, **kw)
        assert status == 404, (method, path, status, doc)
    assert (await t.ok("GET", f"/api/webhook/{wid}", t.a))["url"].endswith("/a")
    # the operator sees all four
    everyone = _ids(await t.ok("GET", "/api/webhook", admin))
    assert everyone == {a_own["id"], a_all["id"], b_all["id"], op_all["id"]}


async def _denied(access: PlaybackAccess, playback_id: str, token: str) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        await access.check(playback_id, token)
    return caught.value


async def test_signing_keys_belong_to_their_key_and_sign_only_its_streams(
    tenants: Tenants,
) -> None:
    t, admin = tenants, tenants.server.admin
    gated = {"name": "a-gated", "playbackPolicy": {"type": "jwt"}}
    a_stream = await t.ok("POST", "/api/stream", t.a, json=gated)
    pid = a_stream["playbackId"]
    path = "/api/access-control/signing-key"
    a_key = await t.ok("POST", path, t.a, json={"name": "a"})
    b_key = await t.ok("POST", path, t.b, json={"name": "b"})
    op_key = await t.ok("POST", path, admin, json={"name": "operator"})

    assert _ids(await t.ok("GET", path, t.b)) == {b_key["id"]}
    for method, kw in [("GET", {}), ("PATCH", {"json": {"disabled": True}}), ("DELETE", {})]:
        status, doc = await t.call(method, f"{path}/{a_key['id']}", t.b, **kw)
        assert status == 404, (method, status, doc)
    assert not (await t.ok("GET", f"{path}/{a_key['id']}", t.a))["disabled"]
    assert _ids(await t.ok("GET", path, admin)) == {a_key["id"], b_key["id"], op_key["id"]}

    def token(key: dict[str, Any]) -> str:
        return sign_token(key["privateKey"], key["publicKey"], pid, expires_at=time.time() + 60)

    access = PlaybackAccess(t.server.store)
    assert (await access.check(pid, token(a_key))) is not None
    assert (await access.check(pid, token(op_key))) is not None  # the operator's signs for all
    refused = await _denied(access, pid, token(b_key))
    assert refused.status == 403 and "another account" in str(refused)


async def test_rotating_a_key_hands_its_objects_to_the_new_key(tenants: Tenants) -> None:
    t, admin = tenants, tenants.server.admin
    a_stream = await t.ok(
        "POST", "/api/stream", t.a, json={"name": "a", "playbackPolicy": {"type": "jwt"}}
    )
    target = await t.ok("POST", "/api/multistream/target", t.a, json={"url": "rtmp://x/live/k"})
    hook = {"name": "h", "url": "http://127.0.0.1:9/h", "events": ["stream.idle"]}
    webhook = await t.ok("POST", "/api/webhook", t.a, json=hook)
    signing = await t.ok("POST", "/api/access-control/signing-key", t.a, json={"name": "a"})

    rotated = await t.ok("POST", f"/api/admin/keys/{t.a_id}/rotate", admin)
    new = rotated["key"]
    status, _ = await t.call("GET", "/api/stream", t.a)
    assert status == 401  # the old key is revoked
    assert _ids(await t.ok("GET", "/api/stream", new)) == {a_stream["id"]}
    assert (await t.ok("GET", f"/api/stream/{a_stream['id']}", new))["streamKey"]
    assert _ids(await t.ok("GET", "/api/multistream/target", new)) == {target["id"]}
    assert _ids(await t.ok("GET", "/api/webhook", new)) == {webhook["id"]}
    assert _ids(await t.ok("GET", "/api/access-control/signing-key", new)) == {signing["id"]}
    # A's tokens still play A's stream
    pid = a_stream["playbackId"]
    token = sign_token(
        signing["privateKey"], signing["publicKey"], pid, expires_at=time.time() + 60
    )
    assert await PlaybackAccess(t.server.store).check(pid, token) is not None
    # and B still sees none of it
    assert await t.ok("GET", "/api/stream", t.b) == []
