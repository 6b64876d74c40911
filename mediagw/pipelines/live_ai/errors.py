"""Errors of a live AI session, hung under ``LivepeerError`` of the one ``MediaGWError`` tree.

MediaGWError
+-- LivepeerError                      (mediagw.livepeer.errors)
    +-- LiveAIError                    a live video-to-video exchange failed
        +-- StartRejected              ``POST /live-video-to-video`` failed: ``status`` (0 =
        |                              no answer), O's text, and what to do next (``action``)
        +-- PaymentRejected            ``POST /payment`` answered non-200 (``status``)
        +-- NoOrchestrator             no orchestrator could take the stream
"""

from __future__ import annotations

from enum import StrEnum

from mediagw.livepeer.errors import LivepeerError, RefusalKind, refusal_kind

__all__ = ["LiveAIError", "NoOrchestrator", "StartAction", "StartRejected"]


class StartAction(StrEnum):
    """What a start failure means for selection (live-ai spec §2)."""

    RETRY_SAME = "retry the same orchestrator with fresh ticket params"  # ticketparams expired
    NEXT = "drop this orchestrator for the stream, try the next"  # capacity, sender nonce
    REMOVE = "remove this orchestrator, try the next"  # any other error


def start_action(status: int, text: str) -> StartAction:
    """§2: what a refusal of the start request means (its kind is read by the wire layer)."""
    kind = refusal_kind(text)
    if kind is RefusalKind.TICKET_PARAMS_EXPIRED:
        return StartAction.RETRY_SAME
    if kind is not RefusalKind.OTHER or status == 503:
        return StartAction.NEXT
    return StartAction.REMOVE


class LiveAIError(LivepeerError):
    """A live video-to-video exchange with an orchestrator failed."""


class StartRejected(LiveAIError):
    """The start request failed. ``status`` 0: no (usable) answer at all."""

    def __init__(self, message: str, status: int, url: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message, url)
        self.status = status
        self.text = message
        self.action = start_action(status, message)


class NoOrchestrator(LiveAIError):
    """No orchestrator could be found or started for the stream."""
