"""WHIP publishers into the stream hub: browsers publish like RTMP encoders do.

    POST /live/video-to-video/{stream}/whip     go-livepeer's path (live AI)
    POST /whip/{stream}                         the same, shorter

The stream key check, the busy check and the hub are the same as for RTMP. H.264 access units
from the WebRTC depacketizer go to the segmenter through ``AnnexBVideo`` without re-encoding.

Browsers send an H.264 keyframe only when asked. A keyframe is requested the moment the open
segment reaches the target duration (the segmenter cuts at the first keyframe after that), so
segments come out at the target plus one round trip, not at the next periodic request; a
periodic request every 2 x target stays as a safety net. Opus audio is not carried into the
MPEG-TS segments yet (counted in ``audio_dropped``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor

from aiohttp import web

from segmenter import AnnexBVideo
from webrtc import IceConfig, VideoAccessUnit, WhipConfig, WhipIngest, WhipSession, add_whip_routes

from ..errors import PublishRejected, StreamBusy
from ..platform.stream_auth import PublishAttempt, StreamAuthorizer, StreamGrant
from ..stream.hub import StreamHub
from ..stream.publisher import Publisher
from .labels import stream_labels

log = logging.getLogger("mediagw.ingest.whip")

__all__ = ["WhipGateway"]

_GRANT = web.RequestKey("mediagw.whip.grant", StreamGrant)


class WhipGateway:
    def __init__(
        self,
        hub: StreamHub,
        authorizer: StreamAuthorizer,
        executor: Executor,
        *,
        ice: IceConfig | None = None,
        keyframe_interval: float = 2.0,
        max_sessions: int = 16,
    ) -> None:
        self.hub = hub
        self.authorizer = authorizer
        self.executor = executor
        self.segment_ticks = round(keyframe_interval * 90_000)
        self.ingest = WhipIngest(
            WhipConfig(
                ice=ice or IceConfig(),
                keyframe_interval=2 * keyframe_interval,
                max_sessions=max_sessions,
            )
        )
        self.audio_dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        for prefix in ("/live/video-to-video/{stream}/whip", "/whip/{stream}"):
            add_whip_routes(
                app,
                prefix,
                self.ingest,
                self._on_session,
                authorize=self._authorize,
                cors_origin="*",
            )

    async def _authorize(self, request: web.Request) -> None:
        name = request.match_info["stream"]
        url = f"{request.scheme}://{request.host}{request.path_qs}"
        ingest = "livepeer-whip" if request.path.startswith("/live/video-to-video/") else "whip"
        attempt = PublishAttempt(
            url, "live", name, dict(request.query), request.remote or "", ingest=ingest
        )
        try:
            grant = await self.authorizer.authorize(attempt)
        except PublishRejected as exc:
            raise web.HTTPForbidden(text=exc.description) from None
        stream = self.hub.get(grant.manifest_id)
        if stream is not None and stream.live:
            raise web.HTTPConflict(text=str(StreamBusy(grant.manifest_id)))
        request[_GRANT] = grant

    async def _on_session(self, request: web.Request, session: WhipSession) -> Mapping[str, str]:
        grant: StreamGrant = request[_GRANT]
        try:
            labels = {"ingest": "whip", **stream_labels(grant, request.query)}
            stream = self.hub.begin_publish(grant.manifest_id, labels)
        except PublishRejected as exc:
            raise web.HTTPConflict(text=exc.description) from None
        publisher = Publisher(self.hub, stream, self.executor, demuxer=AnnexBVideo())
        task = asyncio.get_running_loop().create_task(
            self._pump(session, publisher), name=f"whip:{stream.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("whip publish accepted", extra={"stream": stream.id, "session": session.id})
        return {"Livepeer-Playback-URL": f"/stream/{stream.id}.m3u8"}

    async def _pump(self, session: WhipSession, publisher: Publisher) -> None:
        error: str | None = None
        tolerance = 900  # the segmenter's cut tolerance (10 ms)
        segment_start: int | None = None
        asked = False
        try:
            async for unit in session:
                if not isinstance(unit, VideoAccessUnit):
                    self.audio_dropped += 1
                    continue
                age = unit.pts - segment_start if segment_start is not None else None
                if unit.keyframe and (age is None or age >= self.segment_ticks - tolerance):
                    segment_start, asked = unit.pts, False  # the segmenter cuts here
                elif age is not None and not asked and age >= self.segment_ticks:
                    session.request_keyframe()
                    asked = True
                await publisher.unit(unit.data, unit.pts, unit.dts)
        except Exception as exc:  # one session's failure ends only that stream
            error = f"{type(exc).__name__}: {exc}"
            log.warning("whip session failed", extra={"session": session.id, "error": error})
            await session.close("media error")
        finally:
            await publisher.close(error)

    async def close(self) -> None:
        await self.ingest.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
