"""Counters and timings of a live session, as the status API and the benchmark show them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SessionCounters", "Timing"]


@dataclass(slots=True)
class Timing:
    """Durations in seconds: count, last, mean, max and the recent ones (for percentiles)."""

    count: int = 0
    total: float = 0.0
    last: float = 0.0
    max: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.count += 1
        self.total += seconds
        self.last = seconds
        self.max = max(self.max, seconds)
        self.recent.append(seconds)

    def percentile(self, p: float) -> float:
        values = sorted(self.recent)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(p / 100 * len(values)))]

    def as_dict(self) -> dict[str, Any]:
        mean = self.total / self.count if self.count else 0.0
        return {
            "count": self.count,
            "last": round(self.last, 6),
            "mean": round(mean, 6),
            "p95": round(self.percentile(95), 6),
            "max": round(self.max, 6),
        }


@dataclass(slots=True)
class SessionCounters:
    segments_in: int = 0  # input segments handed to the session
    segments_published: int = 0  # ... published on some orchestrator's input channel
    segments_dropped: int = 0  # ... dropped by the gateway (queue over its bound)
    segments_failed: int = 0  # ... dropped because their POST failed (never sent again)
    segments_skipped: int = 0  # ... not sent: their progress was lost, or never cut
    segments_out: int = 0  # output segments handed to on_output
    late_outputs: int = 0  # output from an orchestrator already left (ignored)
    callback_errors: int = 0  # on_output raised
    events: int = 0
    start_attempts: int = 0
    swaps: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "in": self.segments_in,
            "published": self.segments_published,
            "dropped": self.segments_dropped,
            "failed": self.segments_failed,
            "skipped": self.segments_skipped,
            "out": self.segments_out,
            "late_outputs": self.late_outputs,
            "callback_errors": self.callback_errors,
        }
