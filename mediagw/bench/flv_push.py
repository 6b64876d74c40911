"""A light RTMP publisher: one asyncio process publishes N live-paced streams of one FLV clip.

``python -m mediagw.bench.flv_push --clip C.flv --urls URLS.json --out RESULT.json`` stands in
for N ``ffmpeg -re -i C.flv -c copy -f flv URL`` processes at a fraction of their CPU. Per
socket it does what ffmpeg's RTMP client does: the handshake (C0C1, S0S1S2, C2), Set Chunk Size
4096, connect, releaseStream, FCPublish, createStream, publish, then waits for ``onStatus
NetStream.Publish.Start`` (a refusal is a failure with the server's code and description),
then ``@setDataFrame onMetaData`` and the media, then FCUnpublish and deleteStream.

The clip's tags are cut into chunk bytes once (:func:`chunk_clip`, mediagw's own ChunkWriter
with ffmpeg's header compression and chunk stream ids: data and audio on 4, video on 6), the
same bytes for every stream. One scheduler sends each stream's tags at live pace (its
Publish.Start + the tag's timestamp, as ``-re``): one write per tag when it is due; tags of one
socket due in the same timer tick go in one write. Starts are spread evenly over ``--stagger``
seconds. A socket the server stops reading is not written to until it drains (its tags then go
late, and the lag is recorded), as a blocking publisher would behave.

The result file holds, per stream: its URL's index, the error if it failed, when it started
and ended, and every video keyframe's (DTS ms, PTS ms, due time, send time); the times are
``time.monotonic()`` (one clock for every process of a Linux machine). And the process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from segmenter.flv import read_flv_file

from ..ingest.rtmp import amf0
from ..ingest.rtmp import messages as mt
from ..ingest.rtmp.chunk import ChunkReader, ChunkWriter
from ..ingest.rtmp.commands import Command
from ..ingest.rtmp.control import SetChunkSize
from ..ingest.rtmp.handshake import HANDSHAKE_SIZE, RTMP_VERSION
from ..ingest.rtmp.messages import Message

__all__ = ["CHUNK_SIZE", "Tag", "chunk_clip", "main"]

CHUNK_SIZE = 4096  # what ffmpeg's RTMP client sets before connect
AUDIO_CSID, VIDEO_CSID, PUBLISH_CSID = 4, 6, 8  # ffmpeg's chunk stream ids
TICK = 0.002  # tags of one socket due within this of each other go in one write
STALL = 15.0  # a server that reads nothing from a socket this long has failed that stream
_FLV_TYPES = {8: mt.AUDIO, 9: mt.VIDEO, 18: mt.DATA_AMF0}


@dataclass(frozen=True, slots=True)
class Tag:
    """One FLV tag as chunk bytes: due ``at_ms`` after the stream starts."""

    at_ms: int
    data: bytes
    keyframe: bool = False  # a video keyframe (not a sequence header)
    pts_ms: int = 0  # DTS + composition time, for keyframes


def chunk_clip(path: str | Path, stream_id: int = 1) -> list[Tag]:
    """The clip's tags as RTMP chunks on message stream ``stream_id``, cut once.

    The script tag becomes ``@setDataFrame onMetaData`` (as ffmpeg sends it)."""
    writer = ChunkWriter(CHUNK_SIZE, compress=True)
    tags: list[Tag] = []
    for flv_type, ts, body in read_flv_file(str(path)):
        type_id = _FLV_TYPES.get(flv_type)
        if type_id is None:
            continue
        payload = body
        if type_id == mt.DATA_AMF0:
            values = amf0.decode(body)
            if not values or values[0] != "onMetaData":
                continue
            payload = amf0.encode("@setDataFrame", *values)
        csid = VIDEO_CSID if type_id == mt.VIDEO else AUDIO_CSID
        data = writer.write(Message(type_id, stream_id, ts, payload, csid))
        keyframe = type_id == mt.VIDEO and len(payload) > 5 and payload[0] >> 4 == 1
        keyframe = keyframe and payload[1] == 1  # an AVC NALU packet, not the sequence header
        pts = ts
        if keyframe:
            cts = int.from_bytes(payload[2:5], "big")
            pts = ts + (cts - (1 << 24) if cts & 0x800000 else cts)
        tags.append(Tag(ts, data, keyframe, pts))
    return tags


class _Clip:
    """The chunked tags per message stream id (cut again only for an unusual stream id)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._by_sid = {1: chunk_clip(path, 1)}

    def tags(self, stream_id: int) -> list[Tag]:
        if stream_id not in self._by_sid:
            self._by_sid[stream_id] = chunk_clip(self.path, stream_id)
        return self._by_sid[stream_id]


@dataclass(eq=False)
class _Stream:
    index: int
    url: str
    start_at: float
    error: str = ""
    started: float = 0.0  # Publish.Start received (the live pace's origin)
    ended: float = 0.0
    tags: list[Tag] = field(default_factory=list)
    next_tag: int = 0
    keyframes: list[tuple[int, int, float, float]] = field(default_factory=list)
    bytes_sent: int = 0
    writes: int = 0
    paused_since: float = 0.0
    paused_s: float = 0.0  # time spent waiting for a server that did not read (all pauses)
    proto: _Client | None = None

    def result(self) -> dict[str, Any]:
        return {
            "index": self.index, "error": self.error, "started": self.started,
            "ended": self.ended, "tags_sent": self.next_tag, "tags": len(self.tags),
            "bytes_sent": self.bytes_sent, "writes": self.writes, "paused_s": self.paused_s,
            "keyframes": self.keyframes,  # (dts ms, pts ms, due, sent)
        }  # fmt: skip


class _Client(asyncio.Protocol):
    """One publishing connection up to Publish.Start (then only its transport is used)."""

    def __init__(self, app: str, name: str, tc_url: str) -> None:
        self.app, self.name, self.tc_url = app, name, tc_url
        self.transport: asyncio.Transport | None = None
        self.published: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.paused = False
        self._buf = bytearray()
        self._handshaken = False
        self._reader = ChunkReader()
        self._writer = ChunkWriter()
        self._stream_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        c1 = bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)
        self.transport.write(bytes((RTMP_VERSION,)) + c1)

    def _send(self, msg: Message) -> None:
        assert self.transport is not None
        self.transport.write(self._writer.write(msg))

    def _fail(self, reason: str) -> None:
        if not self.published.done():
            self.published.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.published.done():
            return  # acknowledgements and the like: nothing a publisher must answer
        if not self._handshaken:
            self._buf += data
            if len(self._buf) < 1 + 2 * HANDSHAKE_SIZE:
                return
            s1 = bytes(self._buf[1 : 1 + HANDSHAKE_SIZE])
            data = bytes(self._buf[1 + 2 * HANDSHAKE_SIZE :])
            self._buf.clear()
            self._handshaken = True
            self._send_raw(s1)  # C2 echoes S1
            self._send(SetChunkSize(CHUNK_SIZE).to_message())
            obj = {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; "
                   "mediagw flv_push)", "tcUrl": self.tc_url}  # fmt: skip
            self._send(Command("connect", 1.0, obj).to_message())
            if not data:
                return
        try:
            for msg in self._reader.feed(data):
                self._on_message(msg)
        except Exception as exc:  # a protocol error from the server's bytes
            self._fail(f"{type(exc).__name__}: {exc}")

    def _send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _on_message(self, msg: Message) -> None:
        if msg.type_id not in (mt.COMMAND_AMF0, mt.COMMAND_AMF3):
            return
        cmd = Command.parse(msg)
        info = cmd.args[0] if cmd.args and isinstance(cmd.args[0], dict) else {}
        if cmd.name == "_error":
            self._fail(f"{info.get('code', '_error')}: {info.get('description', '')}")
        elif cmd.name == "_result" and cmd.transaction_id == 1.0:
            self._send(Command("releaseStream", 2.0, None, (self.name,)).to_message())
            self._send(Command("FCPublish", 3.0, None, (self.name,)).to_message())
            self._send(Command("createStream", 4.0, None).to_message())
        elif cmd.name == "_result" and cmd.transaction_id == 4.0:
            sid = cmd.args[0] if cmd.args else None
            if not isinstance(sid, float):
                self._fail(f"createStream answered {cmd.args!r}")
                return
            self._stream_id = int(sid)
            publish = Command("publish", 5.0, None, (self.name, "live"))
            self._send(publish.to_message(self._stream_id, PUBLISH_CSID))
        elif cmd.name == "onStatus":
            code = str(info.get("code", ""))
            if code == "NetStream.Publish.Start":
                self.published.set_result(self._stream_id)
            elif info.get("level") == "error" or "Publish" in code:
                self._fail(f"{code}: {info.get('description', '')}")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection closed before publishing ({exc or 'EOF'})")
        if not self.closed.done():
            self.closed.set_result(None)


async def _open(stream: _Stream, clip: _Clip, timeout: float) -> None:
    """Connect and publish ``stream``; its tags and start time once the server said Start."""
    await asyncio.sleep(max(0.0, stream.start_at - time.monotonic()))
    url = urlsplit(stream.url)
    app, _, name = url.path.lstrip("/").partition("/")
    if url.query:
        name += "?" + url.query
    host, port = url.hostname or "127.0.0.1", url.port or 1935
    tc_url = f"rtmp://{host}:{port}/{app}"
    loop = asyncio.get_running_loop()
    try:
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Client(app, name, tc_url), host, port), timeout
        )
        stream.proto = proto
        sid = await asyncio.wait_for(proto.published, timeout)
    except TimeoutError:
        stream.error = f"no NetStream.Publish.Start within {timeout:g} s"
    except OSError as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
    if stream.error:
        stream.ended = time.monotonic()
        if stream.proto is not None and stream.proto.transport is not None:
            stream.proto.transport.abort()
        return
    stream.tags = clip.tags(sid)
    stream.started = time.monotonic()


def _send_due(stream: _Stream, now: float) -> float | None:
    """Write the stream's tags due by ``now`` (+ a tick) in one write; its next due time, or
    None when it is done (or failed)."""
    proto = stream.proto
    assert proto is not None and proto.transport is not None
    tags, i, base = stream.tags, stream.next_tag, stream.started
    if proto.transport.is_closing():
        stream.error = stream.error or "the server closed the connection while publishing"
        return None
    if proto.paused:  # the server is not reading: wait for it, as a blocking writer would
        stream.paused_since = stream.paused_since or now
        if now - stream.paused_since > STALL:
            stream.error = f"the server read nothing for {STALL:g} s"
            proto.transport.abort()
            return None
        return now + TICK
    if stream.paused_since:
        stream.paused_s += now - stream.paused_since
        stream.paused_since = 0.0
    limit = (now + TICK - base) * 1000
    j = i
    while j < len(tags) and tags[j].at_ms <= limit:
        j += 1
    if j > i:
        data = tags[i].data if j == i + 1 else b"".join(t.data for t in tags[i:j])
        proto.transport.write(data)
        stream.writes += 1
        stream.bytes_sent += len(data)
        sent = time.monotonic()
        for tag in tags[i:j]:
            if tag.keyframe:
                stream.keyframes.append((tag.at_ms, tag.pts_ms, base + tag.at_ms / 1000, sent))
        stream.next_tag = i = j
    if i >= len(tags):
        return None
    return base + tags[i].at_ms / 1000


def _finish(stream: _Stream) -> None:
    proto = stream.proto
    stream.ended = time.monotonic()
    if proto is None or proto.transport is None or proto.transport.is_closing():
        return
    sid = proto._stream_id
    proto._send(Command("FCUnpublish", 6.0, None, (proto.name,)).to_message())
    proto._send(Command("deleteStream", 7.0, None, (float(sid),)).to_message())
    proto.transport.close()


async def publish_all(
    clip_path: str, urls: list[str], stagger: float, timeout: float = 20.0
) -> dict[str, Any]:
    """Publish the clip to every URL at live pace; the per-stream results."""
    clip = _Clip(clip_path)
    cpu0 = _cpu()
    t0 = time.monotonic() + 0.05
    step = stagger / len(urls) if urls else 0.0
    streams = [_Stream(i, u, t0 + i * step) for i, u in enumerate(urls)]
    heap: list[tuple[float, int]] = []
    opening = {asyncio.ensure_future(_open(s, clip, timeout)): s for s in streams}
    while opening or heap:
        for task in [t for t in opening if t.done()]:
            s = opening.pop(task)
            task.result()
            if not s.error:
                heapq.heappush(heap, (s.started, s.index))
        now = time.monotonic()
        # each stream due now is served once per pass: one put back due within the pass (a
        # paused one comes back at now + TICK) waits for the next, after the loop has run (it
        # is what resumes a paused transport; serving it again at once spun here for ever)
        ready = []
        while heap and heap[0][0] <= now + TICK:
            ready.append(heapq.heappop(heap)[1])
        for index in ready:
            stream = streams[index]
            due = _send_due(stream, now)
            if due is None:
                _finish(stream)
            else:
                heapq.heappush(heap, (due, index))
        wait = heap[0][0] - time.monotonic() if heap else 0.05
        if opening:
            wait = min(wait, 0.01)
        await asyncio.sleep(max(0.0, wait))
    closing = [s.proto.closed for s in streams if s.proto is not None]
    if closing:
        await asyncio.wait(closing, timeout=timeout)
    return {
        "streams": [s.result() for s in streams],
        "failed": sum(1 for s in streams if s.error),
        "cpu_seconds_push": _cpu() - cpu0,
        "cpu_seconds": _cpu(),
        "loop": type(asyncio.get_running_loop()).__module__,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediagw.bench.flv_push", description=__doc__
                                     and __doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--clip", required=True, help="an FLV file (H.264 + AAC)")
    parser.add_argument("--urls", required=True, help="a JSON file: a list of rtmp:// URLs")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--stagger", type=float, default=2.0, help="starts spread over, s")
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="for the connection, then Publish.Start, s"
    )
    args = parser.parse_args(argv)
    urls = json.loads(Path(args.urls).read_text())
    coro = publish_all(args.clip, urls, args.stagger, args.timeout)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    Path(args.out).write_text(json.dumps(result))
    for s in result["streams"]:
        if s["error"]:
            print(f"flv_push: {urls[s['index']]}: {s['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
