"""One fuzz target per parser that reads bytes from outside (``mediagw bench fuzz``).

A target feeds one input to the real parse function, sans-IO where the parser is (for aiohttp
handlers: the pure helpers they call), and lists the refusals that parser documents. An input
that ends in one of those, or in an error of mediagw's tree, is fine; any other exception is a
finding. Seeds start the mutations from valid inputs: the ffmpeg publish capture (RTMP), the
messages it carries (AMF0, FLV tags), and well-formed messages built with the project's own
encoders (protobuf, JSON answers, tokens, TS).
"""

from __future__ import annotations

from functools import cache

from google.protobuf.message import DecodeError

from segmenter.errors import SegmenterError
from webrtc.errors import WebRTCError

from ..errors import MediaGWError
from . import fuzz_json as jsn
from . import fuzz_media as media
from . import fuzz_wire as wire
from .fuzz_base import JSON_MAX, Target

__all__ = ["Target", "targets"]


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
            "rtmp_handshake",
            "RTMP C0/C1/C2",
            media._rtmp_handshake,
            lambda: [media._conversation()[:3100]],
        ),
        Target(
            "rtmp_chunks",
            "RTMP chunk stream",
            media._rtmp_chunks,
            lambda: [media._after_handshake()[:6000]],
            max_len=8192,
        ),
        Target(
            "rtmp_session",
            "RTMP server state machine",
            media._rtmp_session,
            lambda: [media._conversation()[:9000]],
            max_len=12000,
        ),
        Target("amf0", "AMF0 values", media._amf0, media._amf0_seeds),
        Target(
            "flv_tags",
            "FLV audio/video tags (segmenter)",
            media._flv,
            media._flv_seeds,
            max_len=16384,
        ),
        Target(
            "flv_file",
            "FLV file reader (segmenter)",
            media._flv_file,
            media._flv_file_seeds,
            max_len=16384,
        ),
        Target(
            "ts_demux",
            "MPEG-TS demuxer (segmenter)",
            media._tsdemux,
            media._ts_seeds,
            max_len=16384,
        ),
        Target(
            "publish_url",
            "RTMP app/name/tcUrl and its query",
            media._publish_url,
            media._publish_url_seeds,
            (BadTarget,),
        ),
        Target(
            "live_ai_events",
            "live AI events channel",
            media._live_ai_events,
            media._live_ai_events_seeds,
            (EventError,),
        ),
        Target(
            "http_push", "HTTP push headers", wire._push_headers, wire._push_seeds, (ValueError,)
        ),
        Target(
            "playlist_query",
            "_HLS_msn/_HLS_part/?jwt=",
            wire._playlist_query,
            wire._playlist_seeds,
            (web.HTTPBadRequest,),
        ),
        Target("trickle", "trickle routes and headers", wire._trickle, wire._trickle_seeds),
        Target(
            "sdp_offer",
            "WHIP/WHEP SDP offers",
            wire._sdp,
            lambda: [wire.SDP_OFFER.encode(), wire.SDP_OFFER.encode() + b"P"],
        ),
        Target(
            "orchestrator_info",
            "OrchestratorInfo protobuf",
            wire._orchestrator_info,
            wire._info_seeds,
            (DecodeError,),
        ),
        Target(
            "transcode_result",
            "TranscodeResult protobuf",
            wire._transcode_result,
            wire._transcode_seeds,
            (DecodeError,),
        ),
        Target(
            "payment_result",
            "PaymentResult protobuf",
            wire._payment_result,
            wire._payment_seeds,
            (DecodeError,),
        ),
        Target(
            "grpc_frames", "gRPC framing", wire._grpc_frames, wire._grpc_seeds, (GrpcFramingError,)
        ),
        Target("signer_answer", "remote signer answers", jsn._signer_answer, jsn._signer_seeds),
        Target("webhook_answer", "auth webhook answers", jsn._webhook_answer, jsn._webhook_seeds),
        Target("api_json", "Studio API JSON bodies", jsn._api_json, jsn._api_seeds, (_Refused,)),
        Target("jwt", "playback JWTs", jsn._jwt, jsn._jwt_seeds),
        Target(
            "api_filters",
            "Studio ?filters= JSON",
            jsn._api_filters,
            lambda: [b'[{"id": "name", "value": "cam"}, {"id": "isActive", "value": true}]'],
        ),
        Target(
            "live_ai_start", "live AI start answers", jsn._live_ai_start, jsn._live_ai_start_seeds
        ),
        Target(
            "discovery_webhook",
            "orchestrator discovery webhook answers",
            jsn._discovery_webhook,
            lambda: [b'[{"address": "https://127.0.0.1:8935", "score": 0.5}, {"address": 1}]'],
        ),
        Target(
            "signer_auth_hook",
            "remote signer auth webhook answers",
            jsn._signer_auth_hook,
            lambda: [b'{"status": 200, "expiry": 5, "auth_id": "a", "max_price": "10"}'],
        ),
        Target(
            "profiles_json",
            "profiles JSON (rendition ladders)",
            jsn._profiles_json,
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
