"""The live AI user API, at go-livepeer's paths (live-ai spec §11).

POST /live/video-to-video/{stream}/start    {"pipeline": MODEL, "params": {...}} (JSON, form or
                                            query: pipeline, params, streamId); also the
                                            MediaMTX hook's form with a ``query`` field; asks
                                            the live AI auth webhook when one is set (403);
                                            needs an API key when ingest needs keys
                                            (``mediagw.exposure``, ``start_key``: 401), as
                                            /update does
POST /live/video-to-video/{stream}/update   raw JSON params (1 MiB at most); 404 if unknown
GET  /live/video-to-video/{stream}/status   the runner's latest status + the gateway's, and
                                            ``whep_url`` (POST an SDP offer there to watch the
                                            AI output) when WHEP is on: absolute, with
                                            ``-gatewayHost`` if set, else the request's host
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import ConfigError, LimitExceeded, PublishRejected
from ..httpbody import describe_http_error, read_prefix
from ..pipelines.live_ai.manager import LiveAIManager
from ..platform.admission import Admission
from ..platform.inputs import MAX_PARAMS_BYTES, parse_json_object, parse_params
from ..platform.stream_auth import valid_manifest_id
from ..stream.hub import StreamHub
from .start_key import StartKey

__all__ = ["add_live_routes"]

MANAGER = web.AppKey("live_ai", LiveAIManager)
HUB = web.AppKey("live_hub", StreamHub)
ADMISSION = web.AppKey("live_admission", Admission)
PUBLIC_URL: web.AppKey[Callable[[], str]] = web.AppKey("live_public_url")
START_KEY: web.AppKey[StartKey | None] = web.AppKey("live_start_key")


def _text(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")
_MAX_FIELDS = 64


def _stream_name(request: web.Request) -> str:
    name = request.match_info["stream"]
    if not valid_manifest_id(name):
        shown = f"{len(name)} characters" if len(name) > 40 else repr(name)
        raise _BadRequest(400, f"stream name must be 1-128 of A-Z a-z 0-9 _ . - (got {shown})")
    return name


async def _body(request: web.Request) -> bytes:
    if request.content_length and request.content_length > MAX_PARAMS_BYTES:
        raise _BadRequest(413, f"body larger than {MAX_PARAMS_BYTES} bytes")
    body = await read_prefix(request.content, MAX_PARAMS_BYTES + 1)
    if len(body) > MAX_PARAMS_BYTES:
        raise _BadRequest(413, f"body larger than {MAX_PARAMS_BYTES} bytes")
    return body


def _charset(request: web.Request) -> str:
    charset = (request.charset or "utf-8").lower()
    try:
        codecs.lookup(charset)
    except LookupError:
        raise _BadRequest(415, f"unknown charset {charset[:40]!r}: send UTF-8") from None
    return charset


async def _fields(request: web.Request) -> dict[str, Any]:
    """/start's fields from its body: a JSON object, a urlencoded or a multipart form (the
    MediaMTX hook's ``query`` field expanded). Other bodies are ignored, as before."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _multipart(request)
    body = await _body(request)
    if not body:
        return {}
    if ctype == "application/json":
        if _charset(request) not in _UTF8:
            raise _BadRequest(415, "JSON must be UTF-8: drop the charset or send charset=utf-8")
        try:
            return parse_json_object(body, "body")
        except ConfigError as exc:
            raise _BadRequest(400, str(exc)) from None
    if ctype == "application/x-www-form-urlencoded":
        charset = _charset(request)
        try:
            text = body.decode(charset)
            pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict",
                              max_num_fields=_MAX_FIELDS)  # fmt: skip
        except UnicodeDecodeError:
            raise _BadRequest(400, f"form is not valid {charset}") from None
        except ValueError:
            raise _BadRequest(400, f"form has more than {_MAX_FIELDS} fields") from None
        return _expand_query(dict(pairs))
    return {}


async def _multipart(request: web.Request) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_PARAMS_BYTES:
        raise _BadRequest(413, f"body larger than {MAX_PARAMS_BYTES} bytes")
    fields: dict[str, str] = {}
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                raise _BadRequest(400, "multipart form: every part must be a named text field")
            if len(fields) >= _MAX_FIELDS:
                raise _BadRequest(400, f"form has more than {_MAX_FIELDS} fields")
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                total += len(chunk)
                if total > MAX_PARAMS_BYTES:
                    raise _BadRequest(413, f"body larger than {MAX_PARAMS_BYTES} bytes")
            fields[part.name] = data.decode(part.get_charset("utf-8"))
    except LookupError:
        raise _BadRequest(415, "multipart form: unknown charset: send UTF-8") from None
    except UnicodeDecodeError:
        raise _BadRequest(400, "multipart form: a field is not valid text in its charset") from None
    except ValueError as exc:  # aiohttp's multipart parser: no boundary, broken framing
        raise _BadRequest(400, f"malformed multipart form: {str(exc)[:120]}") from None
    except HttpProcessingError as exc:  # a part's headers
        raise _BadRequest(400, f"malformed multipart form: {describe_http_error(exc)}") from None
    return _expand_query(fields)


def _expand_query(fields: dict[str, Any]) -> dict[str, Any]:
    query = fields.get("query")
    if isinstance(query, str):  # the MediaMTX runOnReady hook's ingest query string
        try:
            fields.update(parse_qsl(query, max_num_fields=_MAX_FIELDS))
        except ValueError:
            raise _BadRequest(400, f"query has more than {_MAX_FIELDS} fields") from None
    return fields


async def start(request: web.Request) -> web.StreamResponse:
    try:
        return await _start(request)
    except _BadRequest as exc:
        return _text(exc.status, exc.message)


async def _start(request: web.Request) -> web.StreamResponse:
    if (refused := await _key_refusal(request)) is not None:
        return _text(*refused)
    name = _stream_name(request)
    if name.endswith("-out"):
        return _text(400, "streams ending in -out are AI outputs, not inputs")
    fields: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        fields.update(await _fields(request))
    stream = request.app[HUB].get(name)
    try:
        live = await request.app[ADMISSION].admit_live(
            name, fields, stream.request if stream is not None else None
        )
    except ConfigError as exc:
        return _text(400, str(exc))
    except PublishRejected as exc:
        return _text(403, exc.description)
    try:
        request.app[MANAGER].request(stream, name, live)
    except LimitExceeded as exc:
        return _text(429, exc.description)
    return web.json_response({"stream": name, "pipeline": live.pipeline, "status_url":
                              f"/live/video-to-video/{name}/status"})  # fmt: skip


async def _key_refusal(request: web.Request) -> tuple[int, str] | None:
    check = request.app[START_KEY]
    return await check(request) if check is not None else None


async def update(request: web.Request) -> web.StreamResponse:
    if (refused := await _key_refusal(request)) is not None:
        return _text(*refused)
    try:
        name = _stream_name(request)
        body = await _body(request)
    except _BadRequest as exc:
        return _text(exc.status, exc.message)
    try:
        params = parse_params(body)
    except ConfigError as exc:
        return _text(400, str(exc))
    if not await request.app[MANAGER].update(name, params):
        return _text(404, f"no live AI stream {name!r}")
    return web.json_response({"stream": name, "updated": True})


async def status(request: web.Request) -> web.StreamResponse:
    name = request.match_info["stream"]
    found = request.app[MANAGER].status(name)
    if found is None:
        return _text(404, f"no live AI stream {name[:128]!r}")
    whep = found.get("whep_url")
    if isinstance(whep, str) and whep.startswith("/"):
        base = request.app[PUBLIC_URL]() or f"{request.scheme}://{request.host}"
        found = {**found, "whep_url": base.rstrip("/") + whep}
    return web.json_response(found, dumps=_dumps)


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, default=str)


def add_live_routes(
    app: web.Application,
    manager: LiveAIManager,
    hub: StreamHub,
    admission: Admission,
    public_url: Callable[[], str] = lambda: "",
    start_key: StartKey | None = None,
) -> None:
    """``public_url``: the gateway's configured URL (``-gatewayHost``) or ""; ``start_key``:
    the API key check in front of ``/start`` (None: none)."""
    app[MANAGER] = manager
    app[START_KEY] = start_key
    app[PUBLIC_URL] = public_url
    app[HUB] = hub
    app[ADMISSION] = admission
    app.router.add_post("/live/video-to-video/{stream}/start", start)
    app.router.add_post("/live/video-to-video/{stream}/update", update)
    app.router.add_get("/live/video-to-video/{stream}/status", status)
