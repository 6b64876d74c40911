"""Server side of the RTMP handshake (sans-IO).

::

    client                                   server
    C0 (1 byte: version 3)  ------------->
    C1 (1536: time u32, zero u32, random)    (waits for C0 + C1)
                            <-------------   S0 (3) + S1 (now u32, 0 u32, random 1528)
                            <-------------   S2 = C1, byte for byte
    C2 (1536: echo of S1)   ------------->   (content not checked)
                                             -> done; bytes after C2 are chunk stream

Clients that use the "complex" handshake (a digest inside C1, as Flash Player, OBS and some
encoders do) are served by the same echo: S1's version field is zero, which tells them the
server does no digest, and every publisher in use (ffmpeg, OBS, librtmp) accepts that.
Randomness and time are arguments, never globals.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import Enum

from ...errors import RTMPProtocolError

__all__ = ["HANDSHAKE_SIZE", "RTMP_VERSION", "HandshakeState", "ServerHandshake"]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536
_U32 = struct.Struct(">I")


class HandshakeState(Enum):
    AWAIT_C0C1 = "await C0+C1"
    AWAIT_C2 = "await C2"
    DONE = "done"


class ServerHandshake:
    """Feed received bytes with :meth:`receive_data`; it returns the bytes to send."""

    def __init__(self, rand: Callable[[int], bytes]) -> None:
        self._rand = rand
        self._buf = bytearray()
        self.state = HandshakeState.AWAIT_C0C1
        self.client_time = 0
        self.client_version = b""  # C1 bytes 4..8: zero for the simple handshake

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    def receive_data(self, data: bytes | bytearray | memoryview, now_ms: int) -> bytes:
        """Consume handshake bytes; return S0+S1+S2 once C0+C1 are complete, else ``b""``.

        Bytes past C2 are kept for the chunk stream: take them with :meth:`take_leftover`.
        """
        if self.state is HandshakeState.DONE:
            raise RuntimeError("handshake already complete")
        buf = self._buf
        buf += data
        out = b""
        if self.state is HandshakeState.AWAIT_C0C1:
            if buf and buf[0] != RTMP_VERSION:
                raise RTMPProtocolError(f"handshake: unsupported RTMP version {buf[0]}")
            if len(buf) < 1 + HANDSHAKE_SIZE:
                return out
            c1 = bytes(buf[1 : 1 + HANDSHAKE_SIZE])
            del buf[: 1 + HANDSHAKE_SIZE]
            self.client_time = _U32.unpack_from(c1)[0]
            self.client_version = c1[4:8]
            random = self._rand(HANDSHAKE_SIZE - 8)
            if len(random) != HANDSHAKE_SIZE - 8:
                raise ValueError("rand() returned the wrong number of bytes")
            s1 = _U32.pack(now_ms & 0xFFFFFFFF) + b"\x00\x00\x00\x00" + random
            out = bytes((RTMP_VERSION,)) + s1 + c1
            self.state = HandshakeState.AWAIT_C2
        if self.state is HandshakeState.AWAIT_C2 and len(buf) >= HANDSHAKE_SIZE:
            del buf[:HANDSHAKE_SIZE]
            self.state = HandshakeState.DONE
        return out

    def take_leftover(self) -> bytes:
        """Bytes received after C2 (the start of the chunk stream)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest
