"""The billing webhook: each closed hour's usage, POSTed once in NaaP's usage-push shape.

    {"window": {"from": ms, "to": ms}, "sessions", "tickets", "feeWei", "networkFeeUsdMicros",
     "byCapability": {"live-video-to-video:noop": {"seconds", "pixels"}, ...}}

After each ledger flush (``push_closed``), the closed hours of the last ``lookback`` (24) that
had usage and were not sent yet are POSTed, oldest first. A window is recorded in the store when
it was answered 2xx and never sent again (deduplicated across restarts); a failure is recorded
and the window retried at the next call. An hour counts as closed once a flush after its end
has run (``grace``: one flush interval), so its last events are in the rows sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

from ..clock import Clock
from ..errors import WebhookUnreachable
from ..webhook import JsonPoster
from .ledger import HOUR_MS, UsageLedger
from .store import Store, Stream
from .usage_report import usage_push

__all__ = ["BillingPush", "open_ledger"]

log = logging.getLogger("mediagw.billing")


class BillingPush:
    def __init__(
        self,
        store: Store,
        url: str,
        *,
        rate: Decimal,
        grace_ms: int,
        lookback: int = 24,
        poster: JsonPoster | None = None,
        now_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.rate = rate
        self.grace_ms = grace_ms
        self.lookback = lookback
        self.now_ms = now_ms
        self.poster = poster or JsonPoster(url, timeout=10.0, max_body=64 * 1024)
        self.sent = 0
        self.failed = 0

    async def push_closed(self) -> None:
        """POST every closed, unsent hour of the lookback that had usage."""
        closed_before = (self.now_ms() - self.grace_ms) // HOUR_MS * HOUR_MS
        first = closed_before - self.lookback * HOUR_MS
        rows = await self.store.usage(first, closed_before)
        hours = sorted({r.hour for r in rows})
        for hour in hours:
            if await self.store.billing_window_sent(hour):
                continue
            end = hour + HOUR_MS
            doc = usage_push([r for r in rows if r.hour == hour], hour, end, rate=self.rate)
            error: str | None = None
            try:
                status, _ = await self.poster.post(doc)
                if not 200 <= status < 300:
                    error = f"answered {status}"
            except WebhookUnreachable as exc:
                error = str(exc)
            await self.store.record_billing_attempt(
                hour, end, self.now_ms(), sent=error is None, error=error
            )
            if error is None:
                self.sent += 1
            else:
                self.failed += 1
                log.warning("billing push failed; retried", extra={"window": hour, "error": error})

    async def close(self) -> None:
        await self.poster.close()


def open_ledger(
    store: Store,
    *,
    wei_rate: Decimal,
    interval: float,
    billing_url: str,
    clock: Clock,
    before_flush: Callable[[], None] | None = None,
    granted: Mapping[str, Stream] | None = None,
) -> tuple[UsageLedger, BillingPush | None]:
    """The gateway's ledger, flushing every ``interval`` seconds (started), and its billing
    push after each flush when ``billing_url`` is set."""
    billing = None
    if billing_url:
        billing = BillingPush(
            store,
            billing_url,
            rate=wei_rate,
            grace_ms=round(interval * 1000),
            now_ms=lambda: int(clock.wall() * 1000),
        )
    ledger = UsageLedger(
        store,
        wei_rate=wei_rate,
        interval=interval,
        clock=clock,
        before_flush=before_flush,
        after_flush=billing.push_closed if billing is not None else None,
        granted=granted,
    )
    ledger.start()
    return ledger, billing
