"""The webhook outbox's claim and record statements, shared by every gateway node on one database.

A node **claims** due deliveries before sending them: one statement moves their
``next_attempt_at`` to ``now + lease_ms`` (the lease) and returns them, so no other node sees them
as due until the lease runs out. PostgreSQL locks the chosen rows ``FOR UPDATE SKIP LOCKED``
(two nodes claiming at once get disjoint rows, neither waits); SQLite has one writer, and the
statement writes first, so it runs whole under the write lock. A node that dies mid-send leaves
the row leased: it is due again, and retried, when the lease runs out.

Per webhook only the oldest pending delivery (by ``created_at``, then id) can be claimed: a
later event waits while an earlier one is leased or waiting for its retry, so every node sends a
webhook's events in order, one at a time (a receiver never hears ``stream.idle`` before the
``stream.started`` that is still being retried). Other webhooks are not held up.

The holder then **records** the attempt with the lease it was given as a fence: if the lease
was lost (it ran out and another node claimed the row) the record changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import check_limit, transaction
from .schema import webhook_deliveries, webhooks

__all__ = ["claim", "record"]

MAX_ERROR = 1000  # characters of a delivery's error kept (as mark_failed)


async def claim(
    engine: AsyncEngine,
    now: int,
    *,
    lease_ms: int,
    limit: int,
    exclude_webhooks: Collection[str] = (),
) -> list[sa.Row[Any]]:
    """Lease up to ``limit`` due deliveries, each the oldest pending one of its webhook and
    none of ``exclude_webhooks``; the rows as leased, the oldest first."""
    if lease_ms <= 0:
        raise ValueError("lease_ms must be positive")
    due = webhook_deliveries.alias("due")
    earlier = webhook_deliveries.alias("earlier")
    before = sa.or_(
        earlier.c.created_at < due.c.created_at,
        sa.and_(earlier.c.created_at == due.c.created_at, earlier.c.id < due.c.id),
    )
    older_pending = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.webhook_id == due.c.webhook_id,
            earlier.c.next_attempt_at.is_not(None),  # queued, leased or waiting to retry
            before,
        )
        .exists()
    )
    chosen = sa.select(due.c.id).where(
        due.c.next_attempt_at.is_not(None), due.c.next_attempt_at <= now
    )
    if exclude_webhooks:
        chosen = chosen.where(due.c.webhook_id.not_in(list(exclude_webhooks)))
    chosen = (
        chosen.where(~older_pending)
        .order_by(due.c.created_at, due.c.id)
        .limit(check_limit(limit))
        .with_for_update(skip_locked=True, of=due)
    )
    table = webhook_deliveries
    statement = (
        table.update()
        .where(table.c.id.in_(chosen.scalar_subquery()))
        .values(next_attempt_at=now + lease_ms)
        .returning(*table.c)
    )
    async with transaction(engine, "webhook delivery") as connection:
        rows = list((await connection.execute(statement)).all())
    rows.sort(key=lambda row: (row.created_at, row.id))
    return rows


async def record(
    engine: AsyncEngine,
    delivery_id: str,
    claimed_until: int,
    at: int,
    *,
    payload: dict[str, Any],
    status_code: int | None,
    error: str | None,
    delivered: bool,
    next_attempt_at: int | None,
    last_failure: dict[str, Any] | None,
) -> bool:
    """Record one attempt on a delivery leased until ``claimed_until``; False (nothing changed)
    if that lease was lost."""
    table = webhook_deliveries
    values: dict[str, Any] = {
        "payload": payload,
        "attempts": table.c.attempts + 1,
        "status_code": status_code,
        "error": None if error is None else error[:MAX_ERROR],
        "next_attempt_at": None if delivered else next_attempt_at,
    }
    if delivered:
        values["delivered_at"] = at
    async with transaction(engine, "webhook delivery") as connection:
        result = await connection.execute(
            table.update()
            .where(table.c.id == delivery_id, table.c.next_attempt_at == claimed_until)
            .values(**values)
            .returning(table.c.webhook_id)
        )
        row = result.first()
        if row is None:
            return False
        hook_values: dict[str, Any] = {"last_triggered_at": at}
        if last_failure is not None:
            hook_values["last_failure"] = last_failure
        await connection.execute(
            webhooks.update().where(webhooks.c.id == row.webhook_id).values(**hook_values)
        )
    return True
