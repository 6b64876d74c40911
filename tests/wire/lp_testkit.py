"""Helpers for the Livepeer wire-client tests: vectors, self-signed certs, real loopback peers."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vectors import vectors


def hexb(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def vector_key() -> bytes:
    return hexb(vectors()["test_key"]["private_key"])


def derived(vid: str) -> dict[str, Any]:
    return next(v for v in vectors()["derived_signatures"] if v["id"] == vid)


# -- certificates -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cert:
    cert_pem: bytes
    key_pem: bytes
    der: bytes
    dir: Path

    @property
    def cert_file(self) -> str:
        return str(self.dir / "cert.pem")

    @property
    def key_file(self) -> str:
        return str(self.dir / "key.pem")

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(alpn)
        return ctx


def make_cert(directory: Path, host: str = "127.0.0.1") -> Cert:
    """Like go-livepeer's server/cert.go: ECDSA P-256, self-signed, CA, the host as a DNS SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Livepeer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=8765))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key_pem)
    return Cert(cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER), directory)


# -- a raw HTTP/2 (h2c) server that answers with scripted bytes --------------------------------
@dataclass
class H2Script:
    """What the raw server sends for each request: header block, data chunks, trailers."""

    headers: list[tuple[str, str]] = field(
        default_factory=lambda: [(":status", "200"), ("content-type", "application/grpc")]
    )
    data: list[bytes] = field(default_factory=list)
    trailers: list[tuple[str, str]] | None = field(default_factory=lambda: [("grpc-status", "0")])
    end_with_headers: bool = False  # Trailers-Only response
    reset: bool = False  # RST_STREAM instead of a response
    drop: bool = False  # close the TCP connection instead of a response


class RawH2Server:
    def __init__(self, script: H2Script, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        headers: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytearray] = {}
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        headers[ev.stream_id] = {
                            (k.decode() if isinstance(k, bytes) else k): (
                                v.decode() if isinstance(v, bytes) else v
                            )
                            for k, v in ev.headers or ()
                        }
                        bodies[ev.stream_id] = bytearray()
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data or b""
                        conn.acknowledge_received_data(ev.flow_controlled_length or 0, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        self.requests.append((headers[sid], bytes(bodies[sid])))
                        if self.script.drop:
                            writer.close()
                            return
                        self._respond(conn, sid)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.H2Error):
            pass
        finally:
            writer.close()

    def _respond(self, conn: h2.connection.H2Connection, sid: int) -> None:
        s = self.script
        if s.reset:
            conn.reset_stream(sid, error_code=2)
            return
        conn.send_headers(sid, s.headers, end_stream=s.end_with_headers)
        if s.end_with_headers:
            return
        for chunk in s.data:
            for i in range(0, len(chunk), 16384):
                conn.send_data(sid, chunk[i : i + 16384])
        if s.trailers is not None:
            conn.send_headers(sid, s.trailers, end_stream=True)
        else:
            conn.end_stream(sid)


Handler = Callable[[Any, Any], Awaitable[Any]]


def grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload
