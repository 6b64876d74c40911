"""The status document of a live session (the user API's ``/status``, the benchmark's timings).

status          the runner's latest ``status`` event, coalesced (events.py)
gateway_status  state, end_reason, orchestrator, swaps, errors, payments, segments, events
timings         input_first_byte (input handed over -> first byte on the input channel),
                output_handoff (output received -> on_output), output_gap, swap_attach
                (loss detected -> next O attached), swap_output_gaps, start
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import LiveSession

__all__ = ["session_status"]


def session_status(session: LiveSession) -> dict[str, Any]:
    att = session.current
    limiter = session.limiter
    errors: list[tuple[float, str]] = list(session.connector.errors)
    errors += [
        (h["left"], f"{h['reason']}: {h.get('detail', '')}") for h in session.history if "left" in h
    ]
    errors.sort(key=lambda e: e[0])
    pay = session.payments
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
            "payments": {
                "ok": pay.ok,
                "failed": pay.failed,
                "skipped": pay.skipped,
                "refreshes": pay.refreshes,
                "last_error": pay.last_error,
            },
            "segments": {**session.counters.as_dict(), "queued": session.queued},
            "events": session.counters.events,
            "recent_events": session.events.recent[-5:],
        },
        "timings": {
            "input_first_byte": session.first_byte.as_dict(),
            "output_handoff": session.handoff.as_dict(),
            "output_gap": session.output_gaps.as_dict(),
            "swap_attach": session.swap_time.as_dict(),
            "swap_output_gaps": [round(g, 4) for g in session.swap_gaps],
            "start": round(session.connector.last_start_latency, 6),
        },
    }
