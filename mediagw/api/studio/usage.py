"""Usage (the ledger's hourly rollups) in Studio's shape, with mediagw's cost, charge and margin.

    GET /api/data/usage/query?from=&to=&timeStep=hour|day&breakdownBy[]=creatorId|streamId|
        userId|orchestrator[&format=csv]
    GET /api/data/usage/export.csv?...     the same rows as CSV

``from`` and ``to`` are unix milliseconds (default: the last 24 hours), widened to whole hours.
A customer's key sees its own usage only; an admin key sees everyone's, one row per key. The
ledger writes every ``-usageFlushInterval`` (10 s): the last seconds show after the next flush.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...errors import InvalidInput
from ...platform.ledger import HOUR_MS
from ...platform.usage_report import BREAKDOWNS, DAY_MS, report, to_csv
from .base import Api, Call

__all__ = ["add_usage_routes"]

MAX_RANGE_MS = 400 * DAY_MS
QUERY = (
    ("from", "start, unix milliseconds (default: 24 hours before to)"),
    ("to", "end, unix milliseconds (default: now)"),
    ("timeStep", "hour or day: one row per step (default: one row for the range)"),
    ("breakdownBy[]", f"repeatable: {', '.join(BREAKDOWNS)}"),
    ("format", "json (default) or csv"),
)


def _millis(call: Call, name: str, default: int) -> int:
    text = call.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise InvalidInput(name, "give unix milliseconds (a whole number)")
    return int(text)


async def _rows(call: Call) -> list[dict[str, Any]]:
    now = call.ctx.now_ms()
    end = _millis(call, "to", now)
    start = _millis(call, "from", end - DAY_MS)
    if start >= end or end - start > MAX_RANGE_MS:
        raise InvalidInput("from", "from must be before to, at most 400 days apart")
    step_text = call.query.get("timeStep") or ""
    steps = {"": None, "hour": HOUR_MS, "day": DAY_MS}
    if step_text not in steps:
        raise InvalidInput("timeStep", "give hour or day")
    breakdown = [*call.query.getall("breakdownBy[]", []), *call.query.getall("breakdownBy", [])]
    for item in breakdown:
        if item not in BREAKDOWNS:
            raise InvalidInput("breakdownBy", f"give one of {', '.join(BREAKDOWNS)}")
    tenant = call.tenant
    if tenant.admin:
        breakdown.append("userId")  # the operator sees each key's usage
    start = start // HOUR_MS * HOUR_MS
    end = -(-end // HOUR_MS) * HOUR_MS
    rows = await call.ctx.store.usage(start, end, key_id=tenant.only)
    docs = report(rows, step_ms=steps[step_text], breakdown=breakdown)
    if not tenant.admin:
        for doc in docs:
            doc["UserID"] = tenant.key_id
    return docs


def _csv(docs: list[dict[str, Any]]) -> web.Response:
    return web.Response(
        text=to_csv(docs),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="usage.csv"'},
    )


def add_usage_routes(api: Api) -> None:
    @api.route(
        "GET", "/data/usage/query", scope="streams", tag="usage", query=QUERY,
        summary="Usage per time step and breakdown (Studio's rows, plus cost, charge, margin)",
    )  # fmt: skip
    async def usage_query(call: Call) -> Any:
        fmt = call.query.get("format") or "json"
        if fmt not in ("json", "csv"):
            raise InvalidInput("format", "give json or csv")
        docs = await _rows(call)
        return _csv(docs) if fmt == "csv" else docs

    @api.route(
        "GET", "/data/usage/export.csv", scope="streams", tag="usage", query=QUERY[:4],
        summary="The usage query's rows as CSV",
    )  # fmt: skip
    async def usage_export(call: Call) -> web.Response:
        return _csv(await _rows(call))
