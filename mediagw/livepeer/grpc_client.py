"""One gRPC unary call over HTTP/2 with the ``h2`` library on asyncio streams (spec §2, §5.9).

A new connection per call, closed afterwards (as go-livepeer's gateway does): TLS with ALPN ``h2``
and the pinning context from ``tls.py``, or cleartext h2c (prior knowledge) for ``http://``.
Hard limits: response body size, header list size, dial and call deadlines. Every failure is a
``LivepeerError`` naming the orchestrator URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from .errors import (
    LivepeerError,
    OrchestratorError,
    OrchestratorUnreachable,
    ProtocolViolation,
)
from .grpc_wire import (
    GrpcFramingError,
    decode_grpc_message,
    frame_message,
    grpc_status_for_http,
    request_headers,
    unframe_messages,
)
from .tls import pin_error_from

__all__ = ["Target", "unary_call"]

MAX_HEADER_LIST_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """Where to dial: scheme (http/https), host, port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s)://host[:port] URL: {url!r}")
        port = parts.port  # raises ValueError on a bad port
        return cls(scheme, parts.hostname, port or (443 if scheme == "https" else 80))

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(slots=True)
class _Response:
    stream_id: int
    max_bytes: int
    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False


def _handle(
    conn: h2.connection.H2Connection, resp: _Response, events: list[h2.events.Event], url: str
) -> None:
    for ev in events:
        if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == resp.stream_id:
            resp.headers = {bytes(k).lower(): bytes(v) for k, v in ev.headers or ()}
            try:
                resp.status = int(resp.headers.get(b":status", b""))
            except ValueError:
                raise ProtocolViolation("response without a valid :status", url) from None
        elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == resp.stream_id:
            resp.body += ev.data or b""
            conn.acknowledge_received_data(ev.flow_controlled_length or 0, resp.stream_id)
            if len(resp.body) > resp.max_bytes:
                raise ProtocolViolation(f"response larger than {resp.max_bytes} bytes", url)
        elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == resp.stream_id:
            resp.trailers = {bytes(k).lower(): bytes(v) for k, v in ev.headers or ()}
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == resp.stream_id:
            resp.ended = True
        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == resp.stream_id:
            raise OrchestratorUnreachable(
                f"stream reset by the peer (HTTP/2 error {ev.error_code})", url
            )
        elif isinstance(ev, h2.events.ConnectionTerminated) and not resp.ended:
            raise OrchestratorUnreachable(
                f"connection closed by the peer (GOAWAY, HTTP/2 error {ev.error_code})", url
            )


def _result(resp: _Response, url: str) -> bytes:
    """The single response message, or the error the status/trailers describe."""
    if resp.status != 200:
        raise OrchestratorError(
            f"HTTP status {resp.status}", grpc_status_for_http(resp.status or 0), url
        )
    # Trailers-Only responses carry grpc-status in the (only) header block
    meta = resp.trailers or resp.headers
    raw_status = meta.get(b"grpc-status")
    if raw_status is None:
        raise ProtocolViolation("response ended without grpc-status", url)
    try:
        code = int(raw_status)
    except ValueError:
        raise ProtocolViolation(f"unparsable grpc-status {raw_status[:20]!r}", url) from None
    if code != 0:
        raise OrchestratorError(decode_grpc_message(meta.get(b"grpc-message", b"")), code, url)
    content_type = resp.headers.get(b"content-type", b"")
    if not content_type.startswith(b"application/grpc"):
        raise ProtocolViolation(f"content-type {content_type[:64]!r} is not application/grpc", url)
    try:
        messages = unframe_messages(bytes(resp.body))
    except GrpcFramingError as exc:
        raise ProtocolViolation(str(exc), url) from None
    if len(messages) != 1:
        raise ProtocolViolation(f"unary call answered with {len(messages)} messages", url)
    return messages[0]


async def unary_call(
    target: Target,
    path: str,
    payload: bytes,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
    dial_timeout: float,
    max_response_bytes: int,
    user_agent: str = "mediagw",
    writers: set[asyncio.StreamWriter] | None = None,
) -> bytes:
    """POST one gRPC request to ``path`` and return the single response message's bytes.

    ``ssl_context`` None = cleartext h2c. ``writers``: a set the open connection is added to while
    the call runs (so an owner can abort it on close).
    """
    url = target.url
    if (target.scheme == "https") != (ssl_context is not None):
        raise ValueError("an https target needs an SSL context, an http one none")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    writer: asyncio.StreamWriter | None = None
    phase = "connect"
    try:
        async with asyncio.timeout_at(deadline):
            async with asyncio.timeout(min(dial_timeout, timeout)):
                reader, writer = await asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=ssl_context,
                    server_hostname=target.host if ssl_context is not None else None,
                    limit=_READ_CHUNK,
                )
            if writers is not None:
                writers.add(writer)
            if ssl_context is not None:
                obj = writer.get_extra_info("ssl_object")
                alpn = obj.selected_alpn_protocol() if obj is not None else None
                if alpn != "h2":
                    raise OrchestratorUnreachable(
                        f"TLS peer did not negotiate HTTP/2 (ALPN {alpn!r}); is it a gRPC server?",
                        url,
                    )
            phase = "call"
            conn = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding=None)
            )
            conn.local_settings = h2.settings.Settings(
                client=True,
                initial_values={
                    h2.settings.SettingCodes.ENABLE_PUSH: 0,
                    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
                },
            )
            conn.initiate_connection()
            stream_id = conn.get_next_available_stream_id()
            resp = _Response(stream_id, max_response_bytes)
            headers = request_headers(
                scheme=target.scheme,
                authority=target.authority,
                path=path,
                timeout_s=deadline - loop.time(),
                user_agent=user_agent,
            )
            conn.send_headers(stream_id, headers)
            body = memoryview(frame_message(payload))

            async def pump() -> None:
                writer_ = writer
                assert writer_ is not None
                pending = conn.data_to_send()
                if pending:
                    writer_.write(pending)
                    await writer_.drain()
                data = await reader.read(_READ_CHUNK)
                if not data:
                    raise OrchestratorUnreachable(
                        "connection closed before the response ended", url
                    )
                _handle(conn, resp, conn.receive_data(data), url)

            while body and not resp.ended:
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    await pump()
                    continue
                conn.send_data(stream_id, bytes(body[:room]))
                body = body[room:]
            if not resp.ended:
                conn.end_stream(stream_id)
            while not resp.ended:
                await pump()
            result = _result(resp, url)
            with contextlib.suppress(h2.exceptions.H2Error):
                conn.close_connection()
            # GOAWAY, then drop the connection: orchestrators (grpc-go, grpcio) do not answer a
            # TLS close_notify, so waiting for a clean TLS shutdown would only add latency.
            writer.write(conn.data_to_send())
            with contextlib.suppress(OSError):
                await writer.drain()
            return result
    except TimeoutError:
        what = "connect" if phase == "connect" else "call"
        limit = min(dial_timeout, timeout) if phase == "connect" else timeout
        raise OrchestratorUnreachable(f"{what} timed out after {limit:g} s", url) from None
    except LivepeerError:
        raise
    except h2.exceptions.H2Error as exc:
        raise ProtocolViolation(
            f"HTTP/2 protocol error: {type(exc).__name__}: {exc}", url
        ) from None
    except (OSError, EOFError) as exc:
        pin = pin_error_from(exc)
        if pin is not None:
            raise pin from None
        kind = "TLS handshake failed" if isinstance(exc, ssl.SSLError) else "connection failed"
        raise OrchestratorUnreachable(f"{kind}: {exc}", url) from None
    finally:
        if writer is not None:
            if writers is not None:
                writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.abort()
