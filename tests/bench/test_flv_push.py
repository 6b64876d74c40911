"""The light publisher's chunking (``flv_push.chunk_clip``), read back by the gateway's own
ChunkReader: every FLV tag comes out as the message ffmpeg would send for it. And the bench's
latency matching (segment end -> the keyframe that closed it). And the publisher against the
gateway's server connection: Publish.Start awaited, a refusal reported."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest

from mediagw.bench.flv_push import CHUNK_SIZE, chunk_clip, publish_all
from mediagw.bench.ingest_kit import nginx_ends, segment_latencies
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.chunk import ChunkReader, ChunkWriter
from mediagw.ingest.rtmp.control import SetChunkSize
from mediagw.ingest.rtmp.events import MediaMessage, PublishRequested
from mediagw.ingest.rtmp.statemachine import ServerConnection


def flv(tags: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4))
    for kind, ts, payload in tags:
        head = bytes((kind,)) + len(payload).to_bytes(3, "big")
        head += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes((ts >> 24 & 0xFF,)) + bytes(3)
        out += head + payload + struct.pack(">I", 11 + len(payload))
    return bytes(out)


def video(key: bool, cts: int, size: int) -> bytes:
    return (
        bytes((0x17 if key else 0x27, 1))
        + cts.to_bytes(3, "big")
        + bytes(range(256)) * (size // 256)
    )


def test_chunked_tags_read_back_as_the_clip(tmp_path: Path) -> None:
    meta = amf0.encode("onMetaData", {"width": 1280.0, "height": 720.0})
    tags = [
        (18, 0, meta),
        (9, 0, b"\x17\x00\x00\x00\x00" + b"avcC" * 10),  # sequence header: not a keyframe
        (8, 0, b"\xaf\x00\x12\x10"),
        (9, 0, video(True, 66, 3 * CHUNK_SIZE + 100)),  # continuation chunks
        (8, 21, b"\xaf\x01" + b"a" * 300),
        (9, 33, video(False, 33, 2000)),
        (8, 42, b"\xaf\x01" + b"b" * 300),
        (9, 66, video(False, 33, 2000)),  # the same size and delta: fmt 3 headers
        (9, 99, video(False, 33, 2000)),
        (9, 0x1000010, video(True, 66, 5000)),  # an extended timestamp
        (8, 0x1000020, b"\xaf\x01" + b"c" * 300),
    ]
    path = tmp_path / "clip.flv"
    path.write_bytes(flv(tags))
    chunked = chunk_clip(path, stream_id=1)
    assert [t.at_ms for t in chunked] == [ts for _, ts, _ in tags]
    assert [t.keyframe for t in chunked] == [False] * 3 + [True] + [False] * 5 + [True, False]
    assert chunked[3].pts_ms == 66 and chunked[9].pts_ms == 0x1000010 + 66
    reader = ChunkReader()
    # what the client sends before the media: Set Chunk Size in the default 128-byte chunks
    assert reader.feed(ChunkWriter().write(SetChunkSize(CHUNK_SIZE).to_message())) == []
    wire = b"".join(t.data for t in chunked)
    got = []
    for i in range(0, len(wire), 777):  # in pieces, as a socket delivers them
        got += reader.feed(wire[i : i + 777])
    assert reader.buffered == 0 and not reader.mid_message
    assert len(got) == len(tags)
    assert got[0].type_id == mt.DATA_AMF0 and got[0].stream_id == 1
    assert amf0.decode(got[0].payload) == ["@setDataFrame", *amf0.decode(meta)]
    for msg, (kind, ts, payload) in zip(got[1:], tags[1:], strict=True):
        assert (msg.type_id, msg.timestamp, msg.payload, msg.stream_id) == (kind, ts, payload, 1)
        assert msg.csid == (6 if kind == 9 else 4)
    # the bytes are cut once: another stream id is another cut, the same media
    other = chunk_clip(path, stream_id=7)
    assert [t.at_ms for t in other] == [t.at_ms for t in chunked]
    assert other[1].data != chunked[1].data


def test_a_segment_is_matched_with_the_keyframe_that_closed_it() -> None:
    # keyframes every 2 s, PTS = DTS + 66; sent 10 ms after each is due
    keyframes = [(k * 2000, k * 2000 + 66, 100.0 + 2 * k, 100.01 + 2 * k) for k in range(5)]
    # segments end at 2 s, 4 s, 6 s (listed 3 ms after the keyframe was sent), then a last
    # one closed by the end of the stream at 9.5 s (no keyframe there: no sample)
    ends = [(2000.0, 102.013), (4000.0, 104.013), (6000.0, 106.013), (9500.0, 109.6)]
    got = segment_latencies(ends, keyframes, pts=True)
    assert [round(x, 6) for x in got] == [0.003, 0.003, 0.003]
    # nginx's EXTINF durations add up to the ends (DTS); a fragment 20 ms off still matches
    frags = [("s-0.ts", 2.02, 102.02), ("s-1.ts", 1.98, 104.02), ("s-2.ts", 1.5, 105.6)]
    assert nginx_ends(frags) == [(2020.0, 102.02), (4000.0, 104.02), (5500.0, 105.6)]
    got = segment_latencies(nginx_ends(frags), keyframes, pts=False)
    assert [round(x, 6) for x in got] == [0.01, 0.01]
    assert segment_latencies(ends, [], pts=True) == []


async def test_the_publisher_waits_for_publish_start_and_reports_a_refusal(tmp_path: Path) -> None:
    """Against the gateway's sans-IO server connection: the stream named ``ok`` is accepted and
    gets every tag (media only after Publish.Start), the one named ``bad`` is refused and its
    error carries the server's code and description."""
    path = tmp_path / "clip.flv"
    frames = [(9, ts, video(ts == 0, 0, 600)) for ts in (0, 33, 66)]
    path.write_bytes(flv([(9, 0, b"\x17\x00\x00\x00\x00avcC"), *frames]))
    media: dict[str, list[int]] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConnection(rand=lambda n: b"\x5a" * n)
        name = ""
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, PublishRequested):
                    name = event.name
                    if name == "bad":
                        conn.reject_publish("NetStream.Publish.BadName", "no such key")
                    else:
                        assert name not in media  # no media before the answer
                        conn.accept_publish()
                elif isinstance(event, MediaMessage):
                    media.setdefault(name, []).append(event.timestamp)
            writer.write(conn.data_to_send())
            if conn.closing:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        urls = [f"rtmp://127.0.0.1:{port}/live/ok", f"rtmp://127.0.0.1:{port}/live/bad"]
        result = await publish_all(str(path), urls, stagger=0.1, timeout=5)
    ok, bad = result["streams"]
    assert ok["error"] == "" and ok["tags_sent"] == ok["tags"] == 4
    assert media["ok"] == [0, 0, 33, 66]
    assert [tuple(k[:2]) for k in ok["keyframes"]] == [(0, 0)]
    assert ok["keyframes"][0][3] >= ok["keyframes"][0][2] >= ok["started"] > 0
    assert "NetStream.Publish.BadName" in bad["error"] and "no such key" in bad["error"]
    assert "bad" not in media and result["failed"] == 1


@pytest.mark.timeout(60)  # a publisher that spins never yields to asyncio's own timeouts
async def test_the_publisher_waits_for_a_server_that_stops_reading(tmp_path: Path) -> None:
    """A server that reads nothing for a while fills the socket, so the publisher's transport
    pauses: the publisher waits (its event loop keeps running, which is what resumes the
    transport), then sends the rest, every tag once and in order. It used to spin for ever
    serving the paused stream again and again without yielding."""
    path = tmp_path / "clip.flv"
    frames = [(9, ts * 33, video(ts % 30 == 0, 0, 256 * 1024)) for ts in range(90)]
    path.write_bytes(flv([(9, 0, b"\x17\x00\x00\x00\x00avcC"), *frames]))
    got: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConnection(rand=lambda n: b"\x5a" * n)
        stalled = False
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, PublishRequested):
                    conn.accept_publish()
                elif isinstance(event, MediaMessage):
                    got.append(event.timestamp)
            writer.write(conn.data_to_send())
            if got and not stalled:  # media flows: stop reading for a while
                stalled = True
                await asyncio.sleep(1.5)
        writer.close()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # fills fast
    listener.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(serve, sock=listener)
    port = listener.getsockname()[1]
    async with server:
        urls = [f"rtmp://127.0.0.1:{port}/live/slow"]
        result = await publish_all(str(path), urls, stagger=0.1, timeout=5)
    (stream,) = result["streams"]
    assert stream["error"] == "" and stream["tags_sent"] == stream["tags"] == 91
    assert stream["paused_s"] > 0.2, stream["paused_s"]  # it did wait on the server
    assert got == [0] + [ts * 33 for ts in range(90)]
