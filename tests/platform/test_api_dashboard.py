"""The dashboard's admin routes over real sockets, on SQLite and PostgreSQL: live streams with
their ingest health, the orchestrator scoreboard, recent webhook deliveries across webhooks;
admin keys only (a streams key gets 403, no key 401), and all of them in the OpenAPI document.
The same routes on a real gateway with a live stream and the reference orchestrator are in
``tests/gateway/test_dashboard_gateway.py``."""

from __future__ import annotations

from typing import Any

import pytest
from api_testkit import api_server

from mediagw.api.studio import DashboardSources
from mediagw.clock import ManualClock
from mediagw.platform import keys
from mediagw.platform.store import Delivery, SqlStore, Webhook
from mediagw.stream.health import StreamHealth
from mediagw.stream.hub import StreamHub
from mediagw.usage import StreamUsage
from segmenter import Segment
from segmenter.packet import CLOCK

ROUTES = ("/api/admin/streams/live", "/api/admin/orchestrators", "/api/admin/webhook-deliveries")
BOARD = [{"orchestrator": "https://o-t:8935", "attempts": 3}]


def _sources() -> DashboardSources:
    clock = ManualClock(1000.0)
    hub = StreamHub(clock=clock.wall)
    health = StreamHealth(clock=clock.wall)
    hub.add_listener(health)
    live = hub.begin_publish("live1")
    for seq in range(3):
        segment = Segment(seq, b"\0" * 25_000, 0, 2 * CLOCK, False, None, None, 60, 0)
        hub.add_segment(live, segment)
        clock.advance(2.0)
    hub.end_publish(hub.begin_publish("ended1"))
    return DashboardSources(hub, health, StreamUsage(), lambda: BOARD)


@pytest.mark.parametrize("path", ROUTES)
async def test_admin_only(store: SqlStore, path: str) -> None:
    async with api_server(store, {"dashboard": _sources()}) as srv:
        _, streams_key = await keys.create_key(store, "customer", ["streams"], clock=srv.clock.wall)
        status, body, _ = await srv.call("GET", path, streams_key)
        assert status == 403 and "'admin' scope" in body["errors"][0], body
        status, _, _ = await srv.call("GET", path)
        assert status == 401
        status, body, _ = await srv.call("GET", path, srv.admin)
        assert status == 200 and isinstance(body, list), body


async def test_live_streams_carry_their_ingest_health(store: SqlStore) -> None:
    async with api_server(store, {"dashboard": _sources()}) as srv:
        status, body, _ = await srv.call("GET", "/api/admin/streams/live", srv.admin)
    assert status == 200
    (stream,) = body  # the ended stream is not listed
    assert stream["id"] == "live1" and stream["playbackUrl"] == "/stream/live1.m3u8"
    assert stream["segments"] == 3 and stream["mediaSeconds"] == 6.0
    health = stream["health"]
    assert health["bitrate_bps"] == 100_000 and health["fps"] == 30.0
    assert health["keyframe_interval_s"] == 2.0 and health["segment_interval_s"] == 2.0
    assert health["last_segment_age_s"] == 2.0


async def test_orchestrators_answer_the_scoreboard(store: SqlStore) -> None:
    async with api_server(store, {"dashboard": _sources()}) as srv:
        status, body, _ = await srv.call("GET", "/api/admin/orchestrators", srv.admin)
    assert (status, body) == (200, BOARD)


async def test_recent_deliveries_across_webhooks_newest_first(store: SqlStore) -> None:
    await store.create_webhook(
        Webhook(id="w1", name="alpha", url="https://a.example", created_at=1)
    )
    await store.create_webhook(Webhook(id="w2", name="beta", url="https://b.example", created_at=2))
    for n, hook in ((1, "w1"), (2, "w2"), (3, "w1")):
        await store.enqueue_delivery(
            Delivery(id=f"d{n}", webhook_id=hook, event="stream.started",
                     payload={"n": n}, created_at=100 + n)
        )  # fmt: skip
    await store.mark_delivered("d2", 150, 204)
    async with api_server(store, {"dashboard": _sources()}) as srv:
        status, body, _ = await srv.call("GET", "/api/admin/webhook-deliveries", srv.admin)
        assert status == 200
        assert [(d["id"], d["webhookName"]) for d in body] == [
            ("d3", "alpha"), ("d2", "beta"), ("d1", "alpha"),
        ]  # fmt: skip
        d2 = body[1]
        assert (
            d2["success"] is True and d2["statusCode"] == 204 and d2["url"] == "https://b.example"
        )
        assert body[0]["success"] is False and body[0]["nextAttemptAt"] == 103
        assert "payload" not in d2  # the log's summary: no event body
        status, body, _ = await srv.call("GET", "/api/admin/webhook-deliveries?limit=1", srv.admin)
        assert status == 200 and [d["id"] for d in body] == ["d3"]
        status, body, _ = await srv.call("GET", "/api/admin/webhook-deliveries?limit=0", srv.admin)
        assert status == 422 and "limit" in body["errors"][0]


async def test_the_routes_are_documented(store: SqlStore) -> None:
    async with api_server(store, {"dashboard": _sources()}) as srv:
        status, doc, _ = await srv.call("GET", "/api/openapi.json")
    assert status == 200
    for path in ROUTES:
        op: dict[str, Any] = doc["paths"][path]["get"]
        assert op["tags"] == ["dashboard"] and op["security"], op
