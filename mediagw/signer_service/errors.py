"""Errors of the remote signer service, hung under ``mediagw.errors.MediaGWError``.

    MediaGWError
    +-- SignerServiceError
        +-- RequestFailed(status, message, headers)   one request answered with an error status

``RequestFailed`` carries the HTTP status the gateway gets; the message goes into the JSON error
body ``{"error":{"message":...}}``, except for 500 and 503 whose messages are replaced by
``Internal Server Error`` / ``Service Unavailable Error`` (live-AI spec §10.1).
"""

from __future__ import annotations

from collections.abc import Mapping

from mediagw.errors import MediaGWError

__all__ = ["RequestFailed", "SignerServiceError", "public_message"]


class SignerServiceError(MediaGWError):
    """Root of the signer service's own errors."""


class RequestFailed(SignerServiceError):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def public_message(status: int, message: str) -> str:
    """What the error body says: 500/503 never leak internal details."""
    if status == 500:
        return "Internal Server Error"
    if status == 503:
        return "Service Unavailable Error"
    return message
