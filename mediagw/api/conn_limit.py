"""At most ``limit`` HTTP connections at once from one client IP (``-httpMaxConnsPerIp``).

aiohttp accepts every connection; its ``web.Server`` is told of each one (``connection_made``)
and of its end (``connection_lost``). ``PerIPConnections.install`` counts them there, per peer
IP, and aborts a connection over the limit at once: no request of it is read, it costs a socket
for a moment. Refusals are counted (``refused``: ``mediagw_http_conns_refused_total``) and
logged at most once a second per address, with the number refused since.

Loopback is not exempt, as for RTMP: the limit is per source address, whatever it is. Behind a
reverse proxy on the same host (or between gateway nodes, whose playback proxy opens up to 512
connections to the owner) every client has the proxy's address: raise the limit there, or set
it to 0 (no limit) and let the proxy limit per client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["PerIPConnections"]

log = logging.getLogger("mediagw.http")

LOG_EVERY = 1.0  # seconds between two refusal lines about one address


class PerIPConnections:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self.refused = 0  # connections closed at once for being over the limit
        self._per_ip: Counter[str] = Counter()
        self._ip_of: dict[RequestHandler, str] = {}
        self._logged: dict[str, tuple[float, int]] = {}  # ip -> (when logged, refused since)

    def open(self, ip: str) -> int:
        """Connections from ``ip`` held now."""
        return self._per_ip[ip]

    def install(self, server: web.Server) -> None:
        """Count ``server``'s connections (the runner's, after ``setup``)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if peer else "?"
            if self.limit and self._per_ip[ip] >= self.limit:
                self.refused += 1
                self._log_refusal(ip)
                transport.abort()  # never registered: the server forgets it by itself
                return
            self._per_ip[ip] += 1
            self._ip_of[handler] = ip
            made(handler, transport)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            ip = self._ip_of.pop(handler, None)
            if ip is not None:
                self._per_ip[ip] -= 1
                if self._per_ip[ip] <= 0:
                    del self._per_ip[ip]
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _log_refusal(self, ip: str) -> None:
        now = time.monotonic()
        at, since = self._logged.get(ip, (0.0, 0))
        if now - at < LOG_EVERY:
            self._logged[ip] = (at, since + 1)
            return
        if len(self._logged) > 10_000:  # addresses seen long ago
            self._logged = {k: v for k, v in self._logged.items() if now - v[0] < LOG_EVERY}
        self._logged[ip] = (now, 0)
        log.warning(
            "http connection refused: per-IP limit reached",
            extra={"ip": ip, "limit": self.limit, "refused_since": since + 1},
        )
