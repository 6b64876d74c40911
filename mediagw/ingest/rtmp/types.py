"""The seams between the RTMP server and the gateway: what it asks for, what it hands over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .statemachine import ConnectionConfig

__all__ = ["PublishHandler", "PublishRequest", "PublishSink", "RTMPLimits"]


@dataclass(frozen=True)
class PublishRequest:
    app: str
    name: str  # stream name without query string
    query: dict[str, str]  # merged from tcUrl, app and name (values may be secret: never log)
    tc_url: str  # as the client sent it, without its query string
    peer: tuple[str, int]


class PublishSink(Protocol):
    @property
    def public_id(self) -> str:
        """The stream's public (playback) id: the only stream name the server logs, as the name
        the publisher sent may be its secret stream key."""
        ...

    async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
        """8 audio, 9 video (FLV tag bodies); ``timestamp`` in unwrapped ms. Awaiting it is
        backpressure: the connection reads nothing more from the socket meanwhile."""
        ...

    # Optional: ``hold_reads() -> bool``, asked after a read whose media the sink took: True
    # lets the connection's next read wait ``read_hold`` (see .moderation).
    # A sink without it is never held.

    def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
        """``media()`` without waiting, called as the bytes are read: True when the message
        was taken. False when taking it would need a wait (or the sink takes media only through
        ``media()``): the connection then awaits ``media()`` for it, and reads nothing more
        meanwhile. Raising is the sink failing, as ``media()`` raising is."""
        ...

    async def metadata(self, meta: dict[str, Any]) -> None: ...

    async def close(self, error: str | None) -> None:
        """Called exactly once: on unpublish or disconnect (``None``), or on error (a text)."""
        ...


class PublishHandler(Protocol):
    async def on_publish(self, req: PublishRequest) -> PublishSink:
        """Return the sink for this publish, or raise ``PublishRejected(description, code)``."""
        ...


@dataclass(frozen=True, slots=True)
class RTMPLimits:
    """Limits and timeouts of an :class:`~.server.RTMPServer` (seconds, bytes)."""

    max_connections: int = 1000
    max_connections_per_ip: int = 100
    handshake_timeout: float = 10.0  # accept -> C2 received
    idle_timeout: float = 30.0  # no byte received for this long
    publish_timeout: float = 15.0  # PublishHandler.on_publish must answer within this
    close_grace: float = 2.0  # after a refusal: wait for the peer to read it and hang up
    read_size: int = 64 << 10  # one socket read; the stream reader buffers at most 2x this
    # between keyframes, a publishing connection reads at most once per this many seconds
    # (see .moderation); 0: every read is handled as it comes
    read_hold: float = 0.1
    protocol: ConnectionConfig = field(default_factory=ConnectionConfig)
