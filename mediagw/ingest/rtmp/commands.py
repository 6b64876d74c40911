"""Command messages (types 20 and 17): ``name, transaction id, command object, args...``.

Also the replies a server sends: ``_result`` / ``_error`` for calls, ``onStatus`` for streams.
Type 17 (AMF3 command) is accepted when its values are AMF0, as every publisher sends them:
the payload starts with a 0x00 format byte, then the same AMF0 values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import RTMPProtocolError
from . import amf0
from . import messages as mt
from .messages import Message

__all__ = ["Command", "parse_data", "status_info"]

COMMAND_CSID = 3
STREAM_CSID = 5


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    transaction_id: float
    command_object: Any = None
    args: tuple[Any, ...] = field(default=())

    @classmethod
    def parse(cls, msg: Message) -> Command:
        payload = msg.payload
        if msg.type_id == mt.COMMAND_AMF3 and payload[:1] == b"\x00":
            payload = payload[1:]
        values = amf0.decode(payload)
        if len(values) < 2 or not isinstance(values[0], str):
            raise RTMPProtocolError("command message without a name and transaction id")
        txn = values[1]
        if not isinstance(txn, float):
            raise RTMPProtocolError(f"command {values[0][:64]!r}: transaction id is not a number")
        cmd_obj = values[2] if len(values) > 2 else None
        return cls(values[0], txn, cmd_obj, tuple(values[3:]))

    def __bytes__(self) -> bytes:
        return amf0.encode(self.name, self.transaction_id, self.command_object, *self.args)

    def to_message(self, stream_id: int = 0, csid: int | None = None) -> Message:
        if csid is None:
            csid = STREAM_CSID if stream_id else COMMAND_CSID
        return Message(mt.COMMAND_AMF0, stream_id, 0, bytes(self), csid)


def status_info(level: str, code: str, description: str, **extra: Any) -> dict[str, Any]:
    """The info object of ``onStatus`` / ``_result`` / ``_error``."""
    return {"level": level, "code": code, "description": description, **extra}


def parse_data(msg: Message) -> list[Any]:
    """The AMF0 values of a data message (type 18, or 15 with a format byte)."""
    payload = msg.payload
    if msg.type_id == mt.DATA_AMF3 and payload[:1] == b"\x00":
        payload = payload[1:]
    return amf0.decode(payload)
