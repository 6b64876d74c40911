"""Settings of a live AI session (go-livepeer defaults; tests shrink the timers)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LiveConfig"]


@dataclass(frozen=True, slots=True)
class LiveConfig:
    # health (monitor.py)
    output_timeout: float = 30.0  # go-livepeer's effective -liveOutSegmentTimeout
    events_timeout: float = 30.0  # events heartbeat
    max_in_flight: int = 3  # a 4th input segment in flight = slow orchestrator
    max_payment_failures: int = 3
    check_interval: float = 1.0  # how often the health rules are evaluated
    max_drops: int = 2  # input segments dropped in a row on one O = O lost
    # swaps
    swap_window: float = 180.0
    max_swaps: int = 2
    max_start_attempts: int = 20
    max_same_tries: int = 3  # "ticketparams expired": same O again, at most this often
    max_queue: int = 16  # input segments held while no orchestrator is attached
    # input: target segment seconds of a live AI stream (None = the gateway's); whole segments
    # go on trickle, so this bounds glass-to-glass latency (go-livepeer's LIVE_AI_MIN_SEG_DUR)
    segment_duration: float | None = 1.0
    # channels
    start_timeout: float = 5.0
    keepalive_interval: float = 10.0
    replay_tries: int = 3
    replay_delay: float = 0.1
    subscriber_max_errors: int = 5
    subscriber_retry_delay: float = 0.3
    # payments
    payment_interval: float = 5.0
    payment_timeout: float = 10.0
    # end of stream
    drain_timeout: float = 5.0  # wait this long for the last output after the input ended
    retire_timeout: float = 5.0  # closing a left orchestrator's channels (background)
