"""HTTP push ingest, go-livepeer's ``POST|PUT /live/{manifestID}/{seq}.ts`` (transcode spec §12.2).

The client pushes ready-made MPEG-TS segments; each is published as the ``source`` rendition,
transcoded on the network, published as the other renditions, and answered with the
renditions (``multipart/mixed`` when ``Accept: multipart/mixed`` asks for it, else an empty
200). A pushed stream idle for 60 s is ended. Status codes follow go-livepeer: 400 bad request
or configuration header, 403 refused by the auth webhook, 405 wrong method, 413 too large,
503 no orchestrator produced output, 422 input the network cannot transcode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from segmenter import CLOCK, Segment

from ..clock import SYSTEM, Clock
from ..errors import ConfigError, IngestError, PublishRejected
from ..httpbody import read_prefix
from ..livepeer.profiles import Profile, parse_profiles_json
from ..pipelines.transcode import SegmentTranscoder, TranscodeJob
from ..platform.admission import Admission
from ..platform.stream_auth import PublishAttempt
from ..publish.hls import HLSPublisher
from ..request import INGEST_HTTP_PUSH, Ladder, StreamRequest
from ..stream.hub import Stream, StreamHub

log = logging.getLogger("mediagw.push")

__all__ = ["PushIngest"]

MAX_SEGMENT_BYTES = 64 * 1024 * 1024
IDLE_SECONDS = 60.0
CONFIG_HEADER = "Livepeer-Transcode-Configuration"
MAX_TIMEOUT_MULTIPLIER = 100


@dataclass(eq=False)
class _Pushed:
    stream: Stream
    profiles: tuple[Profile, ...]
    last_seen: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_seq: int = -1


class PushIngest:
    def __init__(
        self,
        hub: StreamHub,
        hls: HLSPublisher,
        admission: Admission,
        transcoder: SegmentTranscoder | None,
        ladder: Callable[[Ladder], tuple[Profile, ...]],
        *,
        enabled: bool = True,
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.hub = hub
        self.hls = hls
        self.admission = admission
        self.transcoder = transcoder
        self.ladder = ladder
        self.enabled = enabled
        self._streams: dict[str, _Pushed] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", r"/live/{manifest}/{seq:\d{1,12}}.{ext}", self.handle)

    async def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="push-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for pushed in list(self._streams.values()):
            await self._end(pushed)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = self.clock.monotonic()
            for pushed in list(self._streams.values()):
                if now - pushed.last_seen > IDLE_SECONDS and not pushed.lock.locked():
                    await self._end(pushed)

    async def _end(self, pushed: _Pushed) -> None:
        self._streams.pop(pushed.stream.id, None)
        session = pushed.stream.stats.sessions
        self.hub.end_publish(pushed.stream)
        async with pushed.lock:  # a segment still being transcoded is listed before the end
            self.hls.end(pushed.stream.id, [p.name for p in pushed.profiles], session)
        if self.transcoder is not None:
            await self.transcoder.end_stream(pushed.stream.id)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("POST", "PUT"):
            return web.Response(status=405, text="method not allowed: use POST or PUT")
        if not self.enabled:
            return web.Response(
                status=403,
                text="HTTP push ingest is off on a public address without an auth webhook: "
                "set -authWebhookUrl or -httpIngest",
            )
        ext = request.match_info["ext"]
        if ext not in ("ts", "mp4"):
            return web.Response(status=400, text=f"unsupported extension .{ext}: push .ts")
        if ext == "mp4":
            return web.Response(status=400, text="MP4 push is not supported yet: push MPEG-TS")
        manifest = request.match_info["manifest"]
        seq = int(request.match_info["seq"])
        try:
            duration = _duration(request.headers.get("Content-Duration"))
            header_cfg = _config_header(request.headers.get(CONFIG_HEADER))
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
        if request.content_length is not None and request.content_length > MAX_SEGMENT_BYTES:
            return web.Response(status=413, text=f"segment larger than {MAX_SEGMENT_BYTES} bytes")
        body = await read_prefix(request.content, MAX_SEGMENT_BYTES + 1)
        if len(body) > MAX_SEGMENT_BYTES:
            return web.Response(status=413, text=f"segment larger than {MAX_SEGMENT_BYTES} bytes")
        if not body:
            return web.Response(status=400, text="empty segment")
        try:
            pushed = await self._stream_for(request, manifest, header_cfg)
        except PublishRejected as exc:
            return web.Response(status=403, text=exc.description)
        except (ConfigError, IngestError) as exc:
            return web.Response(status=400, text=str(exc))
        async with pushed.lock:
            pushed.last_seen = self.clock.monotonic()
            return await self._segment(request, pushed, seq, duration, body, header_cfg)

    async def _stream_for(
        self, request: web.Request, manifest: str, header_cfg: dict[str, Any] | None
    ) -> _Pushed:
        pushed = self._streams.get(manifest)
        if pushed is not None and pushed.stream.live:
            return pushed
        url = f"http://{request.host}{request.path}"
        attempt = PublishAttempt(
            url, "live", manifest, {}, request.remote or "", ingest=INGEST_HTTP_PUSH
        )
        admitted = await self.admission.admit(attempt)
        try:
            stream, profiles = self._begin(admitted, header_cfg)
        except Exception:  # refused (a limit, a bad ladder): the claim is given back
            self.admission.abandon(admitted)
            raise
        pushed = _Pushed(stream, profiles, self.clock.monotonic())
        self._streams[manifest] = pushed
        return pushed

    def _begin(
        self, admitted: StreamRequest, header_cfg: dict[str, Any] | None
    ) -> tuple[Stream, tuple[Profile, ...]]:
        """The admitted push's stream (begun, unless live) and its ladder."""
        profiles = self.ladder(admitted.ladder)
        if header_cfg and header_cfg.get("profiles") is not None:
            webhook = admitted.ladder.profiles
            if webhook is not None and _canon([dict(p) for p in webhook]) != _canon(
                header_cfg["profiles"]
            ):
                raise ConfigError(
                    f"{CONFIG_HEADER} profiles differ from the auth webhook's: "
                    "send the same or none"
                )
            profiles = tuple(parse_profiles_json(header_cfg["profiles"]))
        stream = self.hub.get(admitted.id)
        if stream is None or not stream.live:
            stream = self.hub.begin_publish(admitted)
        return stream, profiles

    async def _segment(
        self,
        request: web.Request,
        pushed: _Pushed,
        seq: int,
        duration: float,
        body: bytes,
        header_cfg: dict[str, Any] | None,
    ) -> web.StreamResponse:
        stream = pushed.stream
        discontinuity = pushed.last_seq >= 0 and seq != pushed.last_seq + 1
        if seq <= pushed.last_seq:
            return web.Response(status=400, text=f"segment {seq} is not after {pushed.last_seq}")
        pushed.last_seq = seq
        segment = Segment(
            seq, body, 0, round(duration * CLOCK), discontinuity, None, None, 0, 0,
            meta={"pdt": self.clock.wall()},
        )  # fmt: skip
        self.hub.add_segment(stream, segment)
        if self.transcoder is None or not pushed.profiles:
            return web.Response(status=503, text="No sessions available")
        multiplier = float((header_cfg or {}).get("timeoutMultiplier") or 1)
        job = TranscodeJob(
            stream.id, seq, body, duration, pushed.profiles, (), True, max(1.0, multiplier)
        )
        session = stream.stats.sessions  # the one this segment belongs to, whatever comes next
        outcome = await self.transcoder.transcode(job)
        if not outcome.ok:
            status = 422 if outcome.error and "non-retryable" in outcome.error else 503
            text = "No sessions available" if status == 503 else outcome.error or "error"
            log.warning("push segment not transcoded", extra={"stream": stream.id, "seq": seq})
            for p in pushed.profiles:  # its slot stays, as a gap: the numbering holds
                self.hls.publish_gap(
                    stream.id, p.name, seq, duration, pdt=segment.meta["pdt"],
                    discontinuity=discontinuity, session=session,
                )  # fmt: skip
            return web.Response(status=status, text=text)
        for r in outcome.renditions:
            self.hls.publish(
                stream.id, r.profile.name, seq, r.data, duration, pdt=segment.meta["pdt"],
                discontinuity=discontinuity, resolution=(r.profile.width, r.profile.height),
                session=session,
            )  # fmt: skip
        if request.headers.get("Accept") != "multipart/mixed":
            return web.Response(status=200)
        return await _multipart(request, seq, outcome.renditions)


async def _multipart(request: web.Request, seq: int, renditions: Any) -> web.StreamResponse:
    boundary = uuid.uuid4().hex
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}
    )
    await resp.prepare(request)
    for r in renditions:
        name = f"{r.profile.name}_{seq}.ts"
        head = (
            f"--{boundary}\r\n"
            f'Content-Type: video/mp2t; name="{name}"\r\n'
            f"Content-Length: {len(r.data)}\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            f"Rendition-Name: {r.profile.name}\r\n\r\n"
        )
        await resp.write(head.encode() + r.data + b"\r\n")
    await resp.write(f"--{boundary}--\r\n".encode())
    await resp.write_eof()
    return resp


def _duration(value: str | None) -> float:
    """Content-Duration in ms; missing or unparsable -> 2 s (go-livepeer)."""
    try:
        ms = int(value) if value is not None else 2000
    except ValueError:
        ms = 2000
    if ms <= 0 or ms > 5 * 60 * 1000:
        raise ValueError(f"Content-Duration {value} ms is out of range (1 ms .. 5 min)")
    return ms / 1000


def _config_header(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    if len(value) > 64 * 1024:
        raise ValueError(f"{CONFIG_HEADER} too large")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise ValueError(f"{CONFIG_HEADER} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{CONFIG_HEADER} must be a JSON object")
    multiplier = data.get("timeoutMultiplier")
    if multiplier is not None and (
        isinstance(multiplier, bool)
        or not isinstance(multiplier, int | float)
        or not 0 <= multiplier <= MAX_TIMEOUT_MULTIPLIER
    ):
        raise ValueError(
            f"{CONFIG_HEADER} timeoutMultiplier must be a number from 0 to {MAX_TIMEOUT_MULTIPLIER}"
        )
    return data


def _canon(profiles: Any) -> str:
    return json.dumps(profiles, sort_keys=True, separators=(",", ":"))
