"""The usage batches added (``usage_batches``): a ledger flush retried after an error is not
added again when its first attempt was committed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_batches",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_batches_recorded_at", "usage_batches", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_batches_recorded_at", "usage_batches")
    op.drop_table("usage_batches")
