"""``ServerConnection``: the sans-IO RTMP server state machine for one publisher connection.

Drive it with ``receive_data(bytes, now_ms) -> [events]`` / ``receive_eof()``, send what
``data_to_send()`` returns, and answer each :class:`PublishRequested` with ``accept_publish()``
or ``reject_publish(code, description)``. It never imports asyncio and never reads a clock.

States and rules (anything not listed is ignored; a command in a state it is not allowed in
gets ``_error`` when it has a transaction id):

==================  ========================  ==========================================  ==========
state               input                     reply / event                               next
==================  ========================  ==========================================  ==========
HANDSHAKE           C0+C1, C2                 S0+S1+S2; HandshakeCompleted                AWAIT_CONN
AWAIT_CONN          connect                   WinAckSize, PeerBandwidth, SetChunkSize,    CONNECTED
                                              _result Connect.Success; Connected
AWAIT_CONN          connect with a bad app    _error Connect.Rejected; Closing            CLOSING
ACTIVE              releaseStream             _result                                     -
ACTIVE              FCPublish                 onFCPublish                                 -
ACTIVE              createStream              _result(stream id), _error past max_streams -
CONNECTED           publish NAME              PublishRequested                            PENDING
CONNECTED           publish, bad NAME         onStatus Publish.BadName; Closing           CLOSING
PENDING             accept_publish()          onStatus NetStream.Publish.Start            PUBLISHING
PENDING             reject_publish(c, d)      onStatus level error, code c                CLOSING
PENDING/PUBLISHING  FCUnpublish, closeStream  PublishEnded (no reply: see below)          CONNECTED
                    deleteStream
PENDING/PUBLISHING  audio / video / aggregate MediaMessage (unwrapped timestamp)          -
PENDING/PUBLISHING  @setDataFrame onMetaData  Metadata                                    -
ACTIVE              play                      onStatus NetStream.Play.Failed; Closing     CLOSING
ACTIVE              other command, txn != 0   _error NetConnection.Call.Failed            -
any                 ack, window ack size,     nothing (window kept for ``send_acks``)     -
                    peer bandwidth, user ctl
PENDING/PUBLISHING  end of input              PublishEnded (error if mid-message)         CLOSING
CLOSING             anything                  ignored                                     -
==================  ========================  ==========================================  ==========

ACTIVE = CONNECTED, PENDING or PUBLISHING. Media outside PENDING/PUBLISHING is dropped.

Nothing is ever sent unasked after ``NetStream.Publish.Start``: no acknowledgements (unless
``ConnectionConfig.send_acks``), no pings, no replies to unpublish commands. A publisher such
as ffmpeg reads its socket only now and then while it pushes and not at all once it is done:
bytes it never read make its close() a TCP RST, and the RST makes our kernel throw away the
tail of the stream that we had not read yet (a fast push into a lagging server loses frames;
tests/rtmp/test_rtmp_ffmpeg.py shows it does not happen).

Bytes that break the protocol raise :class:`RTMPProtocolError`; the connection is then dead
and every later call raises the same error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...errors import RTMPProtocolError
from . import messages as mt
from .aggregate import split_aggregate
from .amf0 import UNDEFINED
from .chunk import ChunkReader, ChunkWriter, ReaderLimits
from .commands import Command, parse_data, status_info
from .control import Acknowledgement, SetChunkSize, SetPeerBandwidth, WindowAckSize
from .events import (
    Closing,
    Connected,
    Event,
    HandshakeCompleted,
    MediaMessage,
    Metadata,
    PublishEnded,
    PublishRequested,
)
from .handshake import ServerHandshake
from .messages import Message
from .timestamps import TimestampUnwrapper
from .url import BadTarget, PublishTarget, parse_target

__all__ = ["ConnectionConfig", "ServerConnection", "State"]


class State(Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONN = "await connect"
    CONNECTED = "connected"
    PENDING = "publish pending"
    PUBLISHING = "publishing"
    CLOSING = "closing"


_ACTIVE = frozenset({State.CONNECTED, State.PENDING, State.PUBLISHING})
_PUBLISH = frozenset({State.PENDING, State.PUBLISHING})
_MEDIA = (mt.AUDIO, mt.VIDEO)
_COMMANDS = (mt.COMMAND_AMF0, mt.COMMAND_AMF3)
_DATA = (mt.DATA_AMF0, mt.DATA_AMF3)
_RESPONSES = frozenset({"_result", "_error", "onStatus"})


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Protocol settings and limits of one connection."""

    reader: ReaderLimits = field(default_factory=ReaderLimits)
    out_chunk_size: int = 4096  # announced to the peer with Set Chunk Size after connect
    window_ack_size: int = 2_500_000  # announced; the peer may ack us every that many bytes
    peer_bandwidth: int = 2_500_000
    # Send Acknowledgements every N received bytes, N = the peer's Window Ack Size or, when it
    # sent none (ffmpeg, OBS), window_ack_size. Off by default: see the module docstring.
    send_acks: bool = False
    max_command_size: int = 64 << 10  # command (20/17) messages
    max_data_size: int = 256 << 10  # data (18/15) messages, e.g. onMetaData
    max_streams: int = 8  # createStream calls per connection


class ServerConnection:
    """One RTMP server connection, sans-IO. See the module docstring for the rules."""

    def __init__(
        self, *, rand: Callable[[int], bytes], config: ConnectionConfig | None = None
    ) -> None:
        self.config = config or ConnectionConfig()
        self.state = State.HANDSHAKE
        self._handshake = ServerHandshake(rand)
        self._reader = ChunkReader(self.config.reader)
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._error: RTMPProtocolError | None = None
        self._ts = TimestampUnwrapper()
        self._app_raw = ""
        self._tc_url_raw = ""
        self.app = ""
        self.tc_url = ""
        self.target: PublishTarget | None = None  # of the current / last publish
        self.stream_id = 0  # message stream of the current publish
        self._streams: set[int] = set()
        self._next_stream_id = 1
        self.bytes_received = 0
        self.peer_window = 0  # from the peer's Window Ack Size
        self._acked = 0
        self.close_reason: str | None = None
        self.media_dropped = 0  # media received outside a publish

    # -- driver API -------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the connection should be closed (after sending ``data_to_send()``)."""
        return self.state is State.CLOSING

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview, now_ms: int = 0) -> list[Event]:
        """Consume received bytes; return the events they complete. Raises RTMPProtocolError."""
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        if self.state is State.CLOSING:
            return events
        self.bytes_received += len(data)
        try:
            if self.state is State.HANDSHAKE:
                self._out += self._handshake.receive_data(data, now_ms)
                if not self._handshake.done:
                    return events
                self.state = State.AWAIT_CONN
                events.append(HandshakeCompleted())
                data = self._handshake.take_leftover()
            for msg in self._reader.feed(data):
                self._on_message(msg, events)
                if self.state is State.CLOSING:
                    break
        except RTMPProtocolError as exc:
            self._error = exc
            self.state = State.CLOSING
            raise
        if (
            self.config.send_acks
            and self.state is not State.CLOSING
            and self.bytes_received - self._acked
            >= (self.peer_window or self.config.window_ack_size)
        ):
            self._acked = self.bytes_received
            self._send(Acknowledgement(self.bytes_received).to_message())
        return events

    def receive_eof(self) -> list[Event]:
        """The peer closed its side. Ends a publish in progress."""
        events: list[Event] = []
        if self.state in _PUBLISH:
            error = "connection closed mid-message" if self._reader.mid_message else None
            events.append(PublishEnded(self.stream_id, error))
        if self.state is not State.CLOSING:
            self._close("peer closed the connection")
        return events

    def accept_publish(self) -> None:
        """Answer the pending publish with ``NetStream.Publish.Start``. No-op if it ended."""
        if self.state is not State.PENDING or self.target is None:
            return
        name = self.target.name
        self._status("status", "NetStream.Publish.Start", f"{name} is now published.", name)
        self.state = State.PUBLISHING

    def reject_publish(self, code: str, description: str) -> None:
        """Refuse the pending publish with an error ``onStatus``; the connection then closes."""
        if self.state is not State.PENDING:
            return
        name = self.target.name if self.target else ""
        self._status("error", code, description, name)
        self._close(f"publish rejected: {code}")

    # -- internals ----------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self._out += self._writer.write(msg)

    def _close(self, reason: str) -> None:
        self.state = State.CLOSING
        self.close_reason = reason

    def _status(self, level: str, code: str, description: str, details: str) -> None:
        info = status_info(level, code, description, details=details)
        self._send(Command("onStatus", 0.0, None, (info,)).to_message(self.stream_id))

    def _reply(self, cmd: Command, *args: Any, name: str = "_result") -> None:
        self._send(Command(name, cmd.transaction_id, None, args).to_message())

    def _call_error(self, cmd: Command, code: str, description: str) -> None:
        if cmd.transaction_id:
            self._reply(cmd, status_info("error", code, description), name="_error")

    def _on_message(self, msg: Message, events: list[Event]) -> None:
        type_id = msg.type_id
        if type_id in _MEDIA:
            if self.state in _PUBLISH:
                ts = self._ts.unwrap(msg.timestamp)
                events.append(MediaMessage(type_id, ts, msg.payload))
            else:
                self.media_dropped += 1
        elif type_id in _COMMANDS:
            if len(msg.payload) > self.config.max_command_size:
                raise RTMPProtocolError(f"command message of {len(msg.payload)} bytes")
            self._on_command(Command.parse(msg), msg, events)
        elif type_id in _DATA:
            if len(msg.payload) > self.config.max_data_size:
                raise RTMPProtocolError(f"data message of {len(msg.payload)} bytes")
            if self.state in _PUBLISH:
                self._on_data(msg, events)
        elif type_id == mt.AGGREGATE:
            if self.state in _PUBLISH:
                for sub in split_aggregate(msg):
                    if sub.type_id in _MEDIA or sub.type_id in _DATA:
                        self._on_message(sub, events)
        elif type_id == mt.WINDOW_ACK_SIZE:
            self.peer_window = WindowAckSize.parse(msg.payload).size
        # Acknowledgement, User Control (pings included), Set Peer Bandwidth, shared objects
        # and unknown types are ignored: a publisher needs no answer to any of them.

    def _on_data(self, msg: Message, events: list[Event]) -> None:
        try:
            values = parse_data(msg)
        except RTMPProtocolError:
            return  # odd metadata is not worth a publisher's connection
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            events.append(Metadata(dict(values[1])))

    def _on_command(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        rule = _RULES.get(cmd.name)
        if rule is None:
            if cmd.name not in _RESPONSES:
                self._call_error(cmd, "NetConnection.Call.Failed", "unknown command")
            return
        states, method = rule
        if self.state not in states:
            self._call_error(cmd, "NetConnection.Call.Failed", f"{cmd.name} not allowed now")
            return
        method(self, cmd, msg, events)

    def _on_connect(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        obj = cmd.command_object if isinstance(cmd.command_object, dict) else {}
        app = obj.get("app")
        tc_url = obj.get("tcUrl")
        flash_ver = obj.get("flashVer")
        self._app_raw = app if isinstance(app, str) else ""
        self._tc_url_raw = tc_url if isinstance(tc_url, str) else ""
        try:
            target = parse_target(self._app_raw, "-", self._tc_url_raw)
        except BadTarget as exc:
            self._call_error(cmd, "NetConnection.Connect.Rejected", str(exc))
            self._close(f"connect rejected: {exc}")
            events.append(Closing(self.close_reason or ""))
            return
        self.app, self.tc_url = target.app, target.tc_url
        self._send(WindowAckSize(self.config.window_ack_size).to_message())
        self._send(SetPeerBandwidth(self.config.peer_bandwidth, 2).to_message())
        self._send(SetChunkSize(self.config.out_chunk_size).to_message())
        props = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "mode": 1.0}
        info = status_info(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
            objectEncoding=0.0,
        )
        self._send(Command("_result", cmd.transaction_id, props, (info,)).to_message())
        self.state = State.CONNECTED
        events.append(
            Connected(self.app, self.tc_url, flash_ver if isinstance(flash_ver, str) else "")
        )

    def _on_release_stream(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        if cmd.transaction_id:
            self._reply(cmd, UNDEFINED)

    def _on_fcpublish(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        name = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
        name = name.partition("?")[0]  # never echo a query back: it may hold a key
        info = status_info("status", "NetStream.Publish.Start", name)
        self._send(Command("onFCPublish", 0.0, None, (info,)).to_message())

    def _on_create_stream(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        if len(self._streams) >= self.config.max_streams:
            self._call_error(cmd, "NetConnection.Call.Failed", "too many streams")
            return
        sid = self._next_stream_id
        self._next_stream_id += 1
        self._streams.add(sid)
        self._reply(cmd, float(sid))

    def _on_publish(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        name = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
        self.stream_id = msg.stream_id
        try:
            target = parse_target(self._app_raw, name, self._tc_url_raw)
        except BadTarget as exc:
            self._status("error", "NetStream.Publish.BadName", str(exc), "")
            self._close(f"bad stream name: {exc}")
            events.append(Closing(self.close_reason or ""))
            return
        self.target = target
        self._ts = TimestampUnwrapper()
        self.state = State.PENDING
        events.append(
            PublishRequested(
                target.app, target.name, dict(target.query), target.tc_url, msg.stream_id
            )
        )

    def _on_unpublish(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        if cmd.name == "deleteStream" and cmd.args and isinstance(cmd.args[0], float):
            self._streams.discard(int(cmd.args[0]))
        if self.state in _PUBLISH:
            events.append(PublishEnded(self.stream_id))
            self.state = State.CONNECTED

    def _on_play(self, cmd: Command, msg: Message, events: list[Event]) -> None:
        self.stream_id = msg.stream_id
        self._status("error", "NetStream.Play.Failed", "this server only accepts publishers", "")
        self._close("play refused: ingest only")
        events.append(Closing(self.close_reason or ""))


_Handler = Callable[[ServerConnection, Command, Message, list[Event]], None]

# command name -> (states it is allowed in, handler)
_RULES: dict[str, tuple[frozenset[State], _Handler]] = {
    "connect": (frozenset({State.AWAIT_CONN}), ServerConnection._on_connect),
    "releaseStream": (_ACTIVE, ServerConnection._on_release_stream),
    "FCPublish": (_ACTIVE, ServerConnection._on_fcpublish),
    "createStream": (_ACTIVE, ServerConnection._on_create_stream),
    "publish": (frozenset({State.CONNECTED}), ServerConnection._on_publish),
    "FCUnpublish": (_ACTIVE, ServerConnection._on_unpublish),
    "deleteStream": (_ACTIVE, ServerConnection._on_unpublish),
    "closeStream": (_ACTIVE, ServerConnection._on_unpublish),
    "play": (_ACTIVE, ServerConnection._on_play),
}
