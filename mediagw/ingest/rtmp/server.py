"""``RTMPServer``: accepts RTMP publishers and hands their media to a :class:`PublishHandler`.

::

    server = RTMPServer(handler, limits=RTMPLimits(), host="0.0.0.0", port=1935)
    await server.start()          # port=0 picks a free port: see server.port
    ...
    await server.close()          # stops accepting, ends every connection (sinks closed)

Connections over ``max_connections`` (in total) or ``max_connections_per_ip`` are closed at
once, before the handshake. Each connection runs in its own task and fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable

from .aioconn import InlineReaderProtocol, RTMPConnection
from .moderation import ReadModerator
from .types import PublishHandler, PublishRequest, PublishSink, RTMPLimits

__all__ = ["PublishHandler", "PublishRequest", "PublishSink", "RTMPLimits", "RTMPServer"]

log = logging.getLogger("mediagw.ingest.rtmp")


class RTMPServer:
    def __init__(
        self,
        handler: PublishHandler,
        *,
        limits: RTMPLimits | None = None,
        host: str = "0.0.0.0",
        port: int = 1935,
        rand: Callable[[int], bytes] = os.urandom,
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: share the port with other processes (``mediagw run -workers N``: the
        kernel spreads new connections between them)."""
        self.handler = handler
        self.reuse_port = reuse_port
        self.limits = limits or RTMPLimits()
        self.host = host
        self._port = port
        self._rand = rand
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_ip: Counter[str] = Counter()
        self.refused = 0  # connections closed at once for being over a limit
        self._conns: set[RTMPConnection] = set()
        self._closed_bytes_in = 0  # of the connections gone
        self.moderator = ReadModerator(self.limits.read_hold)

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def connections(self) -> int:
        return len(self._tasks)

    @property
    def bytes_in(self) -> int:
        """Bytes read from every RTMP connection so far (read at scrape time)."""
        return self._closed_bytes_in + sum(c.bytes_in for c in self._conns)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("RTMPServer already started")
        loop = asyncio.get_running_loop()
        limit = self.limits.read_size

        def protocol() -> InlineReaderProtocol:  # what asyncio.start_server makes, but ours
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            return InlineReaderProtocol(reader, self._on_client, loop=loop)

        self._server = await loop.create_server(
            protocol,
            self.host or None,
            self._port,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )
        log.info("rtmp server listening", extra={"host": self.host, "port": self.port})

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._port = int(server.sockets[0].getsockname()[1]) if server.sockets else self._port
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        self.moderator.release()  # no connection waits for a tick of a server that is gone
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> RTMPServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if peername else ("?", 0)
        ip = peer[0]
        limits = self.limits
        if (
            len(self._tasks) >= limits.max_connections
            or self._per_ip[ip] >= limits.max_connections_per_ip
        ):
            self.refused += 1
            log.warning(
                "rtmp connection refused: limit reached",
                extra={
                    "peer": f"{ip}:{peer[1]}",
                    "total": len(self._tasks),
                    "ip": self._per_ip[ip],
                },
            )
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        conn: RTMPConnection | None = None
        self._tasks.add(task)
        self._per_ip[ip] += 1
        try:
            conn = RTMPConnection(
                reader,
                writer,
                self.handler,
                limits,
                peer,
                rand=self._rand,
                moderator=self.moderator,
            )
            protocol = writer.transport.get_protocol()
            if isinstance(protocol, InlineReaderProtocol):
                protocol.conn, conn.protocol = conn, protocol
            self._conns.add(conn)
            await conn.run()
        except asyncio.CancelledError:
            pass  # server closing; the connection cleaned up after itself
        finally:
            self._tasks.discard(task)
            if conn is not None:
                self._conns.discard(conn)
                self._closed_bytes_in += conn.bytes_in
            self._per_ip[ip] -= 1
            if self._per_ip[ip] <= 0:
                del self._per_ip[ip]
