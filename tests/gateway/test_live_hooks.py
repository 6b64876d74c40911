"""The live AI auth webhook and heartbeat, module by module, against real HTTP servers."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from mediatools import serve_app

from mediagw.config import load_settings
from mediagw.errors import PublishRejected
from mediagw.pipelines.live_ai.heartbeat import LiveHeartbeat, terminated_ids
from mediagw.platform.admission import request_from
from mediagw.platform.live_auth import LiveAIAuthorizer, LiveAIAuthWebhook, parse_answer
from mediagw.platform.stream_auth import OpenAuth, PublishAttempt, StreamGrant


class Hook:
    """A webhook endpoint whose answer the test sets; it records every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], Any]] = []
        self.status = 200
        self.body: bytes = b""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status, body=self.body)


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, Hook]]:
    state = Hook()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    async with serve_app(app) as base:
        yield f"{base}/hook", state


# -- answer parsing ------------------------------------------------------------------------------


def test_empty_answer_keeps_the_publishers_choice() -> None:
    grant = parse_answer(b"")
    assert grant.pipeline is None and grant.params is None and grant.stream_id is None


def test_answer_fields() -> None:
    grant = parse_answer(
        json.dumps(
            {
                "pipeline": "streamdiffusion",
                "pipeline_parameters": {"prompt": "a cat"},
                "stream_id": "st_1",
                "pipeline_id": "pip_9",
                "rtmp_output_url": "rtmp://example.com/live/out",
            }
        ).encode()
    )
    assert grant.pipeline == "streamdiffusion"
    assert grant.params == {"prompt": "a cat"}
    assert (grant.stream_id, grant.pipeline_id) == ("st_1", "pip_9")
    assert grant.rtmp_output_url == "rtmp://example.com/live/out"


def test_parameters_as_a_json_string_and_comfyui_wrapping() -> None:
    assert parse_answer(b'{"pipeline_parameters": "{\\"seed\\": 3}"}').params == {"seed": 3}
    wrapped = parse_answer(b'{"pipeline": "comfyui", "pipeline_parameters": {"1": {}}}')
    assert wrapped.params == {"prompt": {"1": {}}}
    kept = parse_answer(b'{"pipeline": "comfyui", "pipeline_parameters": {"prompt": "x"}}')
    assert kept.params == {"prompt": "x"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"pipeline": 5}',
        b'{"pipeline_parameters": [1]}',
        b'{"pipeline_parameters": "{bad"}',
        b'{"stream_id": {}}',
        b"[" * 5000 + b"]" * 5000,  # too deep for json: RecursionError, not a traceback
        b'{"pipeline_parameters": "' + b"[" * 5000 + b'"}',
    ],
)
def test_malformed_answers_refuse(body: bytes) -> None:
    with pytest.raises(PublishRejected):
        parse_answer(body)


def test_webhook_pipeline_wins_over_the_query() -> None:
    grant = StreamGrant("s1", pipeline="invert", params={"strength": 0.5})
    req = request_from(grant, {"pipeline": "noop", "params": '{"a": 1}', "streamId": "x"}, "rtmp")
    assert req.pipeline == "invert" and req.params == {"strength": 0.5}
    assert req.stream_id == "x"
    req = request_from(StreamGrant("s1"), {"pipeline": "noop", "params": '{"a": 1}'}, "rtmp")
    assert req.pipeline == "noop" and req.params == {"a": 1}


def test_flags_and_environment() -> None:
    settings = load_settings(
        {"live_ai_heartbeat_interval": "500ms", "live_ai_heartbeat_headers": "a:1,b:2"},
        env={"MEDIAGW_LIVE_AI_AUTH_WEBHOOK_URL": "http://h/x", "MEDIAGW_LIVE_AI_AUTH_API_KEY": "k"},
    )
    assert settings.live_ai_heartbeat_interval == 0.5
    assert dict(settings.live_ai_heartbeat_headers) == {"a": "1", "b": "2"}
    assert settings.live_ai_auth_webhook_url == "http://h/x"
    assert settings.live_ai_auth_api_key == "k"


# -- the webhook over HTTP -------------------------------------------------------------------


async def test_authorizer_sends_go_livepeers_request(
    hook: tuple[str, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    url, state = hook
    state.body = b'{"pipeline": "tint", "stream_id": "st_7"}'
    auth = LiveAIAuthorizer(
        OpenAuth(), LiveAIAuthWebhook(url, "secret"), lambda: "http://gw.example:9935"
    )
    try:
        attempt = PublishAttempt(
            "rtmp://x/live/cam", "live", "cam", {"pipeline": "noop", "params": "{}"}
        )
        grant = await auth.authorize(attempt)
        assert grant.manifest_id == "cam" and grant.pipeline == "tint"
        assert grant.stream_id == "st_7"
        headers, body = state.seen[-1]
        assert headers["x-api-key"] == "secret" and headers["Authorization"] == "secret"
        assert body == {
            "stream": "cam",
            "stream_key": "cam",
            "type": "rtmp",
            "query_params": "pipeline=noop&params=%7B%7D",
            "gateway_host": "gw.example:9935",
            "whep_url": "http://gw.example:9935/live/video-to-video/cam/whep",
            "status_url": "http://gw.example:9935/live/video-to-video/cam/status",
            "update_url": "http://gw.example:9935/live/video-to-video/cam/update",
        }
        # a publish without a pipeline is not a live AI publish: no webhook call
        calls = len(state.seen)
        await auth.authorize(PublishAttempt("rtmp://x/live/plain", "live", "plain"))
        assert len(state.seen) == calls
        # any WHIP publish on the live AI path is
        await auth.authorize(PublishAttempt("", "live", "w", {}, ingest="livepeer-whip"))
        assert state.seen[-1][1]["type"] == "livepeer-whip"
        # a refusal refuses the publish; so does an unreachable webhook
        state.status = 401
        with pytest.raises(PublishRejected, match="refused"):
            await auth.authorize(attempt)
        # /start knows one name, sent as the stream and its key: it is not logged
        caplog.set_level(logging.DEBUG)
        with pytest.raises(PublishRejected, match="refused"):
            await auth.check("sk_SECRET1", "sk_SECRET1", "rtmp", {})
        assert any("refused a stream" in r.getMessage() for r in caplog.records)
        assert not [r for r in caplog.records if "SECRET" in repr(vars(r))]
    finally:
        await auth.close()
    dead = LiveAIAuthWebhook("http://127.0.0.1:9/none?token=OPTOKEN", timeout=2)
    auth = LiveAIAuthorizer(OpenAuth(), dead, lambda: "http://gw")
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(PublishRejected, match="unreachable"):
            await auth.authorize(attempt)
    finally:
        await auth.close()
    assert any(r.getMessage() == "live AI auth webhook unreachable" for r in caplog.records)
    for record in caplog.records:  # the webhook URL's token is never logged
        assert "OPTOKEN" not in repr(vars(record)), record


# -- heartbeat -----------------------------------------------------------------------------------


def test_terminated_ids_ignores_junk() -> None:
    assert terminated_ids(b'{"terminatedStreamIds": ["a", "", 3, "b"]}') == ["a", "b"]
    assert terminated_ids(b"") == [] and terminated_ids(b"[") == []
    assert terminated_ids(b'{"terminatedStreamIds": "a"}') == []


async def test_heartbeat_posts_ids_and_stops_what_the_answer_names(
    hook: tuple[str, Hook],
) -> None:
    url, state = hook
    stopped: list[tuple[str, str]] = []

    def terminate(stream_id: str, reason: str) -> bool:
        stopped.append((stream_id, reason))
        return stream_id != "unknown"

    beat = LiveHeartbeat(url, lambda: ["a", "b"], terminate, headers={"X-Token": "t"})
    try:
        state.body = b'{"terminatedStreamIds": ["b", "unknown"]}'
        assert await beat.beat(["a", "b"]) == ["b"]
        headers, body = state.seen[-1]
        assert body == {"ids": ["a", "b"]} and headers["X-Token"] == "t"
        assert stopped == [("b", "credit_exhaustion"), ("unknown", "credit_exhaustion")]
        # a failing endpoint stops nothing, and says so
        state.status, state.body = 500, b'{"terminatedStreamIds": ["a"]}'
        assert await beat.beat(["a"]) == []
        assert beat.failures == 1 and "500" in beat.last_error
        assert len(stopped) == 2
    finally:
        await beat.close()
