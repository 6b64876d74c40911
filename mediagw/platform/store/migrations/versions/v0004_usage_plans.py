"""The usage ledger (hourly rollups), plans with their limits and prices, each API key's plan,
and the billing windows pushed to the billing webhook.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # written out (not imported from schema.py): a migration never changes once released
    limits = (
        "rate_limit", "burst_limit", "daily_quota", "monthly_quota", "stream_minutes_daily",
        "stream_minutes_monthly", "live_ai_minutes_daily", "live_ai_minutes_monthly",
        "max_concurrent_streams",
    )  # fmt: skip
    prices = (
        "price_per_transcoded_minute",
        "price_per_live_ai_minute",
        "price_per_delivered_minute",
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        *(sa.Column(name, sa.BigInteger) for name in limits),
        *(sa.Column(name, sa.Text, nullable=False) for name in prices),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("plan_id", sa.Text))
    op.create_table(
        "usage_hourly",
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("stream_id", sa.Text, primary_key=True),
        sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("orchestrator", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("detail", sa.Text, primary_key=True),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("quantity", "ms", "pixels", "wei", "charge_micros")
        ),
        sa.Column("wei_rate", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_hourly_key", "usage_hourly", ["key_id", "hour"])
    op.create_table(
        "billing_windows",
        sa.Column("window_from", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("window_to", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("billing_windows")
    op.drop_index("ix_usage_hourly_key", "usage_hourly")
    op.drop_table("usage_hourly")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("plan_id")
    op.drop_table("plans")
