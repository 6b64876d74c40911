"""Studio's stream, session, playback-info and multistream-target routes over
``platform/streams.StreamService``.

    POST   /api/stream                          -> 201 (Studio's SDK accepts only 201)
    GET    /api/stream                          ?filters=[{"id":"name"|"isActive","value":..}]
                                                &limit=&cursor= (next page: the Link header)
    GET    /api/stream/{id}
    PATCH  /api/stream/{id}                     -> 204
    DELETE /api/stream/{id}                     -> 204 (a live publisher is stopped first)
    DELETE /api/stream/{id}/terminate           -> 204 (ends the live session)
    GET    /api/stream/{parentId}/sessions
    GET    /api/session/{id}
    GET    /api/playback/{playbackId}           scope ``playback``: where to play it
    POST   /api/multistream/target              -> 201
    GET    /api/multistream/target[/{id}]
    DELETE /api/multistream/target/{id}         -> 204

Stream routes need the ``streams`` scope and act on the key's own streams, sessions and targets
only (an admin key's: everyone's; another's is 404, ``platform/tenancy``). The owner's answers
carry ``streamKey``; nothing else does (the audit log records names and ids only). Playback info
answers any valid key: it holds only what the playback id already gives its holder (the HLS and
WHEP URLs, built from it; whether it is live and gated, which those URLs tell anyone), never
the stream's id, name or key; a gated stream still plays only with a token. (Scoping it would
make ``playback``-scope keys, which own nothing, useless to a customer's player.)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ...errors import InvalidInput, StoreNotFound
from ...platform.access import PlaybackAccess
from ...platform.store import Stream
from ...platform.streams import StreamService
from ...platform.studio_json import session_to_studio, target_to_studio, to_studio
from .base import Api, Call, not_found
from .models import (
    MultistreamTargetCreate,
    PlaybackOut,
    SessionOut,
    StreamCreate,
    StreamOut,
    StreamPatch,
    TargetOut,
)

__all__ = ["add_stream_routes", "playback_info"]

HLS = ("HLS (TS)", "html5/application/vnd.apple.mpegurl")
WEBRTC = ("WebRTC (H264)", "html5/video/h264")
MAX_FILTERS = 8


def _streams(call: Call) -> StreamService:
    service: StreamService = call.ctx.services["streams"]
    return service


async def _stream(call: Call, name: str = "id") -> Stream:
    stream = await _streams(call).get(call.param(name), tenant=call.tenant)
    if stream is None:
        raise not_found("stream", call.param(name))
    return stream


def _filters(call: Call) -> dict[str, Any]:
    """Studio's ``?filters=[{"id": "name", "value": "cam"}]`` as ``{"name": "cam"}``."""
    text = call.query.get("filters")
    if not text:
        return {}
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also a number of over 4,300 digits
        raise InvalidInput("filters", 'give a JSON list of {"id": ..., "value": ...}') from None
    if not isinstance(items, list) or len(items) > MAX_FILTERS:
        raise InvalidInput("filters", f"give a JSON list of at most {MAX_FILTERS} filters")
    out: dict[str, Any] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidInput(f"filters.{n}", 'give {"id": ..., "value": ...}')
        out[item["id"]] = item.get("value")
    return out


def base_url(call: Call) -> str:
    """Where clients reach this gateway: ``-gatewayHost`` when set, else the request's host."""
    return call.ctx.public_url() or f"{call.request.scheme}://{call.request.host}"


def playback_info(stream: Stream, base: str) -> dict[str, Any]:
    """Studio's playback info of a live stream: its HLS and WebRTC (WHEP) URLs. A stream that
    runs a live AI pipeline plays its AI output."""
    pid = stream.playback_id
    if stream.pipeline:
        hls = f"{base}/hls/{pid}-out/index.m3u8"
        webrtc = f"{base}/live/video-to-video/{pid}/whep"
    else:
        hls = f"{base}/hls/{pid}/index.m3u8"
        webrtc = f"{base}/webrtc/{pid}"
    return {
        "type": "live",
        "meta": {
            "live": 1 if stream.is_active else 0,
            "playbackPolicy": dict(stream.playback_policy or {"type": "public"}),
            "source": [
                {"hrn": HLS[0], "type": HLS[1], "url": hls},
                {"hrn": WEBRTC[0], "type": WEBRTC[1], "url": webrtc},
            ],
        },
    }


def _forget_policy(call: Call, stream: Stream) -> None:
    access: PlaybackAccess | None = call.ctx.services.get("access")
    if access is not None:
        access.forget(playback_id=stream.playback_id)


def add_stream_routes(api: Api) -> None:
    @api.route(
        "POST", "/stream", scope="streams", body=StreamCreate, status=201, response=StreamOut,
        summary="Create a stream: its streamKey (to publish) and playbackId (to play)",
        tag="stream",
    )  # fmt: skip
    async def create_stream(call: Call) -> dict[str, Any]:
        body = call.body.model_dump(by_alias=True, exclude_unset=True)
        stream = await _streams(call).create(body, tenant=call.tenant)
        await call.audit("stream.create", "stream", stream.id, {"name": stream.name})
        return to_studio(stream, with_key=True)

    @api.route(
        "GET", "/stream", scope="streams", response=StreamOut, tag="stream",
        summary="List streams, newest first (next page: the Link header's cursor)",
        query=(("filters", 'JSON list of {"id": "name"|"isActive", "value": ...}'),
               ("limit", "1..1000"), ("cursor", "from the previous page's Link header"),
               ("streamsonly", "accepted (mediagw lists streams only)")),
    )  # fmt: skip
    async def list_streams(call: Call) -> web.StreamResponse:
        page = await _streams(call).list(
            _filters(call),
            limit=call.limit(),
            cursor=call.query.get("cursor") or None,
            tenant=call.tenant,
        )
        resp = web.json_response([to_studio(s, with_key=True) for s in page.items])
        if page.cursor is not None:
            query = {k: v for k, v in call.query.items() if k != "cursor"}
            query["cursor"] = page.cursor
            url = call.request.url.with_query(None)
            resp.headers["Link"] = f'<{url}?{urlencode(query)}>; rel="next"'
        return resp

    @api.route(
        "GET", "/stream/{id}", scope="streams", response=StreamOut, summary="Get a stream",
        tag="stream",
    )  # fmt: skip
    async def get_stream(call: Call) -> dict[str, Any]:
        stream = await _stream(call)
        doc = to_studio(stream, with_key=True)
        quotas = call.ctx.services.get("quotas")  # platform/stream_quota, in memory
        if quotas is not None and (reason := quotas.status_reason(stream.id)):
            doc["statusReason"] = reason
        return doc

    @api.route(
        "PATCH", "/stream/{id}", scope="streams", body=StreamPatch, status=204,
        summary="Change a stream (only the fields sent; null clears one)", tag="stream",
    )  # fmt: skip
    async def update_stream(call: Call) -> None:
        changes = call.body.model_dump(by_alias=True, exclude_unset=True)
        stream = await _streams(call).update(call.param("id"), changes, tenant=call.tenant)
        if stream is None:
            raise not_found("stream", call.param("id"))
        _forget_policy(call, stream)
        await call.audit("stream.update", "stream", stream.id, {"fields": sorted(changes)})

    @api.route(
        "DELETE", "/stream/{id}", scope="streams", status=204, tag="stream",
        summary="Delete a stream with its sessions (a live publisher is stopped)",
    )  # fmt: skip
    async def delete_stream(call: Call) -> None:
        stream = await _stream(call)
        if not await _streams(call).delete(stream.id, tenant=call.tenant):
            raise not_found("stream", stream.id)
        _forget_policy(call, stream)
        await call.audit("stream.delete", "stream", stream.id, {"name": stream.name})

    @api.route(
        "DELETE", "/stream/{id}/terminate", scope="streams", status=204, tag="stream",
        summary="End the stream's live session (the publisher may publish again)",
    )  # fmt: skip
    async def terminate_stream(call: Call) -> None:
        ended = await _streams(call).terminate(call.param("id"), tenant=call.tenant)
        if ended is None:
            raise not_found("stream", call.param("id"))
        await call.audit("stream.terminate", "stream", call.param("id"), {"wasLive": ended})

    @api.route(
        "GET", "/stream/{parentId}/sessions", scope="streams", response=SessionOut,
        summary="A stream's sessions (one per publish), newest first", tag="session",
    )  # fmt: skip
    async def list_sessions(call: Call) -> list[dict[str, Any]]:
        stream = await _stream(call, "parentId")
        sessions = await _streams(call).list_sessions(stream.id, limit=call.limit())
        return [session_to_studio(s, stream) for s in sessions]

    @api.route(
        "GET", "/session/{id}", scope="streams", response=SessionOut, summary="Get a session",
        tag="session",
    )  # fmt: skip
    async def get_session(call: Call) -> dict[str, Any]:
        session = await _streams(call).get_session(call.param("id"), tenant=call.tenant)
        if session is None:
            raise not_found("session", call.param("id"))
        return session_to_studio(session, await _streams(call).get(session.stream_id))

    @api.route(
        "GET", "/playback/{playbackId}", scope="playback", response=PlaybackOut,
        summary="Where to play a stream: its HLS and WebRTC (WHEP) URLs", tag="playback",
    )  # fmt: skip
    async def get_playback_info(call: Call) -> dict[str, Any]:
        pid = call.param("playbackId")
        stream = await call.ctx.store.stream_by_playback_id(pid)
        if stream is None:
            raise StoreNotFound(f"no stream with playback id {pid[:100]!r}")
        return playback_info(stream, base_url(call))

    @api.route(
        "POST", "/multistream/target", scope="streams", body=MultistreamTargetCreate,
        status=201, response=TargetOut, summary="Create a multistream target (RTMP/SRT URL)",
        tag="multistream",
    )  # fmt: skip
    async def create_multistream_target(call: Call) -> dict[str, Any]:
        body = call.body.model_dump(by_alias=True, exclude_unset=True)
        target = await _streams(call).create_target(body, tenant=call.tenant)
        await call.audit("multistream_target.create", "multistream_target", target.id)
        return target_to_studio(target)

    @api.route(
        "GET", "/multistream/target", scope="streams", response=TargetOut,
        summary="List multistream targets", tag="multistream",
    )  # fmt: skip
    async def list_multistream_targets(call: Call) -> list[dict[str, Any]]:
        targets = await _streams(call).list_targets(limit=1000, tenant=call.tenant)
        return [target_to_studio(t) for t in targets]

    @api.route(
        "GET", "/multistream/target/{id}", scope="streams", response=TargetOut,
        summary="Get a multistream target", tag="multistream",
    )  # fmt: skip
    async def get_multistream_target(call: Call) -> dict[str, Any]:
        target = await _streams(call).get_target(call.param("id"), tenant=call.tenant)
        if target is None:
            raise not_found("multistream target", call.param("id"))
        return target_to_studio(target)

    @api.route(
        "DELETE", "/multistream/target/{id}", scope="streams", status=204,
        summary="Delete a multistream target", tag="multistream",
    )  # fmt: skip
    async def delete_multistream_target(call: Call) -> None:
        if not await _streams(call).delete_target(call.param("id"), tenant=call.tenant):
            raise not_found("multistream target", call.param("id"))
        await call.audit("multistream_target.delete", "multistream_target", call.param("id"))
