"""Studio's webhook routes over real sockets (SQLite and PostgreSQL): 200 on every answer, the
secret write-only, URL checks naming the field, the delivery log and resend, the audit log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from api_testkit import Server, api_server
from mediatools import wait_until
from webhook_testkit import receiver

from mediagw.platform import keys
from mediagw.platform.store import SqlStore, Stream
from mediagw.platform.webhook_delivery import WebhookDispatcher
from mediagw.platform.webhook_wire import verify
from mediagw.platform.webhooks import WebhookService

STREAM = {"id": "s1", "name": "cam", "playbackId": "p1"}


@pytest.fixture
async def service(store: SqlStore) -> AsyncIterator[WebhookService]:
    await store.create_stream(
        Stream(id="s1", name="cam", stream_key="k", playback_id="p1", created_at=1)
    )
    svc = WebhookService(store, allow_private=True)
    dispatcher = WebhookDispatcher(store, svc)
    dispatcher.start()
    yield svc
    await dispatcher.close()
    await svc.close()


@pytest.fixture
async def server(store: SqlStore, service: WebhookService) -> AsyncIterator[Server]:
    async with api_server(store, {"webhooks": service}) as running:
        yield running


async def test_webhook_routes_studio_answers_and_delivery(
    server: Server, service: WebhookService
) -> None:
    app, app_key = await keys.create_key(server.store, "app", ["streams"])
    await server.store.update_stream("s1", owner_key_id=app.id)  # the app's stream
    async with receiver() as rec:
        body = {
            "name": "mine",
            "url": rec.url + "/hook",
            "events": ["stream.started", "stream.idle"],
            "sharedSecret": "s3cret",
            "streamId": "s1",
        }
        status, hook, _ = await server.call("POST", "/api/webhook", app_key, json=body)
        assert status == 200  # Studio's SDK 0.3.0 refuses a 201 here
        assert hook["url"] == body["url"] and hook["streamId"] == "s1"
        assert "sharedSecret" not in hook and "s3cret" not in json.dumps(hook)
        status, listed, _ = await server.call("GET", "/api/webhook?streamId=s1", app_key)
        assert status == 200 and [h["id"] for h in listed] == [hook["id"]]
        # an event is delivered, signed, and logged
        await service.emit("stream.started", stream_id="s1", stream_doc=STREAM)
        await wait_until(lambda: len(rec.on("/hook")) == 1)
        got = rec.on("/hook")[0]
        assert verify("s3cret", got.body, got.headers["Livepeer-Signature"], scheme="v1")
        for _ in range(100):  # the log is written just after the answer came
            _, log, _ = await server.call("GET", f"/api/webhook/{hook['id']}/log", app_key)
            if log and log[0].get("success") is True:
                break
            await asyncio.sleep(0.05)
        assert log and log[0]["success"] is True, log
        entry_id = str(log[0]["id"])
        status, one, _ = await server.call(
            "GET", f"/api/webhook/{hook['id']}/log/{entry_id}", app_key
        )
        assert status == 200 and one["id"] == entry_id
        status, again, _ = await server.call(
            "POST", f"/api/webhook/{hook['id']}/log/{entry_id}/resend", app_key
        )
        assert status == 200 and again["id"] != entry_id
        await wait_until(lambda: len(rec.on("/hook")) == 2)
        assert rec.on("/hook")[1].doc["event"] == "stream.started"
        # PUT replaces; DELETE answers the deleted webhook
        status, put, _ = await server.call(
            "PUT", f"/api/webhook/{hook['id']}", app_key,
            json={**body, "name": "renamed", "events": ["stream.idle"]},
        )  # fmt: skip
        assert status == 200 and put["name"] == "renamed" and put["events"] == ["stream.idle"]
        status, gone, _ = await server.call("DELETE", f"/api/webhook/{hook['id']}", app_key)
        assert status == 200 and gone["id"] == hook["id"]
        for path in (f"/api/webhook/{hook['id']}", f"/api/webhook/{hook['id']}/log"):
            assert (await server.call("GET", path, app_key))[0] == 404
    status, audit, _ = await server.call("GET", "/api/audit", server.admin)
    assert [e["action"] for e in audit] == [
        "webhook.delete", "webhook.update", "webhook.resend", "webhook.create",
    ]  # fmt: skip
    assert "s3cret" not in json.dumps(audit)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://user:pw@example.com/x"}, "url"),
        ({"events": ["stream.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"streamId": "no-such-stream"}, "streamId"),
        ({"name": ""}, "name"),
        ({"color": "red"}, "color"),
    ],
)
async def test_bad_webhooks_are_refused_naming_the_field(
    server: Server, change: dict[str, object], field: str
) -> None:
    body = {"name": "x", "url": "https://hooks.example.com/in", "events": ["stream.idle"]}
    status, answer, _ = await server.call(
        "POST", "/api/webhook", server.admin, json={**body, **change}
    )
    assert status == 422 and any(field in e for e in answer["errors"]), answer


async def test_private_addresses_are_refused_unless_allowed(store: SqlStore) -> None:
    strict = WebhookService(store, allow_private=False)
    async with api_server(store, {"webhooks": strict}) as server:
        for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x"):
            status, answer, _ = await server.call(
                "POST", "/api/webhook", server.admin,
                json={"name": "x", "url": url, "events": ["stream.idle"]},
            )  # fmt: skip
            assert status == 422 and answer["errors"][0].startswith("url"), answer
    await strict.close()
