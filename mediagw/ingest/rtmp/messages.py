"""An RTMP message (what the chunk stream carries) and the message type ids.

A message is the unit above chunks: ``type_id`` says what the payload is, ``stream_id`` is the
message stream (0 = the NetConnection itself), ``timestamp`` is the 32-bit RTMP timestamp in
milliseconds as the chunk stream accumulated it (it wraps; :mod:`.timestamps` unwraps it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ABORT",
    "ACKNOWLEDGEMENT",
    "AGGREGATE",
    "AUDIO",
    "COMMAND_AMF0",
    "COMMAND_AMF3",
    "DATA_AMF0",
    "DATA_AMF3",
    "SET_CHUNK_SIZE",
    "SET_PEER_BANDWIDTH",
    "SHARED_OBJECT_AMF0",
    "SHARED_OBJECT_AMF3",
    "USER_CONTROL",
    "VIDEO",
    "WINDOW_ACK_SIZE",
    "Message",
]

# Protocol control messages (chunk stream 2, message stream 0).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
# Media and RPC.
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22


@dataclass(slots=True)  # not frozen, read-only by convention: segmenter/packet.py says why
class Message:
    """One complete RTMP message, as read from or written to a chunk stream."""

    type_id: int
    stream_id: int
    timestamp: int  # 0 .. 2**32-1, milliseconds
    payload: bytes
    csid: int = 3  # chunk stream it travelled on (a transport detail, kept for tests and logs)
