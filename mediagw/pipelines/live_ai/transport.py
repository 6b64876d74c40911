"""HTTP to orchestrators for live AI: one aiohttp session, TOFU-pinned TLS per host:port.

Every request to an orchestrator (start, payment, the four trickle channels) goes through
``LiveHTTP.ssl_for(url)``: ``https://`` URLs get the pin store's context for that host:port
(pin checked in the handshake, before a header leaves), ``http://`` URLs go in cleartext.
The session's connector has no connection limit: a stream holds about eight long requests
(each channel's current and preconnected one).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from mediagw.livepeer.tls import PinStore

__all__ = ["LiveHTTP", "with_host_of"]


def with_host_of(url: str, transcoder: str) -> str:
    """go-livepeer AppendHostname as the spec puts it: ``url`` with the scheme and host:port of
    ``transcoder`` (a relative path gets them too)."""
    base = urlsplit(transcoder)
    parts = urlsplit(url)
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


class LiveHTTP:
    """``session`` None: one owned by this object (closed by ``close``)."""

    def __init__(self, pins: PinStore, session: aiohttp.ClientSession | None = None) -> None:
        self.pins = pins
        self._session = session
        self._own = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    def ssl_for(self, url: str) -> ssl.SSLContext | bool:
        parts = urlsplit(url)
        if parts.scheme != "https":
            return True  # ignored by aiohttp for http://
        port = parts.port or 443
        return self.pins.client_context(parts.hostname or "", port, alpn=("http/1.1",))

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
        self._session = None
