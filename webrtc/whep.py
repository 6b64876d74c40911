"""WHEP egress: play one encoded stream to many viewers, without per-viewer encoding.

Each viewer is an ``RTCPeerConnection`` whose sender reads a :class:`_PacketTrack`; the track's
``recv()`` returns the ``av.Packet`` objects an :class:`EncodedSource` fans out, and aiortc's
sender packetizes them (``Encoder.pack``: H.264 split into NAL units, STAP-A / FU-A; Opus as is)
instead of encoding. The negotiated codec must therefore be H.264 (and Opus for audio); the
source should be B-frame free (WebRTC has no decode-order timestamps) and browser decodable.

Viewer liveness: a viewer whose RTCP receiver reports stop for ``viewer_timeout`` (seen through
the public ``RTCRtpSender.getStats()``), or whose connection fails, is closed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .config import IceConfig, add_nat_candidates, gathering_scope
from .errors import CapacityError, NotFoundError, OfferError, WebRTCError
from .sdp import check_offer, preferred_codecs
from .source import EncodedSource, SubscriberStats, Subscription

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True)
class WhepConfig:
    ice: IceConfig = field(default_factory=IceConfig)
    max_sessions: int | None = 5  # all streams together; None = unlimited (go-livepeer: 5)
    max_viewers_per_stream: int | None = None
    video_queue: int = 90  # frames a viewer may fall behind before it skips to a keyframe
    audio_queue: int = 150
    viewer_timeout: float = 10.0  # no RTCP receiver report for this long: viewer closed
    connect_timeout: float = 15.0
    tick: float = 0.5


class _PacketTrack(MediaStreamTrack):
    """A track whose frames are already encoded packets."""

    def __init__(self, kind: str, pull: Callable[[], Awaitable[av.Packet[Any] | None]]) -> None:
        super().__init__()
        self.kind = kind
        self._pull = pull

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._pull()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


class WhepSession:
    """One viewer."""

    def __init__(
        self,
        session_id: str,
        stream: str,
        pc: RTCPeerConnection,
        subscription: Subscription,
        config: WhepConfig,
        clock: Clock,
    ) -> None:
        self.id = session_id
        self.etag = 'W/"' + secrets.token_hex(8) + '"'
        self.stream = stream
        self.pc = pc
        self.subscription = subscription
        self.config = config
        self.state = "new"
        self.close_reason: str | None = None
        self.created_at = clock()
        self._clock = clock
        self._senders: list[RTCRtpSender] = []
        self._last_report: float | None = None
        self._report_marks: dict[str, object] = {}
        self._closed = asyncio.Event()
        self._done = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._on_closed: Callable[[WhepSession], None] | None = None

    @property
    def stats(self) -> SubscriberStats:
        return self.subscription.stats

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self, reason: str = "closed") -> None:
        if self._closed.is_set():
            await self._done.wait()  # another caller is closing: return when it is done
            return
        self._closed.set()
        self.close_reason = reason
        self.state = "closed"
        if self._on_closed is not None:
            self._on_closed(self)  # forgotten at once: the slot is free for a new session
        log.info("whep viewer %s of %r closed: %s", self.id, self.stream, reason)
        self.subscription.close()
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
        try:
            await self.pc.close()
        finally:
            self._done.set()

    def _start(self, on_closed: Callable[[WhepSession], None]) -> None:
        self._on_closed = on_closed

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            state = self.pc.connectionState
            if state in ("failed", "closed"):
                task = asyncio.ensure_future(self.close(f"peer connection {state}"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._supervisor = asyncio.create_task(self._supervise())

    async def _reports_seen(self) -> bool:
        """True if a new RTCP receiver report arrived since the last call."""
        fresh = False
        for sender in self._senders:
            report = await sender.getStats()
            for key, stat in report.items():
                if getattr(stat, "type", None) == "remote-inbound-rtp":
                    mark = getattr(stat, "timestamp", None)
                    if self._report_marks.get(key) != mark:
                        self._report_marks[key] = mark
                        fresh = True
        return fresh

    async def _supervise(self) -> None:
        cfg = self.config
        while not self.closed:
            await asyncio.sleep(cfg.tick)
            now = self._clock()
            if self._last_report is None:  # not connected yet
                if self.pc.connectionState == "connected":
                    self._last_report = now  # the first report is due within ~1.5 s
                    self.state = "connected"
                elif now - self.created_at >= cfg.connect_timeout:
                    await self.close(f"not connected within {cfg.connect_timeout:g} s")
                    return
                continue
            if await self._reports_seen():
                self._last_report = now
                self.state = "connected"
            elif now - self._last_report >= cfg.viewer_timeout:
                await self.close(f"no receiver report for {cfg.viewer_timeout:g} s")
                return


class WhepEgress:
    """Streams (one :class:`EncodedSource` each) and their bounded viewers."""

    def __init__(self, config: WhepConfig | None = None, *, clock: Clock = time.monotonic):
        self.config = config or WhepConfig()
        self._clock = clock
        self._sources: dict[str, EncodedSource] = {}
        self._sessions: dict[str, WhepSession] = {}
        self._pending = 0

    # --- streams -----------------------------------------------------------------------------

    def add_source(self, stream: str, *, has_audio: bool = False) -> EncodedSource:
        """Create (or return the existing) source of ``stream``."""
        source = self._sources.get(stream)
        if source is None or source.closed:
            source = EncodedSource(has_audio=has_audio)
            self._sources[stream] = source
        return source

    def source(self, stream: str) -> EncodedSource:
        try:
            return self._sources[stream]
        except KeyError:
            raise NotFoundError(f"no stream {stream!r} to play") from None

    async def remove_source(self, stream: str) -> None:
        """End a stream and close its viewers."""
        source = self._sources.pop(stream, None)
        if source is not None:
            source.close()
        viewers = [s for s in self._sessions.values() if s.stream == stream]
        await asyncio.gather(*(s.close("stream ended") for s in viewers))

    # --- viewers -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def sessions(self) -> dict[str, WhepSession]:
        return dict(self._sessions)

    def get(self, session_id: str) -> WhepSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise NotFoundError(f"no WHEP session {session_id!r}") from None

    async def offer(self, stream: str, sdp: str) -> tuple[str, str]:
        """Answer a viewer's offer for ``stream``: returns (answer SDP, session id)."""
        summary = check_offer(sdp, "play")
        source = self.source(stream)
        cfg = self.config
        if cfg.max_sessions is not None and len(self._sessions) + self._pending >= cfg.max_sessions:
            raise CapacityError(f"WHEP viewer limit reached ({cfg.max_sessions})")
        if cfg.max_viewers_per_stream is not None and source.viewers >= cfg.max_viewers_per_stream:
            raise CapacityError(f"viewer limit of stream {stream!r} reached")
        self._pending += 1
        try:
            session = await self._negotiate(stream, source, summary.sdp, summary.has_audio)
        finally:
            self._pending -= 1
        self._sessions[session.id] = session
        session._start(self._forget)
        assert session.pc.localDescription is not None
        answer = add_nat_candidates(session.pc.localDescription.sdp, cfg.ice.nat_1to1_ips)
        if "a=candidate:" not in answer:
            log.warning("WHEP answer has no ICE candidate: no usable interface (IceConfig)")
        return answer, session.id

    async def _negotiate(
        self, stream: str, source: EncodedSource, sdp: str, offered_audio: bool
    ) -> WhepSession:
        cfg = self.config
        with_audio = offered_audio and source.has_audio
        sub = source.subscribe(
            audio=with_audio, video_size=cfg.video_queue, audio_size=cfg.audio_queue
        )
        pc = RTCPeerConnection(configuration=cfg.ice.rtc_configuration())
        session = WhepSession(secrets.token_urlsafe(16), stream, pc, sub, cfg, self._clock)
        try:
            video = pc.addTransceiver(_PacketTrack("video", sub.next_video), direction="sendonly")
            video.setCodecPreferences(preferred_codecs("video", "play"))
            session._senders.append(video.sender)
            if with_audio:
                audio = pc.addTransceiver(
                    _PacketTrack("audio", sub.next_audio), direction="sendonly"
                )
                audio.setCodecPreferences(preferred_codecs("audio", "play"))
                session._senders.append(audio.sender)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except WebRTCError:
                raise
            except Exception as exc:
                raise OfferError(f"cannot apply the offer: {exc}") from exc
            answer = await pc.createAnswer()
            with gathering_scope(cfg.ice):
                await pc.setLocalDescription(answer)
        except BaseException:
            sub.close()
            await pc.close()
            raise
        return session

    def _forget(self, session: WhepSession) -> None:
        self._sessions.pop(session.id, None)

    async def close(self, session_id: str, reason: str = "deleted") -> None:
        await self.get(session_id).close(reason)

    async def aclose(self) -> None:
        await asyncio.gather(*(s.close("shutdown") for s in list(self._sessions.values())))
        for source in self._sources.values():
            source.close()
        self._sources.clear()
