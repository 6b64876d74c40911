"""Plans (limits and prices) and each key's plan. Scope ``admin``.

    POST  /api/admin/plans          {id?, name, rateLimit, ..., pricePerTranscodedMinute, ...}
                                    -> 201
    GET   /api/admin/plans          every plan
    GET   /api/admin/plans/{id}
    PATCH /api/admin/plans/{id}     any fields but id -> the plan
    PATCH /api/admin/keys/{id}      {planId}: put the key on a plan (null: the default) -> 204

A key without a plan is on the plan with id ``default`` (create it to change the built-in
defaults). Prices are decimals (strings or numbers) in ``currency`` per minute.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from ...errors import InvalidInput
from ...platform.plan_limits import PlanCache
from ...platform.plans import Plan
from .base import Api, Body, Call, not_found

__all__ = ["add_plan_routes", "plan_json"]

Limit = int | None
Price = str | int | float
PRICE = r"^\d{1,12}(\.\d{1,12})?$"


class PlanPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rate_limit: Limit = Field(default=None, gt=0, description="API requests per minute")
    burst_limit: Limit = Field(default=None, gt=0)
    daily_quota: Limit = Field(default=None, gt=0, description="API requests per UTC day")
    monthly_quota: Limit = Field(default=None, gt=0, description="API requests per UTC month")
    stream_minutes_daily: Limit = Field(default=None, gt=0)
    stream_minutes_monthly: Limit = Field(default=None, gt=0)
    live_ai_minutes_daily: Limit = Field(default=None, gt=0)
    live_ai_minutes_monthly: Limit = Field(default=None, gt=0)
    max_concurrent_streams: Limit = Field(default=None, gt=0)
    price_per_transcoded_minute: Price | None = None
    price_per_live_ai_minute: Price | None = None
    price_per_delivered_minute: Price | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class PlanCreate(PlanPatch):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)


class KeyPatch(Body):
    plan_id: str | None = Field(description="the plan's id; null: the default plan")


class PlanOut(BaseModel):
    id: str
    name: str
    rateLimit: int | None
    burstLimit: int | None
    dailyQuota: int | None
    monthlyQuota: int | None
    streamMinutesDaily: int | None
    streamMinutesMonthly: int | None
    liveAiMinutesDaily: int | None
    liveAiMinutesMonthly: int | None
    maxConcurrentStreams: int | None
    pricePerTranscodedMinute: str
    pricePerLiveAiMinute: str
    pricePerDeliveredMinute: str
    currency: str
    createdAt: int


def plan_json(plan: Plan) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(w.capitalize() for w in rest)

    doc = {camel(k): v for k, v in vars(plan).items()}
    for name in ("pricePerTranscodedMinute", "pricePerLiveAiMinute", "pricePerDeliveredMinute"):
        doc[name] = str(doc[name])
    return doc


def _changes(body: PlanPatch) -> dict[str, Any]:
    """The fields given (a null limit: unlimited; a null name, price or currency: unchanged)."""
    changes = body.model_dump(exclude_unset=True, exclude={"id"})
    for name, value in list(changes.items()):
        if value is None and (name.startswith("price_") or name in ("name", "currency")):
            del changes[name]
        elif name.startswith("price_"):
            text = str(value)
            if not re.fullmatch(PRICE, text):
                raise InvalidInput(name, "give a price >= 0 like 0.015 (at most 12 decimals)")
            changes[name] = Decimal(text)
    return changes


def _forget(call: Call, key_id: str | None = None) -> None:
    """Look the limits of ``key_id`` (None: every key) up again, on every node."""
    plans: PlanCache | None = call.ctx.services.get("plans")
    if plans is not None:
        plans.forget(key_id)


def add_plan_routes(api: Api) -> None:
    @api.route(
        "POST", "/admin/plans", scope="admin", body=PlanCreate, status=201, response=PlanOut,
        summary="Create a plan (limits and prices)", tag="plans",
    )  # fmt: skip
    async def create_plan(call: Call) -> dict[str, Any]:
        body: PlanCreate = call.body
        plan = Plan(
            id=body.id or f"plan_{secrets.token_hex(8)}",
            created_at=call.ctx.now_ms(),
            **_changes(body),
        )
        await call.ctx.store.create_plan(plan)
        _forget(call)  # the plan with id "default" changes every key without one
        await call.audit("plan.create", "plan", plan.id, {"name": plan.name})
        return plan_json(plan)

    @api.route(
        "GET", "/admin/plans", scope="admin", response=PlanOut, summary="List plans", tag="plans"
    )
    async def list_plans(call: Call) -> list[dict[str, Any]]:
        return [plan_json(p) for p in await call.ctx.store.list_plans()]

    @api.route(
        "GET", "/admin/plans/{id}", scope="admin", response=PlanOut, summary="One plan",
        tag="plans",
    )  # fmt: skip
    async def get_plan(call: Call) -> dict[str, Any]:
        plan = await call.ctx.store.get_plan(call.param("id"))
        if plan is None:
            raise not_found("plan", call.param("id"))
        return plan_json(plan)

    @api.route(
        "PATCH", "/admin/plans/{id}", scope="admin", body=PlanPatch, response=PlanOut,
        summary="Change a plan's limits or prices", tag="plans",
    )  # fmt: skip
    async def update_plan(call: Call) -> dict[str, Any]:
        changes = _changes(call.body)
        plan = await call.ctx.store.update_plan(call.param("id"), **changes)
        if plan is None:
            raise not_found("plan", call.param("id"))
        _forget(call)  # its keys' limits, on every node
        await call.audit("plan.update", "plan", plan.id, {"fields": sorted(changes)})
        return plan_json(plan)

    @api.route(
        "PATCH", "/admin/keys/{id}", scope="admin", body=KeyPatch, status=204,
        summary="Put an API key on a plan", tag="keys",
    )  # fmt: skip
    async def set_key_plan(call: Call) -> None:
        key_id, plan_id = call.param("id"), call.body.plan_id
        if not await call.ctx.store.set_key_plan(key_id, plan_id):
            raise not_found("API key", key_id)
        _forget(call, key_id)
        await call.audit("key.plan", "api_key", key_id, {"planId": plan_id})
