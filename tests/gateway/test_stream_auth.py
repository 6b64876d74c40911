"""Stream-key checks, the webhook one against a real aiohttp server on loopback."""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from mediatools import serve_app

from mediagw.errors import PublishRejected
from mediagw.platform.stream_auth import (
    OpenAuth,
    PublishAttempt,
    StaticKeyAuth,
    WebhookAuth,
    valid_manifest_id,
)


def attempt(name: str, app: str = "live", query: dict[str, str] | None = None) -> PublishAttempt:
    q = query or {}
    url = f"rtmp://127.0.0.1:1935/{app}/{name}" + (
        "?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else ""
    )
    return PublishAttempt(url, app, name, q, "127.0.0.1")


async def test_open_auth_uses_name() -> None:
    assert (await OpenAuth().authorize(attempt("cam1"))).manifest_id == "cam1"
    # go-livepeer shape rtmp://host/MANIFEST/KEY
    assert (await OpenAuth().authorize(attempt("k", app="show"))).manifest_id == "show"
    with pytest.raises(PublishRejected, match="not a valid stream id"):
        await OpenAuth().authorize(attempt("../etc"))


async def test_static_keys_map_secret_to_public_id() -> None:
    auth = StaticKeyAuth({"s3cr3t": "concert"})
    grant = await auth.authorize(attempt("s3cr3t"))
    assert grant.manifest_id == "concert"
    grant = await auth.authorize(attempt("concert", query={"key": "s3cr3t"}))
    assert grant.manifest_id == "concert"
    with pytest.raises(PublishRejected) as err:
        await auth.authorize(attempt("guess"))
    assert err.value.code == "NetStream.Publish.Unauthorized"
    assert "guess" not in str(err.value)


def test_manifest_id_rules() -> None:
    assert valid_manifest_id("a-b_c.1")
    for bad in ("", "a/b", "..", "a..b", "-x", "x" * 200, "a b"):
        assert not valid_manifest_id(bad), bad


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"status": 200, "body": ""}

    async def handle(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(status=answer["status"], text=answer["body"])

    app = web.Application()
    app.router.add_post("/auth", handle)
    async with serve_app(app) as base:
        yield f"{base}/auth", seen, answer


async def test_webhook_empty_200_accepts_with_url_name(webhook: Any) -> None:
    url, seen, _ = webhook
    auth = WebhookAuth(url)
    grant = await auth.authorize(attempt("movie", query={"token": "abc"}))
    await auth.close()
    assert grant.manifest_id == "movie"
    assert seen == [{"url": "rtmp://127.0.0.1:1935/live/movie?token=abc"}]


async def test_webhook_json_sets_manifest_and_profiles(webhook: Any) -> None:
    url, _, answer = webhook
    profiles = [{"name": "p1", "width": 320, "height": 240, "bitrate": 300000}]
    answer["body"] = json.dumps({"manifestID": "public1", "profiles": profiles, "streamID": "s"})
    auth = WebhookAuth(url)
    grant = await auth.authorize(attempt("secretkey"))
    await auth.close()
    assert grant.manifest_id == "public1"
    assert grant.profiles == profiles
    assert (grant.stream_id, grant.session_id) == ("s", "")


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (403, "", r"refused the stream \(403\)"),
        (500, "", r"refused the stream \(500\)"),
        (200, "not json", "not JSON"),
        (200, "{}", "no manifestID"),
        (200, '{"manifestID": "a/b"}', "not a valid stream id"),
        (200, '{"manifestID": "x", "profiles": 3}', "profiles"),
    ],
)
async def test_webhook_refusals(webhook: Any, status: int, body: str, needle: str) -> None:
    url, _, answer = webhook
    answer.update(status=status, body=body)
    auth = WebhookAuth(url)
    with pytest.raises(PublishRejected, match=needle):
        await auth.authorize(attempt("x"))
    await auth.close()


async def test_webhook_unreachable_refuses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = WebhookAuth("http://127.0.0.1:9/auth?token=OPTOKEN", timeout=1.0)
    with pytest.raises(PublishRejected, match="unreachable"):
        await auth.authorize(attempt("cam", query={"key": "SECRETKEY"}))
    await auth.close()
    (line,) = [r for r in caplog.records if r.getMessage() == "auth webhook unreachable"]
    assert getattr(line, "webhook", None) == "http://127.0.0.1:9/auth"
    for record in caplog.records:  # neither the ingest URL's key nor the webhook's token
        assert "SECRETKEY" not in repr(vars(record)) and "OPTOKEN" not in repr(vars(record))
