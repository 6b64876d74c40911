"""The HTTP server's own limits against a running Gateway, over real sockets: at most
``-httpMaxConnsPerIp`` connections at once from one address (the rest closed at once and
counted in /metrics), and a request body that trickles in is cut (a byte a second would hold a
handler for ever), while a body at a usable rate is read whole."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from e2e.slow_testkit import SlowClients
from mediatools import wait_until

import mediagw.api.guard
from mediagw.gateway import Gateway

pytestmark = pytest.mark.slow


async def _status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status


async def test_connections_over_the_per_ip_limit_are_closed_at_once(gateway: Gateway) -> None:
    """150 idle connections from 127.0.0.2 (the default limit: 100, loopback not exempt): 50
    closed at once, counted in /metrics; 127.0.0.1 is still served; once the 100 go, the
    address gets in again."""
    gw = gateway
    limit = gw.settings.http_max_conns_per_ip
    assert limit == 100
    slow = SlowClients(gw.http_port)
    base = f"http://127.0.0.1:{gw.http_port}"
    try:
        await slow.idle(limit + 50, "127.0.0.2")
        await wait_until(lambda: slow.closed >= 50, 5)
        await asyncio.sleep(0.3)  # nothing more is closed: the 100 are held
        assert (slow.open, slow.closed) == (limit, 50)
        assert gw.http_conns.refused == 50 and gw.http_conns.open("127.0.0.2") == limit
        assert await _status(f"{base}/healthz") == 200  # another address
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
            assert "mediagw_http_conns_refused_total 50.0" in await resp.text()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", gw.http_port, local_addr=("127.0.0.2", 0)
        )
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionError):  # reset at once, nothing read
            async with asyncio.timeout(5):
                if not await reader.read(1024):
                    raise ConnectionResetError
        writer.close()
    finally:
        await slow.aclose()
    await wait_until(lambda: gw.http_conns.open("127.0.0.2") == 0, 5)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.http_port, local_addr=("127.0.0.2", 0)
    )
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(5):
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
    writer.close()


def _head(path: str, length: int, ctype: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_request_body_that_trickles_in_is_cut(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WHIP offer and an HTTP push segment whose bodies come a byte every 0.2 s are cut after
    the grace (here 1 s; 10 s by default), no stream begins; a 4 KiB body at 2 KiB/s (over the
    1 KiB/s floor) is read whole and answered."""
    monkeypatch.setattr(mediagw.api.guard, "BODY_GRACE", 1.0)
    gw = gateway
    slow = SlowClients(gw.http_port)
    whip = _head("/whip/slowoffer", 2000, "application/sdp")
    pushed = _head("/live/slowpush/0.ts", 100_000, "video/mp2t")
    try:
        started = time.monotonic()
        await asyncio.gather(
            slow.trickle(5, "127.0.0.3", b"v" * 2000, 0.2, head=whip),
            slow.trickle(5, "127.0.0.3", b"G" * 100_000, 0.2, head=pushed),
        )
        await wait_until(lambda: slow.open == 0, 1.0 + 5)
        took = time.monotonic() - started
        print(f"\nslow bodies: 10 cut after {took:.1f} s (grace 1 s)")
        assert took >= 1.0
        assert gw.hub.get("slowoffer") is None and gw.hub.get("slowpush") is None
    finally:
        await slow.aclose()

    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    body = b"v=0\r\n" + b"x" * 4091
    writer.write(_head("/whip/steady", len(body), "application/sdp"))
    for i in range(0, len(body), 512):  # 2 KiB/s: 2 s, past the grace
        writer.write(body[i : i + 512])
        await asyncio.sleep(0.25)
    async with asyncio.timeout(5):
        answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer  # read whole: the (bad) offer's answer
    writer.close()
