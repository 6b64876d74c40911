"""Fuzz targets: RTMP (handshake, chunks, the server state machine, AMF0), FLV, MPEG-TS, the
publish URL and the live AI events channel. Seeds: the ffmpeg publish capture and its messages."""

from __future__ import annotations

import json
from functools import cache

from segmenter.errors import SegmenterError

from .fuzz_base import CAPTURE, as_text, fixed_rand

# --- RTMP ----------------------------------------------------------------------------------------


@cache
def _conversation() -> bytes:
    """What a publisher sends: the ffmpeg capture if the checkout has it, else a scripted one."""
    if CAPTURE.is_file():
        return CAPTURE.read_bytes()
    from ..ingest.rtmp import amf0
    from ..ingest.rtmp import messages as mt
    from ..ingest.rtmp.chunk import ChunkWriter
    from ..ingest.rtmp.commands import Command
    from ..ingest.rtmp.handshake import HANDSHAKE_SIZE
    from ..ingest.rtmp.messages import Message

    w = ChunkWriter(128, compress=True)
    out = b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(HANDSHAKE_SIZE)
    obj = {"app": "live", "type": "nonprivate", "tcUrl": "rtmp://127.0.0.1/live"}
    for txn, (name, args, sid) in enumerate(
        [
            ("connect", (), 0),
            ("releaseStream", ("key",), 0),
            ("createStream", (), 0),
            ("publish", ("key", "live"), 1),
        ]
    ):
        cmd = Command(name, float(txn + 1), obj if name == "connect" else None, args)
        out += w.write(cmd.to_message(sid, csid=3 if not sid else 8))
    meta = amf0.encode("@setDataFrame", "onMetaData", amf0.ECMAArray({"width": 320.0}))
    out += w.write(Message(mt.DATA_AMF0, 1, 0, meta, 8))
    for i, payload in enumerate(_flv_payloads()[:6]):
        out += w.write(Message(payload[0], 1, i * 33, payload[1:], 6))
    return out


def _after_handshake() -> bytes:
    from ..ingest.rtmp.handshake import HANDSHAKE_SIZE

    return _conversation()[1 + 2 * HANDSHAKE_SIZE :]


@cache
def _messages() -> list[tuple[int, bytes]]:
    """(type, payload) of each message in the capture (via the chunk reader)."""
    from ..ingest.rtmp.chunk import ChunkReader, ReaderLimits

    if not CAPTURE.is_file():
        return []
    reader = ChunkReader(ReaderLimits(max_message_size=1 << 20))
    return [(m.type_id, bytes(m.payload)) for m in reader.feed(_after_handshake())]


def _flv_payloads() -> list[bytes]:
    """Audio/video messages as ``type byte + FLV tag body``; built ones without the capture."""
    found = [bytes([t]) + p for t, p in _messages() if t in (8, 9)]
    if found:
        return found[:40]
    avcc = bytes.fromhex(
        "01640016ffe1001967640016acd9405005bb01100000030010000003032f1831960001000568ebecb22c"
    )
    return [
        b"\x09\x17\x00\x00\x00\x00" + avcc,
        b"\x09\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x05\x65\x88\x84\x00\x10",
        b"\x08\xaf\x00\x12\x10",
        b"\x08\xaf\x01" + bytes(20),
    ]


def _rtmp_handshake(data: bytes) -> object:
    from ..ingest.rtmp.handshake import ServerHandshake

    hs = ServerHandshake(fixed_rand)
    for part in (data[:700], data[700:1600], data[1600:]):
        if hs.done:
            return hs.take_leftover()
        hs.receive_data(part, now_ms=0)
    return hs.done


def _rtmp_chunks(data: bytes) -> object:
    from ..ingest.rtmp.chunk import ChunkReader, ReaderLimits

    reader = ChunkReader(ReaderLimits(max_message_size=64 << 10))
    return [reader.feed(data[i : i + 400]) for i in range(0, len(data), 400)]


def _rtmp_session(data: bytes) -> object:
    """The whole server state machine: handshake, chunks, commands, publish, media, EOF."""
    from ..ingest.rtmp.chunk import ReaderLimits
    from ..ingest.rtmp.events import PublishRequested
    from ..ingest.rtmp.statemachine import ConnectionConfig, ServerConnection

    conn = ServerConnection(
        rand=fixed_rand, config=ConnectionConfig(reader=ReaderLimits(max_message_size=64 << 10))
    )
    for i in range(0, len(data), 1000):
        for ev in conn.receive_data(data[i : i + 1000], now_ms=0):
            if isinstance(ev, PublishRequested):
                conn.accept_publish()
        conn.data_to_send()
    conn.receive_eof()
    return conn.data_to_send()


def _amf0(data: bytes) -> object:
    from ..ingest.rtmp import amf0

    return amf0.decode(data)


def _amf0_seeds() -> list[bytes]:
    from ..ingest.rtmp import amf0

    found = [p for t, p in _messages() if t in (18, 20)]
    built = amf0.encode(
        "connect",
        1.0,
        {"app": "live", "tcUrl": "rtmp://h/live", "n": None, "b": True},
        amf0.ECMAArray({"duration": 0.0, "list": [1.0, "x"]}),
        amf0.Undefined(),
    )
    return [*found[:20], built]


def _flv(data: bytes) -> object:
    """FLV tag bodies as the RTMP ingest hands them to the segmenter (type byte + body)."""
    from segmenter.flv import FlvDemuxer

    demux = FlvDemuxer()
    out: list[object] = []
    pos, ts = 0, 0
    while pos + 3 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 3], "big")
        out += demux.feed(data[pos], ts, data[pos + 3 : pos + 3 + size])
        pos += 3 + size
        ts += 33
    return out + demux.flush()


def _flv_seeds() -> list[bytes]:
    tags = [p[:1] + min(len(p) - 1, 0xFFFF).to_bytes(2, "big") + p[1:] for p in _flv_payloads()]
    return [b"".join(tags[:8]), b"".join(tags[8:16]), *tags[:6]]


def _flv_file(data: bytes) -> object:
    from segmenter.flv import read_flv_file

    return list(read_flv_file(data))


def _flv_file_seeds() -> list[bytes]:
    body = b"".join(
        bytes([p[0]])
        + (len(p) - 1).to_bytes(3, "big")
        + bytes(7)
        + p[1:]
        + (len(p) + 10).to_bytes(4, "big")
        for p in _flv_payloads()[:6]
    )
    return [b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + body]


def _tsdemux(data: bytes) -> object:
    from segmenter.tsdemux import TsDemuxer

    demux = TsDemuxer()
    out = [demux.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    return out, demux.flush()


@cache
def _ts_seed() -> bytes:
    """A few frames of the capture muxed to MPEG-TS by the segmenter (PyAV)."""
    from segmenter.flv import FlvDemuxer
    from segmenter.packet import AudioConfig, MediaPacket, VideoConfig
    from segmenter.tsmux import TsWriter

    demux = FlvDemuxer()
    items: list[object] = []
    for i, p in enumerate(_flv_payloads()[:30]):
        items += demux.feed(p[0], i * 33, p[1:])
    items += demux.flush()
    video = next((x for x in items if isinstance(x, VideoConfig)), None)
    audio = next((x for x in items if isinstance(x, AudioConfig)), None)
    writer = TsWriter(video, audio)
    for x in items:
        if isinstance(x, MediaPacket):
            if x.kind == "video" and video is not None:
                writer.write_video(x.pts, x.dts, x.keyframe, x.data)
            elif audio is not None and x.kind == "audio":
                writer.write_audio(x.pts, x.data)
    return writer.close()


def _ts_seeds() -> list[bytes]:
    try:
        seed = _ts_seed()
    except (SegmenterError, AttributeError, TypeError):
        seed = b""
    return [seed[: 16 * 188], seed[: 80 * 188]] if seed else [b"\x47" + bytes(187)]


def _publish_url(data: bytes) -> object:
    """A publisher's app, stream name and tcUrl (RTMP ``connect``/``publish``) and the request
    admission makes of its query (pipeline, params, streamId, regions, rtmpOutput)."""
    from ..ingest.rtmp.url import parse_target
    from ..platform.admission import request_from
    from ..platform.stream_auth import StreamGrant

    app, _, rest = as_text(data).partition("\n")
    name, _, tc_url = rest.partition("\n")
    target = parse_target(app, name, tc_url)
    return request_from(StreamGrant(target.name[:128] or "x"), target.query, "rtmp")


def _publish_url_seeds() -> list[bytes]:
    return [
        b"live\nkey123?pipeline=comfyui&params=%7B%22prompt%22%3A%7B%7D%7D&streamId=s-1"
        b"&regions=eu,us&rtmpOutput=rtmp%3A%2F%2F127.0.0.1%2Flive%2Fout\nrtmp://127.0.0.1/live",
        b"live?a=1\nstream\nrtmp://h:1935/live?x=y",
    ]


def _live_ai_events(data: bytes) -> object:
    """A segment of a live AI stream's events channel (trickle, from the orchestrator)."""
    from ..pipelines.live_ai.events import RunnerEvents, parse_event

    kind, event = parse_event(data)
    events = RunnerEvents()
    events.add(kind, event, {})
    return events


def _live_ai_events_seeds() -> list[bytes]:
    status = {"type": "status", "timestamp": 1, "last_params": {"prompt": "x"}, "fps": 30.0}
    return [
        json.dumps({"event": status, "queue_event_type": "ai_stream_events"}).encode(),
        json.dumps(status).encode(),
    ]
