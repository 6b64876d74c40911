"""The live AI auth webhook (``-liveAIAuthWebhookUrl``), go-livepeer's request and answer.

Asked before a publisher's stream goes to a live AI pipeline (RTMP or WHIP with ``?pipeline=``,
any WHIP publish on ``/live/video-to-video/{stream}/whip``, and ``/start``):

    POST <url>   x-api-key: <key>, Authorization: <key>   (-liveAIAuthApiKey, when set)
    {"stream": NAME, "stream_key": KEY, "type": "rtmp" | "whip" | "livepeer-whip",
     "query_params": "pipeline=noop&...", "gateway_host": HOST,
     "whep_url": ..., "status_url": ..., "update_url": ...}

Any 2xx accepts; an empty body keeps what the publisher asked for. A JSON object may set
``pipeline``, ``pipeline_parameters`` (a JSON object, or a string holding one; for ``comfyui`` an
object without ``prompt`` is wrapped as ``{"prompt": ...}``), ``stream_id`` and ``pipeline_id``
(the stream's ids, used by the heartbeat and the status API) and ``rtmp_output_url``. Any other
status, an unreachable webhook or a malformed answer refuses the publish (RTMP error, WHIP 403).

``LiveAIAuthorizer`` puts the webhook in front of any ``StreamAuthorizer``: the stream key check
runs first, then the live AI check for the publishes that ask for a pipeline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from ..errors import PublishRejected, WebhookUnreachable
from ..request import INGEST_LIVE_WHIP  # go-livepeer's own WHIP server; "whip" was MediaMTX's
from ..webhook import JsonPoster, redact_url
from .stream_auth import UNAUTHORIZED, PublishAttempt, StreamAuthorizer, StreamGrant

log = logging.getLogger("mediagw.auth.live")

__all__ = ["LiveAIAuthWebhook", "LiveAIAuthorizer", "LiveAuthRequest", "LiveGrant"]


@dataclass(frozen=True, slots=True)
class LiveAuthRequest:
    stream: str
    stream_key: str
    type: str
    query_params: str
    gateway_host: str
    whep_url: str
    status_url: str
    update_url: str

    def body(self) -> dict[str, str]:
        return {
            "stream": self.stream,
            "stream_key": self.stream_key,
            "type": self.type,
            "query_params": self.query_params,
            "gateway_host": self.gateway_host,
            "whep_url": self.whep_url,
            "status_url": self.status_url,
            "update_url": self.update_url,
        }


@dataclass(frozen=True, slots=True)
class LiveGrant:
    """What the webhook decided; ``None`` fields leave the publisher's own choice."""

    pipeline: str | None = None
    params: dict[str, Any] | None = None
    stream_id: str | None = None
    pipeline_id: str | None = None
    rtmp_output_url: str | None = None


def _refuse(message: str) -> PublishRejected:
    return PublishRejected(message, UNAUTHORIZED)


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _refuse(f"live AI auth webhook: {key} must be a string")
    return value


def parse_answer(body: bytes) -> LiveGrant:
    """The webhook's answer body -> ``LiveGrant`` (``PublishRejected`` when malformed)."""
    if not body.strip():
        return LiveGrant()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _refuse("live AI auth webhook answer is not JSON") from None
    if not isinstance(data, dict):
        raise _refuse("live AI auth webhook answer is not a JSON object")
    pipeline = _optional_str(data, "pipeline")
    params = data.get("pipeline_parameters")
    if isinstance(params, str) and params.strip():
        try:
            params = json.loads(params)
        except (ValueError, RecursionError):
            raise _refuse("live AI auth webhook: pipeline_parameters is not valid JSON") from None
    if params in (None, ""):
        params = None
    elif not isinstance(params, dict):
        raise _refuse("live AI auth webhook: pipeline_parameters must be a JSON object")
    if params is not None and pipeline == "comfyui" and "prompt" not in params:
        params = {"prompt": params}
    return LiveGrant(
        pipeline=pipeline,
        params=params,
        stream_id=_optional_str(data, "stream_id"),
        pipeline_id=_optional_str(data, "pipeline_id"),
        rtmp_output_url=_optional_str(data, "rtmp_output_url"),
    )


class LiveAIAuthWebhook:
    MAX_BODY = 1024 * 1024

    def __init__(self, url: str, api_key: str = "", *, timeout: float = 5.0) -> None:
        self.url = url
        self.calls = 0
        headers = {"x-api-key": api_key, "Authorization": api_key} if api_key else {}
        self._poster = JsonPoster(url, timeout=timeout, max_body=self.MAX_BODY, headers=headers)

    async def authorize(self, req: LiveAuthRequest) -> LiveGrant:
        self.calls += 1
        try:
            status, body = await self._poster.post(req.body())
        except WebhookUnreachable as exc:
            failed = {"url": redact_url(self.url), "error": str(exc)}
            log.warning("live AI auth webhook unreachable", extra=failed)
            raise _refuse("live AI auth webhook unreachable") from None
        if not 200 <= status < 300:
            extra: dict[str, object] = {"type": req.type, "status": status}
            if req.stream != req.stream_key:  # /start knows only one name: it may be the key
                extra["stream"] = req.stream
            log.info("live AI auth webhook refused a stream", extra=extra)
            raise _refuse(f"live AI auth webhook refused the stream ({status})")
        if len(body) > self.MAX_BODY:
            raise _refuse("live AI auth webhook answer too large")
        return parse_answer(body)

    async def close(self) -> None:
        await self._poster.close()


BaseURL = Callable[[], str]  # e.g. "http://gw.example.com:9935", read at each call


class LiveAIAuthorizer:
    """A ``StreamAuthorizer``: the inner check, then the live AI webhook for live AI publishes.

    The grant it returns carries the webhook's pipeline and params (``StreamGrant.pipeline`` /
    ``.params``), its ``stream_id`` and ``pipeline_id``, and its ``rtmp_output_url`` when it
    names one."""

    def __init__(self, inner: StreamAuthorizer, webhook: LiveAIAuthWebhook, base_url: BaseURL):
        self.inner = inner
        self.webhook = webhook
        self.base_url = base_url

    @staticmethod
    def wants_live(attempt: PublishAttempt) -> bool:
        return bool(attempt.query.get("pipeline")) or attempt.ingest == INGEST_LIVE_WHIP

    async def authorize(self, attempt: PublishAttempt) -> StreamGrant:
        grant = await self.inner.authorize(attempt)
        if not self.wants_live(attempt):
            return grant
        return await self.check(grant.manifest_id, attempt.key, attempt.ingest,
                                attempt.query, grant)  # fmt: skip

    async def check(
        self,
        stream: str,
        key: str,
        ingest: str,
        query: Mapping[str, str],
        grant: StreamGrant | None = None,
    ) -> StreamGrant:
        """Ask the webhook about ``stream``; ``PublishRejected`` if it refuses."""
        base = self.base_url().rstrip("/")
        path = f"{base}/live/video-to-video/{stream}"
        answer = await self.webhook.authorize(
            LiveAuthRequest(
                stream=stream,
                stream_key=key,
                type=ingest,
                query_params=urlencode(dict(query)),
                gateway_host=base.split("://", 1)[-1],
                whep_url=f"{path}/whep",
                status_url=f"{path}/status",
                update_url=f"{path}/update",
            )
        )
        grant = grant or StreamGrant(stream)
        return replace(
            grant,
            pipeline=answer.pipeline,
            params=answer.params,
            stream_id=answer.stream_id or grant.stream_id,
            pipeline_id=answer.pipeline_id or grant.pipeline_id,
            rtmp_output=answer.rtmp_output_url or grant.rtmp_output,
        )

    async def close(self) -> None:
        await self.webhook.close()
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()
