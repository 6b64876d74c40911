"""``Store``: what the platform layer needs from its database, as a small typed protocol.

One implementation, ``SqlStore`` (SQLite or PostgreSQL); tests of the platform may pass another.
Every list is capped (``limit`` in 1..MAX_LIMIT, else StoreBadInput); creating a row whose
unique field is taken raises StoreConflict, one that refers to a missing row StoreNotFound.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from ..plans import Plan
from .rows import (
    ApiKey,
    AuditEntry,
    Counters,
    Delivery,
    MultistreamTarget,
    Page,
    Session,
    SigningKey,
    Stream,
    UsageBatch,
    UsageRow,
    Webhook,
)

__all__ = ["Store"]


class Store(Protocol):
    async def close(self) -> None:
        """Release the database; the store cannot be used afterwards."""

    async def create_stream(self, stream: Stream) -> Stream:
        """Store a new stream (unique: id, stream key, playback id)."""

    async def get_stream(self, stream_id: str) -> Stream | None:
        """The stream with this id, or None."""

    async def stream_by_key(self, stream_key: str) -> Stream | None:
        """The stream published with this stream key, or None."""

    async def stream_by_playback_id(self, playback_id: str) -> Stream | None:
        """The stream played back with this playback id, or None."""

    async def list_streams(
        self,
        *,
        name: str | None = None,
        is_active: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        owner_key_id: str | None = None,
    ) -> Page[Stream]:
        """Streams, newest first, filtered by name, activity and owner (None: any); page on
        with ``cursor``."""

    async def update_stream(self, stream_id: str, **changes: Any) -> Stream | None:
        """Change fields of a stream; the stream after, or None if there is none."""

    async def delete_stream(self, stream_id: str) -> bool:
        """Delete a stream with its sessions and webhooks; False if there was none."""

    async def create_session(self, session: Session) -> Session:
        """Store a new session of an existing stream."""

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or None."""

    async def end_session(
        self, session_id: str, ended_at: int, recording_url: str | None = None
    ) -> Session | None:
        """Mark a session ended; the session after, or None if there is none."""

    async def list_sessions(self, stream_id: str, *, limit: int = 100) -> tuple[Session, ...]:
        """A stream's sessions, newest first."""

    async def start_session(self, session: Session) -> Stream:
        """Store a new session and mark its stream active and seen (one transaction); the
        stream after."""

    async def add_counters(
        self, stream_id: str, session_id: str | None, deltas: Counters, at: int
    ) -> None:
        """Add ``deltas`` to a stream's counters and its session's (atomic increments, never
        read-modify-write); both were last seen at ``at``."""

    async def add_counters_many(
        self, updates: Sequence[tuple[str, str | None, Counters]], at: int
    ) -> None:
        """``add_counters`` for each (stream id, session id, deltas), in one transaction."""

    async def finish_session(
        self,
        stream_id: str,
        session_id: str,
        deltas: Counters,
        at: int,
        recording_url: str | None = None,
    ) -> tuple[Session, Stream] | None:
        """The last counters, the session ended at ``at``, the stream inactive (one
        transaction); the session and its stream after, or None."""

    async def end_stale_sessions(self) -> tuple[str, ...]:
        """After an unclean stop: active streams become inactive, open sessions end when last
        seen; the ids of the streams that were active."""

    async def open_sessions(self, stream_id: str | None = None) -> tuple[Session, ...]:
        """The sessions not ended (of one stream, or all), oldest first."""

    async def end_open_session(self, session: Session) -> bool:
        """End a session left open by its node when it was last seen, its stream inactive
        unless another session of it is open; False if it had ended already."""

    async def create_multistream_target(self, target: MultistreamTarget) -> MultistreamTarget:
        """Store a new multistream target."""

    async def get_multistream_target(self, target_id: str) -> MultistreamTarget | None:
        """The multistream target with this id, or None."""

    async def list_multistream_targets(
        self, *, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[MultistreamTarget, ...]:
        """Multistream targets, newest first; with ``owner_key_id``, only that key's."""

    async def delete_multistream_target(self, target_id: str) -> bool:
        """Delete a multistream target; False if there was none."""

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Store a new API key (unique: id, lookup id)."""

    async def api_key_by_lookup(self, lookup_id: str) -> ApiKey | None:
        """The API key with this lookup id, revoked or not, or None."""

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The API key with this id, revoked or not, or None."""

    async def list_api_keys(self, *, limit: int = 100) -> tuple[ApiKey, ...]:
        """API keys, newest first."""

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        """Revoke a key (the first revocation time is kept); False if there is no such key."""

    async def touch_api_key(self, key_id: str, at: int) -> None:
        """Record when a key was last used."""

    async def admin_key_ids(self) -> frozenset[str]:
        """The ids of the keys with the ``admin`` scope, revoked or not (the operator's)."""

    async def transfer_ownership(self, from_key_id: str, to_key_id: str) -> int:
        """Give every stream, multistream target, webhook and signing key of one key to
        another (one transaction); how many rows changed."""

    async def create_webhook(self, webhook: Webhook) -> Webhook:
        """Store a new webhook (for one existing stream, or for all)."""

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        """The webhook with this id, or None."""

    async def list_webhooks(
        self, *, stream_id: str | None = None, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[Webhook, ...]:
        """Webhooks, newest first; with ``stream_id``, those firing for it (its own, global);
        with ``owner_key_id``, only that key's."""

    async def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook | None:
        """Change a webhook's name, url, events, shared_secret or stream_id; None if none."""

    async def delete_webhook(self, webhook_id: str) -> bool:
        """Delete a webhook with its deliveries; False if there was none."""

    async def enqueue_delivery(self, delivery: Delivery) -> Delivery:
        """Queue an event for a webhook (the outbox), due at once unless told otherwise."""

    async def due_deliveries(self, now: int, *, limit: int = 100) -> tuple[Delivery, ...]:
        """Deliveries to attempt at ``now``, the oldest due first."""

    async def mark_delivered(self, delivery_id: str, at: int, status_code: int) -> None:
        """Record a successful attempt (the delivery leaves the queue)."""

    async def mark_failed(
        self,
        delivery_id: str,
        at: int,
        *,
        error: str,
        status_code: int | None = None,
        next_attempt_at: int | None = None,
    ) -> None:
        """Record a failed attempt, retried at ``next_attempt_at`` (None: given up)."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id, or None."""

    async def claim_deliveries(
        self,
        now: int,
        *,
        lease_ms: int,
        limit: int = 100,
        exclude_webhooks: Collection[str] = (),
    ) -> tuple[Delivery, ...]:
        """Lease due deliveries for sending: at most one per webhook (its oldest due), none of
        ``exclude_webhooks``; each is due again at ``now + lease_ms`` unless recorded before.
        Two callers at once get disjoint rows."""

    async def record_attempt(
        self,
        delivery_id: str,
        claimed_until: int,
        at: int,
        *,
        payload: dict[str, Any],
        status_code: int | None = None,
        error: str | None = None,
        delivered: bool = False,
        next_attempt_at: int | None = None,
        last_failure: dict[str, Any] | None = None,
    ) -> bool:
        """Record an attempt on a delivery leased until ``claimed_until``: its new payload,
        status, and retry time (None with ``delivered`` False: given up); the webhook's
        ``last_triggered_at`` and ``last_failure``. False, changing nothing, if the lease was
        lost (it ran out and the delivery was claimed again)."""

    async def list_deliveries(self, webhook_id: str, *, limit: int = 100) -> tuple[Delivery, ...]:
        """A webhook's delivery log, newest first."""

    async def create_signing_key(self, key: SigningKey) -> SigningKey:
        """Store a new playback signing key."""

    async def get_signing_key(self, key_id: str) -> SigningKey | None:
        """The signing key with this id, or None."""

    async def list_signing_keys(
        self, *, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[SigningKey, ...]:
        """Signing keys, newest first; with ``owner_key_id``, only that key's."""

    async def signing_key_by_public_key(self, public_key: str) -> SigningKey | None:
        """The signing key with this public key (as stored), disabled or not, or None."""

    async def update_signing_key(
        self, key_id: str, *, name: str | None = None, disabled: bool | None = None
    ) -> SigningKey | None:
        """Rename and/or disable (enable) a signing key; the key after, or None if there is none."""

    async def delete_signing_key(self, key_id: str) -> bool:
        """Delete a signing key; False if there was none."""

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append to the audit log; the entry with its id."""

    async def list_audit(
        self, *, limit: int = 100, before: int | None = None
    ) -> tuple[AuditEntry, ...]:
        """The newest audit entries (with an id below ``before``), newest first."""

    async def create_plan(self, plan: Plan) -> Plan:
        """Store a new plan (unique: id)."""

    async def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""

    async def list_plans(self) -> tuple[Plan, ...]:
        """Every plan, oldest first."""

    async def update_plan(self, plan_id: str, **changes: Any) -> Plan | None:
        """Change fields of a plan; the plan after, or None if there is none."""

    async def set_key_plan(self, key_id: str, plan_id: str | None) -> bool:
        """Put a key on a plan (None: the default); False if there is no such key."""

    async def plan_of_key(self, key_id: str) -> Plan | None:
        """The key's plan, else the stored default plan, else None."""

    async def add_usage(self, batches: Sequence[UsageBatch], *, at: int) -> frozenset[str]:
        """Add each batch's rollups to their hours' rows (atomic increments, one transaction),
        skipping a batch added before (its id is recorded for ``USAGE_BATCH_RETENTION_MS``
        from ``at``); the ids of the batches added now."""

    async def usage(
        self, start: int, end: int, *, key_id: str | None = None
    ) -> tuple[UsageRow, ...]:
        """Hours in [start, end), summed over sessions; with ``key_id``, only that key's."""

    async def billing_window_sent(self, start: int) -> bool:
        """Whether the billing window starting at ``start`` was pushed already."""

    async def record_billing_attempt(
        self, start: int, end: int, at: int, *, sent: bool, error: str | None = None
    ) -> None:
        """Record a push of the billing window [start, end): sent, or failed (retried)."""
