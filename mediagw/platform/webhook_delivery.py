"""``WebhookDispatcher``: sends the webhook outbox, in the background, off the media path.

A task claims due deliveries from the store (a lease: see ``store/outbox.py``, so several
gateway nodes on one database never send the same delivery at once) and POSTs each one
(``webhook_wire``: Studio's body and ``Livepeer-Signature``). It wakes when ``emit`` queues
something and polls every ``poll_interval`` seconds for what other nodes queued, what was queued
before a restart, and retries that came due.

- At most one delivery per webhook in flight on a node (a webhook's events go out in order while
  its endpoint answers), at most ``concurrency`` in all, and each call ends after ``timeout``
  seconds: a slow or dead endpoint holds one slot, never another webhook's deliveries.
- A 2xx answer delivers. Anything else (another status, no answer, a refused address) is a
  failed attempt, retried after ``RetryPolicy``'s back-off: 5 s, 10 s, 20 s ... doubling up to
  10 min, each stretched by up to 25 % at random (jitter), until the next attempt would come more
  than 24 h after the event: then the delivery is given up (it stays in the log). A retried
  event may reach the endpoint after a later event of the same webhook.
- Delivery is at least once: a node that stops mid-call leaves the delivery leased, and it is
  sent again when the lease runs out. Receivers de-duplicate by the body's ``id``.
- Each attempt is recorded (time, URL, duration, status, error, the first KB of the answer,
  the signature header) in the delivery's log, and on the webhook (``lastTriggeredAt``,
  ``lastFailure``). The URL is checked again before each call, and unless private webhooks are
  allowed every address a name resolves to is checked before connecting (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import SYSTEM, Clock
from ..destinations import check_url, refusal
from ..errors import InvalidInput, StoreError, WebhookUnreachable
from ..metrics import NULL_METRICS, Metrics
from ..webhook import JsonPoster
from .store import Delivery, Store, Webhook
from .webhook_wire import body_doc, encode, request_headers, sign
from .webhooks import KEEP_ATTEMPTS, WebhookService

__all__ = ["RetryPolicy", "WebhookDispatcher"]

log = logging.getLogger(__name__)

MAX_ANSWER = 1024  # bytes of an endpoint's answer kept in the log
MAX_POSTERS = 256  # HTTP sessions kept open (one per webhook recently called)


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again: ``base`` seconds after the first failure, times
    ``factor`` after each further one, at most ``cap``; each delay stretched by up to
    ``jitter`` (a fraction) at random. Given up when the next attempt would come more than
    ``max_age`` seconds after the event, or after ``max_attempts`` attempts (None: no limit)."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 600.0
    jitter: float = 0.25
    max_age: float = 24 * 3600.0
    max_attempts: int | None = None

    def delay(self, failures: int, r: float) -> float:
        """Seconds before the next attempt after ``failures`` failed ones; ``r`` in [0, 1)."""
        return min(self.cap, self.base * self.factor ** (failures - 1)) * (1 + self.jitter * r)

    def next_attempt_at(self, created_at: int, failures: int, now: int, r: float) -> int | None:
        """The next attempt's time (ms), or None to give up."""
        if self.max_attempts is not None and failures >= self.max_attempts:
            return None
        at = now + int(self.delay(failures, r) * 1000)
        return None if at - created_at > self.max_age * 1000 else at


class WebhookDispatcher:
    """Sends ``store``'s webhook deliveries (see the module doc); ``start()`` then
    ``await close()``. ``service`` wakes it on each emit and says whether private addresses
    may be called; ``lease`` (s) must outlast one call (default: 3 timeouts + 30 s)."""

    def __init__(
        self,
        store: Store,
        service: WebhookService,
        *,
        clock: Clock = SYSTEM,
        concurrency: int = 8,
        timeout: float = 10.0,
        poll_interval: float = 1.0,
        retry: RetryPolicy = RetryPolicy(),
        lease: float | None = None,
        rand: Callable[[], float] = random.random,
        grace: float = 2.0,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.service = service
        self.clock = clock
        self.concurrency = concurrency
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.retry = retry
        self.lease_ms = int((lease if lease is not None else 3 * timeout + 30) * 1000)
        self.grace = grace
        self.metrics = metrics  # each attempt: delivered or failed
        self._refuse = None if service.allow_private else refusal
        self._rand = rand
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._posters: OrderedDict[str, JsonPoster] = OrderedDict()
        self._closing_posters: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._store_failing = False
        service.subscribe(self.wake)

    def start(self) -> None:
        """Start sending (call once, inside the event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop: calls in flight get ``grace`` seconds to finish, then are cancelled (their
        deliveries are sent again, by this or another node, when their lease runs out)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = set(self._inflight.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for poster in self._posters.values():
            await poster.close()
        self._posters.clear()
        await asyncio.gather(*self._closing_posters, return_exceptions=True)

    def _now_ms(self) -> int:
        return int(self.clock.wall() * 1000)

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                await self._claim()
                self._store_failing = False
            except StoreError as exc:
                if not self._store_failing:  # once per outage, not once per poll
                    log.warning("webhooks: cannot read the outbox: %s", exc)
                self._store_failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _claim(self) -> None:
        while not self._closing and (free := self.concurrency - len(self._inflight)) > 0:
            rows = await self.store.claim_deliveries(
                self._now_ms(),
                lease_ms=self.lease_ms,
                limit=free,
                exclude_webhooks=tuple(self._inflight),
            )
            for row in rows:
                task = asyncio.create_task(self._deliver(row))
                self._inflight[row.webhook_id] = task
                task.add_done_callback(functools.partial(self._done, row.webhook_id))
            if len(rows) < free:
                return

    def _done(self, webhook_id: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(webhook_id, None)
        self._wake.set()

    async def _deliver(self, row: Delivery) -> None:
        try:
            hook = await self.store.get_webhook(row.webhook_id)
            if hook is not None:  # else deleted, with its deliveries
                await self._attempt(row, hook)
        except StoreError as exc:
            log.warning("webhooks: delivery %s not recorded (sent again later): %s", row.id, exc)
        except Exception:
            log.exception("webhooks: delivery %s failed unexpectedly", row.id)

    async def _attempt(self, row: Delivery, hook: Webhook) -> None:
        assert row.next_attempt_at is not None  # claimed: the lease
        at = self._now_ms()
        body = encode(body_doc(row, at))
        signature = None if hook.shared_secret is None else sign(hook.shared_secret, body, at)
        status: int | None = None
        answer = b""
        error: str | None = None
        poster = None
        try:
            check_url(hook.url, allow_private=self.service.allow_private)
            poster = self._poster(hook)
            status, answer = await poster.post_bytes(body, request_headers(signature))
        except InvalidInput as exc:
            error = f"refused: {exc}"
        except WebhookUnreachable as exc:
            error = str(exc)
        delivered = status is not None and 200 <= status < 300
        self.metrics.webhook_attempt(delivered)
        if status is not None and not delivered:
            error = f"HTTP {status}"
        response = answer[:MAX_ANSWER].decode("utf-8", "replace")
        attempt: dict[str, Any] = {
            "at": at,
            "url": hook.url,
            "durationMs": round(poster.last_ms) if poster is not None else 0,
            "statusCode": status,
            "error": error,
            "response": response,
            "signature": signature,
        }
        kept = list(row.payload.get("attempts") or [])[-(KEEP_ATTEMPTS - 1) :]
        payload = {**row.payload, "attempts": [*kept, attempt]}
        failures = row.attempts + 1
        next_at = None
        failure = None
        if not delivered:
            next_at = self.retry.next_attempt_at(row.created_at, failures, at, self._rand())
            failure = {"timestamp": at, "error": error, "statusCode": status}
            if response:
                failure["response"] = response
        recorded = await self.store.record_attempt(
            row.id,
            row.next_attempt_at,
            at,
            payload=payload,
            status_code=status,
            error=error,
            delivered=delivered,
            next_attempt_at=next_at,
            last_failure=failure,
        )
        if not recorded:
            log.warning("webhooks: delivery %s outlived its lease (claimed again)", row.id)
        elif not delivered:
            then = "given up" if next_at is None else f"retry in {(next_at - at) / 1000:.0f} s"
            log.info("webhooks: %s to webhook %s failed (%s): %s", row.event, hook.id, error, then)

    def _poster(self, hook: Webhook) -> JsonPoster:
        poster = self._posters.get(hook.id)
        if poster is not None and poster.url == hook.url:
            self._posters.move_to_end(hook.id)
            return poster
        if poster is not None:
            self._close_later(self._posters.pop(hook.id))
        poster = JsonPoster(
            hook.url,
            timeout=self.timeout,
            max_body=MAX_ANSWER,
            follow_redirects=False,  # a redirect could lead anywhere, a private address too
            refuse_address=self._refuse,
        )
        self._posters[hook.id] = poster
        for old_id in list(self._posters):
            if len(self._posters) <= MAX_POSTERS:
                break
            if old_id not in self._inflight:
                self._close_later(self._posters.pop(old_id))
        return poster

    def _close_later(self, poster: JsonPoster) -> None:
        task = asyncio.create_task(poster.close())
        self._closing_posters.add(task)
        task.add_done_callback(self._closing_posters.discard)
