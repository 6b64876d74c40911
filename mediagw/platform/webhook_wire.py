"""What a webhook delivery looks like on the wire: its body, its headers, its signature.

Body: the JSON document ``{id, webhookId, createdAt, timestamp, event, stream, payload}``
(times in unix ms; ``id`` is the delivery's, ``createdAt`` when the event happened, ``timestamp``
when this attempt was sent), encoded compactly; the bytes signed are the bytes sent.

Signature, when the webhook has a ``sharedSecret``::

    Livepeer-Signature: t=<T>,v1=<hex HMAC-SHA256(secret, body)>,
                        v2=<hex HMAC-SHA256(secret, "<T>." + body)>   (one line)

with ``T`` the body's ``timestamp``.

``v1`` is Studio's: receivers written for Studio verify it unchanged (it does not cover ``t``, so
a captured request can be replayed). ``v2`` covers the timestamp too: a receiver that checks
``v2`` and refuses an old ``t`` (say, more than 5 minutes) is safe from replays. ``verify``
checks either. Without a secret there is no signature header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from .. import __version__
from .store import Delivery

__all__ = [
    "SIGNATURE_HEADER",
    "USER_AGENT",
    "body_doc",
    "encode",
    "request_headers",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "Livepeer-Signature"
USER_AGENT = f"mediagw-webhooks/{__version__}"


def body_doc(delivery: Delivery, timestamp: int) -> dict[str, Any]:
    """The JSON document POSTed for ``delivery`` at ``timestamp`` (ms): Studio's body."""
    return {
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "createdAt": delivery.created_at,
        "timestamp": timestamp,
        "event": delivery.event,
        "stream": delivery.payload.get("stream"),
        "payload": delivery.payload.get("payload") or {},
    }


def encode(doc: dict[str, Any]) -> bytes:
    """The body's bytes (compact JSON, ASCII)."""
    return json.dumps(doc, separators=(",", ":")).encode()


def _mac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Livepeer-Signature`` value: ``t=<ms>,v1=<mac of body>,v2=<mac of "t." + body>``."""
    v1 = _mac(secret, body)
    v2 = _mac(secret, b"%d." % timestamp + body)
    return f"t={timestamp},v1={v1},v2={v2}"


def verify(secret: str, body: bytes, header: str, *, scheme: str = "v2") -> int | None:
    """The header's timestamp if its ``scheme`` (``v1`` or ``v2``) MAC matches ``body``, else
    None. The caller still checks that the timestamp is recent (for ``v2``)."""
    pairs = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(pairs["t"])
        given = pairs[scheme]
    except (KeyError, ValueError):
        return None
    data = body if scheme == "v1" else b"%d." % timestamp + body
    return timestamp if hmac.compare_digest(_mac(secret, data), given) else None


def request_headers(signature: str | None) -> dict[str, str]:
    """The headers of a delivery (the signature header only when there is a signature)."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return headers
