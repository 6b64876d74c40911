"""The store's rows: frozen dataclasses, one per table, field names equal to column names.

Ids are text chosen by the caller; times are integer unix milliseconds; JSON columns hold plain
JSON values (lists of strings are tuples here). The platform creates a row by building one of
these and handing it to the store, which returns what it stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "MAX_LIMIT",
    "USAGE_BATCH_RETENTION_MS",
    "ApiKey",
    "AuditEntry",
    "Counters",
    "Delivery",
    "MultistreamTarget",
    "Page",
    "Session",
    "SigningKey",
    "Stream",
    "UsageBatch",
    "UsageRow",
    "Webhook",
    "from_row",
    "from_values",
]

MAX_LIMIT = 1000  # the most rows one list call returns
# how long the store remembers a usage batch it added (a batch retried later could count twice)
USAGE_BATCH_RETENTION_MS = 24 * 3_600_000

T = TypeVar("T")
R = TypeVar("R")


def from_row(cls: type[R], row: sa.Row[Any]) -> R:
    """A row dataclass from a result row; JSON lists become tuples where the field is a tuple."""
    return from_values(cls, dict(row._mapping))


def from_values(cls: type[R], values: dict[str, Any]) -> R:
    """``from_row`` from the row's values by column name."""
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if str(f.type).startswith("tuple") and values.get(f.name) is not None:
            values[f.name] = tuple(values[f.name])
    return cls(**values)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``cursor`` back to get the next one (None: no more)."""

    items: tuple[T, ...]
    cursor: str | None = None


@dataclass(frozen=True)
class ApiKey:
    """An API key. The secret itself is never stored: ``secret_hash`` is its hash and
    ``lookup_id`` the public part that finds it."""

    id: str
    name: str
    lookup_id: str
    secret_hash: str
    created_at: int
    scopes: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    plan_id: str | None = None  # None: the default plan


@dataclass(frozen=True, kw_only=True)
class Counters:
    """Segment and byte counters of a stream or one of its sessions."""

    source_segments: int = 0
    source_segments_duration: float = 0.0
    transcoded_segments: int = 0
    transcoded_segments_duration: float = 0.0
    source_bytes: int = 0
    transcoded_bytes: int = 0


COUNTERS = tuple(Counters.__dataclass_fields__)


@dataclass(frozen=True, kw_only=True)
class Stream(Counters):
    """A Studio-style stream: its keys, ladder, options and counters."""

    id: str
    name: str
    stream_key: str
    playback_id: str
    created_at: int
    profiles: list[dict[str, Any]] = field(default_factory=list)
    record: bool = False
    multistream: dict[str, Any] | None = None
    playback_policy: dict[str, Any] | None = None
    suspended: bool = False
    user_tags: dict[str, Any] | None = None
    pipeline: str | None = None
    pipeline_params: dict[str, Any] | None = None
    last_seen: int | None = None
    is_active: bool = False
    owner_key_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Session(Counters):
    """One publish of a stream, from its start to its end."""

    id: str
    stream_id: str
    created_at: int
    ended_at: int | None = None
    recording_url: str | None = None
    last_seen: int | None = None
    record: bool = False  # the stream recorded when this session began
    node: str | None = None  # the gateway node that published it (several nodes: -redisUrl)


@dataclass(frozen=True)
class MultistreamTarget:
    """Where streams may also be pushed (Studio's ``/multistream/target``); ``url`` carries the
    destination's stream key: it is a secret."""

    id: str
    name: str
    url: str
    created_at: int
    disabled: bool = False
    owner_key_id: str | None = None


@dataclass(frozen=True)
class Webhook:
    """An operator's webhook: which events go to which URL (for one stream or all)."""

    id: str
    name: str
    url: str
    created_at: int
    events: tuple[str, ...] = ()
    shared_secret: str | None = None
    stream_id: str | None = None
    last_failure: dict[str, Any] | None = None
    last_triggered_at: int | None = None
    owner_key_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook: queued until delivered, then kept as its log."""

    id: str
    webhook_id: str
    event: str
    payload: dict[str, Any]
    created_at: int
    next_attempt_at: int | None = None  # None once delivered or given up
    attempts: int = 0
    delivered_at: int | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """A public key that verifies signed playback tokens (JWTs)."""

    id: str
    name: str
    public_key: str
    created_at: int
    disabled: bool = False
    owner_key_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which object, and when; ``id`` is given by the store."""

    at: int
    action: str
    actor_key_id: str | None = None
    ip: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    details: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    """Usage of one hour (``hour``: its start) by one key (``""``: nobody's), stream, publish
    session, orchestrator, kind and detail (rendition or ``pipeline:model``). Adding a row adds
    its sums to the stored one. ``wei`` is the cost in whole wei, ``charge_micros`` what the
    key's plan charges in millionths of ``currency``, ``wei_rate`` the currency per ETH used."""

    hour: int
    key_id: str = ""
    stream_id: str = ""
    session: int = 0
    orchestrator: str = ""
    kind: str
    detail: str = ""
    quantity: int = 0
    ms: int = 0
    pixels: int = 0
    wei: int = 0
    charge_micros: int = 0
    wei_rate: str = "0"
    currency: str = "USD"
    updated_at: int = 0


@dataclass(frozen=True)
class UsageBatch:
    """One flush of the usage ledger: its rows, added at most once. ``id`` (unique, e.g. a
    uuid4) stays the same while the batch is retried: the store records it in the transaction
    that adds the rows and skips a batch it has recorded (written before, though its writer saw
    an error). ``created_at``: unix milliseconds the ledger cut it."""

    id: str
    rows: tuple[UsageRow, ...]
    created_at: int
