"""Protocol control messages (types 1-6): each a small value with ``parse()`` and ``bytes()``.

All travel on chunk stream 2, message stream 0. Set Chunk Size and Abort act on the chunk
layer itself and are applied by :class:`~.chunk.ChunkReader` the moment they complete.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from ...errors import RTMPProtocolError
from . import messages as mt
from .messages import Message

__all__ = [
    "Abort",
    "Acknowledgement",
    "SetChunkSize",
    "SetPeerBandwidth",
    "UserControl",
    "WindowAckSize",
]

CONTROL_CSID = 2
_U32 = struct.Struct(">I")
_BW = struct.Struct(">IB")
_UC = struct.Struct(">H")

# User Control event types.
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7


def _u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RTMPProtocolError(f"{what}: payload of {len(payload)} bytes, expected 4")
    value: int = _U32.unpack_from(payload)[0]
    return value


class _Control:
    __slots__ = ()
    type_id: ClassVar[int]

    def __bytes__(self) -> bytes:
        raise NotImplementedError

    def to_message(self) -> Message:
        return Message(self.type_id, 0, 0, bytes(self), CONTROL_CSID)


@dataclass(frozen=True, slots=True)
class SetChunkSize(_Control):
    """Type 1: the sender's chunks from now on carry at most ``size`` payload bytes."""

    size: int
    type_id: ClassVar[int] = mt.SET_CHUNK_SIZE

    @classmethod
    def parse(cls, payload: bytes) -> SetChunkSize:
        # The top bit must be 0; a set top bit reads as a size over 2**31 and fails the limit.
        return cls(_u32(payload, "Set Chunk Size"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


@dataclass(frozen=True, slots=True)
class Abort(_Control):
    """Type 2: drop the partly received message on chunk stream ``csid``."""

    csid: int
    type_id: ClassVar[int] = mt.ABORT

    @classmethod
    def parse(cls, payload: bytes) -> Abort:
        return cls(_u32(payload, "Abort"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.csid)


@dataclass(frozen=True, slots=True)
class Acknowledgement(_Control):
    """Type 3: ``sequence`` bytes received so far (mod 2**32)."""

    sequence: int
    type_id: ClassVar[int] = mt.ACKNOWLEDGEMENT

    @classmethod
    def parse(cls, payload: bytes) -> Acknowledgement:
        return cls(_u32(payload, "Acknowledgement"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.sequence & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class WindowAckSize(_Control):
    """Type 5: acknowledge every ``size`` bytes you receive from me."""

    size: int
    type_id: ClassVar[int] = mt.WINDOW_ACK_SIZE

    @classmethod
    def parse(cls, payload: bytes) -> WindowAckSize:
        return cls(_u32(payload, "Window Acknowledgement Size"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth(_Control):
    """Type 6: limit the peer's output; ``limit_type`` 0 hard, 1 soft, 2 dynamic."""

    size: int
    limit_type: int = 2
    type_id: ClassVar[int] = mt.SET_PEER_BANDWIDTH

    @classmethod
    def parse(cls, payload: bytes) -> SetPeerBandwidth:
        if len(payload) < 5:
            raise RTMPProtocolError(f"Set Peer Bandwidth: payload of {len(payload)} bytes")
        size, limit_type = _BW.unpack_from(payload)
        return cls(size, limit_type)

    def __bytes__(self) -> bytes:
        return _BW.pack(self.size, self.limit_type)


@dataclass(frozen=True, slots=True)
class UserControl(_Control):
    """Type 4: an event (``STREAM_BEGIN``, ``PING_REQUEST``, ...) and its raw event data."""

    event: int
    data: bytes = b""
    type_id: ClassVar[int] = mt.USER_CONTROL

    @classmethod
    def parse(cls, payload: bytes) -> UserControl:
        if len(payload) < 2:
            raise RTMPProtocolError(f"User Control: payload of {len(payload)} bytes")
        return cls(_UC.unpack_from(payload)[0], bytes(payload[2:]))

    def __bytes__(self) -> bytes:
        return _UC.pack(self.event) + self.data
