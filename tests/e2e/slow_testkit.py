"""Slow and idle clients against a running Gateway: connections that send nothing, or trickle
bytes one at a time, from a loopback address of their own (so a per-IP limit they reach does
not stop a publisher on 127.0.0.1). ``SlowClients`` records which ones the server closed."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from typing import Any


class SlowClients:
    def __init__(self, port: int) -> None:
        self.port = port
        self.opened = 0
        self.closed = 0  # connections the server closed (EOF or reset)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._connecting = asyncio.Semaphore(50)  # under the listen backlog

    @property
    def open(self) -> int:
        return self.opened - self.closed

    async def _connect(self, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._connecting:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(source, 0)
            )
        self.opened += 1
        self._writers.append(writer)
        return reader, writer

    async def idle(self, n: int, source: str, first: bytes = b"") -> None:
        """``n`` connections that send ``first`` and then nothing."""

        async def one() -> None:
            reader, writer = await self._connect(source)
            writer.write(first)
            self._watch(reader)

        await asyncio.gather(*(one() for _ in range(n)))

    async def trickle(
        self, n: int, source: str, data: bytes, interval: float = 1.0, head: bytes = b""
    ) -> None:
        """``n`` connections that each send ``head`` at once, then ``data`` one byte every
        ``interval`` seconds."""

        async def drip(writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                writer.write(head)
                for i in range(len(data)):
                    if writer.is_closing():
                        return
                    writer.write(data[i : i + 1])
                    await asyncio.sleep(interval)

        async def one() -> None:
            reader, writer = await self._connect(source)
            self._watch(reader)
            self._spawn(drip(writer))

        await asyncio.gather(*(one() for _ in range(n)))

    def _watch(self, reader: asyncio.StreamReader) -> None:
        async def until_closed() -> None:
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass
            self.closed += 1

        self._spawn(until_closed())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def threads_and_rss() -> tuple[int, int]:
    """This process's OS threads (Python's and FFmpeg's) and resident memory in MiB (Linux's
    ``/proc``; (0, 0) elsewhere)."""
    try:
        threads = len(os.listdir("/proc/self/task"))
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0, 0
    return threads, rss // 1024
