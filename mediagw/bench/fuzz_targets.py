"""One fuzz target per parser that reads bytes from outside (``mediagw bench fuzz``).

A target feeds one input to the real parse function, sans-IO where the parser is (for aiohttp
handlers: the pure helpers they call), and lists the refusals that parser documents. An input
that ends in one of those, or in an error of mediagw's tree, is fine; any other exception is a
finding. Seeds start the mutations from valid inputs: the ffmpeg publish capture (RTMP), the
messages it carries (AMF0, FLV tags), and well-formed messages built with the project's own
encoders (protobuf, JSON answers, tokens, TS).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import cast
from urllib.parse import quote

from google.protobuf.message import DecodeError

from segmenter.errors import SegmenterError
from webrtc.errors import WebRTCError

from ..errors import MediaGWError

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures/rtmp/ffmpeg_publish.bin"
Parse = Callable[[bytes], object]


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    parse: Parse
    seeds: Callable[[], list[bytes]]
    expected: tuple[type[BaseException], ...] = field(default=())
    max_len: int = 4096


JSON_MAX = 16384  # room for JSON nested past the interpreter's recursion limit


def fixed_rand(n: int) -> bytes:
    return b"\x5a" * n


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

    app, _, rest = _text(data).partition("\n")
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


# --- HTTP push, playlists, trickle ---------------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _push_headers(data: bytes) -> object:
    """``Content-Duration`` and the ``Livepeer-Transcode-Configuration`` JSON header of a push."""
    from ..api.push import _config_header, _duration

    text = _text(data)
    head, _, rest = text.partition("\n")
    return _duration(head or None), _config_header(rest or None)


def _push_seeds() -> list[bytes]:
    return [
        b'2000\n{"timeoutMultiplier": 2, "profiles": [{"name": "P240p30fps16x9"}]}',
        b"1500\n",
        b'abc\n{"profiles": []}',
    ]


def _playlist_query(data: bytes) -> object:
    """``_HLS_msn``/``_HLS_part`` and ``?jwt=`` as the LL-HLS handler and the playback gate
    read them from a request (its query parsed by yarl, as ``request.query`` is), and the
    token carried into the playlist's URIs."""
    from aiohttp import web
    from multidict import CIMultiDict
    from yarl import URL

    from ..api.llhls_http import _number
    from ..api.playback_gate import _token, carry_token

    query = quote(data.decode("latin-1"), safe="=&")
    request = cast(web.Request, _Request(URL(f"/hls/abc/index.m3u8?{query}").query, CIMultiDict()))
    numbers = (_number(request, "_HLS_msn"), _number(request, "_HLS_part"))
    token, _ = _token(request)
    playlist = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\nseg1.m4s?x=1\n'
    return numbers, carry_token(playlist, token) if token else None


@dataclass(frozen=True)
class _Request:
    """What the query helpers read of an aiohttp request."""

    query: object
    headers: object


def _playlist_seeds() -> list[bytes]:
    return [
        b"_HLS_msn=12&_HLS_part=3",
        b"_HLS_msn=5&jwt=eyJhbGciOiJFUzI1NiJ9.e30.sig",
        b"jwt=a%26b",
    ]


def _trickle(data: bytes) -> object:
    """The orchestrator's trickle routes (method + path) and the integer headers both sides
    read (``Lp-Trickle-Seq``, ``Lp-Trickle-Latest``)."""
    from ..livepeer.trickle.wire import parse_int
    from ..orchestrator.trickle.routes import parse_route

    text = _text(data)
    method, _, rest = text.partition(" ")
    tail, _, header = rest.partition("\n")
    return parse_route(method, tail), parse_int(header)


def _trickle_seeds() -> list[bytes]:
    return [b"POST chan-1/12\n12", b"GET chan-1/-1\n -1 ", b"DELETE chan-1\n", b"POST chan_x\n+7"]


# --- WebRTC --------------------------------------------------------------------------------------

SDP_OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=rtcp-mux\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
)


def _sdp(data: bytes) -> object:
    from webrtc.sdp import check_offer

    return check_offer(_text(data), "play" if data[-1:] == b"P" else "publish")


# --- protobuf from orchestrators -----------------------------------------------------------------


def _orchestrator_info(data: bytes) -> object:
    """GetOrchestrator's answer as the gateway reads it: price, ticket params, auth token."""
    from ..livepeer.proto import lp_rpc_pb2 as net
    from ..payments.live import auth_token_needs_refresh
    from ..payments.params import parse_ticket_params
    from ..payments.sender import balance_key
    from ..pipelines.live_ai.quote import listed_price
    from ..pool.prices import price_of

    info = net.OrchestratorInfo.FromString(data)
    out: list[object] = [price_of(info), balance_key(info), listed_price(info, "noop")]
    out.append(auth_token_needs_refresh(info, 0.0))
    if info.HasField("ticket_params"):
        out.append(parse_ticket_params(info.ticket_params))
    return out


def _info_seeds() -> list[bytes]:
    from ..livepeer.proto import lp_rpc_pb2 as net

    info = net.OrchestratorInfo(transcoder="https://127.0.0.1:8935", address=b"\x11" * 20)
    info.price_info.pricePerUnit = 1200
    info.price_info.pixelsPerUnit = 1
    tp = info.ticket_params
    tp.recipient = b"\x22" * 20
    tp.face_value = (10**15).to_bytes(8, "big")
    tp.win_prob = (2**200).to_bytes(32, "big")
    tp.recipient_rand_hash = b"\x33" * 32
    tp.seed = b"\x44" * 4
    tp.expiration_block = (100).to_bytes(2, "big")
    tp.expiration_params.creation_round = 7
    tp.expiration_params.creation_round_block_hash = b"\x55" * 32
    info.auth_token.token = b"tok"
    info.auth_token.session_id = "sess"
    info.auth_token.expiration = 2_000_000_000
    cap = info.capabilities_prices.add()
    cap.pricePerUnit, cap.pixelsPerUnit, cap.capability, cap.constraint = 5, 1, 35, "noop"
    return [info.SerializeToString(), net.OrchestratorInfo().SerializeToString()]


def _transcode_result(data: bytes) -> object:
    from ..livepeer.proto import lp_rpc_pb2 as net

    tr = net.TranscodeResult.FromString(data)
    which = tr.WhichOneof("result")
    urls = [s.url for s in tr.data.segments] if which == "data" else []
    return which, urls, tr.info.transcoder


def _transcode_seeds() -> list[bytes]:
    from ..livepeer.proto import lp_rpc_pb2 as net

    ok = net.TranscodeResult(seq=3)
    seg = ok.data.segments.add()
    seg.url, seg.pixels = "https://127.0.0.1:8935/stream/x/0.ts", 12345
    ok.data.sig = b"\x01" * 65
    ok.info.transcoder = "https://127.0.0.1:8935"
    return [
        ok.SerializeToString(),
        net.TranscodeResult(error="OrchestratorBusy").SerializeToString(),
    ]


def _payment_result(data: bytes) -> object:
    from ..livepeer.proto import lp_rpc_pb2 as net
    from ..pool.prices import price_of

    result = net.PaymentResult.FromString(data)
    return price_of(result.info) if result.HasField("info") else None


def _payment_seeds() -> list[bytes]:
    from ..livepeer.proto import lp_rpc_pb2 as net

    result = net.PaymentResult()
    result.info.CopyFrom(net.OrchestratorInfo.FromString(_info_seeds()[0]))
    return [result.SerializeToString(), b""]


def _grpc_frames(data: bytes) -> object:
    from ..livepeer.grpc_wire import decode_grpc_message, unframe_messages

    return unframe_messages(data), decode_grpc_message(data[:200])


def _grpc_seeds() -> list[bytes]:
    from ..livepeer.grpc_wire import frame_message

    return [frame_message(_info_seeds()[0]), frame_message(b"") + frame_message(b"\x08\x01")]


# --- remote signer, webhooks, API JSON, JWT ------------------------------------------------------


def _signer_answer(data: bytes) -> object:
    """What the gateway reads from a remote signer: error bodies (any status), the
    ``/generate-live-payment`` and ``/discover-orchestrators`` answers."""
    from ..payments.remote import (
        RemoteSigner,
        discovered_candidates,
        live_payment_answer,
    )

    status = (480, 481, 482, 500)[data[0] % 4] if data else 500
    err = RemoteSigner._error(status, {}, data)
    doc = RemoteSigner._json(data, "/answer")
    if isinstance(doc, list):
        return err, discovered_candidates(doc)
    return err, live_payment_answer(doc)


def _signer_seeds() -> list[bytes]:
    b64 = base64.b64encode(b"\x01\x02\x03").decode()
    return [
        json.dumps({"payment": b64, "segCreds": b64, "state": {"State": b64, "Sig": b64}}).encode(),
        json.dumps([{"address": "https://127.0.0.1:8935", "score": 0.5}, {"address": 3}]).encode(),
        b'{"error": {"message": "ticket params expired"}}',
    ]


def _webhook_answer(data: bytes) -> object:
    """The operator's auth webhook answers (RTMP/WHIP publish and live AI /start)."""
    from ..platform.live_auth import parse_answer
    from ..platform.stream_auth import WebhookAuth

    try:
        grant: object = WebhookAuth._parse(data)
    except MediaGWError as exc:
        grant = exc
    return grant, parse_answer(data)


def _webhook_seeds() -> list[bytes]:
    return [
        json.dumps(
            {
                "manifestID": "abc123",
                "streamID": "s1",
                "presets": ["P240p30fps16x9"],
                "profiles": [{"name": "p", "width": 320, "height": 240, "bitrate": 400000}],
                "pipeline": "comfyui",
                "pipeline_parameters": '{"prompt": {"1": {}}}',
                "stream_id": "x",
                "rtmp_output_url": "rtmp://127.0.0.1/live/out",
            }
        ).encode(),
        b"",
        b'{"manifestID": 5}',
    ]


def _api_json(data: bytes) -> object:
    """A Studio API request body, validated against the model its route names."""
    from ..api.studio import models
    from ..api.studio.base import parse_body

    bodies = (
        models.StreamCreate,
        models.StreamPatch,
        models.WebhookCreate,
        models.MultistreamTargetCreate,
        models.SigningKeyCreate,
    )
    model = bodies[data[0] % len(bodies)] if data else bodies[0]
    return parse_body(data[1:], "application/json", model)


def _api_seeds() -> list[bytes]:
    stream = {
        "name": "show",
        "profiles": [{"name": "240p", "width": 426, "height": 240, "bitrate": 400000, "fps": 30}],
        "record": True,
        "playbackPolicy": {"type": "jwt"},
        "multistream": {"targets": [{"profile": "source", "spec": {"url": "rtmp://x/live/k"}}]},
        "userTags": {"a": "b"},
    }
    webhook = {"name": "w", "url": "https://example.com/hook", "events": ["stream.started"]}
    return [
        b"\x00" + json.dumps(stream).encode(),
        b"\x01" + json.dumps({"record": False, "suspended": True}).encode(),
        b"\x02" + json.dumps(webhook).encode(),
        b"\x03" + json.dumps({"name": "t", "url": "rtmp://127.0.0.1/live/key"}).encode(),
        b"\x04" + json.dumps({"name": "k"}).encode(),
    ]


def _api_filters(data: bytes) -> object:
    """Studio's ``GET /api/stream?filters=[...]`` query parameter."""
    from ..api.studio.base import Call
    from ..api.studio.streams import _filters

    return _filters(cast(Call, _Request({"filters": _text(data)}, {})))


def _live_ai_start(data: bytes) -> object:
    """An orchestrator's 200 answer to ``/live-video-to-video`` (the channels' URLs)."""
    from ..pipelines.live_ai.start import parse_start_answer

    return parse_start_answer(data, "https://127.0.0.1:8935")


def _live_ai_start_seeds() -> list[bytes]:
    base = "https://127.0.0.1:8935/ai/trickle/m1"
    doc = {k: f"{base}-{k}" for k in ("publish_url", "subscribe_url", "control_url", "events_url")}
    return [json.dumps({**doc, "manifest_id": "m1"}).encode()]


def _discovery_webhook(data: bytes) -> object:
    """An orchestrator discovery webhook's answer (``-orchWebhookUrl``)."""
    from ..livepeer.rpc import normalize_orch_addr
    from ..pool.sources import parse_webhook_body

    return parse_webhook_body(data), parse_webhook_body(data, normalize_orch_addr)


def _signer_auth_hook(data: bytes) -> object:
    """The remote signer service's auth webhook answer."""
    from ..signer_service.authhook import parse_decision

    return parse_decision(data)


def _profiles_json(data: bytes) -> object:
    """A rendition ladder in go-livepeer's profiles JSON (auth webhook answers, options)."""
    from ..livepeer.profiles import parse_profiles_json

    return parse_profiles_json(data)


@cache
def _jwt_key() -> tuple[str, str]:
    from ..platform.access import _generate

    return _generate()


def _jwt(data: bytes) -> object:
    """A playback token (``Livepeer-Jwt`` or ``?jwt=``): the unverified read, then the check."""
    from ..platform.access import _unverified, _verify

    token = _text(data)
    _unverified(token)
    return _verify(token, _jwt_key()[1])


def _jwt_seeds() -> list[bytes]:
    from ..platform.access import sign_token

    private, public = _jwt_key()
    token = sign_token(private, public, "abc123", expires_at=2_000_000_000, custom={"u": 1})
    head, body, _ = token.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return [token.encode(), f"{none}.{body}.".encode(), f"{head}.{body}.AAAA".encode()]


def _expected_base() -> tuple[type[BaseException], ...]:
    return (MediaGWError, SegmenterError, WebRTCError)


def _targets() -> list[Target]:
    from aiohttp import web

    from ..api.studio.base import _Refused
    from ..ingest.rtmp.url import BadTarget
    from ..livepeer.grpc_wire import GrpcFramingError
    from ..pipelines.live_ai.events import EventError

    return [
        Target(
            "rtmp_handshake", "RTMP C0/C1/C2", _rtmp_handshake, lambda: [_conversation()[:3100]]
        ),
        Target(
            "rtmp_chunks",
            "RTMP chunk stream",
            _rtmp_chunks,
            lambda: [_after_handshake()[:6000]],
            max_len=8192,
        ),
        Target(
            "rtmp_session",
            "RTMP server state machine",
            _rtmp_session,
            lambda: [_conversation()[:9000]],
            max_len=12000,
        ),
        Target("amf0", "AMF0 values", _amf0, _amf0_seeds),
        Target("flv_tags", "FLV audio/video tags (segmenter)", _flv, _flv_seeds, max_len=16384),
        Target(
            "flv_file", "FLV file reader (segmenter)", _flv_file, _flv_file_seeds, max_len=16384
        ),
        Target("ts_demux", "MPEG-TS demuxer (segmenter)", _tsdemux, _ts_seeds, max_len=16384),
        Target(
            "publish_url",
            "RTMP app/name/tcUrl and its query",
            _publish_url,
            _publish_url_seeds,
            (BadTarget,),
        ),
        Target(
            "live_ai_events",
            "live AI events channel",
            _live_ai_events,
            _live_ai_events_seeds,
            (EventError,),
        ),
        Target("http_push", "HTTP push headers", _push_headers, _push_seeds, (ValueError,)),
        Target(
            "playlist_query",
            "_HLS_msn/_HLS_part/?jwt=",
            _playlist_query,
            _playlist_seeds,
            (web.HTTPBadRequest,),
        ),
        Target("trickle", "trickle routes and headers", _trickle, _trickle_seeds),
        Target(
            "sdp_offer",
            "WHIP/WHEP SDP offers",
            _sdp,
            lambda: [SDP_OFFER.encode(), SDP_OFFER.encode() + b"P"],
        ),
        Target(
            "orchestrator_info",
            "OrchestratorInfo protobuf",
            _orchestrator_info,
            _info_seeds,
            (DecodeError,),
        ),
        Target(
            "transcode_result",
            "TranscodeResult protobuf",
            _transcode_result,
            _transcode_seeds,
            (DecodeError,),
        ),
        Target(
            "payment_result",
            "PaymentResult protobuf",
            _payment_result,
            _payment_seeds,
            (DecodeError,),
        ),
        Target("grpc_frames", "gRPC framing", _grpc_frames, _grpc_seeds, (GrpcFramingError,)),
        Target("signer_answer", "remote signer answers", _signer_answer, _signer_seeds),
        Target("webhook_answer", "auth webhook answers", _webhook_answer, _webhook_seeds),
        Target("api_json", "Studio API JSON bodies", _api_json, _api_seeds, (_Refused,)),
        Target("jwt", "playback JWTs", _jwt, _jwt_seeds),
        Target(
            "api_filters",
            "Studio ?filters= JSON",
            _api_filters,
            lambda: [b'[{"id": "name", "value": "cam"}, {"id": "isActive", "value": true}]'],
        ),
        Target("live_ai_start", "live AI start answers", _live_ai_start, _live_ai_start_seeds),
        Target(
            "discovery_webhook",
            "orchestrator discovery webhook answers",
            _discovery_webhook,
            lambda: [b'[{"address": "https://127.0.0.1:8935", "score": 0.5}, {"address": 1}]'],
        ),
        Target(
            "signer_auth_hook",
            "remote signer auth webhook answers",
            _signer_auth_hook,
            lambda: [b'{"status": 200, "expiry": 5, "auth_id": "a", "max_price": "10"}'],
        ),
        Target(
            "profiles_json",
            "profiles JSON (rendition ladders)",
            _profiles_json,
            lambda: [
                b'[{"name": "240p", "width": 426, "height": 240, "bitrate": 400000, "fps": 30,'
                b' "gop": "2.0", "profile": "H264Baseline", "encoder": "H.264"}]'
            ],
        ),
    ]


@cache
def targets() -> dict[str, Target]:
    base = _expected_base()
    return {
        t.name: Target(
            t.name,
            t.what,
            t.parse,
            t.seeds,
            base + t.expected,
            JSON_MAX if t.name in _JSON else t.max_len,
        )
        for t in _targets()
    }


_JSON = {
    "live_ai_events",
    "http_push",
    "signer_answer",
    "webhook_answer",
    "api_json",
    "api_filters",
    "live_ai_start",
    "discovery_webhook",
    "signer_auth_hook",
    "profiles_json",
}
