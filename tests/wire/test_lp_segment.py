"""``POST /segment`` and rendition downloads against a real aiohttp TLS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from wire.lp_testkit import Cert

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.errors import (
    CertificatePinError,
    DownloadError,
    OrchestratorUnreachable,
    ProtocolViolation,
    SegmentRejected,
    StaleTicketParams,
    TranscodeFailed,
)
from mediagw.livepeer.proto import net
from mediagw.livepeer.segment import SegmentClient, SubmitResult, is_retryable, segment_timeouts
from mediagw.livepeer.tls import PinStore

SEGMENT = b"\x47" + bytes(range(256)) * 40
DELAY = 0.5  # body delay after the early 200; longer than the 0.3 s headers timeout used below


def _segdata(segment: bytes = SEGMENT) -> str:
    seg = net.SegData(manifestId=b"m", seq=7, hash=keccak256(segment), profiles=b"invalid")
    return base64.b64encode(seg.SerializeToString()).decode()


def _result(**kw: Any) -> bytes:
    tr = net.TranscodeResult(seq=7, **kw)
    tr.info.transcoder = "https://127.0.0.1:1"
    return tr.SerializeToString()


RESULT_OK = _result(
    data=net.TranscodeData(segments=[net.TranscodedSegmentData(url="https://x/0.ts", pixels=9)])
)


class SegmentServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def segment(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        mode = request.match_info["mode"]
        self.requests.append((mode, dict(request.headers), body))
        seg = net.SegData.FromString(base64.b64decode(request.headers["Livepeer-Segment"]))
        if keccak256(body) != seg.hash:
            return web.Response(status=403, text="Forbidden")
        if mode == "err500":
            return web.Response(status=500, text="Internal Server Error\n")
        if mode == "capped":
            return web.Response(status=403, text="OrchestratorCapped\n")
        if mode == "stale":  # go-livepeer's ProcessPayment error for expired params
            return web.Response(status=400, text="TicketParams expired\n")
        if mode == "longerror":
            return web.Response(status=400, text="Insufficient balance " + "x" * 100_000)
        if mode == "stall_headers":
            await asyncio.sleep(5)
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)  # the early 200
        payload = {
            "ok": RESULT_OK,
            "busy": _result(error="OrchestratorBusy"),
            "nokf": _result(error="No keyframes in input"),
            "unknown": _result(),
            "garbage": b"\x0a\xff\x01",
            "oversize": b"\x00" * (2 << 20),
        }.get(mode, b"")
        await asyncio.sleep(DELAY if mode == "ok" else 0)
        if mode == "stall_body":
            await asyncio.sleep(5)
        for i in range(0, len(payload), 65536):
            await resp.write(payload[i : i + 65536])
        await resp.write_eof()
        return resp

    async def download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "small.ts":
            return web.Response(body=b"r" * 1000)
        if name == "big.ts":
            return web.Response(body=b"r" * (2 << 20))
        if name == "chunked.ts":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(40):
                await resp.write(b"r" * 65536)
            await resp.write_eof()
            return resp
        if name == "stall.ts":
            await asyncio.sleep(5)
        return web.Response(status=404, text="not found")

    async def start(self, cert: Cert | None) -> str:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/{mode}/segment", self.segment)
        app.router.add_get("/stream/{name}", self.download)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self.runner.setup()
        ctx = cert.server_context(["http/1.1"]) if cert else None
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"{'https' if cert else 'http'}://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server(certs: list[Cert]) -> AsyncIterator[tuple[SegmentServer, str]]:
    srv = SegmentServer()
    base = await srv.start(certs[0])
    yield srv, base
    await srv.stop()


@pytest.fixture
async def client() -> AsyncIterator[SegmentClient]:
    c = SegmentClient(PinStore(), headers_timeout_floor=0.3, total_timeout_floor=1.2)
    yield c
    await c.close()


async def _submit(client: SegmentClient, base: str, mode: str, payment: str = "") -> SubmitResult:
    return await client.submit(f"{base}/{mode}", _segdata(), payment, SEGMENT, 0.1)


def test_timeouts_follow_the_spec() -> None:
    assert segment_timeouts(2.0) == (2.0, 8.0)
    assert segment_timeouts(10.0) == (5.0, 40.0)
    assert segment_timeouts(2.0, 3.0) == (6.0, 24.0)
    assert segment_timeouts(2.0, 0.5) == (2.0, 8.0)  # multiplier counts only when > 1


def test_retryable_classification() -> None:
    for text in ("No keyframes in input", "Invalid argument", " TranscoderInvalidGOP\n"):
        assert not is_retryable(text)
    for text in ("OrchestratorBusy", "OrchestratorCapped", "Internal Server Error", "dial tcp"):
        assert is_retryable(text)


async def test_early_200_then_delayed_body(
    server: tuple[SegmentServer, str], client: SegmentClient
) -> None:
    srv, base = server
    res = await _submit(client, base, "ok", payment="cGF5")
    assert res.ok and res.error is None and res.failure is None
    assert res.headers_received and res.status == 200
    assert res.result is not None and res.result.data.segments[0].pixels == 9
    assert res.result.info.transcoder == "https://127.0.0.1:1"
    assert res.latency_s >= DELAY
    _, headers, body = srv.requests[0]
    assert body == SEGMENT
    assert headers["Content-Type"] == "video/MP2T"
    assert headers["Livepeer-Payment"] == "cGF5"
    # the pin of this host:port was learned on first contact
    assert client.pins.fingerprint(f"127.0.0.1:{srv.port}") is not None


async def test_empty_payment_header_is_sent(
    server: tuple[SegmentServer, str], client: SegmentClient
) -> None:
    srv, base = server
    assert (await _submit(client, base, "ok")).ok
    assert srv.requests[0][1]["Livepeer-Payment"] == ""


@pytest.mark.parametrize(
    ("mode", "failure", "status", "retryable", "text"),
    [
        ("err500", SegmentRejected, 500, True, "HTTP 500: Internal Server Error"),
        ("capped", SegmentRejected, 403, True, "HTTP 403: OrchestratorCapped"),
        ("longerror", SegmentRejected, 400, True, "HTTP 400: Insufficient balance xxx"),
        ("stale", StaleTicketParams, 400, True, "HTTP 400: TicketParams expired"),
        ("busy", TranscodeFailed, 200, True, "transcoding failed: OrchestratorBusy"),
        ("nokf", TranscodeFailed, 200, False, "transcoding failed: No keyframes in input"),
        ("unknown", ProtocolViolation, 200, True, "UnknownResponse"),
        ("garbage", ProtocolViolation, 200, True, "200 body is not a TranscodeResult"),
        ("oversize", ProtocolViolation, 200, True, "larger than 1048576 bytes"),
        ("stall_body", OrchestratorUnreachable, 200, True, "not received within 1.2 s"),
    ],
)
async def test_failures_after_headers(
    server: tuple[SegmentServer, str],
    client: SegmentClient,
    mode: str,
    failure: type[Exception],
    status: int,
    retryable: bool,
    text: str,
) -> None:
    res = await _submit(client, server[1], mode)
    assert not res.ok
    assert res.headers_received  # the credit counts as spent
    assert res.status == status
    assert isinstance(res.failure, failure)
    assert isinstance(res.failure, StaleTicketParams) is (failure is StaleTicketParams)
    assert res.retryable is retryable
    assert res.error is not None and text in res.error
    assert f"127.0.0.1:{server[0].port}/{mode}/segment" in str(res.failure)
    if mode in ("busy", "nokf", "unknown"):
        assert res.result is not None and res.result.info.transcoder  # adopt info anyway


async def test_stall_before_headers(
    server: tuple[SegmentServer, str], client: SegmentClient
) -> None:
    res = await _submit(client, server[1], "stall_headers")
    assert not res.headers_received and res.status is None and res.retryable
    assert isinstance(res.failure, OrchestratorUnreachable)
    assert res.error == "no response headers within 0.3 s"
    assert 0.3 <= res.latency_s < 1.0


async def test_connection_refused_means_nothing_was_sent(client: SegmentClient) -> None:
    srv = SegmentServer()
    base = await srv.start(None)
    await srv.stop()
    res = await _submit(client, base, "ok")
    assert not res.headers_received and res.retryable
    assert isinstance(res.failure, OrchestratorUnreachable)


async def test_plain_http_transcoder(client: SegmentClient) -> None:
    srv = SegmentServer()
    base = await srv.start(None)
    try:
        assert (await _submit(client, base, "ok")).ok
    finally:
        await srv.stop()


async def test_pin_refusal_happens_before_the_request(
    server: tuple[SegmentServer, str], client: SegmentClient
) -> None:
    srv, base = server
    key = f"127.0.0.1:{srv.port}"
    client.pins.check(key, b"\x01" * 32)
    client.pins.check(key, b"\x02" * 32)  # re-pin used up: the real cert is a third one
    res = await _submit(client, base, "ok", payment="c2VjcmV0")
    assert not res.headers_received and res.retryable
    assert isinstance(res.failure, CertificatePinError)
    assert srv.requests == []  # neither the segment nor the payment left


async def test_downloads(server: tuple[SegmentServer, str], client: SegmentClient) -> None:
    _, base = server
    assert await client.download(f"{base}/stream/small.ts") == b"r" * 1000
    assert len(await client.download(f"{base}/stream/big.ts", max_bytes=2 << 20)) == 2 << 20
    with pytest.raises(ProtocolViolation, match="larger than 1048576 bytes"):
        await client.download(f"{base}/stream/big.ts", max_bytes=1 << 20)
    with pytest.raises(ProtocolViolation, match="larger than 1048576 bytes"):
        await client.download(f"{base}/stream/chunked.ts", max_bytes=1 << 20)
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        await client.download(f"{base}/stream/missing.ts")
    assert info.value.status == 404
    with pytest.raises(OrchestratorUnreachable, match=r"timed out after 0\.3 s"):
        await client.download(f"{base}/stream/stall.ts", timeout=0.3)
    # a CA-verified download refuses O's self-signed certificate
    with pytest.raises(OrchestratorUnreachable, match="download failed"):
        await client.download(f"{base}/stream/small.ts", verify="ca")


async def test_download_pin_mismatch(
    server: tuple[SegmentServer, str], client: SegmentClient
) -> None:
    srv, base = server
    key = f"127.0.0.1:{srv.port}"
    client.pins.check(key, b"\x01" * 32)
    client.pins.check(key, b"\x02" * 32)
    with pytest.raises(CertificatePinError):
        await client.download(f"{base}/stream/small.ts")


def test_under_uvloop(certs: list[Cert]) -> None:
    """Production runs on uvloop: the in-handshake pin check must work there too."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        srv = SegmentServer()
        base = await srv.start(certs[1])
        client = SegmentClient(PinStore(), headers_timeout_floor=0.3, total_timeout_floor=1.2)
        try:
            assert (await _submit(client, base, "ok")).ok
            fp = client.pins.fingerprint(f"127.0.0.1:{srv.port}")
            assert fp == hashlib.sha256(certs[1].der).digest()
            client.pins.check(f"127.0.0.1:{srv.port}", b"\x01" * 32)  # uses the re-pin
            await client.close()  # new connections from here on
            res = await _submit(client, base, "ok")
            assert isinstance(res.failure, CertificatePinError) and not res.headers_received
        finally:
            await client.close()
            await srv.stop()

    uvloop.run(scenario())
