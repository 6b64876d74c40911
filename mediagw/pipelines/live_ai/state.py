"""The states of a live session (``LiveSession.state``, ``gateway_status.state`` in its status)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SessionState"]


class SessionState(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    SWAPPING = "swapping"
    ENDING = "ending"
    ENDED = "ended"  # the input ended and the run was closed
    FAILED = "failed"  # no orchestrator, or too many swaps
