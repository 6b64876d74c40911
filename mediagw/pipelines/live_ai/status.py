"""The status document of a live session (the user API's ``/status``, the benchmark's timings).

status          the runner's latest ``status`` event, coalesced (events.py)
gateway_status  state, end_reason, orchestrator, swaps, errors, payments, segments, events,
                output_channel (GETs, 470 answers: in all and in a row now), and ``warnings``:
                what is going wrong right now and what the gateway does about it
timings         input_first_byte (input handed over, a stream's segment at its first keyframe
                -> its first byte on the input channel), input_ingest_first_byte (that keyframe
                reached the gateway -> the same first byte),
                output_handoff (output received -> on_output), output_gap, swap_attach
                (loss detected -> next O attached), swap_output_gaps, start
"""

from __future__ import annotations

from typing import Any, Protocol

from mediagw.livepeer.trickle.subscriber import SubscriberStats

from .attachment import Attachment
from .config import LiveConfig
from .connect import Connector
from .events import RunnerEvents
from .monitor import SwapLimiter
from .payer import PaymentCounters
from .state import SessionState
from .stats import SessionCounters, Timing

__all__ = ["SessionView", "session_status"]


STORM = 4  # 470 answers in a row on the output channel worth a warning (the pacing starts)


class SessionView(Protocol):
    """What the status document reads of a session (``session.LiveSession``); it writes nothing."""

    stream_id: str
    request_id: str
    model: str
    config: LiveConfig
    state: SessionState
    end_reason: str
    current: Attachment | None
    limiter: SwapLimiter | None
    history: list[dict[str, Any]]
    connector: Connector
    events: RunnerEvents
    counters: SessionCounters
    payments: PaymentCounters
    output_stats: SubscriberStats
    first_byte: Timing
    ingest_first_byte: Timing
    handoff: Timing
    output_gaps: Timing
    swap_time: Timing
    swap_gaps: list[float]

    @property
    def queued(self) -> int: ...


def _warnings(session: SessionView) -> list[str]:
    att, pay, out = session.current, session.payments, session.output_stats
    found = []
    in_a_row = att.output_unavailable if att is not None else 0
    if att is not None and in_a_row >= STORM:
        found.append(
            f"{att.url} answers 470 (segment not available) on the output channel: "
            f"{in_a_row} times in a row ({out.jumps} in all); the gateway jumps to its latest "
            f"segment at most 4 times a second and swaps after "
            f"{session.config.output_timeout:g} s without output"
        )
    if pay.failing:
        found.append(f"live payments failed {pay.failing} times in a row: {pay.last_error}")
    return found


def session_status(session: SessionView) -> dict[str, Any]:
    att = session.current
    limiter = session.limiter
    pay = session.payments
    errors: list[tuple[float, str]] = list(session.connector.errors)
    errors += [
        (h["left"], f"{h['reason']}: {h.get('detail', '')}") for h in session.history if "left" in h
    ]
    if pay.last_error:
        errors.append((pay.last_error_at, f"payment: {pay.last_error}"))
    errors.sort(key=lambda e: e[0])
    out = session.output_stats
    return {
        "stream_id": session.stream_id,
        "request_id": session.request_id,
        "status": session.events.status,
        "gateway_status": {
            "state": session.state.value,
            "end_reason": session.end_reason,
            "orchestrator": att.url if att is not None else "",
            "manifest_id": att.channels.manifest_id if att is not None else "",
            "model": session.model,
            "swaps": session.counters.swaps,
            "quick_swaps": limiter.count if limiter is not None else 0,
            "orchestrators": session.history,
            "errors": [{"at": at, "error": text} for at, text in errors[-20:]],
            "start_attempts": session.connector.attempts,
            "warnings": _warnings(session),
            "payments": {
                "ok": pay.ok,
                "failed": pay.failed,
                "skipped": pay.skipped,
                "refreshes": pay.refreshes,
                "signer_failed": pay.signer_failed,
                "failing": pay.failing,
                "last_error": pay.last_error,
                "last_error_at": pay.last_error_at,
                "last_ok_at": pay.last_ok_at,
            },
            "output_channel": {
                "requests": out.requests,
                "segments": out.segments,
                "unavailable": out.jumps,  # 470 answers
                "unavailable_in_a_row": att.output_unavailable if att is not None else 0,
                "longest_unavailable_run": out.longest_storm,
                "errors": out.errors,
            },
            "segments": {**session.counters.as_dict(), "queued": session.queued},
            "events": session.counters.events,
            "recent_events": session.events.recent[-5:],
        },
        "timings": {
            "input_first_byte": session.first_byte.as_dict(),
            "input_ingest_first_byte": session.ingest_first_byte.as_dict(),
            "output_handoff": session.handoff.as_dict(),
            "output_gap": session.output_gaps.as_dict(),
            "swap_attach": session.swap_time.as_dict(),
            "swap_output_gaps": [round(g, 4) for g in session.swap_gaps],
            "start": round(session.connector.last_start_latency, 6),
        },
    }
