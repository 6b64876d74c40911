"""Fuzz targets: JSON from outside (remote signer, auth, discovery and signer webhooks, the live AI
start answer, profiles, Studio API bodies and ``?filters=``) and playback JWTs."""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import cast

from ..errors import MediaGWError
from .fuzz_base import Request, as_text

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

    return _filters(cast(Call, Request({"filters": as_text(data)}, {})))


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

    token = as_text(data)
    _unverified(token)
    return _verify(token, _jwt_key()[1])


def _jwt_seeds() -> list[bytes]:
    from ..platform.access import sign_token

    private, public = _jwt_key()
    token = sign_token(private, public, "abc123", expires_at=2_000_000_000, custom={"u": 1})
    head, body, _ = token.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return [token.encode(), f"{none}.{body}.".encode(), f"{head}.{body}.AAAA".encode()]
