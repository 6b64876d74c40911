"""The RTMP chunk stream: messages cut into chunks, interleaved over chunk stream ids (csid).

Wire format of one chunk::

    basic header   1 byte   fmt(2 bits) | csid 2..63
                   2 bytes  fmt | 0,  csid - 64          (csid 64..319)
                   3 bytes  fmt | 1,  (csid - 64) as u16 little-endian (csid 64..65599)
    message header fmt 0: timestamp u24, length u24, type u8, message stream id u32 LE (11)
                   fmt 1: timestamp delta u24, length u24, type u8                     (7)
                   fmt 2: timestamp delta u24                                          (3)
                   fmt 3: nothing: everything repeats from the previous header         (0)
    extended ts    u32, present when the u24 timestamp field is 0xFFFFFF; a fmt 3 chunk
                   carries it again when its chunk stream's last fmt 0/1/2 header had one
                   (ffmpeg and librtmp write it that way, in continuation chunks too). Some
                   encoders leave it out of continuation chunks: there the 4 bytes are
                   skipped only when they equal the message's extended timestamp
    payload        min(chunk size, bytes left in the message)

Timestamps: fmt 0 sets the absolute timestamp; fmt 1 and 2 add a delta; a fmt 3 chunk that
starts a new message adds the previous header's timestamp field again (after a fmt 0 header
that is the absolute value, as ffmpeg reads and writes it). All arithmetic is mod 2**32.

Reader rules: a chunk is consumed only when all of it is buffered (a partial chunk stays in the
buffer, no state changes); a message is handed out when its last chunk arrives. Hard limits:
message length, incoming chunk size (Set Chunk Size above it is a protocol error), chunk
streams known, messages in flight. After a :class:`RTMPProtocolError` the reader is dead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import RTMPProtocolError
from . import messages as mt
from .control import Abort, SetChunkSize
from .messages import Message

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkReader",
    "ChunkWriter",
    "ReaderLimits",
    "basic_header",
]

DEFAULT_CHUNK_SIZE = 128
MAX_CSID = 65599
_U32 = struct.Struct(">I")
_LE32 = struct.Struct("<I")
_HEADER_LEN = (11, 7, 3, 0)
_EXT = 0xFFFFFF
_COMPACT_AT = 1 << 16  # drop consumed bytes from the buffer's front past this offset


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """Hard limits of one incoming chunk stream."""

    max_message_size: int = 8 << 20  # a 1080p keyframe is ~1 MiB; 4K high-bitrate fits too
    max_chunk_size: int = 65536  # largest Set Chunk Size accepted from the peer
    max_chunk_streams: int = 64  # distinct csids one peer may use
    max_in_flight: int = 8  # messages partly received at once (interleaved csids)
    max_pending_bytes: int = 16 << 20  # payload bytes of partly received messages, all csids


class _ChunkStream:
    """What a chunk stream remembers between chunks."""

    __slots__ = (
        "delta",
        "ext",
        "ext_value",
        "length",
        "parts",
        "remaining",
        "stream_id",
        "timestamp",
        "type_id",
    )

    def __init__(self) -> None:
        self.timestamp = 0  # of the current / last message, mod 2**32
        self.delta = 0  # last header's timestamp field value (absolute for fmt 0)
        self.ext = False  # last fmt 0/1/2 header used an extended timestamp
        self.ext_value = 0  # the extended timestamp of the current message's header
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.remaining = 0  # payload bytes still to come for the message in progress
        self.parts: list[bytes | memoryview] = []


class ChunkReader:
    """Turns received bytes into complete :class:`Message` objects (sans-IO)."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self.limits = limits or ReaderLimits()
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._buf = bytearray()
        self._pos = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._in_flight = 0
        self._pending = 0  # payload bytes held for partly received messages
        self._error: RTMPProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed (a partial chunk)."""
        return len(self._buf) - self._pos

    @property
    def mid_message(self) -> bool:
        """True while some message is partly received or a partial chunk is buffered."""
        return self._in_flight > 0 or self.buffered > 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        out: list[Message] = []
        if self._pos == len(buf) and type(data) is bytes:
            # Nothing held back (the usual case): parse the read where it is, no copy into the
            # buffer; payloads spread over chunks are joined from views of it (bytes never
            # change), and only an unfinished chunk at its end is kept.
            buf.clear()
            self._pos = 0
            view = memoryview(data)
            try:
                pos = self._parse(data, view, 0, out, True)
            except RTMPProtocolError as exc:
                self._error = exc
                raise
            finally:
                view.release()
            if pos < len(data):
                buf += data[pos:]
            return out
        if self._pos > _COMPACT_AT and self._pos * 2 > len(buf):
            del buf[: self._pos]
            self._pos = 0
        buf += data
        view = memoryview(buf)
        try:
            self._pos = self._parse(buf, view, self._pos, out, False)
        except RTMPProtocolError as exc:
            self._error = exc
            raise
        finally:
            view.release()
        if self._pos == len(buf):
            buf.clear()
            self._pos = 0
        return out

    def _parse(
        self, buf: bytes | bytearray, view: memoryview, pos: int, out: list[Message], fixed: bool
    ) -> int:
        """Parse whole chunks from ``pos``; ``fixed``: ``buf`` is bytes (never changes), so
        chunk payloads may stay views of it until their message is joined."""
        n = len(buf)
        streams = self._streams
        limits = self.limits
        u32 = _U32.unpack_from
        while pos < n:
            b0 = buf[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            hpos = pos + 1
            if csid == 0:
                if n - pos < 2:
                    break
                csid = buf[pos + 1] + 64
                hpos += 1
            elif csid == 1:
                if n - pos < 3:
                    break
                csid = buf[pos + 1] + (buf[pos + 2] << 8) + 64
                hpos += 2
            p = hpos + _HEADER_LEN[fmt]
            if p > n:
                break
            st = streams.get(csid)
            if st is None:
                if fmt >= 2:
                    raise RTMPProtocolError(f"chunk stream {csid} starts with a type {fmt} header")
                if len(streams) >= limits.max_chunk_streams:
                    raise RTMPProtocolError(f"more than {limits.max_chunk_streams} chunk streams")
                st = _ChunkStream()  # committed below, only once the chunk is complete
            new_message = st.remaining == 0
            if not new_message and fmt != 3:
                raise RTMPProtocolError(
                    f"type {fmt} header on chunk stream {csid} in the middle of a message"
                )
            if fmt == 3:
                field = _EXT if st.ext else st.delta
                length, type_id, stream_id = st.length, st.type_id, st.stream_id
            else:
                # hpos >= 1, so the u24 at hpos is the low 3 bytes of the u32 at hpos - 1.
                field = u32(buf, hpos - 1)[0] & 0xFFFFFF
                if fmt <= 1:
                    length = u32(buf, hpos + 2)[0] & 0xFFFFFF
                    type_id = buf[hpos + 6]
                    stream_id = _LE32.unpack_from(buf, hpos + 7)[0] if fmt == 0 else st.stream_id
                else:
                    length, type_id, stream_id = st.length, st.type_id, st.stream_id
            ext = field == _EXT
            if ext:
                if p + 4 > n:
                    break
                value = u32(buf, p)[0]
                if new_message or value == st.ext_value:
                    p += 4
                # else: a continuation chunk from a sender that does not repeat it
            else:
                value = field
            if new_message:
                if length > limits.max_message_size:
                    raise RTMPProtocolError(
                        f"message of {length} bytes over the {limits.max_message_size} limit"
                    )
                remaining = length
            else:
                remaining = st.remaining
            take = remaining if remaining < self.chunk_size else self.chunk_size
            end = p + take
            if end > n:
                break
            # The whole chunk is here: commit.
            if csid not in streams:
                streams[csid] = st
            if new_message:
                st.ext_value = value
                if fmt == 0:
                    st.timestamp = value
                else:
                    st.timestamp = (st.timestamp + value) & 0xFFFFFFFF
                if fmt != 3:
                    st.delta = value
                    st.ext = ext
                    st.length, st.type_id, st.stream_id = length, type_id, stream_id
            pos = end
            if take == remaining and new_message:
                payload = bytes(buf[p:end]) if fixed else bytes(view[p:end])
            else:
                st.parts.append(view[p:end] if fixed else bytes(view[p:end]))
                self._pending += take
                if self._pending > limits.max_pending_bytes:
                    raise RTMPProtocolError(
                        f"more than {limits.max_pending_bytes} bytes of partial messages"
                    )
                if new_message:
                    self._in_flight += 1
                    if self._in_flight > limits.max_in_flight:
                        raise RTMPProtocolError(
                            f"more than {limits.max_in_flight} messages in flight"
                        )
                st.remaining = remaining - take
                if st.remaining:
                    continue
                self._in_flight -= 1
                self._pending -= st.length
                payload = b"".join(st.parts)
                st.parts = []
            if type_id in (mt.SET_CHUNK_SIZE, mt.ABORT):
                self._control(type_id, payload)
            else:
                out.append(Message(type_id, stream_id, st.timestamp, payload, csid))
        return pos

    def _control(self, type_id: int, payload: bytes) -> None:
        if type_id == mt.SET_CHUNK_SIZE:
            size = SetChunkSize.parse(payload).size
            if not 1 <= size <= self.limits.max_chunk_size:
                raise RTMPProtocolError(
                    f"Set Chunk Size {size} outside 1..{self.limits.max_chunk_size}"
                )
            self.chunk_size = size
        else:
            st = self._streams.get(Abort.parse(payload).csid)
            if st is not None and st.remaining:
                self._pending -= st.length - st.remaining
                st.remaining = 0
                st.parts = []
                self._in_flight -= 1


def basic_header(fmt: int, csid: int) -> bytes:
    """The 1-, 2- or 3-byte basic header (the shortest form for ``csid``)."""
    if 2 <= csid <= 63:
        return bytes((fmt << 6 | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= MAX_CSID:
        return bytes((fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))
    raise ValueError(f"chunk stream id {csid} outside 2..{MAX_CSID}")


class _Sent:
    __slots__ = ("delta", "length", "stream_id", "timestamp", "type_id")

    def __init__(self, msg: Message, delta: int) -> None:
        self.type_id = msg.type_id
        self.stream_id = msg.stream_id
        self.length = len(msg.payload)
        self.timestamp = msg.timestamp
        self.delta = delta


class ChunkWriter:
    """Cuts messages into chunks. ``compress=True`` picks fmt 1/2/3 headers as ffmpeg does."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, *, compress: bool = False) -> None:
        self.chunk_size = chunk_size
        self.compress = compress
        self._prev: dict[int, _Sent] = {}

    def write(self, msg: Message) -> bytes:
        """The chunks of one message. A Set Chunk Size message applies to later messages."""
        if not 0 <= msg.timestamp <= 0xFFFFFFFF:
            raise ValueError("RTMP timestamps are 32-bit")
        if len(msg.payload) > 0xFFFFFF:
            raise ValueError("RTMP messages are at most 16 MiB - 1")
        prev = self._prev.get(msg.csid) if self.compress else None
        fmt, value = 0, msg.timestamp
        if prev is not None and prev.stream_id == msg.stream_id and msg.timestamp >= prev.timestamp:
            value = msg.timestamp - prev.timestamp
            if prev.type_id != msg.type_id or prev.length != len(msg.payload):
                fmt = 1
            else:
                fmt = 3 if value == prev.delta else 2
        self._prev[msg.csid] = _Sent(msg, value)
        ext = value >= _EXT
        field = _EXT if ext else value
        head = bytearray(basic_header(fmt, msg.csid))
        if fmt <= 2:
            head += field.to_bytes(3, "big")
        if fmt <= 1:
            head += len(msg.payload).to_bytes(3, "big")
            head.append(msg.type_id)
        if fmt == 0:
            head += _LE32.pack(msg.stream_id)
        ext_bytes = _U32.pack(value) if ext else b""
        head += ext_bytes
        cont = basic_header(3, msg.csid) + ext_bytes
        size = self.chunk_size
        payload = msg.payload
        out = [bytes(head), payload[:size]]
        for off in range(size, len(payload), size):
            out.append(cont)
            out.append(payload[off : off + size])
        if msg.type_id == mt.SET_CHUNK_SIZE:
            self.chunk_size = SetChunkSize.parse(msg.payload).size
        return b"".join(out)
