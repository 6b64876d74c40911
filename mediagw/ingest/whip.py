"""WHIP publishers into the stream hub: browsers publish like RTMP encoders do.

    POST /live/video-to-video/{stream}/whip     go-livepeer's path (live AI)
    POST /whip/{stream}                         the same, shorter

Admission (stream key, query, webhooks), the busy check and the hub are the same as for RTMP.
The session's ``Location`` names the stream by its id (``/whip/{id}/{session}``), whatever key
the offer was posted to, so a ``DELETE`` that reaches another gateway node (or another worker
of ``-workers N``) is proxied to the node that holds the session (``api/node_proxy.py``).
H.264 access units from the WebRTC depacketizer go to the segmenter without re-encoding; Opus
audio is decoded and encoded to AAC-LC (48 kHz, the channel count WebRTC signals: stereo,
128 kb/s), because HLS players and orchestrators expect AAC in MPEG-TS. Both go through
``segmenter.RtpDemuxer`` in the Publisher's executor (no PyAV call on the event loop), which
interleaves them so each keyframe-aligned segment carries the audio of its own time span,
continuous across segments. A session without audio gives video-only segments, as before.

A/V sync: the ``webrtc`` package stamps both tracks on one session clock, each anchored at the
arrival of its first packet and then following its own RTP clock (why not RTCP sender reports:
see ``webrtc.whip``); audio is converted from 48 kHz to 90 kHz ticks here. A broken Opus packet
is skipped and counted (``audio_bad_packets``); audio of another codec is counted in
``audio_dropped``.

Browsers send an H.264 keyframe only when asked. A keyframe is requested one frame before the
open segment reaches its target duration (the segmenter cuts at the first keyframe after that),
so segments come out at the target plus about one round trip, not at the next periodic request;
a periodic request every 2 x the gateway's target stays as a safety net. The target is read per
frame: a stream that goes to live AI gets the shorter live AI target.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor

from aiohttp import web

from segmenter import CLOCK, RtpDemuxer
from webrtc import IceConfig, VideoAccessUnit, WhipConfig, WhipIngest, WhipSession, add_whip_routes

from ..clock import SYSTEM, Clock
from ..errors import BadStreamRequest, PublishRejected, StreamBusy
from ..platform.admission import Admission
from ..platform.stream_auth import UNAUTHORIZED, PublishAttempt
from ..request import INGEST_LIVE_WHIP, INGEST_WHIP, StreamRequest
from ..stream.hub import StreamHub
from ..stream.publisher import Publisher

log = logging.getLogger("mediagw.ingest.whip")

__all__ = ["WhipGateway"]

_ASK_AGAIN = 27_000  # 0.3 s (90 kHz): no keyframe yet after asking -> ask again
_ADMITTED = web.RequestKey("mediagw.whip.request", StreamRequest)


class WhipGateway:
    def __init__(
        self,
        hub: StreamHub,
        admission: Admission,
        executor: Executor,
        *,
        ice: IceConfig | None = None,
        keyframe_interval: float = 2.0,
        max_sessions: int = 16,
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.hub = hub
        self.admission = admission
        self.executor = executor
        self.ingest = WhipIngest(
            WhipConfig(
                ice=ice or IceConfig(),
                keyframe_interval=2 * keyframe_interval,
                max_sessions=max_sessions,
            )
        )
        self.audio_dropped = 0  # audio units not carried (not Opus)
        self.audio_packets = 0  # Opus packets transcoded to AAC (ended sessions)
        self.audio_bad_packets = 0  # broken Opus packets skipped (ended sessions)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        for prefix in ("/live/video-to-video/{stream}/whip", "/whip/{stream}"):
            add_whip_routes(
                app,
                prefix,
                self.ingest,
                self._on_session,
                authorize=self._authorize,
                on_refused=self._refused,
                cors_origin="*",
            )

    async def _authorize(self, request: web.Request) -> None:
        name = request.match_info["stream"]
        url = f"{request.scheme}://{request.host}{request.path_qs}"
        live = request.path.startswith("/live/video-to-video/")
        ingest = INGEST_LIVE_WHIP if live else INGEST_WHIP
        query = dict(request.query)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            query["key"] = token.strip()  # WHIP clients (OBS) send the stream key as a bearer token
        attempt = PublishAttempt(url, "live", name, query, request.remote or "", ingest=ingest)
        try:  # a bad pipeline, id or params is refused before any SDP work
            admitted = await self.admission.admit(attempt)
        except BadStreamRequest as exc:
            raise web.HTTPBadRequest(text=exc.description) from None
        except StreamBusy as exc:  # live on another gateway node
            raise web.HTTPConflict(text=exc.description) from None
        except PublishRejected as exc:
            if exc.code == UNAUTHORIZED:  # no valid stream key: WHIP's 401 (RFC 9725)
                raise web.HTTPUnauthorized(
                    text=exc.description, headers={"WWW-Authenticate": "Bearer"}
                ) from None
            raise web.HTTPForbidden(text=exc.description) from None
        stream = self.hub.get(admitted.id)
        if stream is not None and stream.live:
            self.admission.abandon(admitted)
            raise web.HTTPConflict(text=str(StreamBusy(admitted.id)))
        request[_ADMITTED] = admitted

    def _refused(self, request: web.Request) -> None:
        """An admitted offer got no session (too large, malformed, full, the client gone, the
        hub's refusal): its stream's claim is given back at once, not left to expire."""
        admitted = request.get(_ADMITTED)
        if admitted is not None:
            self.admission.abandon(admitted)

    async def _on_session(self, request: web.Request, session: WhipSession) -> Mapping[str, str]:
        try:
            stream = self.hub.begin_publish(request[_ADMITTED])
        except PublishRejected as exc:  # _refused gives the claim back
            raise web.HTTPConflict(text=exc.description) from None
        demuxer = RtpDemuxer(audio=session.has_audio)
        publisher = Publisher(
            self.hub, stream, self.executor, demuxer=demuxer,
            wallclock=self.clock.wall, monotonic=self.clock.monotonic,
        )  # fmt: skip
        task = asyncio.get_running_loop().create_task(
            self._pump(session, publisher, demuxer), name=f"whip:{stream.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("whip publish accepted", extra={"stream": stream.id, "session": session.id})
        # The session's URL names the stream by its id, not by the stream key the offer was
        # posted to: any gateway node finds the stream's owner from it (a DELETE that lands on
        # another node is proxied there), and the key is not repeated in another URL.
        endpoint = request.match_info.route.resource
        url = endpoint.url_for(stream=stream.id) if endpoint is not None else request.rel_url
        path = url.raw_path
        return {
            "Location": f"{path.rstrip('/')}/{session.id}",
            "Livepeer-Playback-URL": f"/stream/{stream.id}.m3u8",
        }

    async def _pump(self, session: WhipSession, publisher: Publisher, demuxer: RtpDemuxer) -> None:
        error: str | None = None
        tolerance = 900  # the segmenter's cut tolerance (10 ms)
        segment_start: int | None = None
        segmenter = publisher.stream.segmenter
        asked_at: int | None = None  # pts when a keyframe was last asked for in this segment
        last_pts: int | None = None
        step = 3000  # the frame interval seen last (90 kHz; 30 fps until measured)
        try:
            async for unit in session:
                if not isinstance(unit, VideoAccessUnit):
                    if unit.codec != "opus":
                        self.audio_dropped += 1
                        continue
                    rate = unit.clock_rate  # Opus: 48 kHz -> the segmenter's 90 kHz
                    await publisher.unit("audio", unit.data, (unit.pts * CLOCK + rate // 2) // rate)
                    continue
                target = segmenter.target_ticks  # live AI may shorten it mid-stream
                if last_pts is not None and 0 < unit.pts - last_pts <= 9000:
                    step = unit.pts - last_pts
                last_pts = unit.pts
                age = unit.pts - segment_start if segment_start is not None else None
                if unit.keyframe and (age is None or age >= target - tolerance):
                    segment_start, asked_at = unit.pts, None  # the segmenter cuts here
                elif (
                    age is not None
                    and age + step >= target
                    and (asked_at is None or unit.pts - asked_at >= _ASK_AGAIN)
                ):
                    # one frame early: the browser's keyframe is then the first frame due
                    # at or after the target, not the one after it; asked again if it is lost
                    session.request_keyframe()
                    asked_at = unit.pts
                await publisher.unit("video", unit.data, unit.pts, unit.dts)
        except Exception as exc:  # one session's failure ends only that stream
            error = f"{type(exc).__name__}: {exc}"
            log.warning("whip session failed", extra={"session": session.id, "error": error})
            await session.close("media error")
        finally:
            await publisher.close(error)
            # the publisher's worker is done: the demuxer's counters are no longer moving
            audio = demuxer.audio_stats
            self.audio_packets += audio.packets
            self.audio_bad_packets += audio.bad_packets
            if demuxer.audio_error is not None:
                log.warning(
                    "whip audio given up",
                    extra={"stream": publisher.stream.id, "error": demuxer.audio_error},
                )
            if audio.packets:
                log.info(
                    "whip audio transcoded",
                    extra={
                        "stream": publisher.stream.id,
                        "opus_packets": audio.packets,
                        "bad_packets": audio.bad_packets,
                        "aac_frames": audio.aac_frames,
                        "filled_ms": audio.filled_samples // 48,
                        "jumps": audio.jumps,
                    },
                )

    async def close(self) -> None:
        await self.ingest.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
