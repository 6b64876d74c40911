"""Metrics: the facts the gateway's parts report, through one small seam.

Producers (the transcoder, discovery, live AI, the auth webhook, the webhook dispatcher) are
given a ``Metrics`` and call it where the fact happens: at most once per segment or per
request, never per packet. ``NULL_METRICS`` keeps nothing (library use, unit tests). The
gateway passes a Prometheus-backed one (``mediagw.api.metrics``); what can be read from
existing counters (streams, bytes, sessions) is read there at scrape time instead.

Labels stay bounded: orchestrator URLs (the pool's size), error codes (``error_code`` maps an
error text to a fixed set), model names (the operator's pipelines). A stream id is passed so
an implementation may label by stream when the operator asks for it (``-metricsPerStream``).

Ground floor: imports nothing of mediagw.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ERROR_CODES", "NULL_METRICS", "Metrics", "NullMetrics", "error_code"]

# error text (its start, after a "non-retryable: " prefix) -> error_code label
ERROR_CODES: tuple[tuple[str, str], ...] = (
    ("no orchestrator", "NoOrchestrators"),
    ("refresh failed", "OrchestratorRefresh"),
    ("payment", "PaymentCreate"),
    ("Orchestrator price", "PriceIncreased"),
    ("price", "PriceCap"),
    ("orchestrator error", "TranscodeError"),
    ("download failed", "DownloadFailed"),
    ("MismatchedSegments", "MismatchedSegments"),
    ("result signature", "VerifyFailed"),
    ("dropped", "Dropped"),
    ("internal error", "Internal"),
    ("timeout", "Timeout"),
    ("timed out", "Timeout"),
    ("HTTP ", "SegmentUpload"),
    ("connect", "SegmentUpload"),
)


def error_code(text: str | None) -> str:
    """A bounded label for an error text: one of ``ERROR_CODES``' codes, else "Other"."""
    if not text:
        return "None"
    text = text.removeprefix("non-retryable: ")
    for prefix, code in ERROR_CODES:
        if text.startswith(prefix):
            return code
    return "Other"


class Metrics(Protocol):
    # transcoding (per segment attempt / per segment)
    def segment_uploaded(self, stream: str, orchestrator: str, seconds: float) -> None: ...
    def segment_upload_failed(self, stream: str, orchestrator: str, code: str) -> None: ...
    def segment_transcoded(
        self, stream: str, orchestrator: str, profiles: str, seconds: float
    ) -> None: ...
    def segment_transcode_failed(self, stream: str, code: str) -> None: ...
    def orchestrator_swap(self, stream: str) -> None: ...
    # discovery and payments
    def discovery_error(self, orchestrator: str, code: str) -> None: ...
    def payment_create_error(self, stream: str) -> None: ...
    # the stream auth webhook
    def auth_webhook_time(self, milliseconds: float) -> None: ...
    # live AI
    def ai_live_attempt(self, stream: str, model: str) -> None: ...
    def ai_first_segment_delay(self, stream: str, orchestrator: str, ms: float) -> None: ...
    def ai_request_error(self, stream: str, code: str, pipeline: str, model: str) -> None: ...
    # the platform
    def rate_limited(self, scope: str) -> None: ...
    def webhook_attempt(self, delivered: bool) -> None: ...


class NullMetrics:
    """Keeps nothing."""

    def segment_uploaded(self, stream: str, orchestrator: str, seconds: float) -> None:
        pass

    def segment_upload_failed(self, stream: str, orchestrator: str, code: str) -> None:
        pass

    def segment_transcoded(
        self, stream: str, orchestrator: str, profiles: str, seconds: float
    ) -> None:
        pass

    def segment_transcode_failed(self, stream: str, code: str) -> None:
        pass

    def orchestrator_swap(self, stream: str) -> None:
        pass

    def discovery_error(self, orchestrator: str, code: str) -> None:
        pass

    def payment_create_error(self, stream: str) -> None:
        pass

    def auth_webhook_time(self, milliseconds: float) -> None:
        pass

    def ai_live_attempt(self, stream: str, model: str) -> None:
        pass

    def ai_first_segment_delay(self, stream: str, orchestrator: str, ms: float) -> None:
        pass

    def ai_request_error(self, stream: str, code: str, pipeline: str, model: str) -> None:
        pass

    def rate_limited(self, scope: str) -> None:
        pass

    def webhook_attempt(self, delivered: bool) -> None:
        pass


NULL_METRICS: Metrics = NullMetrics()
