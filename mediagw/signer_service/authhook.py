"""The signer's auth webhook (live-AI spec §10.5; go-livepeer ``authLivePayment``).

Called on each ``/generate-live-payment`` after the state update and before anything is signed,
unless the state's ``AuthExpiry`` is still valid (now <= AuthExpiry). Request: ``POST`` JSON
``{"headers": {<gateway request headers>: [values]}, "state": <state>}`` with the configured
headers, 5 s timeout. Answer: HTTP 200 with ``{"status": int, "reason", "expiry", "auth_id",
"maxPrice"}``. A ``status`` other than 200 goes back to the gateway with ``reason``; a non-200
HTTP answer, a body that is not such an object, or a missing/invalid ``status`` is a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mediagw.errors import ConfigError, WebhookUnreachable

from ..webhook import JsonPoster
from .errors import RequestFailed

__all__ = ["AuthDecision", "AuthWebhook", "canonical_header", "go_headers"]

log = logging.getLogger("mediagw.signer.auth")
MAX_HEADERS = 200


@dataclass(frozen=True, slots=True)
class AuthDecision:
    status: int
    reason: str = ""
    expiry: int = 0
    auth_id: str = ""
    max_price: Any = None


def canonical_header(name: str) -> str:
    """Go ``textproto.CanonicalMIMEHeaderKey``: ``x-api-key`` -> ``X-Api-Key``."""
    if not name or any(c in name for c in " \t:") or not name.isascii():
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def go_headers(pairs: Any) -> dict[str, list[str]]:
    """Request headers as Go's ``http.Header`` (canonical keys, Host excluded)."""
    out: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(pairs):
        if count >= MAX_HEADERS:
            break
        key = canonical_header(str(name))
        if key == "Host":
            continue
        out.setdefault(key, []).append(str(value))
    return out


def _internal(message: str) -> RequestFailed:
    return RequestFailed(500, message)


class AuthWebhook:
    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        max_body: int = 1 << 20,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"-remoteSignerWebhookUrl: {url!r} is not an http(s) URL")
        self.url = url
        self._max_body = max_body
        self._poster = JsonPoster(
            url, timeout=timeout, max_body=max_body, headers=headers, follow_redirects=False
        )

    async def close(self) -> None:
        await self._poster.close()

    async def ask(self, request_headers: dict[str, list[str]], state: Any) -> AuthDecision:
        """One webhook call; RequestFailed(500) when the webhook cannot be used."""
        try:
            status, data = await self._poster.post({"headers": request_headers, "state": state})
        except WebhookUnreachable as exc:
            log.warning("signer auth webhook failed", extra={"error": str(exc)})
            raise _internal(f"failed to call remote signer webhook: {exc}") from None
        if len(data) > self._max_body:
            raise _internal("signer auth response too large")
        if status != 200:
            log.warning("signer auth webhook answered HTTP error", extra={"status": status})
            raise _internal(f"signer auth error status {status}")
        return parse_decision(data)


def parse_decision(data: bytes) -> AuthDecision:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _internal(f"signer auth invalid response: {exc}") from None
    if not isinstance(doc, dict):
        raise _internal("signer auth invalid response: not an object")
    status = doc.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or status <= 0:
        raise _internal("signer auth invalid status")
    if not 200 <= status <= 599:
        raise _internal(f"signer auth status {status} is not a final HTTP status")
    reason, expiry, auth_id = doc.get("reason", ""), doc.get("expiry", 0), doc.get("auth_id", "")
    if reason is None:
        reason = ""
    if auth_id is None:
        auth_id = ""
    if expiry is None:
        expiry = 0
    if not isinstance(reason, str) or not isinstance(auth_id, str) or len(auth_id) > 256:
        raise _internal("signer auth invalid response: reason/auth_id")
    if isinstance(expiry, bool) or not isinstance(expiry, int) or abs(expiry) >= 2**63:
        raise _internal("signer auth invalid response: expiry")
    if status != 200 and not reason:
        reason = f"signer auth rejected request with status {status}"
    return AuthDecision(status, reason[:1000], expiry, auth_id, doc.get("maxPrice"))
