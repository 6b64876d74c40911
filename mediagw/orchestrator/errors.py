"""Errors of the reference orchestrator, each carrying what goes on the wire.

    MediaGWError
    +-- OrchestratorError          base of everything below
        +-- RequestRejected        an HTTP request refused with ``status`` and go-livepeer's text
        +-- PaymentRejected        ProcessPayment failed (HTTP 400); ``fatal`` stops the batch
        +-- RPCError               a gRPC call failed: ``code`` (grpc status) and message
        +-- TranscodeError         transcoding failed; the text goes into TranscodeResult.error
        +-- LiveParamsError        live video-to-video params the pipeline refuses

The texts are go-livepeer's, so a gateway tested against this orchestrator sees what it would
see from the real one.
"""

from __future__ import annotations

from mediagw.errors import MediaGWError

__all__ = [
    "GRPC_UNIMPLEMENTED",
    "GRPC_UNKNOWN",
    "AbortConnection",
    "LiveParamsError",
    "OrchestratorError",
    "PaymentRejected",
    "RPCError",
    "RequestRejected",
    "TranscodeError",
]

GRPC_UNKNOWN = 2  # what grpc-go reports for a plain Go error returned by a handler
GRPC_UNIMPLEMENTED = 12


class OrchestratorError(MediaGWError):
    """Root of the reference orchestrator's errors."""


class RequestRejected(OrchestratorError):
    """Answer an HTTP request with ``status`` and ``text`` (plain text, as Go's http.Error)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class PaymentRejected(RequestRejected):
    """A ProcessPayment error (HTTP 400). Fatal errors stop checking the rest of the batch."""

    def __init__(self, text: str, *, fatal: bool) -> None:
        super().__init__(400, text)
        self.fatal = fatal


class RPCError(OrchestratorError):
    """A failed gRPC call: status ``code`` and the ``grpc-message`` text."""

    def __init__(self, message: str, code: int = GRPC_UNKNOWN) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TranscodeError(OrchestratorError):
    """Transcoding a segment failed; ``str(err)`` is the TranscodeResult.error text."""


class AbortConnection(OrchestratorError):
    """Cut the connection without an answer (what a panicking go-livepeer handler does)."""


class LiveParamsError(OrchestratorError):
    """Live pipeline params failed validation; ``str(err)`` says which and why."""
