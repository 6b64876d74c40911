"""gRPC-over-HTTP/2 message rules, sans-IO (length-prefixed messages, status, headers).

A gRPC message on the wire is 1 byte compressed-flag + 4-byte big-endian length + the protobuf.
We send uncompressed messages and advertise no encodings, so a compressed reply is a violation.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

__all__ = [
    "MAX_GRPC_MESSAGE_CHARS",
    "GrpcFramingError",
    "decode_grpc_message",
    "frame_message",
    "grpc_status_for_http",
    "request_headers",
    "unframe_messages",
]

MAX_GRPC_MESSAGE_CHARS = 1024  # grpc-message text kept in errors


class GrpcFramingError(ValueError):
    """The response body or headers break gRPC's framing rules."""


def frame_message(payload: bytes) -> bytes:
    """One uncompressed gRPC message."""
    if len(payload) >= 2**32:
        raise ValueError("gRPC message too large")
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def unframe_messages(body: bytes) -> list[bytes]:
    """Split a response body into its gRPC messages (each fully present, uncompressed)."""
    out: list[bytes] = []
    i = 0
    while i < len(body):
        if len(body) - i < 5:
            raise GrpcFramingError(f"truncated gRPC message prefix ({len(body) - i} of 5 bytes)")
        flag = body[i]
        length = int.from_bytes(body[i + 1 : i + 5], "big")
        if flag == 1:
            raise GrpcFramingError("compressed gRPC message, but no encoding was accepted")
        if flag != 0:
            raise GrpcFramingError(f"bad gRPC compressed-flag byte 0x{flag:02x}")
        end = i + 5 + length
        if end > len(body):
            raise GrpcFramingError(
                f"truncated gRPC message: prefix says {length} bytes, {len(body) - i - 5} present"
            )
        out.append(body[i + 5 : end])
        i = end
    return out


def decode_grpc_message(value: bytes) -> str:
    """grpc-message header value: percent-encoded UTF-8, decoded and cut to a sane length."""
    text = urllib.parse.unquote_to_bytes(value).decode("utf-8", "replace")
    if len(text) > MAX_GRPC_MESSAGE_CHARS:
        text = text[:MAX_GRPC_MESSAGE_CHARS] + "..."
    return text


def grpc_status_for_http(status: int) -> int:
    """gRPC status code for a non-200 HTTP status (gRPC's http-grpc-status-mapping)."""
    return {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}.get(status, 2)


def request_headers(
    *, scheme: str, authority: str, path: str, timeout_s: float, user_agent: str
) -> Sequence[tuple[bytes, bytes]]:
    """Headers of a unary gRPC request (pseudo-headers first)."""
    millis = max(1, min(int(timeout_s * 1000), 99_999_999))  # grpc-timeout: at most 8 digits
    return [
        (b":method", b"POST"),
        (b":scheme", scheme.encode()),
        (b":path", path.encode()),
        (b":authority", authority.encode()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"grpc-timeout", f"{millis}m".encode()),
        (b"user-agent", user_agent.encode()),
    ]
