"""The light publisher's chunking (``flv_push.chunk_clip``), read back by the gateway's own
ChunkReader: every FLV tag comes out as the message ffmpeg would send for it. And the bench's
latency matching (segment end -> the keyframe that closed it)."""

from __future__ import annotations

import struct
from pathlib import Path

from mediagw.bench.flv_push import CHUNK_SIZE, chunk_clip
from mediagw.bench.ingest_kit import nginx_ends, segment_latencies
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.chunk import ChunkReader, ChunkWriter
from mediagw.ingest.rtmp.control import SetChunkSize


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
