"""Errors of the Livepeer wire client, hung under the one tree of ``mediagw.errors``.

    MediaGWError
    +-- ConfigError
    |   +-- ProfileError                a rendition profile or ladder is invalid; the message names
    |                                   the profile (index and name) and the field
    +-- LivepeerError                   talking to an orchestrator (O) failed; ``url`` names it
        +-- OrchestratorUnreachable     dial, TLS handshake, timeout, lost connection: try another O
        |   +-- CertificatePinError     O's certificate changed again inside the re-pin window
        +-- OrchestratorError           O answered a gRPC call with a non-OK status
        |                               (``grpc_status``, ``message`` = decoded grpc-message)
        +-- ProtocolViolation           O sent bytes that break the protocol: bad gRPC framing,
        |                               undecodable protobuf, a body over its size limit
        +-- SegmentRejected             ``POST /segment`` answered non-200 (``status``); the
        |   |                           message is O's trimmed body text, e.g. "OrchestratorCapped"
        |   +-- StaleTicketParams       ... because the ticket params O issued have expired: not
        |                               O's fault, fetch fresh ones and send to the same O again
        +-- TranscodeFailed             O accepted the segment, then reported a transcoding error
        |                               (``TranscodeResult.error``, e.g. "OrchestratorBusy")
        +-- DownloadError               a rendition GET answered with a non-200 status (``status``)

Remote misbehaviour (everything under ``LivepeerError``) and local misuse (``ProfileError``) are
separate branches, so callers never match error text. Where go-livepeer reports a condition only
as text (an expired ticket params refusal, missing capacity, a bad sender nonce), the text is
read once, here: ``refusal_kind`` and ``segment_rejection``.
"""

from __future__ import annotations

from enum import StrEnum

from mediagw.errors import ConfigError, MediaGWError

__all__ = [
    "CertificatePinError",
    "DownloadError",
    "LivepeerError",
    "OrchestratorError",
    "OrchestratorUnreachable",
    "ProfileError",
    "ProtocolViolation",
    "RefusalKind",
    "SegmentRejected",
    "StaleTicketParams",
    "TranscodeFailed",
    "refusal_kind",
    "segment_rejection",
]

_GRPC_CODES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


class ProfileError(ConfigError):
    """A transcoding profile, preset list or ladder file is invalid."""


class LivepeerError(MediaGWError):
    """An exchange with an orchestrator failed. ``url`` is the orchestrator (or object) URL."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.url = url
        self.detail = message


class OrchestratorUnreachable(LivepeerError):
    """The orchestrator could not be reached or did not answer in time (retry elsewhere)."""


class CertificatePinError(OrchestratorUnreachable):
    """The peer's certificate does not match its pin and the one allowed re-pin is used up."""


class ProtocolViolation(LivepeerError):
    """The orchestrator answered with bytes that break the protocol."""


class OrchestratorError(LivepeerError):
    """A gRPC call ended with a non-OK ``grpc-status``; ``message`` is the decoded grpc-message."""

    def __init__(self, message: str, grpc_status: int, url: str = "") -> None:
        name = _GRPC_CODES.get(grpc_status, "?")
        super().__init__(f"gRPC status {grpc_status} ({name}): {message or '(no message)'}", url)
        self.message = message
        self.grpc_status = grpc_status


class DownloadError(LivepeerError):
    """A rendition download answered with a non-200 HTTP status."""

    def __init__(self, message: str, status: int, url: str = "") -> None:
        super().__init__(message, url)
        self.status = status


class SegmentRejected(LivepeerError):
    """``POST /segment`` was answered with a non-200 status; ``message`` is O's body text."""

    def __init__(self, message: str, status: int, url: str = "") -> None:
        super().__init__(f"HTTP {status}: {message or '(empty body)'}", url)
        self.message = message
        self.status = status


class TranscodeFailed(LivepeerError):
    """O accepted the segment but its ``TranscodeResult`` carries an error (or nothing at all)."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(f"transcoding failed: {message}", url)
        self.message = message


class StaleTicketParams(SegmentRejected):
    """O refused the payment of a segment because the ticket params it issued have expired
    (payments spec §7, §10). Not O's fault: fetch fresh params, the same O may take it again."""


class RefusalKind(StrEnum):
    """What an orchestrator's refusal means, for the texts go-livepeer gives no other form."""

    TICKET_PARAMS_EXPIRED = "ticket params expired"  # fresh params, same O again
    INSUFFICIENT_CAPACITY = "insufficient capacity"  # this O is full: the next one
    INVALID_SENDER_NONCE = "invalid ticket sender nonce"  # this O's session is off: the next
    OTHER = "other"


def refusal_kind(text: str) -> RefusalKind:
    """The kind of O's refusal ``text`` (HTTP body), matched case-insensitively as go-livepeer
    does (live-ai spec §2); the only place its wire texts are read."""
    low = text.lower()
    if "ticketparams expired" in low:
        return RefusalKind.TICKET_PARAMS_EXPIRED
    if "insufficient capacity" in low:
        return RefusalKind.INSUFFICIENT_CAPACITY
    if "invalid ticket sendernonce" in low:
        return RefusalKind.INVALID_SENDER_NONCE
    return RefusalKind.OTHER


def segment_rejection(text: str, status: int, url: str = "") -> SegmentRejected:
    """``POST /segment`` answered ``status`` with body ``text``: the typed error."""
    if refusal_kind(text) is RefusalKind.TICKET_PARAMS_EXPIRED:
        return StaleTicketParams(text, status, url)
    return SegmentRejected(text, status, url)
