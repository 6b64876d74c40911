"""Unary gRPC served over ASGI on the same port as HTTP (transcode spec §2.1).

A request is gRPC iff it is HTTP/2 and its content-type starts with ``application/grpc``. The
body is length-prefixed messages (1 flag byte, 4-byte big-endian length); the answer is
``:status 200``, ``content-type: application/grpc``, one message, then the trailers
``grpc-status`` and ``grpc-message`` (percent-encoded). Handler errors become the status code
and text grpc-go would send (a plain error maps to UNKNOWN).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from .asgi import BodyTooLarge, Disconnected, Request, Send
from .errors import GRPC_UNIMPLEMENTED, RPCError

__all__ = ["GRPC_INTERNAL", "GRPC_RESOURCE_EXHAUSTED", "UnaryHandler", "frame", "serve_unary"]

GRPC_INTERNAL = 13
GRPC_RESOURCE_EXHAUSTED = 8
MAX_MESSAGE = 4 * 1024 * 1024  # grpc-go's default receive limit
UnaryHandler = Callable[[bytes], Awaitable[bytes]]


def frame(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def _unframe(body: bytes) -> bytes:
    if len(body) < 5:
        raise RPCError("grpc: received message shorter than its prefix", GRPC_INTERNAL)
    flag, length = struct.unpack(">BI", body[:5])
    if flag != 0:
        raise RPCError("grpc: Decompressor is not installed for grpc-encoding", GRPC_UNIMPLEMENTED)
    if length > MAX_MESSAGE:
        raise RPCError(
            f"grpc: received message larger than max ({length} vs. {MAX_MESSAGE})",
            GRPC_RESOURCE_EXHAUSTED,
        )
    if len(body) != 5 + length:
        raise RPCError("grpc: message length does not match its prefix", GRPC_INTERNAL)
    return body[5:]


def _grpc_message(text: str) -> bytes:
    """Percent-encode as the gRPC spec asks (printable ASCII other than % stays)."""
    return quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode()


async def serve_unary(
    request: Request, send: Send, service: str, methods: Mapping[str, UnaryHandler]
) -> None:
    status, text, reply = 0, "", b""
    try:
        body = await request.body(MAX_MESSAGE + 5)
        name, _, method = request.path.lstrip("/").partition("/")
        if name != service:
            raise RPCError(f"unknown service {name}", GRPC_UNIMPLEMENTED)
        handler = methods.get(method)
        if handler is None:
            raise RPCError(f"unknown method {method} for service {service}", GRPC_UNIMPLEMENTED)
        reply = frame(await handler(_unframe(body)))
    except RPCError as err:
        status, text = err.code, err.message
    except BodyTooLarge:
        status, text = GRPC_RESOURCE_EXHAUSTED, "grpc: received message larger than max"
    except Disconnected:
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": reply, "more_body": False})
    trailers = [(b"grpc-status", str(status).encode())]
    if text:
        trailers.append((b"grpc-message", _grpc_message(text)))
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})
