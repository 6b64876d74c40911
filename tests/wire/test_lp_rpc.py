"""h2 gRPC client vs a real grpc.aio server (TLS and h2c) and a scripted raw HTTP/2 peer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from wire.lp_testkit import Cert, H2Script, RawH2Server, derived, grpc_frame, hexb

from mediagw.errors import ConfigError
from mediagw.livepeer.errors import (
    CertificatePinError,
    OrchestratorError,
    OrchestratorUnreachable,
    ProtocolViolation,
)
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRPC, normalize_orch_addr
from mediagw.livepeer.tls import PinStore

INFO = net.OrchestratorInfo(
    transcoder="https://127.0.0.1:8935",
    address=bytes(range(20)),
    auth_token=net.AuthToken(token=b"tok", session_id="0a1b2c3d", expiration=1_900_000_000),
    nodes=["https://other:8935"],
)
INFO.price_info.pricePerUnit = 1200
INFO.price_info.pixelsPerUnit = 1
BIG_INFO = net.OrchestratorInfo(nodes=[f"https://node-{i:06d}.example:8935" for i in range(40000)])


# -- address normalization (§8.1) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "url"),
    [
        (":8935", "https://127.0.0.1:8935"),
        (":9000", "https://127.0.0.1:9000"),
        ("orch.example.com", "https://orch.example.com:8935"),
        ("1.2.3.4", "https://1.2.3.4:8935"),
        ("1.2.3.4:9999", "https://1.2.3.4:9999"),
        ("  orch:7000  ", "https://orch:7000"),
        ("https://orch", "https://orch"),  # keeps the scheme default port 443
        ("https://orch:8935", "https://orch:8935"),
        ("https://orch:8935/", "https://orch:8935"),  # one orchestrator, not two
        ("http://orch:8935", "http://orch:8935"),
        ("HTTPS://orch:1", "HTTPS://orch:1"),
        ("httpbin.org", "https://httpbin.org:8935"),  # go-livepeer would leave this broken
    ],
)
def test_normalize_orch_addr(entry: str, url: str) -> None:
    assert normalize_orch_addr(entry) == url


@pytest.mark.parametrize("entry", ["", "   ", "orch:notaport", "ftp://x:1"])
def test_normalize_orch_addr_errors(entry: str) -> None:
    with pytest.raises(ConfigError):
        normalize_orch_addr(entry)


# -- a real grpc.aio orchestrator ---------------------------------------------------------------
class FakeOrchestrator:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[bytes] = []
        self.metadata: list[dict[str, Any]] = []
        self.ended: list[bytes] = []
        self.server: Any = None
        self.port = 0

    async def _get(self, raw: bytes, context: Any) -> bytes:
        self.requests.append(raw)
        self.metadata.append(dict(context.invocation_metadata()))
        if self.mode == "error":
            await context.abort(grpc.StatusCode.UNKNOWN, "authentication failed: nöpe 100% ✓")
        if self.mode == "capped":
            await context.abort(
                grpc.StatusCode.UNKNOWN, "Invalid orchestrator request: OrchestratorCapped"
            )
        if self.mode == "garbage":
            return b"\x0a\xff\x01"  # field 1, length 255, 1 byte present
        if self.mode == "stall":
            await asyncio.sleep(30)
        if self.mode == "big":
            return BIG_INFO.SerializeToString()
        return INFO.SerializeToString()

    async def _end(self, raw: bytes, context: Any) -> bytes:
        self.ended.append(raw)
        return b""

    async def start(self, cert: Cert | None, port: int = 0) -> int:
        handlers = {
            "GetOrchestrator": grpc.unary_unary_rpc_method_handler(self._get),
            "EndTranscodingSession": grpc.unary_unary_rpc_method_handler(self._end),
        }
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("net.Orchestrator", handlers),)
        )
        addr = f"127.0.0.1:{port}"
        if cert is None:
            self.port = self.server.add_insecure_port(addr)
        else:
            creds = grpc.ssl_server_credentials([(cert.key_pem, cert.cert_pem)])
            self.port = self.server.add_secure_port(addr, creds)
        await self.server.start()
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None


@pytest.fixture
async def orch() -> AsyncIterator[FakeOrchestrator]:
    o = FakeOrchestrator()
    yield o
    await o.stop()


@pytest.fixture
async def rpc() -> AsyncIterator[OrchestratorRPC]:
    client = OrchestratorRPC(PinStore())
    yield client
    await client.close()


def _request() -> net.OrchestratorRequest:
    return net.OrchestratorRequest.FromString(
        hexb(derived("orchestrator_request_sig")["expected_orchestrator_request_protobuf"])
    )


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
async def test_get_orchestrator_round_trip(
    orch: FakeOrchestrator, rpc: OrchestratorRPC, certs: list[Cert], tls: bool
) -> None:
    port = await orch.start(certs[0] if tls else None)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    info = await rpc.get_orchestrator(url, _request())
    assert info == INFO
    # the orchestrator received exactly the vector's request bytes
    vec = derived("orchestrator_request_sig")
    assert orch.requests == [hexb(vec["expected_orchestrator_request_protobuf"])]
    assert orch.metadata[0]["user-agent"].startswith("mediagw")
    assert (rpc.pins.fingerprint(f"127.0.0.1:{port}") is not None) is tls
    await rpc.end_transcoding_session(url, INFO.auth_token)
    assert net.EndTranscodingSessionRequest.FromString(orch.ended[0]).auth_token == INFO.auth_token


async def test_non_ok_status_surfaces_grpc_message(
    orch: FakeOrchestrator, rpc: OrchestratorRPC, certs: list[Cert]
) -> None:
    port = await orch.start(certs[0])
    url = f"https://127.0.0.1:{port}"
    orch.mode = "error"
    with pytest.raises(OrchestratorError) as info:
        await rpc.get_orchestrator(url, _request())
    assert info.value.grpc_status == 2
    assert info.value.message == "authentication failed: nöpe 100% ✓"
    assert url in str(info.value) and "UNKNOWN" in str(info.value)
    orch.mode = "capped"
    with pytest.raises(OrchestratorError, match="OrchestratorCapped"):
        await rpc.get_orchestrator(url, _request())


async def test_garbage_protobuf_is_a_protocol_violation(
    orch: FakeOrchestrator, rpc: OrchestratorRPC
) -> None:
    port = await orch.start(None)
    orch.mode = "garbage"
    with pytest.raises(ProtocolViolation, match=r"http://127.0.0.1:\d+: GetOrchestrator answer"):
        await rpc.get_orchestrator(f"http://127.0.0.1:{port}", _request())


async def test_stalled_call_times_out(
    orch: FakeOrchestrator, rpc: OrchestratorRPC, certs: list[Cert]
) -> None:
    port = await orch.start(certs[0])
    orch.mode = "stall"
    start = time.monotonic()
    with pytest.raises(OrchestratorUnreachable, match=r"call timed out after 0\.4 s"):
        await rpc.get_orchestrator(f"https://127.0.0.1:{port}", _request(), timeout=0.4)
    assert time.monotonic() - start < 2


async def test_certificate_pin_and_single_repin(
    orch: FakeOrchestrator,
    rpc: OrchestratorRPC,
    certs: list[Cert],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = await orch.start(certs[0])
    url = f"https://127.0.0.1:{port}"
    await rpc.get_orchestrator(url, _request())
    first = rpc.pins.fingerprint(f"127.0.0.1:{port}")
    await orch.stop()
    await orch.start(certs[1], port)  # O restarted with a new certificate: re-pinned once
    with caplog.at_level(logging.WARNING, logger="mediagw.livepeer.tls"):
        assert await rpc.get_orchestrator(url, _request()) == INFO
    assert any("re-pinned" in r.getMessage() for r in caplog.records)
    assert rpc.pins.fingerprint(f"127.0.0.1:{port}") not in (None, first)
    await orch.stop()
    await orch.start(certs[2], port)  # another change right away: refused before any request
    seen = len(orch.requests)
    with pytest.raises(CertificatePinError, match="changed again"):
        await rpc.get_orchestrator(url, _request())
    assert len(orch.requests) == seen


async def test_insecure_mode_accepts_any_certificate(
    orch: FakeOrchestrator, certs: list[Cert]
) -> None:
    client = OrchestratorRPC(PinStore(insecure=True))
    port = await orch.start(certs[0])
    url = f"https://127.0.0.1:{port}"
    for cert in certs[1:]:
        await client.get_orchestrator(url, _request())
        await orch.stop()
        await orch.start(cert, port)
    await client.get_orchestrator(url, _request())
    await client.close()


async def test_close_aborts_calls_in_flight(orch: FakeOrchestrator, certs: list[Cert]) -> None:
    client = OrchestratorRPC(PinStore())
    port = await orch.start(certs[0])
    orch.mode = "stall"
    task = asyncio.create_task(client.get_orchestrator(f"https://127.0.0.1:{port}", _request()))
    while not orch.requests:
        await asyncio.sleep(0.01)
    await client.close()
    with pytest.raises(OrchestratorUnreachable):
        await asyncio.wait_for(task, 2)
    with pytest.raises(OrchestratorUnreachable, match="closed"):
        await client.get_orchestrator(f"https://127.0.0.1:{port}", _request())


# -- dialing failures ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused(rpc: OrchestratorRPC) -> None:
    with pytest.raises(OrchestratorUnreachable, match="connection failed"):
        await rpc.get_orchestrator(f"https://127.0.0.1:{_free_port()}", _request())


async def test_tls_handshake_stall_hits_the_dial_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = OrchestratorRPC(PinStore(), dial_timeout=0.3)
    try:
        with pytest.raises(OrchestratorUnreachable, match=r"connect timed out after 0\.3 s"):
            await client.get_orchestrator(f"https://127.0.0.1:{port}", _request())
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_tls_peer_without_h2_alpn(rpc: OrchestratorRPC, certs: list[Cert]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(
        handler, "127.0.0.1", 0, ssl=certs[0].server_context(["http/1.1"])
    )
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OrchestratorUnreachable, match="did not negotiate HTTP/2"):
            await rpc.get_orchestrator(f"https://127.0.0.1:{port}", _request())
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_url(rpc: OrchestratorRPC) -> None:
    with pytest.raises(OrchestratorUnreachable, match="bad orchestrator URL"):
        await rpc.get_orchestrator("grpc://x:1", _request())


# -- a scripted raw HTTP/2 peer: framing and status rules ---------------------------------------
OK_BODY = grpc_frame(INFO.SerializeToString())


@pytest.mark.parametrize(
    ("script", "error", "match"),
    [
        (H2Script(data=[b"\x00\x00\x00\x00\x10abc"]), ProtocolViolation, "truncated gRPC message:"),
        (H2Script(data=[b"\x00\x00"]), ProtocolViolation, "truncated gRPC message prefix"),
        (H2Script(data=[b"\x01" + OK_BODY[1:]]), ProtocolViolation, "compressed"),
        (H2Script(data=[b"\x07" + OK_BODY[1:]]), ProtocolViolation, "compressed-flag"),
        (H2Script(data=[OK_BODY, OK_BODY]), ProtocolViolation, "2 messages"),
        (H2Script(data=[]), ProtocolViolation, "0 messages"),
        (H2Script(data=[OK_BODY], trailers=None), ProtocolViolation, "without grpc-status"),
        (
            H2Script(data=[OK_BODY], trailers=[("grpc-status", "x")]),
            ProtocolViolation,
            "grpc-status",
        ),
        (
            H2Script(headers=[(":status", "200"), ("content-type", "text/html")], data=[OK_BODY]),
            ProtocolViolation,
            "not application/grpc",
        ),
        (
            H2Script(headers=[(":status", "503")], data=[b"busy"], trailers=None),
            OrchestratorError,
            "HTTP status 503",
        ),
        (H2Script(data=[b"x" * 5000]), ProtocolViolation, "larger than 4096 bytes"),
        (H2Script(reset=True), OrchestratorUnreachable, "stream reset"),
        (H2Script(drop=True), OrchestratorUnreachable, "connection (closed|failed)"),
    ],
)
async def test_scripted_peer_errors(script: H2Script, error: type[Exception], match: str) -> None:
    server = RawH2Server(script)
    await server.start()
    client = OrchestratorRPC(PinStore(), max_response_bytes=4096)
    try:
        with pytest.raises(error, match=match):
            await client.get_orchestrator(f"http://127.0.0.1:{server.port}", _request())
    finally:
        await client.close()
        await server.close()


async def test_scripted_peer_trailers_only_error_and_request_shape() -> None:
    script = H2Script(
        headers=[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "7"),
            ("grpc-message", "Invalid%20orchestrator%20request%3A%20sig%20%E2%9C%93"),
        ],
        end_with_headers=True,
    )
    server = RawH2Server(script)
    await server.start()
    client = OrchestratorRPC(PinStore())
    try:
        with pytest.raises(OrchestratorError) as info:
            await client.get_orchestrator(f"http://127.0.0.1:{server.port}", _request())
        assert info.value.grpc_status == 7
        assert info.value.message == "Invalid orchestrator request: sig ✓"
        headers, body = server.requests[0]
        assert (
            headers[":method"] == "POST" and headers[":path"] == "/net.Orchestrator/GetOrchestrator"
        )
        assert headers["content-type"] == "application/grpc" and headers["te"] == "trailers"
        assert headers[":authority"] == f"127.0.0.1:{server.port}"
        assert body == grpc_frame(_request().SerializeToString())
        server.script = H2Script(data=[OK_BODY])
        assert await client.get_orchestrator(f"http://127.0.0.1:{server.port}", _request()) == INFO
    finally:
        await client.close()
        await server.close()


async def test_large_answer_flow_control_and_size_limit(
    orch: FakeOrchestrator, certs: list[Cert]
) -> None:
    """~1.3 MB answers need many WINDOW_UPDATEs; above max_response_bytes they are refused."""
    port = await orch.start(certs[0])
    orch.mode = "big"
    url = f"https://127.0.0.1:{port}"
    assert BIG_INFO.ByteSize() > 1_000_000
    client = OrchestratorRPC(PinStore())
    small = OrchestratorRPC(PinStore(), max_response_bytes=500_000)
    try:
        assert await client.get_orchestrator(url, _request()) == BIG_INFO
        with pytest.raises(ProtocolViolation, match="larger than 500000 bytes"):
            await small.get_orchestrator(url, _request())
    finally:
        await client.close()
        await small.close()


def test_tls_h2_client_under_uvloop(certs: list[Cert]) -> None:
    """Production runs on uvloop: TLS + ALPN h2 + the in-handshake pin check must work there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        server = RawH2Server(H2Script(data=[OK_BODY]), certs[2].server_context(["h2"]))
        await server.start()
        client = OrchestratorRPC(PinStore())
        url = f"https://127.0.0.1:{server.port}"
        try:
            assert await client.get_orchestrator(url, _request()) == INFO
            key = f"127.0.0.1:{server.port}"
            client.pins.check(key, b"\x01" * 32)  # re-pin used up on a foreign certificate
            with pytest.raises(CertificatePinError):
                await client.get_orchestrator(url, _request())
            assert len(server.requests) == 1
        finally:
            await client.close()
            await server.close()

    uvloop.run(scenario())
