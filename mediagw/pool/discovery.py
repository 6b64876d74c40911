"""A discovery round (transcode spec §8.2): ask every candidate for its OrchestratorInfo.

All candidates are queried at once. A reply is accepted when the call succeeded, the O's address
is not blocklisted, its capabilities are compatible with the job, ``transcoder`` is not empty, and
its price is within the cap (mediagw enforces the cap in every mode). The round ends when the
target count is reached or everybody replied; or when the soft timer fires after at least one
acceptance (500 ms, doubling on each expiry up to 6 s); or at the hard 6 s cutoff. Accepted
sessions are ordered by measured GetOrchestrator latency. Suspended Os are set aside and used,
lowest penalty first, only when too few others were accepted.

Every refusal or error is logged once, naming the O's URL and the reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mediagw.livepeer.candidates import Candidate
from mediagw.livepeer.proto import net

from .prices import PriceCaps, price_refusal
from .session import OrchSession
from .sources import Blocklist

__all__ = [
    "HARD_TIMEOUT",
    "MAX_SOFT_TIMEOUT",
    "SOFT_TIMEOUT",
    "Compatible",
    "FetchInfo",
    "acceptance_refusal",
    "discover",
]

log = logging.getLogger(__name__)

#: go-livepeer ``-discoveryTimeout`` default; the soft timer's first period.
SOFT_TIMEOUT = 0.5
#: The soft timer doubles on each expiry up to this.
MAX_SOFT_TIMEOUT = 6.0
#: No discovery round lasts longer than this.
HARD_TIMEOUT = 6.0


class FetchInfo(Protocol):
    """GetOrchestrator against a discovery URL (the RPC client binds its own timeout)."""

    def __call__(self, url: str, /) -> Awaitable[net.OrchestratorInfo]: ...


class Compatible(Protocol):
    """The capability check of transcode spec §3.4: is the job a subset of what O offers?"""

    def __call__(self, job: net.Capabilities, orch: net.Capabilities, /) -> bool: ...


def acceptance_refusal(
    info: net.OrchestratorInfo,
    *,
    job_caps: net.Capabilities,
    compatible: Compatible,
    caps: PriceCaps,
    blocklist: Blocklist,
    pipeline: str = "transcode",
    model: str = "",
) -> str | None:
    """Why a GetOrchestrator reply is refused, or None when it is acceptable."""
    if blocklist.blocks(info):
        return f"address 0x{info.address.hex()} is blocklisted"
    if not compatible(job_caps, info.capabilities):
        return "capabilities are not compatible with the job"
    if not info.transcoder:
        return "reply has no transcoder URL"
    return price_refusal(info, caps, pipeline, model)


@dataclass(slots=True)
class _Reply:
    candidate: Candidate
    info: net.OrchestratorInfo | None
    latency: float
    error: BaseException | None


async def discover(
    candidates: Sequence[Candidate],
    fetch_info: FetchInfo,
    *,
    job_caps: net.Capabilities,
    compatible: Compatible,
    caps: PriceCaps,
    blocklist: Blocklist,
    clock: Callable[[], float],
    target: int | None = None,
    suspended: Callable[[str], int] | None = None,
    pipeline: str = "transcode",
    model: str = "",
    rng: random.Random | None = None,
    soft_timeout: float = SOFT_TIMEOUT,
    max_soft_timeout: float = MAX_SOFT_TIMEOUT,
    hard_timeout: float = HARD_TIMEOUT,
    on_error: Callable[[str, str], None] | None = None,
) -> list[OrchSession]:
    """Run one discovery round and return the accepted sessions, fastest first.

    ``clock`` (monotonic seconds) measures each call's latency; the timers run on the event
    loop. ``target`` is how many sessions to wait for (None: every candidate; the trusted pool
    uses min(pool size, 8)). ``suspended(url)`` gives an O's remaining penalty (0: not
    suspended). ``rng`` shuffles the query order, as go-livepeer does. ``on_error(url, code)``
    hears of each failed, refused or unanswered query (code: the exception's type name,
    "Refused" or "Timeout": a bounded set, for the metrics).
    """
    report = on_error or (lambda url, code: None)
    unique: dict[str, Candidate] = {}
    for cand in candidates:
        unique.setdefault(cand.url, cand)
    order = list(unique.values())
    if rng is not None:
        rng.shuffle(order)
    want = len(order) if target is None else min(target, len(order))
    if not order or want <= 0:
        return []

    async def query(cand: Candidate) -> _Reply:
        started = clock()
        try:
            info = await fetch_info(cand.url)
        except Exception as exc:
            return _Reply(cand, None, clock() - started, exc)
        return _Reply(cand, info, clock() - started, None)

    loop = asyncio.get_running_loop()
    start = loop.time()
    hard_deadline = start + hard_timeout
    soft = soft_timeout
    soft_deadline = start + soft
    pending = {asyncio.ensure_future(query(c)): c for c in order}
    accepted: list[OrchSession] = []
    set_aside: list[tuple[int, OrchSession]] = []

    def handle(reply: _Reply) -> None:
        url = reply.candidate.url
        if reply.error is not None or reply.info is None:
            err = reply.error
            log.warning(
                "orchestrator discovery: GetOrchestrator failed",
                extra={"orch": url, "reason": f"{type(err).__name__}: {err}"},
            )
            report(url, type(err).__name__ if err is not None else "NoReply")
            return
        reason = acceptance_refusal(
            reply.info,
            job_caps=job_caps,
            compatible=compatible,
            caps=caps,
            blocklist=blocklist,
            pipeline=pipeline,
            model=model,
        )
        if reason is not None:
            log.warning("orchestrator discovery: refused", extra={"orch": url, "reason": reason})
            report(url, "Refused")
            return
        session = OrchSession(
            url,
            reply.info,
            discovery_latency=reply.latency,
            region=reply.candidate.region,
            trusted=reply.candidate.trusted,
        )
        penalty = suspended(url) if suspended is not None else 0
        if penalty > 0:
            set_aside.append((penalty, session))
        else:
            accepted.append(session)
            log.debug(
                "orchestrator discovery: accepted",
                extra={"orch": url, "latency": round(reply.latency, 4)},
            )

    timed_out = False
    try:
        while pending and len(accepted) < want:
            now = loop.time()
            if now >= hard_deadline:
                timed_out = True
                break
            if now >= soft_deadline:
                if accepted:
                    break
                soft = min(soft * 2, max_soft_timeout)
                soft_deadline = now + soft
                continue
            done, _ = await asyncio.wait(
                pending,
                timeout=min(soft_deadline, hard_deadline) - now,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                pending.pop(task)
                handle(task.result())
    finally:
        late = list(pending.items())
        for task, _ in late:
            task.cancel()
        if late:
            await asyncio.gather(*(t for t, _ in late), return_exceptions=True)
    if timed_out:
        for _, cand in late:
            log.warning(
                "orchestrator discovery: no reply",
                extra={"orch": cand.url, "reason": f"no reply within {hard_timeout:g} s"},
            )
            report(cand.url, "Timeout")
    else:
        for _, cand in late:
            log.debug("orchestrator discovery: not waited for", extra={"orch": cand.url})

    accepted.sort(key=lambda s: s.discovery_latency)
    del accepted[want:]
    if len(accepted) < want and set_aside:
        set_aside.sort(key=lambda ps: (ps[0], ps[1].discovery_latency))
        for penalty, session in set_aside[: want - len(accepted)]:
            log.info(
                "orchestrator discovery: using a suspended orchestrator, too few others",
                extra={"orch": session.url, "penalty": penalty},
            )
            accepted.append(session)
    return accepted
