"""Test helpers: a scripted RTMP client (bytes), reply parsing, a recording handler, ffmpeg."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediatools import need_tool

from mediagw.errors import PublishRejected
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.chunk import ChunkReader, ChunkWriter
from mediagw.ingest.rtmp.commands import Command
from mediagw.ingest.rtmp.control import SetChunkSize
from mediagw.ingest.rtmp.handshake import HANDSHAKE_SIZE
from mediagw.ingest.rtmp.messages import Message
from mediagw.ingest.rtmp.types import PublishRequest

C1 = bytes(range(256)) * 6  # 1536 bytes
assert len(C1) == HANDSHAKE_SIZE
C0C1 = b"\x03" + C1
C2 = b"\xaa" * HANDSHAKE_SIZE


def fixed_rand(n: int) -> bytes:
    return b"\x5a" * n


class ClientScript:
    """Builds what a publisher sends, message by message (header compression like ffmpeg)."""

    def __init__(self, chunk_size: int = 128) -> None:
        self.writer = ChunkWriter(128, compress=True)
        self.txn = 0.0
        self.chunk_size = chunk_size

    def handshake(self) -> bytes:
        return C0C1 + C2

    def set_chunk_size(self, size: int) -> bytes:
        return self.writer.write(SetChunkSize(size).to_message())

    def command(self, name: str, *args: Any, obj: Any = None, stream_id: int = 0) -> bytes:
        self.txn += 1
        cmd = Command(name, self.txn, obj, args)
        return self.writer.write(cmd.to_message(stream_id, csid=3 if not stream_id else 8))

    def connect(self, app: str = "live", tc_url: str | None = None) -> bytes:
        obj = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
            "tcUrl": tc_url if tc_url is not None else f"rtmp://127.0.0.1:1935/{app}",
        }
        return self.command("connect", obj=obj)

    def setup(self, name: str = "test1", app: str = "live") -> bytes:
        """Everything up to and including publish (stream id 1)."""
        out = self.handshake()
        if self.chunk_size != 128:
            out += self.set_chunk_size(self.chunk_size)
        out += self.connect(app)
        return out + self.publish_commands(name)

    def publish_commands(self, name: str) -> bytes:
        """releaseStream, FCPublish, createStream and publish, as ffmpeg sends them."""
        out = self.command("releaseStream", name)
        out += self.command("FCPublish", name)
        out += self.command("createStream")
        out += self.command("publish", name, "live", stream_id=1)
        return out

    def media(self, type_id: int, timestamp: int, payload: bytes, stream_id: int = 1) -> bytes:
        csid = 4 if type_id == mt.AUDIO else 6
        return self.writer.write(Message(type_id, stream_id, timestamp, payload, csid))

    def metadata(self, meta: dict[str, Any]) -> bytes:
        payload = amf0.encode("@setDataFrame", "onMetaData", amf0.ECMAArray(meta))
        return self.writer.write(Message(mt.DATA_AMF0, 1, 0, payload, 8))


def video_payload(i: int, size: int = 300, keyframe: bool = False) -> bytes:
    head = bytes((0x17 if keyframe else 0x27, 1, 0, 0, 0))
    return head + bytes([i & 0xFF]) * size


@dataclass
class Reply:
    msg: Message
    values: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.values[0]) if self.values else ""


def parse_replies(data: bytes, *, skip_handshake: bool = True) -> list[Reply]:
    """What the server sent: S0S1S2 skipped, chunks read (Set Chunk Size applied), AMF decoded."""
    if skip_handshake:
        assert data[0] == 3
        data = data[1 + 2 * HANDSHAKE_SIZE :]
    reader = ChunkReader()
    out = []
    for msg in reader.feed(data):
        values = amf0.decode(msg.payload) if msg.type_id == mt.COMMAND_AMF0 else []
        out.append(Reply(msg, values))
    return out


class ServerReplies:
    """Incrementally parses server bytes (after the handshake) on a live socket."""

    def __init__(self) -> None:
        self.reader = ChunkReader()
        self.pending = b""
        self.handshake_left = 1 + 2 * HANDSHAKE_SIZE

    def feed(self, data: bytes) -> list[Reply]:
        if self.handshake_left:
            skip = min(self.handshake_left, len(data))
            self.handshake_left -= skip
            data = data[skip:]
        out = []
        for msg in self.reader.feed(data):
            values = amf0.decode(msg.payload) if msg.type_id == mt.COMMAND_AMF0 else []
            out.append(Reply(msg, values))
        return out


async def read_until(
    reader: asyncio.StreamReader,
    replies: ServerReplies,
    name: str,
    timeout: float = 5.0,
    count: int = 1,
) -> list[Reply]:
    """Read server replies until ``count`` commands called ``name`` (or onStatus with that code)."""

    def matches(r: Reply) -> bool:
        if r.name == name:
            return True
        return r.name == "onStatus" and len(r.values) > 3 and r.values[3].get("code") == name

    got: list[Reply] = []
    async with asyncio.timeout(timeout):
        while sum(map(matches, got)) < count:
            data = await reader.read(65536)
            if not data:
                raise EOFError(f"server closed before {name!r}; got {[r.name for r in got]}")
            got += replies.feed(data)
    return got


# -- recording handler ---------------------------------------------------------------------


class RecordingSink:
    def __init__(self, req: PublishRequest, delay: float = 0.0) -> None:
        self.req = req
        self.delay = delay
        self.messages: list[tuple[int, int, bytes]] = []
        self.meta: list[dict[str, Any]] = []
        self.closes: list[str | None] = []
        self.closed = asyncio.Event()

    @property
    def public_id(self) -> str:
        return self.req.name

    async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
        if self.delay and msg_type == mt.VIDEO:
            await asyncio.sleep(self.delay)
        self.messages.append((msg_type, timestamp, payload))

    def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
        if self.delay:  # media() waits: the connection awaits it for this message
            return False
        self.messages.append((msg_type, timestamp, payload))
        return True

    async def metadata(self, meta: dict[str, Any]) -> None:
        self.meta.append(meta)

    async def close(self, error: str | None) -> None:
        self.closes.append(error)
        self.closed.set()

    # helpers
    def video_frames(self) -> int:
        """Video messages carrying coded frames (AVCPacketType 1), not sequence headers."""
        return sum(1 for t, _, p in self.messages if t == mt.VIDEO and len(p) > 1 and p[1] == 1)

    def audio_frames(self) -> int:
        return sum(1 for t, _, p in self.messages if t == mt.AUDIO and len(p) > 1 and p[1] == 1)


class RecordingHandler:
    """Accepts every name once at a time; a second publisher on a live name gets StreamBusy."""

    def __init__(
        self,
        delay: float = 0.0,
        *,
        sink: Callable[[PublishRequest], RecordingSink] | None = None,
    ) -> None:
        self.delay = delay
        self.make_sink = sink or (lambda req: RecordingSink(req, self.delay))
        self.sinks: list[RecordingSink] = []
        self.live: dict[str, RecordingSink] = {}
        self.rejected: list[PublishRequest] = []
        self.requests: list[PublishRequest] = []
        self.reject_with: PublishRejected | None = None

    async def on_publish(self, req: PublishRequest) -> RecordingSink:
        from mediagw.errors import StreamBusy

        self.requests.append(req)
        if self.reject_with is not None:
            self.rejected.append(req)
            raise self.reject_with
        current = self.live.get(req.name)
        if current is not None and not current.closes:
            self.rejected.append(req)
            raise StreamBusy(req.name)
        sink = self.make_sink(req)
        self.sinks.append(sink)
        self.live[req.name] = sink
        return sink

    def sink(self, name: str) -> RecordingSink:
        return self.live[name]

    async def wait_closed(self, name: str, timeout: float = 15.0) -> RecordingSink:
        async with asyncio.timeout(timeout):
            while name not in self.live:
                await asyncio.sleep(0.02)
            sink = self.live[name]
            await sink.closed.wait()
        return sink


# -- ffmpeg ----------------------------------------------------------------------------------


def ffmpeg_path() -> str:
    """The ffmpeg CLI; skips the test without it, but fails under CI=true."""
    return need_tool("ffmpeg")


async def ffmpeg_push(
    ffmpeg: str,
    url: str,
    *,
    seconds: float = 4,
    size: str = "320x240",
    rate: int = 30,
    realtime: bool = False,
) -> asyncio.subprocess.Process:
    """Start an ffmpeg publisher (H.264 + AAC test pattern); the caller awaits ``wait()``."""
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if realtime:
        args.append("-re")
    args += [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-f", "flv", url,
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30.0) -> tuple[int, str]:
    async with asyncio.timeout(timeout):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")
