"""Attach a stream to an orchestrator: pick, start, retry (live-ai spec §2, §3).

``Connector.connect`` walks the selector's pre-discovered candidates, fastest first:

    session info stale (auth token near expiry)     -> GetOrchestrator again first
    quote above the cap or the model's listed price -> drop the O for this stream, next one
                                                       (nothing paid; see quote.py)
    StartRejected RETRY_SAME (ticketparams expired) -> refetch, same O again (at most 3 tries)
    StartRejected NEXT / REMOVE, no answer          -> drop the O for this stream, next one
    payment source: NeedsRefresh                    -> refetch, same O again
    payment source: PriceRejected, other errors     -> drop, next one
    remote signer down / failing                    -> stop: every O needs it (none dropped)

at most ``max_start_attempts`` start requests in all. The first success becomes an
``Attachment`` (channels opened, cached params replayed when asked).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

from mediagw.errors import MediaGWError
from mediagw.livepeer.trickle.subscriber import SubscriberStats
from mediagw.payments.errors import NeedsRefresh
from mediagw.payments.live import LivePaymentSource
from mediagw.pool.session import OrchSession

from ...clock import SYSTEM
from ...usage import PAYMENT, StreamMeter
from .attachment import Attachment, AttachmentHost
from .config import LiveConfig
from .errors import StartAction, StartRejected
from .payer import LivePayer, PaymentCounters, signer_failed
from .quote import QuoteRefusal, quote_refusal, show_wei
from .selection import LiveSelector
from .start import start_live_video
from .transport import LiveHTTP

__all__ = ["Connector"]

log = logging.getLogger("mediagw.live_ai.connect")


class Connector:
    def __init__(
        self,
        *,
        selector: LiveSelector,
        http: LiveHTTP,
        payments: LivePaymentSource | None,
        stream_id: str,
        model: str,
        config: LiveConfig,
        counters: PaymentCounters,
        clock: Callable[[], float] = SYSTEM.monotonic,
        wall: Callable[[], float] = SYSTEM.wall,
        output_stats: SubscriberStats | None = None,
        meter: StreamMeter | None = None,
    ) -> None:
        self.meter = meter
        self.selector = selector
        self.http = http
        self.payments = payments
        self.stream_id = stream_id
        self.model = model
        self.config = config
        self.counters = counters
        self.clock = clock
        self.wall = wall
        self.output_stats = output_stats
        self.attempts = 0
        self.errors: deque[tuple[float, str]] = deque(maxlen=20)
        self.last_start_latency = 0.0

    def _error(self, session: OrchSession, text: str) -> None:
        self.errors.append((self.wall(), f"{session.transcoder or session.url}: {text}"))
        log.warning("live start failed", extra={"orch": session.url, "error": text})

    def _refuse(self, session: OrchSession, refusal: QuoteRefusal) -> None:
        self.errors.append((self.wall(), f"{session.transcoder or session.url}: {refusal}"))
        log.warning(
            "live orchestrator quote refused",
            extra={"orch": session.url, "model": self.model, "quoted": show_wei(refusal.quoted),
                   "expected": show_wei(refusal.expected), "basis": refusal.basis,
                   "accepted_up_to": show_wei(refusal.allowed)},
        )  # fmt: skip

    async def connect(
        self,
        host: AttachmentHost,
        params: Mapping[str, Any],
        *,
        exclude: Collection[str] = (),
        replay: Mapping[str, Any] | None = None,
    ) -> Attachment | None:
        tried = set(exclude)
        budget = self.config.max_start_attempts
        while budget > 0:
            session = await self.selector.next(exclude=tried)
            if session is None:
                return None
            tried.update((session.url, session.transcoder))
            attachment, used = await self._try(host, session, params, replay, budget)
            budget -= used
            if attachment is not None:
                self.selector.prefetch()
                return attachment
        return None

    async def _try(
        self,
        host: AttachmentHost,
        session: OrchSession,
        params: Mapping[str, Any],
        replay: Mapping[str, Any] | None,
        budget: int,
    ) -> tuple[Attachment | None, int]:
        caps = self.selector.caps_for(session)
        used = 0
        same = 0
        refetch = session.needs_refresh(self.wall(), None)
        while used < budget:
            try:
                if refetch:
                    await self.selector.refetch(session)
                    refetch = False
                refusal = quote_refusal(
                    session.info, model=self.model, max_price=self.selector.max_price
                )
                if refusal is not None:  # before anything is paid
                    self._refuse(session, refusal)
                    self.selector.drop(session.url)
                    return None, used
                used += 1
                self.attempts += 1
                outcome = await start_live_video(
                    self.http,
                    session.info,
                    model=self.model,
                    params=params,
                    stream_id=self.stream_id,
                    request_id=uuid.uuid4().hex[:8],
                    capabilities=caps,
                    payments=self.payments,
                    max_price=self.selector.max_price,
                    timeout=self.config.start_timeout,
                    clock=self.clock,
                )
            except StartRejected as exc:
                self._error(session, str(exc))
                if exc.action is StartAction.RETRY_SAME and same < self.config.max_same_tries:
                    same += 1
                    refetch = True
                    continue
                self.selector.drop(session.url)
                return None, used
            except NeedsRefresh as exc:
                self._error(session, f"payment: {exc}")
                if same < self.config.max_same_tries:
                    same += 1
                    refetch = True
                    continue
                self.selector.drop(session.url)
                return None, used
            except MediaGWError as exc:  # PriceRejected, other payment errors, refetch failures
                if signer_failed(exc):  # not this O's fault, and no other O would start
                    self._error(session, f"payment: {exc}")
                    return None, budget
                self._error(session, f"{type(exc).__name__}: {exc}")
                self.selector.drop(session.url)
                return None, max(used, 1)
            self.last_start_latency = outcome.elapsed
            if self.meter is not None and outcome.tickets:  # the prepayment
                self.meter.emit(PAYMENT, outcome.tickets, "ticket", session.transcoder,
                                outcome.ev)  # fmt: skip
            payer = LivePayer(
                self.http,
                session,
                source=self.payments,
                state=outcome.payment_state,
                manifest_id=outcome.channels.manifest_id,
                capabilities=caps,
                refetch=functools.partial(self.selector.refetch, session),
                counters=self.counters,
                meter=self.meter,
                max_price=self.selector.max_price,
                interval=self.config.payment_interval,
                timeout=self.config.payment_timeout,
                clock=self.clock,
                wall=self.wall,
            )
            attachment = Attachment(
                host,
                session,
                outcome.channels,
                payer,
                http=self.http,
                config=self.config,
                clock=self.clock,
                output_stats=self.output_stats,
            )
            attachment.begin(replay)
            log.info(
                "live stream attached",
                extra={"orch": session.transcoder, "mid": outcome.channels.manifest_id,
                       "start_s": round(outcome.elapsed, 4)},
            )  # fmt: skip
            return attachment, used
        return None, used
