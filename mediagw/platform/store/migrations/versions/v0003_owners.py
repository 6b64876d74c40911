"""Owners of webhooks and signing keys (the API key that created them), and indexes on every
owner column: a customer's key lists only its own objects.

Rows made before this revision get the key that created them from the audit log (its
``webhook.create`` / ``signing_key.create`` entry); rows without one stay ownerless (the
operator's: only admin keys see them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OWNED = ("streams", "multistream_targets", "webhooks", "signing_keys")
BACKFILL = (("webhooks", "webhook.create"), ("signing_keys", "signing_key.create"))


def upgrade() -> None:
    for table in ("webhooks", "signing_keys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner_key_id", sa.Text))
    for table, action in BACKFILL:
        op.execute(
            f"UPDATE {table} SET owner_key_id = (SELECT a.actor_key_id FROM audit_log a"
            f" WHERE a.action = '{action}' AND a.target_id = {table}.id"
            " ORDER BY a.id LIMIT 1)"
        )
    for table in OWNED:
        op.create_index(f"ix_{table}_owner", table, ["owner_key_id", "created_at", "id"])


def downgrade() -> None:
    for table in OWNED:
        op.drop_index(f"ix_{table}_owner", table)
    for table in ("signing_keys", "webhooks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner_key_id")
