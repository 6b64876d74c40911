"""The platform store's first schema: keys, streams, sessions, webhooks, signing keys, audit.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MS = sa.BigInteger


def _counters() -> list[sa.Column[int] | sa.Column[float]]:
    return [
        sa.Column("source_segments", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source_segments_duration", sa.Float, nullable=False, server_default="0"),
        sa.Column("transcoded_segments", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transcoded_segments_duration", sa.Float, nullable=False, server_default="0"),
        sa.Column("source_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transcoded_bytes", sa.BigInteger, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lookup_id", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("cors_origins", sa.JSON, nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("expires_at", MS),
        sa.Column("revoked_at", MS),
        sa.Column("last_used_at", MS),
        sa.UniqueConstraint("lookup_id", name="uq_api_keys_lookup_id"),
    )
    op.create_table(
        "streams",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("stream_key", sa.Text, nullable=False),
        sa.Column("playback_id", sa.Text, nullable=False),
        sa.Column("profiles", sa.JSON, nullable=False),
        sa.Column("record", sa.Boolean, nullable=False),
        sa.Column("multistream", sa.JSON),
        sa.Column("playback_policy", sa.JSON),
        sa.Column("suspended", sa.Boolean, nullable=False),
        sa.Column("user_tags", sa.JSON),
        sa.Column("pipeline", sa.Text),
        sa.Column("pipeline_params", sa.JSON),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("last_seen", MS),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("owner_key_id", sa.Text),
        *_counters(),
        sa.UniqueConstraint("stream_key", name="uq_streams_stream_key"),
        sa.UniqueConstraint("playback_id", name="uq_streams_playback_id"),
    )
    op.create_index("ix_streams_created_at", "streams", ["created_at", "id"])
    op.create_index("ix_streams_name", "streams", ["name"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("ended_at", MS),
        sa.Column("recording_url", sa.Text),
        *_counters(),
        sa.ForeignKeyConstraint(
            ["stream_id"], ["streams.id"], ondelete="CASCADE", name="fk_sessions_stream_id"
        ),
    )
    op.create_index("ix_sessions_stream_id", "sessions", ["stream_id", "created_at"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("shared_secret", sa.Text),
        sa.Column("stream_id", sa.Text),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("last_failure", sa.JSON),
        sa.Column("last_triggered_at", MS),
        sa.ForeignKeyConstraint(
            ["stream_id"], ["streams.id"], ondelete="CASCADE", name="fk_webhooks_stream_id"
        ),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("webhook_id", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", MS),
        sa.Column("delivered_at", MS),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            ondelete="CASCADE",
            name="fk_webhook_deliveries_webhook_id",
        ),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"])
    op.create_index(
        "ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "created_at"]
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", MS, nullable=False),
        sa.Column("actor_key_id", sa.Text),
        sa.Column("ip", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target_type", sa.Text),
        sa.Column("target_id", sa.Text),
        sa.Column("details", sa.JSON),
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "signing_keys",
        "webhook_deliveries",
        "webhooks",
        "sessions",
        "streams",
        "api_keys",
    ):
        op.drop_table(table)
