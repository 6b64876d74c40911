"""Aggregate messages (type 22): several sub-messages in FLV tag layout, back to back.

Each sub-message: type u8, size u24, timestamp u24 + extension u8 (high byte), stream id u24,
``size`` payload bytes, then a u32 back pointer (11 + size). Sub-message timestamps are shifted
so that the first one equals the aggregate message's own timestamp.
"""

from __future__ import annotations

from ...errors import RTMPProtocolError
from .messages import Message

__all__ = ["split_aggregate"]

_TAG_HEADER = 11
MAX_SUB_MESSAGES = 4096


def split_aggregate(msg: Message) -> list[Message]:
    data = msg.payload
    out: list[Message] = []
    pos = 0
    base: int | None = None
    while pos < len(data):
        if pos + _TAG_HEADER > len(data):
            raise RTMPProtocolError("aggregate message: truncated sub-message header")
        type_id = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        start = pos + _TAG_HEADER
        end = start + size
        if end > len(data):
            raise RTMPProtocolError("aggregate message: sub-message larger than the message")
        if base is None:
            base = ts
        out.append(
            Message(
                type_id,
                msg.stream_id,
                (msg.timestamp + ts - base) & 0xFFFFFFFF,
                data[start:end],
                msg.csid,
            )
        )
        if len(out) > MAX_SUB_MESSAGES:
            raise RTMPProtocolError("aggregate message: too many sub-messages")
        pos = end + 4  # skip the back pointer (a missing final one is tolerated)
    return out
