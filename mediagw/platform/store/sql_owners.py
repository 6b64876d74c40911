"""``SqlStore``'s ownership half: which keys are the operator's (admin), and handing a key's
objects to another key (rotation)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import transaction
from .schema import api_keys, multistream_targets, signing_keys, streams, webhooks

__all__ = ["OWNED_TABLES", "OwnerStore"]

OWNED_TABLES = (streams, multistream_targets, webhooks, signing_keys)


class OwnerStore:
    """Mixed into ``SqlStore`` (which provides the engine)."""

    _engine: AsyncEngine

    async def admin_key_ids(self) -> frozenset[str]:
        """The ids of the API keys with the ``admin`` scope (revoked ones too: what they
        created stays the operator's)."""
        # scopes is a JSON list of known words (keys.validate_scopes): its text holds "admin"
        # exactly when the key has that scope, on SQLite and PostgreSQL alike
        query = sa.select(api_keys.c.id).where(
            sa.cast(api_keys.c.scopes, sa.Text).like('%"admin"%')
        )
        async with transaction(self._engine, "API key") as connection:
            rows = (await connection.execute(query)).all()
        return frozenset(str(row[0]) for row in rows)

    async def transfer_ownership(self, from_key_id: str, to_key_id: str) -> int:
        """Every stream, multistream target, webhook and signing key owned by ``from_key_id``
        now belongs to ``to_key_id`` (one transaction); how many rows changed."""
        changed = 0
        async with transaction(self._engine, "owner") as connection:
            for table in OWNED_TABLES:
                result = await connection.execute(
                    table.update()
                    .where(table.c.owner_key_id == from_key_id)
                    .values(owner_key_id=to_key_id)
                )
                changed += result.rowcount
        return changed
