"""What a stream asks of the gateway: one typed, frozen ``StreamRequest`` per publish session.

A publish (RTMP, WHIP, HTTP push) and a live AI request (``/start``) are admitted in one place,
``mediagw.platform.admission``, which turns the publisher's URL or request, and what the
stream-key authorizer granted, into a ``StreamRequest``. The hub keeps it on the ``Stream``;
ingest, pipelines and the API read it and never write into it: a change of intent (``/start``
on a live stream) is a new ``StreamRequest`` made with ``dataclasses.replace``.

Ground floor: this module imports nothing of mediagw, so every layer can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = [
    "INGEST_HTTP_PUSH",
    "INGEST_LIVE_WHIP",
    "INGEST_RTMP",
    "INGEST_WHIP",
    "Ladder",
    "Resume",
    "StreamRequest",
    "frozen_params",
]

INGEST_RTMP = "rtmp"
INGEST_WHIP = "whip"  # POST /whip/{stream}
INGEST_LIVE_WHIP = "livepeer-whip"  # POST /live/video-to-video/{stream}/whip (go-livepeer's)
INGEST_HTTP_PUSH = "http-push"  # POST /live/{stream}/{seq}.ts


def frozen_params(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of pipeline params (a JSON object)."""
    return MappingProxyType(dict(params or {}))


@dataclass(frozen=True, slots=True)
class Ladder:
    """The rendition ladder a stream asks for, as the operator's auth webhook gave it: preset
    names and go-livepeer JSON profiles, in that order. Resolved (and checked) by the
    transcoder; an empty ladder means the gateway's ``-transcodingOptions``."""

    presets: tuple[str, ...] = ()
    profiles: tuple[Mapping[str, Any], ...] | None = None  # None: none given; () : given empty

    @property
    def empty(self) -> bool:
        return not self.presets and self.profiles is None


@dataclass(frozen=True, slots=True)
class Resume:
    """A publish that continues a stream another node owned: its first segment gets seq
    ``next_seq``, its playlists go on after discontinuity ``discontinuity`` and its publish
    session number is ``session + 1`` (set when the stream is claimed from a dead owner)."""

    next_seq: int
    discontinuity: int
    session: int


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One publish session's intent.

    ``id`` is the public stream id (manifest and playback id; never a secret stream key).
    ``principal`` is who authorized it (an API key id or account; empty in open mode).
    ``pipeline`` (a live AI model) sends the stream to live AI instead of transcoding, with
    ``params``; ``outputs`` are RTMP URLs its AI output is also pushed to. ``regions`` are the
    orchestrator regions to prefer. ``stream_id`` is the user's id of the stream (the live AI
    heartbeat and status API; default ``id``); ``pipeline_id`` and ``session_id`` are the
    operator webhook's labels, shown as they came. ``resume``: the publish continues a stream
    another node owned (set at admission from the stream's cursor in Redis).
    """

    id: str
    principal: str = ""
    ingest: str = INGEST_RTMP
    ladder: Ladder = Ladder()
    pipeline: str = ""
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    outputs: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    stream_id: str = ""
    pipeline_id: str = ""
    session_id: str = ""
    resume: Resume | None = None  # continuing a stream another node owned

    @property
    def user_stream_id(self) -> str:
        """The id the user knows the stream by (``streamId``), else the public id."""
        return self.stream_id or self.id

    def with_live(self, live: StreamRequest) -> StreamRequest:
        """This request with the live AI part of ``live`` (a ``/start``): its pipeline and
        params, and its ids and outputs where it has them."""
        return replace(
            self,
            pipeline=live.pipeline,
            params=live.params,
            stream_id=live.stream_id or self.stream_id,
            pipeline_id=live.pipeline_id or self.pipeline_id,
            outputs=live.outputs or self.outputs,
        )

    def labels(self) -> dict[str, Any]:
        """The request as ``/streams`` shows it (the names go-livepeer's hooks use)."""
        out: dict[str, Any] = {}
        if self.ingest != INGEST_RTMP:
            out["ingest"] = self.ingest
        if self.ladder.profiles is not None:
            out["profiles"] = [dict(p) for p in self.ladder.profiles]
        if self.ladder.presets:
            out["presets"] = list(self.ladder.presets)
        if self.pipeline:
            out["pipeline"] = self.pipeline
            out["params"] = dict(self.params)
        for key, value in (
            ("streamID", self.stream_id),
            ("sessionID", self.session_id),
            ("pipelineID", self.pipeline_id),
            ("rtmpOutput", ",".join(self.outputs)),
        ):
            if value:
                out[key] = value
        if self.regions:
            out["regions"] = list(self.regions)
        return out
