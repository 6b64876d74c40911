"""Studio's webhooks: what the ``/api/webhook`` routes and the streams service call.

``WebhookService`` validates and stores webhooks (create, get, list, update = Studio's PUT,
delete), reads their delivery log, re-sends a logged event, and ``emit``s events: one queued
delivery per webhook that listens for the event and fires for the stream (its own webhooks and
the global ones). Emitting only writes to the store (the outbox); ``WebhookDispatcher``
(``webhook_delivery``) sends. Callers never wait for an endpoint.

Webhooks are owned (``platform/tenancy``): the operations take the ``tenant`` acting (default:
the operator, who sees all); a webhook may name only a stream its tenant sees; a global webhook
fires for its owner's streams only, unless it is the operator's (an admin key's, or ownerless),
which fires for every stream.

``webhook_json`` and ``delivery_json`` render rows as Studio's JSON: a webhook without its
``sharedSecret`` (write-only), a log entry without the secret (only the signature it made).

A delivery row's ``payload`` holds ``{"stream": ..., "payload": ..., "attempts": [...]}``: the
event's stream document (never its ``streamKey``) and payload, and the last ``KEEP_ATTEMPTS``
attempts (time, URL, duration, status, error, the start of the answer, the signature header).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from ..clock import SYSTEM, Clock
from ..destinations import check_url
from ..errors import InvalidInput, MediaGWError
from .store import MAX_LIMIT, Delivery, Store, Stream, Webhook, stream_or_read
from .tenancy import OPERATOR, Tenant, operators_own
from .webhook_wire import body_doc, encode, request_headers

__all__ = [
    "EVENTS",
    "KEEP_ATTEMPTS",
    "WebhookService",
    "delivery_json",
    "webhook_json",
]

log = logging.getLogger(__name__)

EVENTS = (
    "stream.started",
    "stream.idle",
    "recording.ready",
    "recording.started",
    "recording.waiting",
    "multistream.connected",
    "multistream.error",
    "multistream.disconnected",
    "playback.accessControl",
    "quota.exhausted",  # mediagw's: a plan's quota ended a stream (platform/stream_quota)
)
KEEP_ATTEMPTS = 20  # attempts kept in a delivery's log
MAX_NAME = 200
MAX_SECRET = 512

Rand = Callable[[int], bytes]


def _text(field: str, value: object, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(field, f"{what} must be a string of 1 to {limit} characters")
    return value


def _events(events: object) -> tuple[str, ...]:
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise InvalidInput("events", f"give a list of events: {', '.join(EVENTS)}")
    out: list[str] = []
    for event in events:
        if event not in EVENTS:
            raise InvalidInput("events", f"unknown event {event!r}: use {', '.join(EVENTS)}")
        if event not in out:
            out.append(event)
    if not out:
        raise InvalidInput("events", f"give at least one event: {', '.join(EVENTS)}")
    return tuple(out)


def _uuid7(ms: int, seq: int, rand: Rand) -> str:
    """A UUID (version 7) that sorts by ``ms``, then by ``seq`` within a millisecond."""
    tail = int.from_bytes(rand(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 7 << 76 | (seq & 0xFFF) << 64 | 2 << 62 | tail
    return str(uuid.UUID(int=value))


class WebhookService:
    """Webhooks over ``store`` (see the module doc). ``allow_private`` lets webhooks call
    loopback and private addresses (development, a private network); ``cache_ttl`` is how long
    (s) ``emit`` reuses the list of webhooks it read (changes through this service clear it at
    once; other nodes' changes are seen after ``cache_ttl``)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = SYSTEM,
        allow_private: bool = False,
        cache_ttl: float = 2.0,
        rand: Rand = os.urandom,
    ) -> None:
        self.store = store
        self.clock = clock
        self.allow_private = allow_private
        self.cache_ttl = cache_ttl
        self._rand = rand
        self._seq = 0
        # when read, the webhooks, and the admin keys (whose global webhooks fire for all)
        self._cache: tuple[float, tuple[Webhook, ...], frozenset[str]] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (not a coroutine) whenever deliveries are queued."""
        self._listeners.append(callback)

    def now_ms(self) -> int:
        return int(self.clock.wall() * 1000)

    # the API's operations

    async def create(
        self,
        name: object,
        url: object,
        events: object,
        shared_secret: object = None,
        stream_id: object = None,
        *,
        tenant: Tenant = OPERATOR,
    ) -> Webhook:
        """A new webhook of ``tenant``; InvalidInput naming the field if any is invalid."""
        fields = await self._validated(name, url, events, shared_secret, stream_id, tenant)
        hook = Webhook(
            id=str(uuid.UUID(bytes=self._rand(16), version=4)),
            created_at=self.now_ms(),
            owner_key_id=tenant.key_id,
            **fields,
        )
        await self.store.create_webhook(hook)
        self._cache = None
        return hook

    async def get(self, webhook_id: str, *, tenant: Tenant = OPERATOR) -> Webhook | None:
        """The webhook, if ``tenant`` sees it."""
        hook = await self.store.get_webhook(webhook_id)
        return hook if hook is not None and tenant.sees(hook.owner_key_id) else None

    async def list(
        self, stream_id: str | None = None, limit: int = 100, *, tenant: Tenant = OPERATOR
    ) -> tuple[Webhook, ...]:
        """``tenant``'s webhooks, newest first; with ``stream_id``, those firing for it (its
        own, global; none for a stream ``tenant`` does not see)."""
        if stream_id is not None:
            stream = await self.store.get_stream(stream_id)
            if stream is None or not tenant.sees(stream.owner_key_id):
                return ()
        return await self.store.list_webhooks(
            stream_id=stream_id, limit=limit, owner_key_id=tenant.only
        )

    async def update(
        self,
        webhook_id: str,
        name: object,
        url: object,
        events: object,
        shared_secret: object = None,
        stream_id: object = None,
        *,
        tenant: Tenant = OPERATOR,
    ) -> Webhook | None:
        """Studio's PUT: replace name, url, events, sharedSecret and streamId (an omitted
        secret or stream is cleared); None if there is no such webhook (of ``tenant``)."""
        if await self.get(webhook_id, tenant=tenant) is None:
            return None
        fields = await self._validated(name, url, events, shared_secret, stream_id, tenant)
        hook = await self.store.update_webhook(webhook_id, **fields)
        self._cache = None
        return hook

    async def delete(self, webhook_id: str, *, tenant: Tenant = OPERATOR) -> bool:
        """Delete a webhook and its log; False if there was none (of ``tenant``)."""
        if await self.get(webhook_id, tenant=tenant) is None:
            return False
        deleted = await self.store.delete_webhook(webhook_id)
        self._cache = None
        return deleted

    async def log(
        self, webhook_id: str, limit: int = 100, *, tenant: Tenant = OPERATOR
    ) -> tuple[Delivery, ...] | None:
        """The webhook's deliveries, newest first (render with ``delivery_json``); None if there
        is no such webhook (of ``tenant``)."""
        if await self.get(webhook_id, tenant=tenant) is None:
            return None
        return await self.store.list_deliveries(webhook_id, limit=limit)

    async def resend(
        self, webhook_id: str, delivery_id: str, *, tenant: Tenant = OPERATOR
    ) -> Delivery | None:
        """Queue a logged delivery's event again, as a new delivery; None if the webhook (of
        ``tenant``) or that delivery of it does not exist."""
        if await self.get(webhook_id, tenant=tenant) is None:
            return None
        old = await self.store.get_delivery(delivery_id)
        if old is None or old.webhook_id != webhook_id:
            return None
        doc = old.payload
        delivery = self._delivery(webhook_id, old.event, doc.get("stream"), doc.get("payload"))
        queued = await self.store.enqueue_delivery(delivery)
        self._notify()
        return queued

    # events

    async def emit(
        self,
        event: str,
        *,
        stream_id: str | None,
        stream_doc: dict[str, Any] | None,
        payload: dict[str, Any] | None = None,
        stream_row: Stream | None = None,
    ) -> tuple[Delivery, ...]:
        """Queue ``event`` for every webhook listening for it that fires for ``stream_id``: its
        own, the global ones of the stream's owner, and the operator's global ones (with no
        stream, or a stream gone, the operator's global ones). ``stream_doc`` is the stream's
        Studio JSON (a ``streamKey`` in it is dropped). ``stream_row``: the stream's stored row
        when the caller has just read it (its owner is not read again). Only the store is
        awaited, and only when some webhook listens for ``event``."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        hooks, admin_ids = await self._hooks()
        listening = [hook for hook in hooks if event in hook.events]
        if not listening:
            return ()
        stream = None
        if stream_doc is not None:
            stream = {k: v for k, v in stream_doc.items() if k != "streamKey"}
        owner = None
        if stream_id is not None and any(hook.stream_id is None for hook in listening):
            row = await stream_or_read(self.store, stream_id, stream_row)
            owner = row.owner_key_id if row is not None else None
        queued = []
        for hook in listening:
            if hook.stream_id is None:
                fires = hook.owner_key_id == owner or operators_own(hook.owner_key_id, admin_ids)
            else:
                fires = hook.stream_id == stream_id
            if fires:
                delivery = self._delivery(hook.id, event, stream, payload)
                queued.append(await self.store.enqueue_delivery(delivery))
        if queued:
            self._notify()
        return tuple(queued)

    def emit_soon(
        self,
        event: str,
        *,
        stream_id: str | None,
        stream_doc: dict[str, Any] | None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """``emit`` in a background task, for code that must not wait even for the store
        (a failure is logged); ``close`` waits for these tasks."""
        task = asyncio.create_task(
            self.emit(event, stream_id=stream_id, stream_doc=stream_doc, payload=payload)
        )
        self._tasks.add(task)
        task.add_done_callback(self._emitted)

    def _emitted(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and isinstance(exc := task.exception(), MediaGWError):
            log.warning("webhook event not queued: %s", exc)
        elif not task.cancelled() and exc is not None:
            log.error("webhook event not queued", exc_info=exc)

    async def close(self) -> None:
        """Wait for the events ``emit_soon`` is still queueing."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    # internals

    async def _validated(
        self,
        name: object,
        url: object,
        events: object,
        secret: object,
        stream_id: object,
        tenant: Tenant,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "name": _text("name", name, MAX_NAME, "name"),
            "url": check_url(url, allow_private=self.allow_private),
            "events": _events(events),
            "shared_secret": None,
            "stream_id": None,
        }
        if secret is not None:
            fields["shared_secret"] = _text("sharedSecret", secret, MAX_SECRET, "sharedSecret")
        if stream_id is not None:
            stream = await self.store.get_stream(stream_id) if isinstance(stream_id, str) else None
            if stream is None or not tenant.sees(stream.owner_key_id):
                raise InvalidInput(
                    "streamId",
                    "no stream has this id: give an existing stream's id, or none "
                    "for a webhook that fires for every stream",
                )
            fields["stream_id"] = stream_id
        return fields

    async def _hooks(self) -> tuple[tuple[Webhook, ...], frozenset[str]]:
        now = self.clock.monotonic()
        if self._cache is None or now - self._cache[0] >= self.cache_ttl:
            hooks = await self.store.list_webhooks(limit=MAX_LIMIT)
            self._cache = (now, hooks, await self.store.admin_key_ids())
        return self._cache[1], self._cache[2]

    def _delivery(
        self, webhook_id: str, event: str, stream: Any, payload: dict[str, Any] | None
    ) -> Delivery:
        now = self.now_ms()
        self._seq += 1
        return Delivery(
            id=_uuid7(now, self._seq, self._rand),
            webhook_id=webhook_id,
            event=event,
            payload={"stream": stream, "payload": payload or {}, "attempts": []},
            created_at=now,
        )

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()


def _present(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """A webhook as Studio's JSON, without ``sharedSecret``; absent values are left out."""
    status: dict[str, Any] = {}
    if (failure := hook.last_failure) is not None:
        status["lastFailure"] = _present(
            {
                "timestamp": failure.get("timestamp", failure.get("at")),
                "error": failure.get("error"),
                "statusCode": failure.get("statusCode"),
                "response": failure.get("response"),
            }
        )
    if hook.last_triggered_at is not None:
        status["lastTriggeredAt"] = hook.last_triggered_at
    return _present(
        {
            "id": hook.id,
            "name": hook.name,
            "url": hook.url,
            "events": list(hook.events),
            "streamId": hook.stream_id,
            "createdAt": hook.created_at,
            "status": status,
        }
    )


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as a Studio webhook log entry: the last attempt's request (headers without
    any secret, only the signature it carried) and answer; ``success`` once delivered. Our
    additions: ``attempts`` (count), ``nextAttemptAt`` (None: delivered or given up),
    ``error`` and ``attemptLog`` (the last attempts)."""
    attempts = list(delivery.payload.get("attempts") or [])
    entry: dict[str, Any] = {
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "event": delivery.event,
        "createdAt": delivery.created_at,
        "success": delivery.delivered_at is not None,
        "attempts": delivery.attempts,
        "nextAttemptAt": delivery.next_attempt_at,
        "deliveredAt": delivery.delivered_at,
        "error": delivery.error,
        "attemptLog": attempts,
    }
    if attempts:
        last = attempts[-1]
        entry["duration"] = round(last.get("durationMs", 0) / 1000, 3)
        entry["request"] = {
            "url": last.get("url"),
            "method": "POST",
            "headers": request_headers(last.get("signature")),
            "body": encode(body_doc(delivery, last["at"])).decode(),
        }
        if (status := last.get("statusCode")) is not None:
            entry["response"] = {
                "status": status,
                "statusText": _status_text(status),
                "body": last.get("response", ""),
            }
    return _present(entry)
