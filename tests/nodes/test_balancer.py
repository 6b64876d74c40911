"""The test load balancer (``nodes_testkit.Balancer``): each connection to the first backend
that accepts, or in turn; bytes both ways; a dead backend is skipped."""

from __future__ import annotations

import asyncio

from nodes_testkit import Balancer, free_port


async def _echo_server(tag: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(tag + data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _ask(port: int, text: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text)
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return answer


async def test_first_live_backend_then_round_robin() -> None:
    a, b = await _echo_server(b"a:"), await _echo_server(b"b:")
    dead = free_port()  # nothing listens
    ports = [dead, a.sockets[0].getsockname()[1], b.sockets[0].getsockname()[1]]
    first = Balancer([("127.0.0.1", p) for p in ports])
    turns = Balancer([("127.0.0.1", p) for p in ports[1:]], mode="round_robin")
    await first.start()
    await turns.start()
    try:
        assert [await _ask(turns.port, b"x") for _ in range(3)] == [b"a:x", b"b:x", b"a:x"]
        assert await _ask(first.port, b"hello") == b"a:hello"  # the dead one skipped
        a.close()
        await a.wait_closed()
        assert await _ask(first.port, b"again") == b"b:again"  # a went away: on to b
        assert first.chosen == ports[1:]
    finally:
        await first.close()
        await turns.close()
        b.close()
