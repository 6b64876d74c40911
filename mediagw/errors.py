"""The one exception tree of mediagw.

    MediaGWError
    +-- ConfigError                 local misuse: bad flag, bad file, bad value
    |   +-- ProfileError            a rendition ladder / profile JSON is invalid (livepeer/errors)
    |   +-- KeystoreError           keystore missing, wrong password, bad file (payments/errors)
    +-- IngestError                 something went wrong with a publisher
    |   +-- ProtocolError           the peer broke the wire protocol (carries no secrets)
    |   |   +-- RTMPProtocolError   ... on RTMP (bad handshake, chunk, AMF, oversized values)
    |   +-- PublishRejected         the publish was refused (bad key, stream busy, limits);
    |       |                       ``code`` is the RTMP onStatus code sent back to the peer
    |       +-- StreamBusy          somebody already publishes this stream
    |       +-- LimitExceeded       a connection or session limit was reached
    |       +-- BadStreamRequest    the publisher's URL asks for something invalid (a pipeline
    |                               name, params, ids, RTMP outputs): HTTP answers 400
    +-- MediaError                  media could not be cut or muxed (wraps segmenter errors)
    +-- LivepeerError               an orchestrator misbehaved or is unreachable (livepeer/errors):
    |                               OrchestratorUnreachable (CertificatePinError),
    |                               OrchestratorError (gRPC status), ProtocolViolation (garbage),
    |                               SegmentRejected, TranscodeFailed, DownloadError,
    |                               TrickleError (livepeer/trickle/errors: channel gone or closed,
    |                               segment dropped/broken/too large, unavailable)
    +-- PaymentError                tickets could not be built or were refused (payments/errors):
    |                               NeedsRefresh (TicketParamsExpired), TicketParamsRejected,
    |                               TotalEVTooHigh, PriceRejected (MissingPrice, PriceJump,
    |                               PriceAboveCap), SenderValidationError, SigningError, ChainError,
    |                               SignerError (remote signer answers: 480/481/482, unavailable)
    +-- WebhookError                an orchestrator discovery webhook failed (pool/sources)
    +-- WebhookUnreachable          an operator endpoint (auth webhook, heartbeat, signer auth
    |                               hook) could not be reached or did not answer in time
    +-- OrchestratorError           the reference orchestrator's own errors (orchestrator/errors;
    |                               never raised in the gateway)
    +-- SignerServiceError          the remote signer service's own errors (signer_service/errors)
    +-- AuthError                   an API key was refused (platform/keys); ``reason`` says why:
    |                               missing, malformed, unknown, wrong, revoked, expired
    +-- InvalidInput                an API request asks for something invalid (a private webhook
    |                               URL, an unknown event, a bad profile); ``field`` names it
    +-- AccessDenied                playback of a gated stream was refused (platform/access);
    |                               ``status`` is 401 (no or bad token) or 403 (not for this)
    +-- StoreError                  the platform store (platform/store) failed: cannot open or
        |                           migrate the database, or it refused a statement
        +-- StoreConflict           a unique field (stream key, playback id, key lookup id, id)
        |                           is taken; ``field`` names it, never its value
        +-- StoreNotFound           a row refers to one that does not exist (a session's stream)
        +-- StoreBadInput           the caller asked for something invalid: a limit out of range,
        |                           a malformed cursor, an unknown field to update
        +-- StoreUnavailable        the database cannot be reached or dropped the connection (a
                                    restart, a network cut): the same call may succeed later

The segmenter library has its own root, ``segmenter.SegmenterError``; the gateway translates it
once, where it calls the segmenter (stream/publisher.py).

Local misuse (our caller did something wrong) and remote misbehaviour (a peer sent something
wrong) are separate branches, so a handler never has to match error text. Errors raised by
libraries (PyAV, aiohttp) are translated once, at the boundary that calls them.
"""

from __future__ import annotations


class MediaGWError(Exception):
    """Root of every error mediagw raises on purpose."""


class ConfigError(MediaGWError):
    """A setting is missing, malformed or inconsistent. The message says which and how to fix it."""


class IngestError(MediaGWError):
    """A publisher could not be served."""


class ProtocolError(IngestError):
    """A peer sent bytes that break the protocol; its connection is closed, others go on."""


class RTMPProtocolError(ProtocolError):
    """A malformed or oversized RTMP handshake, chunk, message or AMF value."""


class PublishRejected(IngestError):
    """A publish request was refused. ``code`` is the RTMP NetStream status code to send."""

    def __init__(self, description: str, code: str = "NetStream.Publish.BadName") -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class StreamBusy(PublishRejected):
    """The stream already has a live publisher; a second one is refused, never a takeover."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(
            f"stream {stream_id!r} is already being published", "NetStream.Publish.BadName"
        )
        self.stream_id = stream_id


class LimitExceeded(PublishRejected):
    """A configured limit (connections per IP, total, sessions) was reached."""

    def __init__(self, description: str) -> None:
        super().__init__(description, "NetStream.Publish.Rejected")


class BadStreamRequest(PublishRejected):
    """What the publisher's URL asks for is invalid; the message names the field and limit."""

    def __init__(self, description: str) -> None:
        super().__init__(description, "NetStream.Publish.BadName")


class MediaError(MediaGWError):
    """Media could not be segmented or muxed; the stream is ended with this reason."""


class WebhookUnreachable(MediaGWError):
    """An operator endpoint could not be reached or did not answer in time (``webhook.py``).
    The message names the error's kind and text, never the URL's query or credentials."""


class StoreError(MediaGWError):
    """The platform store failed (``platform/store``): it cannot be opened or migrated, or the
    database refused a statement. The message says which database and what to check."""


class StoreConflict(StoreError):
    """A unique field is already taken. ``field`` is the column (``stream_key``), never the value
    (which may be a secret): pick another value and retry."""

    def __init__(self, entity: str, field: str) -> None:
        super().__init__(f"a {entity} with this {field} already exists: choose another {field}")
        self.entity = entity
        self.field = field


class StoreNotFound(StoreError):
    """A row refers to one that does not exist (a session for an unknown stream); create the
    referenced row first."""


class StoreBadInput(StoreError):
    """The caller asked the store for something invalid (a limit out of range, a malformed
    cursor, an unknown field to update); the message names it and the allowed range."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached, or the connection dropped (a restart, a network
    cut): nothing says whether a transaction in flight was committed. Retry later."""


_AUTH_ADVICE = {
    "missing": "send an API key (Authorization: Bearer mgw_...)",
    "malformed": "this is not a mediagw API key: keys look like mgw_<16 hex>_<43 characters>",
    "unknown": "this API key is not valid: check it was copied whole, or create one with "
    "'mediagw keys create'",
    "wrong": "this API key is not valid: check it was copied whole, or create one with "
    "'mediagw keys create'",
    "revoked": "this API key was revoked: use another key, or create one with "
    "'mediagw keys create'",
    "expired": "this API key has expired: create a new one with 'mediagw keys create'",
}


class AuthError(MediaGWError):
    """An API key was refused. ``reason`` is one of missing, malformed, unknown, wrong, revoked,
    expired; the message says what to do next and never contains the key."""

    REASONS = tuple(_AUTH_ADVICE)

    def __init__(self, reason: str) -> None:
        super().__init__(_AUTH_ADVICE[reason])
        self.reason = reason


class InvalidInput(MediaGWError):
    """An API request is well formed but asks for something invalid. ``field`` is the JSON path
    of the offending field (``url``, ``profiles.0.width``); the message says what is allowed.
    The API answers 422 with Studio's error shape."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class AccessDenied(MediaGWError):
    """Playback of a gated stream was refused. ``status`` is 401 when no valid token came (none,
    malformed, bad signature, expired) and 403 when a valid token is not for this stream or its
    signing key is disabled; the message says which, never the token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
