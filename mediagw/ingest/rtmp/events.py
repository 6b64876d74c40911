"""What :class:`~.connection.ServerConnection` reports to its driver (sans-IO events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Closing",
    "Connected",
    "Event",
    "HandshakeCompleted",
    "MediaMessage",
    "Metadata",
    "PublishEnded",
    "PublishRequested",
]


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """C0/C1/C2 were received; the chunk stream starts."""


@dataclass(frozen=True, slots=True)
class Connected:
    """``connect`` was answered. ``tc_url`` has no query string."""

    app: str
    tc_url: str
    flash_ver: str = ""


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """A ``publish``: answer with ``accept_publish()`` or ``reject_publish(code, description)``.

    Query values may carry secret keys: never log them.
    """

    app: str
    name: str
    query: dict[str, str] = field(repr=False)
    tc_url: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class PublishEnded:
    """FCUnpublish / deleteStream / closeStream, or the peer closed the connection.

    ``error`` is None for an orderly end; a text when the connection broke mid-message.
    """

    stream_id: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Metadata:
    """``@setDataFrame onMetaData`` (or a bare ``onMetaData``) while publishing."""

    meta: dict[str, Any]


@dataclass(slots=True)  # not frozen, read-only by convention: segmenter/packet.py says why
class MediaMessage:
    """An audio (8) or video (9) message; ``timestamp`` is unwrapped milliseconds."""

    msg_type: int
    timestamp: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Closing:
    """The connection should be closed once the pending bytes are sent (reject, play, ...)."""

    reason: str


Event = (
    HandshakeCompleted
    | Connected
    | PublishRequested
    | PublishEnded
    | Metadata
    | MediaMessage
    | Closing
)
