"""Live payments on one orchestrator (live-ai spec §9.1, §10.6).

Triggered by input segments, at most once per ``interval`` (5 s): the ``LivePaymentSource``
makes the headers (``manifest_id`` = O's ``mid``, the state of the previous call echoed), then
``POST {transcoder}/payment`` with no body. A 200 body is a ``PaymentResult``: its ``info`` is
adopted (new ticket params). The status is checked (go-livepeer's local sender does not).

    source raises NoPaymentNeeded (482)   -> SKIPPED: send nothing this cycle
    source raises NeedsRefresh (480)      -> GetOrchestrator again, retry (at most 4 in a row)
    source raises PriceRejected (481)     -> REJECTED: the caller swaps
    other payment error, 5xx, no answer   -> FAILED (the health monitor counts them)
    HTTP 4xx                              -> REFUSED (the O refuses our payments: swap)

No price (0 or absent) or no payment source: nothing is ever paid (go-livepeer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import aiohttp
from google.protobuf.message import DecodeError

from mediagw.livepeer.proto import net
from mediagw.payments.errors import NeedsRefresh, PaymentError, PriceRejected
from mediagw.payments.live import LivePaymentSource, LiveState, NoPaymentNeeded
from mediagw.pool.prices import price_of
from mediagw.pool.session import OrchSession

from .transport import LiveHTTP

__all__ = ["LivePayer", "PayOutcome", "PaymentCounters"]

log = logging.getLogger("mediagw.live_ai.payments")

MAX_RESULT_BYTES = 1 << 20
MAX_REFRESHES = 4  # go-livepeer gives up after 4 refreshes in a row


class PayOutcome(StrEnum):
    PAID = "paid"
    SKIPPED = "skipped"
    FAILED = "failed"
    REFUSED = "refused"  # HTTP 4xx from the orchestrator
    REJECTED = "rejected"  # price rejected by the payment source (481)


@dataclass(slots=True)
class PaymentCounters:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    refreshes: int = 0
    last_error: str = ""


class LivePayer:
    def __init__(
        self,
        http: LiveHTTP,
        session: OrchSession,
        *,
        source: LivePaymentSource | None,
        state: LiveState | None,
        manifest_id: str,
        capabilities: net.Capabilities,
        refetch: Callable[[], Awaitable[None]],
        counters: PaymentCounters,
        max_price: Fraction | None = None,
        interval: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.session = session
        self.source = source
        self.state = state
        self.manifest_id = manifest_id
        self.capabilities = capabilities
        self.refetch = refetch
        self.counters = counters
        self.max_price = max_price
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.last = clock()  # the prepayment
        self._busy = False

    @property
    def priced(self) -> bool:
        return self.source is not None and bool(price_of(self.session.info))

    def due(self, now: float) -> bool:
        return self.priced and not self._busy and now - self.last >= self.interval

    async def pay(self) -> PayOutcome:
        self._busy = True
        self.last = self.clock()
        try:
            outcome = await self._pay()
        finally:
            self._busy = False
        if outcome is PayOutcome.PAID:
            self.counters.ok += 1
        elif outcome is PayOutcome.SKIPPED:
            self.counters.skipped += 1
        else:
            self.counters.failed += 1
        return outcome

    def _failed(self, outcome: PayOutcome, error: str) -> PayOutcome:
        self.counters.last_error = error
        log.warning(
            "live payment failed",
            extra={"orch": self.session.transcoder, "mid": self.manifest_id, "error": error},
        )
        return outcome

    async def _pay(self) -> PayOutcome:
        assert self.source is not None
        for _ in range(MAX_REFRESHES + 1):
            try:
                paid = await self.source.generate_live_payment(
                    self.session.info,
                    state=self.state,
                    manifest_id=self.manifest_id,
                    capabilities=self.capabilities,
                    max_price=self.max_price,
                )
            except NoPaymentNeeded:
                return PayOutcome.SKIPPED
            except NeedsRefresh as exc:
                self.counters.refreshes += 1
                try:
                    await self.refetch()
                except Exception as fetch_exc:
                    return self._failed(PayOutcome.FAILED, f"{exc}; refresh: {fetch_exc}")
                continue
            except PriceRejected as exc:
                return self._failed(PayOutcome.REJECTED, str(exc))
            except PaymentError as exc:
                return self._failed(PayOutcome.FAILED, str(exc))
            self.state = paid.state
            return await self._post(paid.payment_header, paid.segment_header)
        return self._failed(PayOutcome.FAILED, f"still stale after {MAX_REFRESHES} refreshes")

    async def _post(self, payment: str, segment: str) -> PayOutcome:
        url = self.session.transcoder.rstrip("/") + "/payment"
        headers = {"Livepeer-Payment": payment, "Livepeer-Segment": segment}
        try:
            async with asyncio.timeout(self.timeout):
                async with self.http.session.post(
                    url, headers=headers, ssl=self.http.ssl_for(url), allow_redirects=False
                ) as resp:
                    status = resp.status
                    body = await resp.content.read(MAX_RESULT_BYTES + 1)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return self._failed(PayOutcome.FAILED, f"POST /payment: {type(exc).__name__}: {exc}")
        if status != 200:
            text = body[:300].decode("utf-8", "replace").strip()
            outcome = PayOutcome.REFUSED if 400 <= status < 500 else PayOutcome.FAILED
            return self._failed(outcome, f"POST /payment: HTTP {status}: {text}")
        if len(body) > MAX_RESULT_BYTES:
            return self._failed(PayOutcome.FAILED, "POST /payment: answer too large")
        try:
            result = net.PaymentResult.FromString(body)
        except DecodeError:
            return self._failed(PayOutcome.FAILED, "POST /payment: answer is no PaymentResult")
        if result.HasField("info"):
            before = price_of(self.session.info)
            self.session.adopt(result.info)
            after = price_of(result.info)
            if before != after:
                log.warning(
                    "orchestrator changed its price mid-session; the session price stays",
                    extra={"orch": self.session.transcoder, "before": str(before),
                           "after": str(after)},
                )  # fmt: skip
        return PayOutcome.PAID
