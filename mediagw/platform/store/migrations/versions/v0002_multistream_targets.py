"""Multistream targets (Studio's /multistream/target), and what a live session needs: when it
was last seen and whether it records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "multistream_targets",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("owner_key_id", sa.Text),
    )
    op.create_index(
        "ix_multistream_targets_created_at", "multistream_targets", ["created_at", "id"]
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_seen", sa.BigInteger))
        batch.add_column(sa.Column("record", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_streams_is_active", "streams", ["is_active"])


def downgrade() -> None:
    op.drop_index("ix_streams_is_active", "streams")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("record")
        batch.drop_column("last_seen")
    op.drop_index("ix_multistream_targets_created_at", "multistream_targets")
    op.drop_table("multistream_targets")
