"""A TCP proxy a test can cut and restore, to take a shared server (PostgreSQL, Redis) away from
one client without touching the server others use.

``cut()`` is what a client sees of the server restarting: the listening socket closes (new
connections are refused, as on a port nothing listens on) and every open connection is reset
(RST, as when the server process dies). ``restore()`` listens again on the same port.

    async with TcpProxy("127.0.0.1", 5432) as proxy:   # proxy.port: point the client there
        await proxy.cut()
        ...
        await proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["TcpProxy"]

CHUNK = 65_536


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``host``:``target_port`` while it is not cut."""

    def __init__(self, host: str, target_port: int) -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0  # connections accepted (each up or down the server's side)
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.cut()

    async def restore(self) -> None:
        """Listen (again, on the same port): new connections reach the server."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening (connections refused) and reset every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for pair in list(self._pairs):
            for writer in pair:
                writer.transport.abort()  # closes at once; the peer reads a reset
        self._pairs.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(src, dst, pair))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:  # one side closed: close both
            self._pairs.discard(pair)
            for writer in pair:
                writer.close()
