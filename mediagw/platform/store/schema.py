"""The store's tables, as SQLAlchemy Core metadata (one schema for SQLite and PostgreSQL).

The migrations (``migrations/versions``) create these tables; a test checks that the migrated
database and this metadata agree. Change both together: a new migration, then this file. Owned rows
(streams, multistream targets, webhooks, signing keys) carry ``owner_key_id``: the API key that
created them (None: the operator's). The usage ledger's hourly rollups (``usage_hourly``), the
plans and the billing windows sent were added by ``v0004_usage_plans``; the usage batches added
(``usage_batches``: each flush added once) by ``v0005_usage_batches``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "METADATA",
    "api_keys",
    "audit_log",
    "billing_windows",
    "multistream_targets",
    "plans",
    "sessions",
    "signing_keys",
    "streams",
    "usage_batches",
    "usage_hourly",
    "webhook_deliveries",
    "webhooks",
]

METADATA = sa.MetaData()

Millis = sa.BigInteger  # unix milliseconds
# SQLite autoincrements only an INTEGER PRIMARY KEY
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counters() -> list[sa.Column[int] | sa.Column[float]]:
    return [
        sa.Column("source_segments", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source_segments_duration", sa.Float, nullable=False, server_default="0"),
        sa.Column("transcoded_segments", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transcoded_segments_duration", sa.Float, nullable=False, server_default="0"),
        sa.Column("source_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transcoded_bytes", sa.BigInteger, nullable=False, server_default="0"),
    ]


api_keys = sa.Table(
    "api_keys",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("lookup_id", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("cors_origins", sa.JSON, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis),
    sa.Column("revoked_at", Millis),
    sa.Column("last_used_at", Millis),
    sa.Column("plan_id", sa.Text),  # None: the default plan
    sa.UniqueConstraint("lookup_id", name="uq_api_keys_lookup_id"),
)

streams = sa.Table(
    "streams",
    METADATA,
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
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("last_seen", Millis),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("owner_key_id", sa.Text),
    *_counters(),
    sa.UniqueConstraint("stream_key", name="uq_streams_stream_key"),
    sa.UniqueConstraint("playback_id", name="uq_streams_playback_id"),
    sa.Index("ix_streams_created_at", "created_at", "id"),
    sa.Index("ix_streams_name", "name"),
    sa.Index("ix_streams_is_active", "is_active"),
    sa.Index("ix_streams_owner", "owner_key_id", "created_at", "id"),
)

sessions = sa.Table(
    "sessions",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "stream_id",
        sa.Text,
        sa.ForeignKey("streams.id", ondelete="CASCADE", name="fk_sessions_stream_id"),
        nullable=False,
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("ended_at", Millis),
    sa.Column("recording_url", sa.Text),
    *_counters(),
    sa.Column("last_seen", Millis),
    sa.Column("record", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("node", sa.Text),
    sa.Index("ix_sessions_stream_id", "stream_id", "created_at"),
)

# Studio's /multistream/target: where streams may also be pushed (the URL holds a secret key)
multistream_targets = sa.Table(
    "multistream_targets",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("owner_key_id", sa.Text),
    sa.Index("ix_multistream_targets_created_at", "created_at", "id"),
    sa.Index("ix_multistream_targets_owner", "owner_key_id", "created_at", "id"),
)

webhooks = sa.Table(
    "webhooks",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("shared_secret", sa.Text),
    sa.Column(
        "stream_id",
        sa.Text,
        sa.ForeignKey("streams.id", ondelete="CASCADE", name="fk_webhooks_stream_id"),
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("last_failure", sa.JSON),
    sa.Column("last_triggered_at", Millis),
    sa.Column("owner_key_id", sa.Text),
    sa.Index("ix_webhooks_owner", "owner_key_id", "created_at", "id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "webhook_id",
        sa.Text,
        sa.ForeignKey("webhooks.id", ondelete="CASCADE", name="fk_webhook_deliveries_webhook_id"),
        nullable=False,
    ),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Millis),
    sa.Column("delivered_at", Millis),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Index("ix_webhook_deliveries_due", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
)

signing_keys = sa.Table(
    "signing_keys",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("owner_key_id", sa.Text),
    sa.Index("ix_signing_keys_owner", "owner_key_id", "created_at", "id"),
)

audit_log = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("at", Millis, nullable=False),
    sa.Column("actor_key_id", sa.Text),
    sa.Column("ip", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text),
    sa.Column("target_id", sa.Text),
    sa.Column("details", sa.JSON),
)


_LIMITS = (
    "rate_limit", "burst_limit", "daily_quota", "monthly_quota", "stream_minutes_daily",
    "stream_minutes_monthly", "live_ai_minutes_daily", "live_ai_minutes_monthly",
    "max_concurrent_streams",
)  # fmt: skip
PLAN_PRICES = (
    "price_per_transcoded_minute",
    "price_per_live_ai_minute",
    "price_per_delivered_minute",
)
USAGE_SUMS = ("quantity", "ms", "pixels", "wei", "charge_micros")
USAGE_KEY = ("hour", "key_id", "stream_id", "session", "orchestrator", "kind", "detail")

# plans: limits and prices; api_keys.plan_id names one (None: the default plan)
plans = sa.Table(
    "plans",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    *(sa.Column(name, sa.BigInteger) for name in _LIMITS),  # None: unlimited
    *(sa.Column(name, sa.Text, nullable=False) for name in PLAN_PRICES),  # exact decimals
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

# the usage ledger: one row per hour, key, stream, session, orchestrator, kind and rendition or
# pipeline:model; flushes add to it (atomic increments). key_id "" is the operator's (no key).
usage_hourly = sa.Table(
    "usage_hourly",
    METADATA,
    sa.Column("hour", Millis, primary_key=True),  # start of the UTC hour
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("stream_id", sa.Text, primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("orchestrator", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("detail", sa.Text, primary_key=True),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in USAGE_SUMS),
    sa.Column("wei_rate", sa.Text, nullable=False),  # currency per ETH the cost is taken at
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Index("ix_usage_hourly_key", "key_id", "hour"),
)

# the ledger's flushes added to usage_hourly, recorded in the same transaction: a retried flush
# whose id is here was written before (its writer saw an error) and is skipped; pruned after a day
usage_batches = sa.Table(
    "usage_batches",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("recorded_at", Millis, nullable=False),
    sa.Index("ix_usage_batches_recorded_at", "recorded_at"),
)

# closed hours pushed to the billing webhook (sent once; retried until sent)
billing_windows = sa.Table(
    "billing_windows",
    METADATA,
    sa.Column("window_from", Millis, primary_key=True, autoincrement=False),
    sa.Column("window_to", Millis, nullable=False),
    sa.Column("sent_at", Millis),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
)
