"""Fuzz targets: HTTP push headers, playlist query parameters, trickle routes and headers, SDP
offers, and the protobuf an orchestrator answers with (OrchestratorInfo, TranscodeResult,
PaymentResult, gRPC framing)."""

from __future__ import annotations

from typing import cast
from urllib.parse import quote

from .fuzz_base import Request, as_text

# --- HTTP push, playlists, trickle ---------------------------------------------------------------


def _push_headers(data: bytes) -> object:
    """``Content-Duration`` and the ``Livepeer-Transcode-Configuration`` JSON header of a push."""
    from ..api.push import _config_header, _duration

    text = as_text(data)
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
    request = cast(web.Request, Request(URL(f"/hls/abc/index.m3u8?{query}").query, CIMultiDict()))
    numbers = (_number(request, "_HLS_msn"), _number(request, "_HLS_part"))
    token, _ = _token(request)
    playlist = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\nseg1.m4s?x=1\n'
    return numbers, carry_token(playlist, token) if token else None


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

    text = as_text(data)
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

    return check_offer(as_text(data), "play" if data[-1:] == b"P" else "publish")


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
