"""Transcoding on the Livepeer network: pick an orchestrator, pay, submit, download, retry.

One ``LivepeerTranscoder`` serves every stream of the gateway. Per stream it keeps a
``StreamSelector`` of orchestrator sessions found by discovery with that stream's job
capabilities. Per segment (transcode spec §5, §9; payments spec §8-9):

    select a session (not tried yet for this segment)
    -> refresh it if its auth token or ticket params are about to expire (GetOrchestrator)
    -> price guards: cap (every mode) and the 2x jump guard
    -> fee estimate -> tickets for the gap to max(fee, ticket EV) -> Livepeer-Payment
    -> SegData signed over the flatten bytes -> POST /segment
    -> balance accounting by outcome (restore / spend / settle)
    -> download renditions, verify the result signature when O has an address
    -> adopt the new OrchestratorInfo (new params, new PM session)
    on failure: suspend that O for this stream and try the next, up to max_attempts.
Every attempt goes on ``scoreboard`` (``pool/scoreboard``: the dashboard's latency, success
rate, swaps and suspensions per orchestrator).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ...clock import SYSTEM
from ...errors import MediaGWError
from ...eth.crypto import keccak256
from ...eth.signer import Signer
from ...livepeer.capabilities import compatible, job_capabilities
from ...livepeer.errors import StaleTicketParams
from ...livepeer.proto import net
from ...livepeer.rpc import OrchestratorRequests, OrchestratorRPC
from ...livepeer.segdata import build_segdata, segment_hash, segment_header
from ...livepeer.segment import SegmentClient, verify_result_hashes
from ...metrics import NULL_METRICS, Metrics, error_code
from ...payments.chain import ChainReader
from ...payments.errors import SenderValidationError
from ...payments.fees import transcode_fee
from ...payments.params import validate_sender
from ...payments.sender import PaymentSender, balance_key
from ...pool.discovery import discover
from ...pool.notes import OrchNotes
from ...pool.prices import PriceCaps, price_refusal
from ...pool.scoreboard import Scoreboard
from ...pool.selection import StreamSelector, latency_score
from ...pool.session import OrchSession
from ...pool.sources import Blocklist, Source
from ...usage import PAYMENT, NullUsage, UsageEvent, UsageSink
from .pipeline import RenditionData, TranscodeJob, TranscodeOutcome

log = logging.getLogger("mediagw.livepeer")

ALWAYS_CHECKED = 3  # an orchestrator session's first results are checked

__all__ = ["LivepeerTranscoder"]


@dataclass(slots=True)
class _ChainView:
    last_l1_block: int | None = None
    deposit: int | None = None
    reserve: int | None = None
    fallback_expiration: tuple[int, bytes] | None = None  # (last initialized round, its hash)
    sender_error: str | None = None
    read_at: float = -1e9


@dataclass(slots=True)
class _Spent:
    """One segment's state across its attempts: what was paid, and its keccak256 (hashed once:
    a retry on another orchestrator signs a new SegData over the same hash)."""

    tickets: int = 0
    ev: Fraction = Fraction(0)
    seg_hash: bytes | None = None


@dataclass(eq=False)
class _StreamState:
    selector: StreamSelector
    caps: net.Capabilities
    lock: asyncio.Lock
    last: str = ""  # the orchestrator of the stream's last transcoded segment


class LivepeerTranscoder:
    def __init__(
        self,
        *,
        rpc: OrchestratorRPC,
        segments: SegmentClient,
        sources: Sequence[Source],
        signer: Signer,
        payments: PaymentSender,
        caps: PriceCaps,
        blocklist: Blocklist | None = None,
        max_attempts: int = 3,
        min_version: str = "",
        verify_results: float = 1.0,
        rand: Callable[[], float] = random.random,
        chain: ChainReader | None = None,
        requests: OrchestratorRequests | None = None,
        notes: OrchNotes | None = None,
        usage: UsageSink | None = None,
        metrics: Metrics = NULL_METRICS,
        clock: Callable[[], float] = SYSTEM.wall,
        monotonic: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self.usage = usage or NullUsage()  # a payment event per segment attempt that paid
        self.metrics = metrics  # per segment attempt: uploads, their failures, payment errors
        self.rpc = rpc
        self.segments = segments
        self.sources = list(sources)
        self.signer = signer
        self.payments = payments
        self.caps = caps
        self.blocklist = blocklist or Blocklist()
        self.max_attempts = max_attempts
        self.min_version = min_version
        # the share of results whose signature is checked (the first ALWAYS_CHECKED of each
        # orchestrator session always are, unless 0): hashing the renditions is the largest part of
        # the gateway's CPU per transcoded segment (about 45 %)
        self.verify_results = verify_results
        self._rand = rand
        self._clock = clock
        self.chain = chain
        self._chain_view = _ChainView()
        self._streams: dict[str, _StreamState] = {}
        # GetOrchestrator requests: our signer's credentials unless a remote signer's are given
        self.requests = requests or OrchestratorRequests(rpc, signer=signer)
        self.scoreboard = Scoreboard()  # per attempt: the dashboard's orchestrator scoreboard
        self.notes = notes  # node-wide (shared by the nodes): penalties, latency scores
        self._ending: set[asyncio.Task[None]] = set()

    async def _chain(self) -> _ChainView:
        """What -ethUrl tells about the chain and our account, read at most every 30 s (the
        last known values on a read error). Without -ethUrl: nothing known."""
        view = self._chain_view
        if self.chain is None or self._monotonic() - view.read_at < 30.0:
            return view
        view.read_at = self._monotonic()
        try:
            view.last_l1_block = await self.chain.last_l1_block()
            sender = await self.chain.sender_info(self.signer.address)
            view.deposit = sender.deposit
            view.reserve = sender.reserve_funds_remaining
            round_ = await self.chain.last_initialized_round()
            view.fallback_expiration = (round_, await self.chain.block_hash_for_round(round_))
            validate_sender(sender, last_initialized_round=round_)
            view.sender_error = None
        except SenderValidationError as exc:
            view.sender_error = str(exc)
            log.error("our ETH account cannot back tickets", extra={"error": view.sender_error})
        except MediaGWError as exc:
            log.warning("chain read failed; using the last known values", extra={"error": str(exc)})
        return view

    def sender_balances(self) -> tuple[int | None, int | None]:
        """Our deposit and reserve (wei) as last read from -ethUrl; None: not known."""
        return self._chain_view.deposit, self._chain_view.reserve

    # -- discovery ----------------------------------------------------------------------------
    async def _fetch(
        self, url: str, caps: net.Capabilities, timeout: float
    ) -> net.OrchestratorInfo:
        return await self.requests.fetch(url, caps, timeout)

    async def _discover(self, state: _StreamState) -> list[OrchSession]:
        candidates = []
        for source in self.sources:
            candidates.extend(await source.candidates())
        caps = state.caps

        async def fetch(url: str) -> net.OrchestratorInfo:
            return await self._fetch(url, caps, 3.0)

        return await discover(
            candidates,
            fetch,
            on_error=self.metrics.discovery_error,
            job_caps=caps,
            compatible=compatible,
            caps=self.caps,
            blocklist=self.blocklist,
            clock=self._monotonic,
            suspended=state.selector.suspended,
        )

    async def _state(self, job: TranscodeJob) -> _StreamState:
        state = self._streams.get(job.stream_id)
        if state is None:
            caps = job_capabilities(
                job.profiles, segment_slicing=job.http_push, min_version=self.min_version
            )
            selector = StreamSelector(
                job.regions,
                clock=self._monotonic,
                max_attempts=self.max_attempts,
                notes=self.notes,
            )
            state = _StreamState(selector, caps, asyncio.Lock())
            self._streams[job.stream_id] = state
        async with state.lock:
            if state.selector.needs_refresh():
                state.selector.refresh(await self._discover(state))
        return state

    # -- one segment --------------------------------------------------------------------------
    async def transcode(self, job: TranscodeJob) -> TranscodeOutcome:
        state = await self._state(job)
        spent = _Spent()
        tried: set[str] = set()
        last_error = "no orchestrator available"
        for attempt in range(1, self.max_attempts + 1):
            session = state.selector.select(exclude=tried, segment_duration=job.duration)
            if session is None:
                async with state.lock:
                    state.selector.refresh(await self._discover(state))
                session = state.selector.select(exclude=tried, segment_duration=job.duration)
            if session is None:
                return TranscodeOutcome(error=last_error, attempts=attempt - 1)
            tried.add(session.url)
            started = self._monotonic()
            session.begin(started)
            try:
                outcome, retryable = await self._attempt(state, session, job, attempt, spent)
            finally:
                session.end()
            self._score(state, session, outcome, retryable, started)
            if outcome.ok:
                return dataclasses.replace(outcome, tickets=spent.tickets, ev_wei=spent.ev)
            if outcome.retry_same:
                tried.discard(session.url)
            last_error = outcome.error or "unknown error"
            if not retryable:
                return TranscodeOutcome(
                    error=f"non-retryable: {last_error}",
                    attempts=attempt,
                    tickets=spent.tickets,
                    ev_wei=spent.ev,
                )
        return TranscodeOutcome(
            error=f"{last_error} (after {self.max_attempts} attempts)",
            attempts=self.max_attempts,
            tickets=spent.tickets,
            ev_wei=spent.ev,
        )

    def _score(
        self,
        state: _StreamState,
        session: OrchSession,
        outcome: TranscodeOutcome,
        retryable: bool,
        started: float,
    ) -> None:
        """One attempt on the scoreboard (an O's fault suspends it: ``selector.fail``)."""
        now = self._monotonic()
        suspended = not outcome.ok and retryable and not outcome.retry_same
        self.scoreboard.attempt(
            session, ok=outcome.ok, seconds=now - started, now=now, suspended=suspended,
            error=outcome.error,
        )  # fmt: skip
        if outcome.ok:
            if state.last and state.last != session.transcoder:
                self.scoreboard.swap(state.last)
            state.last = session.transcoder

    def scoreboard_rows(self) -> list[dict[str, Any]]:
        """The scoreboard with every live stream's pool: its sessions and its suspensions."""
        pooled: list[OrchSession] = []
        suspended: list[str] = []
        for state in self._streams.values():
            selector = state.selector
            pooled.extend(selector.sessions)
            suspended.extend(u for u in selector.suspensions.suspended() if u)
        elsewhere = {}  # suspended by another node: discovery URL -> that node
        if self.notes is not None:
            elsewhere = {u: p.node for u, p in self.notes.penalties().items() if p.node}
        return self.scoreboard.rows(pooled, suspended, now=self._monotonic(), elsewhere=elsewhere)

    async def _attempt(
        self,
        state: _StreamState,
        session: OrchSession,
        job: TranscodeJob,
        attempt: int,
        spent: _Spent,
    ) -> tuple[TranscodeOutcome, bool]:
        o = session.transcoder
        chain = await self._chain()
        if chain.sender_error is not None:  # go-livepeer stops here too: no valid tickets
            return self._failed(job, o, attempt, chain.sender_error), False
        if session.needs_refresh(self._clock(), chain.last_l1_block):
            try:
                session.adopt(await self._fetch(session.url, state.caps, 2.5))
            except Exception as exc:
                state.selector.fail(session, retryable=True)
                return self._failed(job, o, attempt, f"refresh failed: {exc}"), True
        info = session.info
        price = session.price
        refusal = price_refusal(info, self.caps)
        if refusal is not None:  # never pay above the cap, in any mode
            state.selector.fail(session, retryable=True)
            return self._failed(job, o, attempt, refusal), True
        if session.price_doubled():
            state.selector.fail(session, retryable=True)
            return self._failed(job, o, attempt, "Orchestrator price has more than doubled"), True
        fee = transcode_fee(job.profiles, job.duration, price).fee if price else Fraction(0)
        key = balance_key(info)
        existing = self.payments.reserve(key)
        try:  # tickets and the SegData signature are built side by side (both off the loop)
            bundle, segdata = await asyncio.gather(
                self.payments.build_payment(
                    info,
                    fee,
                    key,
                    existing,
                    stream=job.stream_id,
                    last_l1_block=chain.last_l1_block,
                    deposit=chain.deposit,
                    fallback_expiration=chain.fallback_expiration,
                    initial_price=session.initial_price,
                    price_cap=self.caps.max_price(),
                ),
                self._segdata(state, job, info, spent),
            )
        except Exception as exc:
            self.payments.restore(key, existing)
            self.metrics.payment_create_error(job.stream_id)
            state.selector.fail(session, retryable=True)
            return self._failed(job, o, attempt, f"payment: {exc}"), True
        spent.tickets += bundle.num_tickets  # paid once sent, whatever the outcome
        spent.ev += bundle.total_ev
        if bundle.num_tickets:
            self.usage.emit(
                UsageEvent(job.stream_id, job.session, job.principal, o, PAYMENT,
                           bundle.num_tickets, "ticket", bundle.total_ev)
            )  # fmt: skip
        started = self._monotonic()
        result = await self.segments.submit(
            info.transcoder,
            segment_header(segdata),
            bundle.header,
            job.data,
            job.duration,
            timeout_multiplier=job.timeout_multiplier,
        )
        if not result.headers_received:
            self.payments.restore(key, existing)
        if result.error is not None or result.result is None:
            code = error_code(result.error or "no result")
            self.metrics.segment_upload_failed(job.stream_id, o, code)
        else:
            self.metrics.segment_uploaded(job.stream_id, o, self._monotonic() - started)
        if result.result is not None and result.result.HasField("info"):
            session.adopt(result.result.info)  # after every result, also an error one (§5.8)
        if result.error is not None or result.result is None:
            if result.headers_received:
                self.payments.spend(key)
            error = result.error or "no result"
            if isinstance(result.failure, StaleTicketParams):
                # Not the O's fault (transcode spec §4.5): fresh params, same O may go again.
                try:
                    session.adopt(await self._fetch(session.url, state.caps, 2.5))
                except MediaGWError as exc:
                    state.selector.fail(session, retryable=True)
                    return self._failed(job, o, attempt, f"{error}; refresh: {exc}"), True
                state.selector.complete(session, latency_score(0.0, job.duration))
                return self._failed(job, o, attempt, error, again=True), True
            state.selector.fail(session, retryable=result.retryable)
            return self._failed(job, o, attempt, error), result.retryable
        tr = result.result
        which = tr.WhichOneof("result")
        if which != "data":
            self.payments.spend(key)
            text = tr.error if which == "error" else "UnknownResponse"
            state.selector.fail(session, retryable=True)
            return self._failed(job, o, attempt, f"orchestrator error: {text}"), True
        check = self._check_result(session, info)
        downloaded = await self._download(tr.data, job, check)
        if isinstance(downloaded, str):
            self.payments.spend(key)
            state.selector.fail(session, retryable=True)
            return self._failed(job, o, attempt, downloaded), True
        renditions, hashes = downloaded
        pixels = sum(s.pixels for s in tr.data.segments)
        debit = pixels * price if price is not None else Fraction(0)
        self.payments.settle(key, existing, bundle.new_credit, debit)
        if check:
            if not verify_result_hashes(hashes, tr.data.sig, bytes(info.address)):
                state.selector.fail(session, retryable=True)
                return self._failed(job, o, attempt, "result signature does not verify"), True
            session.results_checked += 1
        latency = self._monotonic() - started
        state.selector.complete(session, latency_score(latency, job.duration))
        return TranscodeOutcome(tuple(renditions), None, o, attempt, pixels), True

    async def _segdata(
        self, state: _StreamState, job: TranscodeJob, info: net.OrchestratorInfo, spent: _Spent
    ) -> net.SegData:
        if spent.seg_hash is None:
            spent.seg_hash = await segment_hash(job.data)
        return await build_segdata(
            manifest_id=job.stream_id,
            seq=job.seq,
            segment=job.data,
            duration_s=job.duration,
            profiles=job.profiles,
            capabilities=state.caps,
            auth_token=info.auth_token,
            sign=None if self.signer.offchain else self.signer.sign,
            seg_hash=spent.seg_hash,
        )

    def _check_result(self, session: OrchSession, info: net.OrchestratorInfo) -> bool:
        """Whether this result's signature is checked (§5.10): never without an orchestrator
        address (off-chain: no signature) or with ``verify_results`` 0; always for a session's
        first ALWAYS_CHECKED results; then ``verify_results`` of them, at random."""
        share = self.verify_results
        if not info.address or share <= 0:
            return False
        return share >= 1 or session.results_checked < ALWAYS_CHECKED or self._rand() < share

    async def _fetch_rendition(self, url: str, hash_it: bool) -> tuple[bytes, bytes]:
        """Download one rendition and, when its result is checked, hash it (keccak256, in a
        thread) as soon as it lands, so hashing overlaps the other downloads."""
        blob = await self.segments.download(url)
        return blob, (await asyncio.to_thread(keccak256, blob) if hash_it else b"")

    async def _download(
        self, data: net.TranscodeData, job: TranscodeJob, hash_them: bool
    ) -> tuple[list[RenditionData], list[bytes]] | str:
        if len(data.segments) != len(job.profiles):
            return f"MismatchedSegments: {len(data.segments)} renditions for {len(job.profiles)}"
        try:
            got = await asyncio.gather(
                *(self._fetch_rendition(s.url, hash_them) for s in data.segments)
            )
        except Exception as exc:
            return f"download failed: {exc}"
        renditions = [
            RenditionData(p, blob, s.pixels)
            for p, (blob, _), s in zip(job.profiles, got, data.segments, strict=True)
        ]
        return renditions, [h for _, h in got]

    def _failed(
        self, job: TranscodeJob, o: str, attempt: int, error: str, *, again: bool = False
    ) -> TranscodeOutcome:
        log.warning(
            "segment attempt failed",
            extra={"stream": job.stream_id, "seq": job.seq, "orchestrator": o,
                   "attempt": attempt, "error": error},
        )  # fmt: skip
        return TranscodeOutcome(error=error, orchestrator=o, attempts=attempt, retry_same=again)

    # -- stream end ---------------------------------------------------------------------------
    async def end_stream(self, stream_id: str) -> None:
        state = self._streams.pop(stream_id, None)
        if state is None:
            return
        for session in state.selector.sessions:  # bounded, fire and forget (transcode spec §6)
            task = asyncio.get_running_loop().create_task(self._end_session(session))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def _end_session(self, session: OrchSession) -> None:
        try:
            await self.rpc.end_transcoding_session(
                session.transcoder, session.info.auth_token, timeout=8.0
            )
        except Exception as exc:
            log.info("EndTranscodingSession failed", extra={"orchestrator": session.transcoder,
                                                           "error": str(exc)})  # fmt: skip

    async def close(self) -> None:
        for stream_id in list(self._streams):
            await self.end_stream(stream_id)
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
