"""The live AI user API, at go-livepeer's paths (live-ai spec §11).

POST /live/video-to-video/{stream}/start    {"pipeline": MODEL, "params": {...}} (JSON, form or
                                            query: pipeline, params, streamId); also the
                                            MediaMTX hook's form with a ``query`` field; asks
                                            the live AI auth webhook when one is set (403)
POST /live/video-to-video/{stream}/update   raw JSON params (1 MiB at most); 404 if unknown
GET  /live/video-to-video/{stream}/status   the runner's latest status + the gateway's
"""

from __future__ import annotations

from urllib.parse import parse_qs

from aiohttp import web

from ..errors import ConfigError, PublishRejected
from ..httpbody import read_prefix
from ..pipelines.live_ai.manager import MAX_PARAMS_BYTES, LiveAIManager, LiveRequest, parse_params
from ..platform.live_auth import LiveAIAuthorizer
from ..stream.hub import StreamHub

__all__ = ["add_live_routes"]

MANAGER = web.AppKey("live_ai", LiveAIManager)
HUB = web.AppKey("live_hub", StreamHub)
AUTH = web.AppKey("live_auth", LiveAIAuthorizer)


def _text(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def start(request: web.Request) -> web.StreamResponse:
    name = request.match_info["stream"]
    if name.endswith("-out"):
        return _text(400, "streams ending in -out are AI outputs, not inputs")
    fields: dict[str, str] = dict(request.query)
    if request.can_read_body:
        if request.content_length and request.content_length > MAX_PARAMS_BYTES:
            return _text(413, "request too large")
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return _text(400, "body is not valid JSON")
            if not isinstance(body, dict):
                return _text(400, "body must be a JSON object")
            fields.update({k: v for k, v in body.items() if isinstance(k, str)})
        else:
            form = await request.post()
            fields.update({k: str(v) for k, v in form.items()})
            if "query" in fields:  # the MediaMTX runOnReady hook's ingest query string
                fields.update({k: v[0] for k, v in parse_qs(fields["query"]).items()})
    pipeline = str(fields.get("pipeline") or "")
    raw = fields.get("params")
    try:
        params = raw if isinstance(raw, dict) else parse_params(raw)
    except ConfigError as exc:
        return _text(400, str(exc))
    stream = request.app[HUB].get(name)
    labels: dict[str, str] = {}
    if fields.get("streamId"):
        labels["streamID"] = str(fields["streamId"])
    auth = request.app.get(AUTH)
    if auth is not None:
        ingest = str(stream.labels.get("ingest", "rtmp")) if stream is not None else "rtmp"
        query = {k: v for k, v in fields.items() if isinstance(v, str)}
        try:
            grant = await auth.check(name, name, ingest, query)
        except PublishRejected as exc:
            return _text(403, exc.description)
        pipeline = grant.pipeline or pipeline
        params = grant.params if grant.params is not None else params
        labels.update(grant.labels)
    if not pipeline:
        return _text(400, "no pipeline: give ?pipeline=MODEL (e.g. noop)")
    request.app[MANAGER].request(stream, name, LiveRequest(pipeline, params, labels))
    return web.json_response({"stream": name, "pipeline": pipeline, "status_url":
                              f"/live/video-to-video/{name}/status"})  # fmt: skip


async def update(request: web.Request) -> web.StreamResponse:
    name = request.match_info["stream"]
    if request.content_length and request.content_length > MAX_PARAMS_BYTES:
        return _text(413, f"params larger than {MAX_PARAMS_BYTES} bytes")
    body = await read_prefix(request.content, MAX_PARAMS_BYTES + 1)
    try:
        params = parse_params(body)
    except ConfigError as exc:
        return _text(400 if len(body) <= MAX_PARAMS_BYTES else 413, str(exc))
    if not await request.app[MANAGER].update(name, params):
        return _text(404, f"no live AI stream {name!r}")
    return web.json_response({"stream": name, "updated": True})


async def status(request: web.Request) -> web.StreamResponse:
    name = request.match_info["stream"]
    found = request.app[MANAGER].status(name)
    if found is None:
        return _text(404, f"no live AI stream {name!r}")
    return web.json_response(found, dumps=_dumps)


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, default=str)


def add_live_routes(
    app: web.Application,
    manager: LiveAIManager,
    hub: StreamHub,
    auth: LiveAIAuthorizer | None = None,
) -> None:
    app[MANAGER] = manager
    app[HUB] = hub
    if auth is not None:
        app[AUTH] = auth
    app.router.add_post("/live/video-to-video/{stream}/start", start)
    app.router.add_post("/live/video-to-video/{stream}/update", update)
    app.router.add_get("/live/video-to-video/{stream}/status", status)
