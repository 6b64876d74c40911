"""Live payments on one orchestrator (live-ai spec §9.1, §10.6).

Triggered by input segments, at most once per ``interval`` (5 s): the ``LivePaymentSource``
makes the headers (``manifest_id`` = O's ``mid``, the state of the previous call echoed), then
``POST {transcoder}/payment`` with no body. A 200 body is a ``PaymentResult``: its ``info`` is
adopted (new ticket params). The status is checked (go-livepeer's local sender does not).

    source raises NoPaymentNeeded (482)   -> SKIPPED: send nothing this cycle
    source raises NeedsRefresh (480)      -> GetOrchestrator again, retry (at most 4 in a row)
    source raises PriceRejected (481)     -> REJECTED: the caller swaps
    remote signer down or failing         -> SIGNER_FAILED: not the orchestrator's doing, so
      (no answer, 5xx, other statuses)       no swap (another O needs the same signer); tried
                                             again next interval, the O's prepaid credit
                                             (60 s) bridges the gap
    other payment error, 5xx, no answer   -> FAILED (the health monitor counts them)
    HTTP 4xx                              -> REFUSED (the O refuses our payments: swap)

``PaymentCounters`` (shared by a stream's payers) say how many cycles failed in a row
(``failing``) and the last error, for the status API; a run of failures is logged as a warning
when it starts and at info when payments work again.

No price (0 or absent) or no payment source: nothing is ever paid (go-livepeer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import aiohttp
from google.protobuf.message import DecodeError

from mediagw.httpbody import read_prefix
from mediagw.livepeer.proto import net
from mediagw.payments.errors import NeedsRefresh, PaymentError, PriceRejected
from mediagw.payments.live import LivePaymentSource, LiveState, NoPaymentNeeded
from mediagw.payments.remote import SignerError
from mediagw.pool.prices import price_of
from mediagw.pool.session import OrchSession

from ...clock import SYSTEM
from ...usage import PAYMENT, StreamMeter
from .transport import LiveHTTP

__all__ = ["LivePayer", "PayOutcome", "PaymentCounters", "signer_failed"]

log = logging.getLogger("mediagw.live_ai.payments")

MAX_RESULT_BYTES = 1 << 20
MAX_REFRESHES = 4  # go-livepeer gives up after 4 refreshes in a row


def signer_failed(exc: BaseException) -> bool:
    """A remote signer error that is not about the orchestrator (no answer, 5xx, its auth
    webhook's refusal ...): 480 / 481 / 482 are about the orchestrator's info or price."""
    return isinstance(exc, SignerError) and not isinstance(
        exc, NeedsRefresh | PriceRejected | NoPaymentNeeded
    )


class PayOutcome(StrEnum):
    PAID = "paid"
    SKIPPED = "skipped"
    FAILED = "failed"
    REFUSED = "refused"  # HTTP 4xx from the orchestrator
    REJECTED = "rejected"  # price rejected by the payment source (481)
    SIGNER_FAILED = "signer-failed"  # the remote signer made no payment (not the O's doing)


@dataclass(slots=True)
class PaymentCounters:
    ok: int = 0
    failed: int = 0  # cycles that ended in any failure (SIGNER_FAILED included)
    skipped: int = 0
    refreshes: int = 0
    signer_failed: int = 0  # cycles the remote signer made no payment
    failing: int = 0  # failed cycles in a row (0: the last one worked)
    last_error: str = ""
    last_error_at: float = 0.0  # unix seconds
    last_ok_at: float = 0.0  # unix seconds of the last PAID or SKIPPED cycle


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
        meter: StreamMeter | None = None,
        max_price: Fraction | None = None,
        interval: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = SYSTEM.monotonic,
        wall: Callable[[], float] = SYSTEM.wall,
    ) -> None:
        self.http = http
        self.session = session
        self.source = source
        self.state = state
        self.manifest_id = manifest_id
        self.capabilities = capabilities
        self.refetch = refetch
        self.counters = counters
        self.meter = meter
        self.max_price = max_price
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.wall = wall
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
        counters = self.counters
        if outcome in (PayOutcome.PAID, PayOutcome.SKIPPED):
            if outcome is PayOutcome.PAID:
                counters.ok += 1
            else:
                counters.skipped += 1
            if counters.failing:
                log.info(
                    "live payments work again",
                    extra={"orch": self.session.transcoder, "mid": self.manifest_id,
                           "failed_in_a_row": counters.failing},
                )  # fmt: skip
            counters.failing = 0
            counters.last_ok_at = self.wall()
        else:
            counters.failed += 1
            counters.failing += 1
            if outcome is PayOutcome.SIGNER_FAILED:
                counters.signer_failed += 1
        return outcome

    def _failed(self, outcome: PayOutcome, error: str) -> PayOutcome:
        counters = self.counters
        if outcome is PayOutcome.SIGNER_FAILED:
            error = (
                f"{error} (tried again with the next input segments, at most every "
                f"{self.interval:g} s; the orchestrator's prepaid credit lasts about 60 s)"
            )
        counters.last_error, counters.last_error_at = error, self.wall()
        log.log(
            logging.WARNING if counters.failing == 0 else logging.INFO,
            "live payment failed",
            extra={"orch": self.session.transcoder, "mid": self.manifest_id, "error": error,
                   "failed_in_a_row": counters.failing + 1},
        )  # fmt: skip
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
            except SignerError as exc:  # 480-482 are caught above
                return self._failed(PayOutcome.SIGNER_FAILED, str(exc))
            except PaymentError as exc:
                return self._failed(PayOutcome.FAILED, str(exc))
            self.state = paid.state
            outcome = await self._post(paid.payment_header, paid.segment_header)
            if outcome is PayOutcome.PAID and self.meter is not None:
                tickets, ev = paid.value()
                if tickets:
                    self.meter.emit(PAYMENT, tickets, "ticket", self.session.transcoder, ev)
            return outcome
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
                    body = await read_prefix(resp.content, MAX_RESULT_BYTES + 1)
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
