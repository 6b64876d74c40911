"""The usage query, its CSV and the plan routes over real sockets (SQLite and PostgreSQL):
customers A and B see their own usage only, the operator sees each key's; charge, cost and
margin follow A's plan and the wei rate."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from fractions import Fraction

from api_testkit import Server, api_server

from mediagw.platform import keys
from mediagw.platform.ledger import HOUR_MS, UsageLedger
from mediagw.platform.store import SqlStore, Stream
from mediagw.usage import DELIVERY_HLS, PAYMENT, RECORDING, SOURCE, TRANSCODE, UsageEvent


def _stream(n: int, owner: str) -> Stream:
    return Stream(id=f"s{n}", name=f"s{n}", stream_key=f"k{n}", playback_id=f"p{n}",
                  created_at=1, owner_key_id=owner)  # fmt: skip


def _ev(n: int, kind: str, quantity: int, **fields: object) -> UsageEvent:
    return UsageEvent(f"p{n}", 1, f"stream:s{n}", "https://o:1", kind, quantity, "u", **fields)  # type: ignore[arg-type]


async def _csv(server: Server, path: str, key: str) -> list[dict[str, str]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with server.http.get(server.url + path, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        return list(csv.DictReader(io.StringIO(await resp.text())))


async def test_usage_query_tenancy_prices_and_csv(store: SqlStore) -> None:
    async with api_server(store) as server:
        row_a, a = await keys.create_key(store, "customer a", ["streams"])
        row_b, b = await keys.create_key(store, "customer b", ["streams"])
        await store.create_stream(_stream(1, row_a.id))
        await store.create_stream(_stream(2, row_b.id))
        status, plan, _ = await server.call(
            "POST", "/api/admin/plans", server.admin,
            json={"id": "pro", "name": "Pro", "rateLimit": 600, "dailyQuota": 5000,
                  "pricePerTranscodedMinute": "0.02", "pricePerDeliveredMinute": 0.001},
        )  # fmt: skip
        assert status == 201, plan
        assert plan["pricePerTranscodedMinute"] == "0.02" and plan["burstLimit"] is None
        status, _, _ = await server.call(
            "PATCH", f"/api/admin/keys/{row_a.id}", server.admin, json={"planId": "pro"}
        )
        assert status == 204
        status, doc, _ = await server.call(
            "PATCH", f"/api/admin/keys/{row_a.id}", server.admin, json={"planId": "nope"}
        )
        assert status == 404 and "create it first" in doc["errors"][0]
        status, _, _ = await server.call("GET", "/api/admin/plans", a)
        assert status == 403  # plans are the operator's

        ledger = UsageLedger(store, wei_rate=Decimal("2000"), clock=server.clock)
        for _ in range(30):  # one minute of A's stream: ingest, 2 renditions, paid
            ledger.emit(_ev(1, SOURCE, 2000, ms=2000))
            ledger.emit(_ev(1, TRANSCODE, 1000, detail="360p0", ms=2000, pixels=1000))
            ledger.emit(_ev(1, TRANSCODE, 4000, detail="720p0", ms=2000, pixels=4000))
            ledger.emit(_ev(1, PAYMENT, 2, wei=Fraction(10**12)))
        ledger.emit(_ev(1, DELIVERY_HLS, 5_000_000, ms=120_000))  # 2 viewer minutes
        ledger.emit(_ev(1, RECORDING, 30_000, ms=30_000))
        ledger.emit(_ev(2, SOURCE, 6000, ms=6000))  # B: 6 s
        await ledger.flush()

        status, rows, _ = await server.call("GET", "/api/data/usage/query", a)
        assert status == 200
        (mine,) = rows
        assert mine["UserID"] == row_a.id
        assert mine["TotalUsageMins"] == 1.0
        assert mine["DeliveryUsageMins"] == 2.0
        assert mine["StorageUsageMins"] == 0.5
        assert mine["transcodedMins"] == 2.0  # per rendition
        assert mine["transcodedPixels"] == 150_000 and mine["pixels"] == 150_000
        assert mine["tickets"] == 60 and mine["costWei"] == str(30 * 10**12)
        assert mine["cost"] == "0.060000"  # 3e13 wei x 2000 per ETH
        assert mine["charge"] == "0.042000"  # 2 min x 0.02 + 2 min x 0.001
        assert mine["margin"] == "-0.018000"  # sold below cost
        assert (mine["currency"], mine["weiRate"]) == ("USD", "2000")

        status, rows, _ = await server.call("GET", "/api/data/usage/query", b)
        assert [(r["UserID"], r["TotalUsageMins"], r["charge"]) for r in rows] == [
            (row_b.id, 0.1, "0.000000")  # the default plan charges nothing
        ]
        status, rows, _ = await server.call("GET", "/api/data/usage/query", server.admin)
        assert sorted(r["UserID"] for r in rows) == sorted([row_a.id, row_b.id])

        hour = int(server.clock.wall() * 1000) // HOUR_MS * HOUR_MS
        query = (f"/api/data/usage/query?from={hour - HOUR_MS}&to={hour + HOUR_MS}"
                 "&timeStep=hour&breakdownBy[]=creatorId")  # fmt: skip
        status, rows, _ = await server.call("GET", query, a)
        assert [(r["TimeStamp"], r["CreatorID"]) for r in rows] == [(hour, "s1")]
        status, rows, _ = await server.call("GET", f"/api/data/usage/query?to={hour - 1}", a)
        assert rows == []  # before any usage

        table = await _csv(server, "/api/data/usage/export.csv", a)
        assert [(r["UserID"], r["TotalUsageMins"], r["charge"]) for r in table] == [
            (row_a.id, "1.0", "0.042000")
        ]
        same = await _csv(server, "/api/data/usage/query?format=csv", a)
        assert same == table
        for bad in ("timeStep=week", "breakdownBy[]=planet", "from=x", "from=10&to=5"):
            status, doc, _ = await server.call("GET", f"/api/data/usage/query?{bad}", a)
            assert status == 422, (bad, doc)
