"""A flood of malformed RTMP sessions and HTTP requests against a running Gateway.

Every session and request kind comes from a defect found by flooding the gateway, or from a
limit the protocol cores enforce. ``Flood`` runs them with bounded concurrency and counts what
came back; the caller checks the gateway afterwards (streams, sockets, logs).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from rtmp.rtmp_testkit import C0C1, C2, ClientScript, video_payload

from mediagw.bench.flood_wire import (
    CLOSE_WAIT,
    malformed_http_bodies,
    malformed_http_raw,
    raw_http,
    rtmp_session,
    tcp_states,
)
from mediagw.gateway import Gateway
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.messages import Message

SORENSON = b"\x22" + bytes(60)  # FLV video CodecID 2: UnsupportedCodec
HUGE_NAL = b"\x27\x01\x00\x00\x00\xff\xff\xff\xff" + bytes(40)  # AVCC NAL length 4294967295
VIDEO_INFO = b"\x57" + bytes(2000)  # a video info frame: demuxed to nothing
WRONG_KEY = "sk_SECRET_wrong"  # a key no stream has: the secrets of a flood all hold SECRET
__all__ = ["CLOSE_WAIT", "Flood", "FloodResult", "tcp_states"]


@dataclass
class FloodResult:
    rtmp_sessions: Counter[str] = field(default_factory=Counter)  # kind -> sessions sent
    rtmp_unclosed: int = 0  # sessions whose socket the server had not closed after 5 s
    http_requests: Counter[str] = field(default_factory=Counter)  # kind -> requests sent
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP status -> answers
    stuck_live: set[str] = field(default_factory=set)  # publishes whose stream stayed live

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Flood:
    def __init__(self, gw: Gateway, keys: dict[str, str], *, concurrency: int = 16) -> None:
        self.gw = gw
        self.keys = list(keys.items())  # (secret key, playback id) for corrupt publishes
        self.result = FloodResult()
        self._sem = asyncio.Semaphore(concurrency)
        self._publishing = asyncio.Semaphore(2)  # corrupt publishes live at once (max_sessions)
        self._n = 0

    # -- RTMP ------------------------------------------------------------------------------
    async def _session(self, data: bytes | list[bytes], *, fin: bool) -> None:
        """Send, then FIN (reading until the server closes) or vanish with a reset."""
        parts = data if isinstance(data, list) else [data]
        outcome = await rtmp_session("127.0.0.1", self.gw.rtmp_port, parts, fin=fin)
        if outcome == "unclosed":
            self.result.rtmp_unclosed += 1

    async def _publish(self, media: list[bytes], *, fin: bool = True) -> None:
        """A publish with a valid key, then ``media``; waits until its stream has ended."""
        async with self._publishing:
            key, playback = self.keys[self._n % len(self.keys)]
            self._n += 1
            c = ClientScript(chunk_size=4096)
            parts = [c.setup(key)]
            parts += [b"".join(c.media(mt.VIDEO, 33 * i, m) for i, m in enumerate(media[:-1]))]
            parts.append(c.media(mt.VIDEO, 33 * len(media), media[-1]))
            await self._session(parts, fin=fin)
            try:
                await _until(lambda: not self._live(playback), 5)
            except TimeoutError:
                self.result.stuck_live.add(playback)

    def _live(self, playback: str) -> bool:
        stream = self.gw.hub.get(playback)
        return stream is not None and stream.live

    def rtmp_kinds(self) -> dict[str, Callable[[], Awaitable[None]]]:
        c = ClientScript(chunk_size=4096)
        hs = C0C1 + C2
        deep_amf = (
            b"\x02\x00\x07connect\x00" + bytes(8) + b"\x03\x00\x01a" * 60 + b"\x05"
        )  # nested 60 objects deep
        return {
            "truncated-handshake": lambda: self._session(C0C1[:700], fin=False),
            "garbage": lambda: self._session(os.urandom(6000), fin=True),
            "http-on-rtmp": lambda: self._session(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", fin=True),
            "huge-chunk-size": lambda: self._session(
                hs + b"\x02" + bytes(6) + b"\x04\x01" + bytes(4) + (1 << 24).to_bytes(4, "big"),
                fin=True,
            ),
            "command-cut-short": lambda: self._session(
                hs + b"\x03" + bytes(3) + b"\x00\x10\x00\x14" + bytes(4) + b"\x02\x00\x07conn",
                fin=False,
            ),
            "huge-amf": lambda: self._session(
                hs + c.command("connect", "x" * 60_000, obj={"app": "live", "pad": "y" * 40_000}),
                fin=True,
            ),
            "deep-amf": lambda: self._session(
                hs + ClientScript().writer.write(Message(mt.COMMAND_AMF0, 0, 0, deep_amf, 3)),
                fin=True,
            ),
            "wrong-key": lambda: self._session(ClientScript().setup(WRONG_KEY), fin=True),
            "unsupported-codec-then-gone": lambda: self._publish([VIDEO_INFO] * 20 + [SORENSON]),
            "huge-nal-then-gone": lambda: self._publish([VIDEO_INFO] * 20 + [HUGE_NAL]),
            "publish-then-reset": lambda: self._publish(
                [video_payload(i, 3000, i == 0) for i in range(5)], fin=False
            ),
        }

    async def rtmp(self, rounds: int) -> None:
        kinds = self.rtmp_kinds()

        async def one(kind: str) -> None:
            async with self._sem:
                self.result.rtmp_sessions[kind] += 1
                await kinds[kind]()

        await asyncio.gather(*(one(kind) for _ in range(rounds) for kind in kinds))

    # -- HTTP ------------------------------------------------------------------------------
    async def _raw(self, data: bytes) -> None:
        """A request aiohttp's client will not send; records the status the server answered."""
        status = await raw_http("127.0.0.1", self.gw.http_port, data)
        if isinstance(status, int):
            self.result.statuses[status] += 1

    def raw_kinds(self, key: str) -> dict[str, bytes]:
        return malformed_http_raw(key)

    def body_kinds(self, key: str) -> list[tuple[str, str, dict[str, str], bytes]]:
        """(kind, path, headers, body) sent with aiohttp's client."""
        return malformed_http_bodies(key)

    async def http(self, rounds: int, key: str) -> None:
        raw = self.raw_kinds(key)
        bodies = self.body_kinds(key)
        base = f"http://127.0.0.1:{self.gw.http_port}"

        async def send_raw(kind: str) -> None:
            async with self._sem:
                self.result.http_requests[kind] += 1
                await self._raw(raw[kind])

        async def send_body(
            s: aiohttp.ClientSession, kind: str, path: str, headers: dict[str, str], body: bytes
        ) -> None:
            async with self._sem:
                self.result.http_requests[kind] += 1
                async with s.post(base + path, data=body, headers=headers) as resp:
                    await resp.read()
                    self.result.statuses[resp.status] += 1

        async with aiohttp.ClientSession() as s:
            await asyncio.gather(
                *(send_raw(kind) for _ in range(rounds) for kind in raw),
                *(send_body(s, *case) for _ in range(max(1, rounds // 4)) for case in bodies),
            )


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)
