"""Raw clients for floods and the end-to-end fuzz: one RTMP session over TCP, one HTTP request
over a raw socket, the kernel's view of a port's TCP sockets, and the hand-written malformed
HTTP requests (each from a defect found by flooding the gateway) that seed the fuzz.

Shared by ``mediagw bench fuzzlive`` and the flood test kit (tests/e2e/flood_testkit.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

__all__ = [
    "CLOSE_WAIT",
    "malformed_http_bodies",
    "malformed_http_raw",
    "raw_http",
    "rtmp_session",
    "tcp_states",
]

CLOSE_WAIT = "08"  # /proc/net/tcp state of a socket the peer closed and we did not


def tcp_states(port: int) -> Counter[str] | None:
    """States of this host's TCP sockets whose local port is ``port`` (``/proc/net/tcp*``,
    Linux); None where there is no such file. ``"08"`` is CLOSE-WAIT, ``"0A"`` LISTEN."""
    states: Counter[str] = Counter()
    found = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                states[fields[3]] += 1
    return states if found else None


async def rtmp_session(
    host: str, port: int, parts: list[bytes], *, fin: bool, close_timeout: float = 5.0
) -> str:
    """Send ``parts`` over one TCP connection, then FIN and read until the server closes
    (``fin``), or vanish with a reset. The outcome:

    - ``refused``: no connection;
    - ``cut``: the server closed or reset while we were still sending;
    - ``closed``: after our FIN the server answered (any bytes) and closed;
    - ``closed-silent``: after our FIN the server closed without sending a byte;
    - ``unclosed``: the server had not closed ``close_timeout`` s after our FIN (a leak);
    - ``reset``: we reset the connection ourselves (``fin=False``).
    """
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    got = 0
    try:
        try:
            for part in parts:
                writer.write(part)
                async with asyncio.timeout(close_timeout):
                    await writer.drain()
                await asyncio.sleep(0)
            if not fin:
                return "reset"
            writer.write_eof()
        except (ConnectionError, OSError):
            return "cut"
        except TimeoutError:
            return "unclosed"  # the server stopped reading, and did not close either
        try:
            async with asyncio.timeout(close_timeout):
                while chunk := await reader.read(65536):
                    got += len(chunk)
        except TimeoutError:
            return "unclosed"
        except (ConnectionError, OSError):
            pass  # a reset after our FIN: closed all the same
        return "closed" if got else "closed-silent"
    finally:
        writer.transport.abort()


async def raw_http(host: str, port: int, data: bytes, *, timeout: float = 5.0) -> int | str:
    """Send ``data`` as is; the status the server answered, else ``"refused"``, ``"closed"``
    (it closed without a status line) or ``"timeout"``."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    answer = b""
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            while len(answer) < 64 and (chunk := await reader.read(64)):
                answer += chunk
    except TimeoutError:
        if not answer.startswith(b"HTTP/1."):
            return "timeout"
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
    if answer.startswith(b"HTTP/1.") and answer[9:12].isdigit():
        return int(answer[9:12])
    return "closed"


def malformed_http_raw(key: str) -> dict[str, bytes]:
    """Requests aiohttp's client will not send, by kind."""
    return {
        "garbage-line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),
        "bad-method": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad-version": f"POST /live/{key}/0.ts HTTP/9.9\r\nHost: x\r\n\r\n".encode(),
        "header-without-colon": f"GET /whip/{key} HTTP/1.1\r\nNo colon\r\n\r\n".encode(),
        "long-line": f"GET /live/{key}/0.ts?{'a' * 9000} HTTP/1.1\r\n\r\n".encode(),
        "long-header": b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        "double-length": b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "bad-chunk": b"POST /live/video-to-video/x/update HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
        "short-body": b"POST /live/video-to-video/x/start HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 900\r\n\r\n{",
    }


def malformed_http_bodies(key: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(kind, path, headers, body) of well-formed POSTs with bad bodies or headers."""
    deep = b"[" * 3000 + b"]" * 3000
    live = "/live/video-to-video/cam"
    js = {"Content-Type": "application/json"}
    return [
        ("start-charset", f"{live}/start",
         {"Content-Type": "application/json; charset=utf-99"}, b'{"pipeline":"noop"}'),
        ("start-multipart-no-boundary", f"{live}/start",
         {"Content-Type": "multipart/form-data"}, b"--x\r\n"),
        ("start-multipart-broken", f"{live}/start",
         {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\nbroken"),
        ("start-deep-json", f"{live}/start", js, deep),
        ("start-params-number", f"{live}/start", js, b'{"params": 12, "pipeline": "noop"}'),
        ("start-form-bytes", f"{live}/start",
         {"Content-Type": "application/x-www-form-urlencoded"}, b"pipeline=\xff\xfe"),
        ("start-huge-pipeline", f"{live}/start", js,
         json.dumps({"pipeline": "p" * 100_000}).encode()),
        ("start-with-key", f"/live/video-to-video/{key}/start", js, b"{nope"),
        ("update-deep-json", f"{live}/update", js, deep),
        ("whip-bad-sdp", f"/whip/{key}", {"Content-Type": "application/sdp"}, b"\x00" * 300),
        ("whip-huge-pipeline", f"/whip/{key}?pipeline={'p' * 500}",
         {"Content-Type": "application/sdp"}, b"v=0\r\n"),
        ("whep-bad-sdp", "/live/video-to-video/cam/whep",
         {"Content-Type": "application/sdp; charset=utf-99"}, b"v=0\r\n"),
        ("push-bad-config", f"/live/{key}/0.ts",
         {"Livepeer-Transcode-Configuration": '{"timeoutMultiplier": "x"}'}, b"x"),
    ]  # fmt: skip
