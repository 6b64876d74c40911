"""``SqlStore``'s usage half: plans, each key's plan, the hourly usage rollups (added to with
atomic increments: ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``, never read,
changed and written back; each ledger flush once, by its batch id) and the billing windows sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ...errors import StoreBadInput, StoreNotFound
from ..plans import DEFAULT_PLAN_ID, Plan
from .engine import transaction
from .rows import USAGE_BATCH_RETENTION_MS, UsageBatch, UsageRow
from .schema import (
    PLAN_PRICES,
    USAGE_KEY,
    USAGE_SUMS,
    api_keys,
    billing_windows,
    plans,
    usage_batches,
    usage_hourly,
)

__all__ = ["UsageStore"]

MAX_USAGE_ROWS = 100_000  # grouped rows one usage query reads
_PLAN_FIELDS = {f.name for f in dataclasses.fields(Plan)} - {"id", "created_at"}


def _plan(row: sa.Row[Any]) -> Plan:
    values = dict(row._mapping)
    for name in PLAN_PRICES:
        values[name] = Decimal(values[name])
    return Plan(**values)


def _merged(rows: Iterable[UsageRow]) -> list[dict[str, Any]]:
    """Rows of the same hour row summed into one, in key order (concurrent writers lock the
    rows in one order: no deadlock)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        values = dataclasses.asdict(row)
        key = tuple(values[name] for name in USAGE_KEY)
        if (before := merged.get(key)) is not None:
            for name in USAGE_SUMS:
                values[name] += before[name]
        merged[key] = values
    return [merged[key] for key in sorted(merged)]


def _plan_values(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    values = dataclasses.asdict(plan) if isinstance(plan, Plan) else dict(plan)
    for name in PLAN_PRICES:
        if name in values:
            values[name] = str(values[name])
    return values


class UsageStore:
    """Mixed into ``SqlStore`` (which provides the engine)."""

    _engine: AsyncEngine

    # plans

    async def create_plan(self, plan: Plan) -> Plan:
        """Store a new plan; StoreConflict if its id is taken."""
        async with transaction(self._engine, "plan") as connection:
            await connection.execute(plans.insert().values(**_plan_values(plan)))
        return plan

    async def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        async with transaction(self._engine, "plan") as connection:
            row = (await connection.execute(plans.select().where(plans.c.id == plan_id))).first()
        return None if row is None else _plan(row)

    async def list_plans(self) -> tuple[Plan, ...]:
        """Every plan, oldest first (there are few)."""
        query = plans.select().order_by(plans.c.created_at, plans.c.id).limit(1000)
        async with transaction(self._engine, "plan") as connection:
            rows = (await connection.execute(query)).all()
        return tuple(_plan(row) for row in rows)

    async def update_plan(self, plan_id: str, **changes: Any) -> Plan | None:
        """Change fields of a plan; the plan after, or None if there is none."""
        unknown = set(changes) - _PLAN_FIELDS
        if unknown:
            raise StoreBadInput(f"unknown plan fields: {', '.join(sorted(unknown))}")
        if changes:
            async with transaction(self._engine, "plan") as connection:
                await connection.execute(
                    plans.update().where(plans.c.id == plan_id).values(**_plan_values(changes))
                )
        return await self.get_plan(plan_id)

    async def set_key_plan(self, key_id: str, plan_id: str | None) -> bool:
        """Put a key on a plan (None: the default); False if there is no such key,
        StoreNotFound if there is no such plan."""
        async with transaction(self._engine, "API key") as connection:
            if plan_id is not None:
                found = await connection.execute(sa.select(plans.c.id).where(plans.c.id == plan_id))
                if found.first() is None:
                    raise StoreNotFound(
                        f"no plan {plan_id!r}: create it first (POST /api/admin/plans)"
                    )
            result = await connection.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(plan_id=plan_id)
            )
        return bool(result.rowcount)

    async def plan_of_key(self, key_id: str) -> Plan | None:
        """The key's plan, else the stored default plan, else None."""
        key_plan = sa.select(api_keys.c.plan_id).where(api_keys.c.id == key_id).scalar_subquery()
        query = plans.select().where(plans.c.id.in_([key_plan, DEFAULT_PLAN_ID]))
        async with transaction(self._engine, "plan") as connection:
            rows = (await connection.execute(query)).all()
        found = {row.id: _plan(row) for row in rows}
        return next((p for p in found.values() if p.id != DEFAULT_PLAN_ID), None) or found.get(
            DEFAULT_PLAN_ID
        )

    # usage

    async def add_usage(self, batches: Sequence[UsageBatch], *, at: int) -> frozenset[str]:
        """Add each batch's rows once (one transaction): their sums are added to their hour's
        row, created when missing (rate, currency and time replace the stored ones); a batch
        whose id is recorded was added before and is skipped. ``at`` (unix ms): when the ids
        are recorded; those older than ``USAGE_BATCH_RETENTION_MS`` are forgotten. The ids of
        the batches added now."""
        batches = [batch for batch in batches if batch.rows]
        if not batches:
            return frozenset()
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        record = (
            dialect.insert(usage_batches)
            .values([{"id": batch.id, "recorded_at": at} for batch in batches])
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(usage_batches.c.id)
        )
        insert = dialect.insert(usage_hourly)
        excluded = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=list(USAGE_KEY),
            set_={
                **{name: usage_hourly.c[name] + excluded[name] for name in USAGE_SUMS},
                "wei_rate": excluded.wei_rate,
                "currency": excluded.currency,
                "updated_at": excluded.updated_at,
            },
        )
        prune = usage_batches.delete().where(
            usage_batches.c.recorded_at < at - USAGE_BATCH_RETENTION_MS
        )
        async with transaction(self._engine, "usage") as connection:
            added = frozenset((await connection.execute(record)).scalars())
            rows = _merged(row for batch in batches if batch.id in added for row in batch.rows)
            if rows:
                await connection.execute(statement, rows)
            await connection.execute(prune)  # after the check: a batch is never forgotten first
        return added

    async def usage(
        self, start: int, end: int, *, key_id: str | None = None
    ) -> tuple[UsageRow, ...]:
        """Hours in [start, end), summed over sessions: one row per hour, key, stream,
        orchestrator, kind, detail, rate and currency; with ``key_id``, only that key's."""
        group = [
            usage_hourly.c[name]
            for name in ("hour", "key_id", "stream_id", "session", "orchestrator", "kind", "detail")
        ] + [usage_hourly.c.wei_rate, usage_hourly.c.currency]
        query = (
            sa.select(*group, *(sa.func.sum(usage_hourly.c[n]).label(n) for n in USAGE_SUMS))
            .where(usage_hourly.c.hour >= start, usage_hourly.c.hour < end)
            .group_by(*group)
            .order_by(usage_hourly.c.hour)
            .limit(MAX_USAGE_ROWS)
        )
        if key_id is not None:
            query = query.where(usage_hourly.c.key_id == key_id)
        async with transaction(self._engine, "usage") as connection:
            rows = (await connection.execute(query)).all()
        found = []
        for row in rows:
            values: dict[str, Any] = dict(row._mapping)
            for name in USAGE_SUMS:
                values[name] = int(values[name] or 0)
            found.append(UsageRow(**values))
        return tuple(found)

    # billing windows

    async def billing_window_sent(self, start: int) -> bool:
        """Whether the window starting at ``start`` was pushed already."""
        query = sa.select(billing_windows.c.sent_at).where(billing_windows.c.window_from == start)
        async with transaction(self._engine, "billing window") as connection:
            row = (await connection.execute(query)).first()
        return row is not None and row.sent_at is not None

    async def record_billing_attempt(
        self, start: int, end: int, at: int, *, sent: bool, error: str | None = None
    ) -> None:
        """Record a push of the window [start, end): sent (never again) or failed (retried)."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(billing_windows).values(
            window_from=start,
            window_to=end,
            sent_at=at if sent else None,
            attempts=1,
            error=None if sent else (error or "")[:1000],
        )
        statement = insert.on_conflict_do_update(
            index_elements=["window_from"],
            set_={
                "attempts": billing_windows.c.attempts + 1,
                "sent_at": sa.func.coalesce(billing_windows.c.sent_at, insert.excluded.sent_at),
                "error": insert.excluded.error,
            },
        )
        async with transaction(self._engine, "billing window") as connection:
            await connection.execute(statement)
