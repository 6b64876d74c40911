"""Admission: the one place a stream is let in, by RTMP, WHIP, HTTP push and the live AI API.

    attempt (the ingest URL or request)
      -> the stream-key authorizer (open, static keys, webhook; the live AI webhook in front of
         it when configured)                                    -> StreamGrant, or a refusal
      -> the publisher's query, checked (``inputs``)            -> StreamRequest, or a refusal

A refusal is ``PublishRejected`` with its reason and the RTMP status code it carries; a bad URL
query is its ``BadStreamRequest`` (HTTP routes answer 400, a refusal 403). The request is typed
and frozen (``mediagw.request``).

What a publisher may ask for on its URL (RTMP and WHIP alike):

    ?pipeline=MODEL&params=JSON     live AI instead of transcoding
    ?regions=eu-west,us-east        orchestrator regions to prefer for this stream
    ?streamId=ID                    the stream's id for the live AI heartbeat and status API
    ?rtmpOutput=rtmp://...[,...]    live AI: also push the AI output to these RTMP servers

The operator's webhooks win over the query: the auth webhook's ladder, the live AI webhook's
pipeline, params, stream id and RTMP output.

Several nodes: an admitted publish then claims its stream (``claims``, the stream leases): a
stream live on another node is refused as ``StreamBusy``; the request may come back with
``resume`` set. Whoever refuses the publish after ``admit`` (the hub's own ``StreamBusy``, a
limit) calls ``abandon`` so the claim is given back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import BadStreamRequest, ConfigError
from ..request import (
    INGEST_LIVE_WHIP,
    INGEST_RTMP,
    INGEST_WHIP,
    Ladder,
    StreamRequest,
    frozen_params,
)
from .inputs import (
    check_id,
    check_params,
    check_pipeline,
    parse_params,
    parse_regions,
    parse_rtmp_outputs,
)
from .live_auth import LiveAIAuthorizer
from .stream_auth import PublishAttempt, StreamAuthorizer, StreamGrant

__all__ = ["Admission", "Claims", "request_from"]

log = logging.getLogger("mediagw.admission")


def _ladder(grant: StreamGrant) -> Ladder:
    profiles = None if grant.profiles is None else tuple(dict(p) for p in grant.profiles)
    return Ladder(tuple(grant.presets), profiles)


def request_from(grant: StreamGrant, query: Mapping[str, str], ingest: str) -> StreamRequest:
    """A publish's request: what ``grant`` decided and what the URL's ``query`` asks for."""
    try:
        pipeline = grant.pipeline or (
            check_pipeline(query["pipeline"]) if query.get("pipeline") else ""
        )
        params: Mapping[str, Any] = {}
        if pipeline:
            params = grant.params if grant.params is not None else parse_params(query.get("params"))
        stream_id = grant.stream_id  # the webhook's answer wins
        if not stream_id and query.get("streamId"):
            stream_id = check_id(query["streamId"], "streamId")
        regions = parse_regions(query["regions"]) if query.get("regions") else ()
    except ConfigError as exc:
        raise BadStreamRequest(str(exc)) from None
    try:
        outputs = tuple(parse_rtmp_outputs(grant.rtmp_output or query.get("rtmpOutput") or ""))
    except ValueError as exc:
        raise BadStreamRequest(f"rtmpOutput: {exc}") from None
    return StreamRequest(
        id=grant.manifest_id,
        principal=grant.principal,
        ingest=ingest,
        ladder=_ladder(grant),
        pipeline=pipeline,
        params=frozen_params(params),
        outputs=outputs,
        regions=regions,
        stream_id=stream_id,
        pipeline_id=grant.pipeline_id,
        session_id=grant.session_id,
    )


class Claims(Protocol):
    """Stream ownership among gateway nodes (``shared.leases.StreamLeases``)."""

    async def claim(self, request: StreamRequest) -> StreamRequest: ...

    def abandon(self, request: StreamRequest) -> None: ...


class Admission:
    """Admits publishes (``admit``) and live AI requests (``admit_live``).

    ``authorizer`` checks publishes: the stream key, and the live AI webhook for those that ask
    for a pipeline when the gateway has put one in front of it. ``live`` is that webhook's
    authorizer, asked by ``/start`` (no stream key there)."""

    def __init__(self, authorizer: StreamAuthorizer, live: LiveAIAuthorizer | None = None) -> None:
        self.authorizer = authorizer
        self.live = live
        self.claims: Claims | None = None  # several nodes: who owns a stream

    async def admit(self, attempt: PublishAttempt) -> StreamRequest:
        """A publish over RTMP, WHIP or HTTP push (``attempt.ingest``); ``PublishRejected``."""
        grant = await self.authorizer.authorize(attempt)
        request = request_from(grant, attempt.query, attempt.ingest)
        return request if self.claims is None else await self.claims.claim(request)

    def abandon(self, request: StreamRequest) -> None:
        """An admitted publish was refused after all: give back its stream's claim."""
        if self.claims is not None:
            self.claims.abandon(request)

    async def admit_live(
        self,
        name: str,
        fields: Mapping[str, Any],
        current: StreamRequest | None = None,
    ) -> StreamRequest:
        """``/start`` for stream ``name``: ``fields`` (the query, body or form) give
        ``pipeline``, ``params`` and ``streamId``; ``current`` is the stream's request when it
        is live or was. ``ConfigError`` for bad fields, ``PublishRejected`` when the live AI
        webhook refuses. The result is the live AI part only: ``StreamRequest.with_live`` merges
        it into the stream's request."""
        pipeline = check_pipeline(fields["pipeline"]) if fields.get("pipeline") else ""
        raw = fields.get("params")
        params = check_params(raw) if raw is not None and raw != "" else {}
        raw_id = fields.get("streamId")
        stream_id = check_id(raw_id, "streamId") if raw_id not in (None, "") else ""
        grant = StreamGrant(name, pipeline=pipeline, params=params, stream_id=stream_id)
        if self.live is not None:
            # go-livepeer's /start knows one name, sent as both stream and key; the ingest
            # type is the live stream's (WHIP publishes are "whip" there, as MediaMTX's were)
            ingest = current.ingest if current is not None else INGEST_RTMP
            if ingest == INGEST_LIVE_WHIP:
                ingest = INGEST_WHIP
            query = {k: v for k, v in fields.items() if isinstance(v, str)}
            answer = await self.live.check(name, name, ingest, query)
            grant = StreamGrant(
                name,
                pipeline=answer.pipeline or pipeline,
                params=answer.params if answer.params is not None else params,
                stream_id=answer.stream_id or stream_id,
                pipeline_id=answer.pipeline_id,
                rtmp_output=answer.rtmp_output,
            )
        if not grant.pipeline:
            raise ConfigError("no pipeline: give ?pipeline=MODEL (e.g. noop)")
        try:
            outputs = tuple(parse_rtmp_outputs(grant.rtmp_output))
        except ValueError as exc:  # as before: a /start is not refused for its output
            log.warning("RTMP output ignored", extra={"stream": name, "error": str(exc)})
            outputs = ()
        return StreamRequest(
            id=name,
            ingest=current.ingest if current is not None else INGEST_RTMP,
            pipeline=grant.pipeline,
            params=frozen_params(grant.params),
            outputs=outputs,
            stream_id=grant.stream_id,
            pipeline_id=grant.pipeline_id,
        )

    async def close(self) -> None:
        close = getattr(self.authorizer, "close", None)
        if close is not None:
            await close()
