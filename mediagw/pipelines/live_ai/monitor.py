"""When to leave an orchestrator during a live AI stream, and when to give up (live-ai spec §7, §8).

Sans-IO: every method takes ``now`` (monotonic seconds); nothing here sleeps or does I/O.

    detector            rule                                                     action
    ------------------  -------------------------------------------------------  -------------
    slow orchestrator   a 4th input segment in flight (begun - completed > 3)    suspend, swap
    output watchdog     no output for ``output_timeout`` (effective 30 s) while  suspend, swap
                        the last input is younger than output_timeout / 2
    events heartbeat    no event for 30 s (checked by the caller every ~10 s)    swap
    channel gone        trickle 404 / Lp-Trickle-Closed, control write failure   swap
    payments failing    ``max_payment_failures`` in a row, or a 4xx              swap (improves on
                                                                                  go-livepeer, which
                                                                                  ignores them)

Swap limit: a swap less than 3 min after the previous one (or after the stream start) bumps a
counter, any later swap resets it to 1; past 2 the stream is ended with a clear status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["HealthMonitor", "SwapLimiter", "SwapReason"]


class SwapReason(StrEnum):
    SLOW = "more than 3 input segments in flight"
    NO_OUTPUT = "no output segment within the output timeout"
    NO_EVENTS = "no event from the runner for 30 s"
    CHANNEL_GONE = "a trickle channel was closed by the orchestrator"
    CONTROL_FAILED = "the control channel could not be written"
    PAYMENT_FAILED = "live payments keep failing"

    @property
    def suspends(self) -> bool:
        """Whether the orchestrator is also suspended for this stream (go-livepeer §8)."""
        return self in (SwapReason.SLOW, SwapReason.NO_OUTPUT, SwapReason.PAYMENT_FAILED)


@dataclass
class HealthMonitor:
    """Health of one attachment to one orchestrator. Create a new one after every swap."""

    started_at: float
    output_timeout: float = 30.0  # go-livepeer's effective default (its 0 means 30 s)
    events_timeout: float = 30.0
    max_in_flight: int = 3
    max_payment_failures: int = 3
    in_flight: int = 0
    last_input: float | None = None
    last_output: float | None = None
    last_event: float | None = None
    payment_failures: int = 0
    gone: SwapReason | None = None

    def input_begun(self, now: float) -> SwapReason | None:
        self.in_flight += 1
        self.last_input = now
        return SwapReason.SLOW if self.in_flight > self.max_in_flight else None

    def input_done(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def output(self, now: float) -> None:
        self.last_output = now

    def event(self, now: float) -> None:
        self.last_event = now

    def payment(self, ok: bool, *, client_error: bool = False) -> SwapReason | None:
        if ok:
            self.payment_failures = 0
            return None
        self.payment_failures += 1
        if client_error or self.payment_failures >= self.max_payment_failures:
            return SwapReason.PAYMENT_FAILED
        return None

    def channel_gone(self, control: bool = False) -> SwapReason:
        self.gone = SwapReason.CONTROL_FAILED if control else SwapReason.CHANNEL_GONE
        return self.gone

    def check(self, now: float) -> SwapReason | None:
        """The periodic check (every few seconds): a reason to swap, or None."""
        if self.gone is not None:
            return self.gone
        since_output = now - (self.last_output if self.last_output is not None else self.started_at)
        input_fresh = (
            self.last_input is not None and now - self.last_input < self.output_timeout / 2
        )
        if since_output >= self.output_timeout and input_fresh:
            return SwapReason.NO_OUTPUT
        since_event = now - (self.last_event if self.last_event is not None else self.started_at)
        if since_event >= self.events_timeout:
            return SwapReason.NO_EVENTS
        return None


@dataclass
class SwapLimiter:
    """At most ``max_swaps`` swaps in quick succession (each < ``window`` s after the last)."""

    started_at: float
    window: float = 180.0
    max_swaps: int = 2
    count: int = 0
    last: float | None = None
    history: list[tuple[float, str]] = field(default_factory=list)

    def swap(self, now: float, reason: str) -> bool:
        """Record a swap; False when the stream must end instead."""
        previous = self.last if self.last is not None else self.started_at
        self.count = self.count + 1 if now - previous < self.window else 1
        self.last = now
        self.history.append((now, reason))
        return self.count <= self.max_swaps
