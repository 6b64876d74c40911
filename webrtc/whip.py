"""WHIP ingest: accept a publisher's offer and hand over its H.264 access units and Opus packets.

Nothing is decoded or re-encoded: aiortc's receiver depacketizes RTP into Annex B frames and
``webrtc.tap`` takes them before its decoder. Each session delivers, through ``async for unit in
session``, a stream that starts at a keyframe; after loss or consumer overflow video resumes at
the next keyframe (one is requested at once). Keyframes are requested (RTCP PLI) every
``keyframe_interval`` unless one arrived recently, since browsers send H.264 IDRs only when asked.

Timestamps: video pts/dts in 90 kHz, audio in 48 kHz, both from one session epoch (the first
media packet of the session). Each track is anchored at the arrival time of the first RTP packet
of its first frame (not at the moment the jitter buffer completes the frame, which is when the
next frame's first packet arrives: up to a frame interval later, and that differs between a 20 ms
Opus track and a low-rate video track) and then follows its own RTP clock, unwrapped. Lip sync is
therefore as good as the difference between the two tracks' capture-to-arrival delays (encoder
latency, pacing, network), typically a few tens of milliseconds. H.264 from WebRTC has no
B-frames, so dts = pts.

Why not RTCP sender reports (the RTP <-> NTP pairs that RFC 3550 provides for lip sync):
aiortc 1.16 handles SRs inside ``RTCRtpReceiver._handle_rtcp_packet`` and exposes only their NTP
time (``getStats()``, remote-outbound-rtp ``remoteTimestamp``), not the RTP timestamp they pair it
with, so reading them would mean hooking one more private method. They also arrive only after the
media has started (aiortc's first SR 0.5-1.5 s in, at random), so the start of a stream (the
first segment) could only be placed by arrival anyway, and a later correction would be a step in
the audio timeline. And aiortc's own sender stamps its SRs with the time the packet was sent, not
captured, which carries the same encoder-latency bias as arrival. Arrival at the first packet is
what is used; a sender-report correction can be layered on later without changing the consumer
(it would shift the audio clock once the reports of both tracks are in).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from . import tap
from .config import IceConfig, add_nat_candidates, gathering_scope
from .errors import CapacityError, NotFoundError, OfferError, WebRTCError
from .media import (
    OPUS_CLOCK_RATE,
    VIDEO_CLOCK_RATE,
    AudioPacket,
    MediaUnit,
    ParameterSetCache,
    VideoAccessUnit,
    is_annexb,
    is_keyframe,
)
from .sdp import check_offer, preferred_codecs

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True)
class WhipConfig:
    ice: IceConfig = field(default_factory=IceConfig)
    max_sessions: int = 16
    keyframe_interval: float = 2.0  # PLI period (go-livepeer: 2 s)
    disconnected_after: float = 5.0  # no packet for this long: state "disconnected"
    failed_after: float = 10.0  # no packet for this long: session closed
    connect_timeout: float = 15.0  # no media this long after the answer: session closed
    queue_size: int = 1024  # media units buffered for a slow consumer before dropping
    tick: float = 0.25  # supervisor period


@dataclass
class WhipStats:
    video_frames: int = 0
    keyframes: int = 0
    audio_packets: int = 0
    video_bytes: int = 0
    packets: int = 0
    losses: int = 0  # times the jitter buffer discarded packets
    dropped_overflow: int = 0  # units dropped because the consumer fell behind
    dropped_waiting_keyframe: int = 0  # video frames dropped until a keyframe
    keyframe_requests: int = 0


class _TrackClock:
    """RTP timestamp (32-bit, wrapping) -> increasing ticks since the session epoch.

    ``saw_packet`` notes when the first packet of each RTP timestamp arrived (the last few), so a
    frame is anchored at the arrival of its first packet rather than at its completion.
    """

    MAX_STEP = 5.0  # seconds: a larger jump is a new clock, not elapsed time
    ARRIVALS = 32  # RTP timestamps remembered (frames in flight in the jitter buffer)

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._last: int | None = None
        self._ticks = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=self.ARRIVALS)

    def saw_packet(self, rtp_ts: int, now: float) -> None:
        if not self._arrivals or self._arrivals[-1][0] != rtp_ts:
            self._arrivals.append((rtp_ts, now))

    def _first_arrival(self, rtp_ts: int, default: float) -> float:
        for ts, at in self._arrivals:
            if ts == rtp_ts:
                return at
        return default

    def map(self, rtp_ts: int, arrival: float, epoch: float) -> int:
        if self._last is not None:
            diff = (rtp_ts - self._last) & 0xFFFFFFFF
            if diff >= 1 << 31:
                diff -= 1 << 32
            if 0 < diff <= self.MAX_STEP * self.rate:
                self._ticks += diff
                self._last = rtp_ts
                return self._ticks
        anchored = max(0, round((self._first_arrival(rtp_ts, arrival) - epoch) * self.rate))
        if self._last is None:
            self._ticks = anchored
        else:  # a new RTP clock (sender restart, SSRC change) or a step back: re-anchor
            self._ticks = max(anchored, self._ticks + 1)
        self._last = rtp_ts
        return self._ticks


class WhipSession:
    """One publisher. Iterate it for :class:`VideoAccessUnit` / :class:`AudioPacket`."""

    def __init__(self, session_id: str, pc: RTCPeerConnection, config: WhipConfig, clock: Clock):
        self.id = session_id
        self.etag = 'W/"' + secrets.token_hex(8) + '"'
        self.pc = pc
        self.config = config
        self.stats = WhipStats()
        self.state = "new"  # new -> connected <-> disconnected -> closed
        self.close_reason: str | None = None
        self.has_audio = False
        self._clock = clock
        self.created_at = clock()
        self._queue: deque[MediaUnit] = deque()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._done = asyncio.Event()
        self._epoch: float | None = None
        self._last_packet: float | None = None
        self._last_keyframe = -1e9
        self._last_pli = -1e9
        # Why video waits for a keyframe: "start", "loss" (ask the publisher for one at once),
        # "overflow" (the consumer fell behind: the periodic keyframe will do), or None.
        self._need_keyframe: str | None = "start"
        self._params = ParameterSetCache()
        self._video_clock = _TrackClock(VIDEO_CLOCK_RATE)
        self._audio_clock = _TrackClock(OPUS_CLOCK_RATE)
        self._video_receiver: RTCRtpReceiver | None = None
        self._video_ssrc: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._on_closed: Callable[[WhipSession], None] | None = None

    # --- consumer side ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[MediaUnit]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[MediaUnit]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            if self._closed.is_set():
                return
            self._wake.clear()
            await self._wake.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def request_keyframe(self) -> None:
        """Send a PLI now (at most one per quarter interval, and per 250 ms)."""
        now = self._clock()
        gap = min(self.config.keyframe_interval / 4, 0.25)
        if self._video_receiver is None or self._video_ssrc is None or now - self._last_pli < gap:
            return
        self._last_pli = now
        self.stats.keyframe_requests += 1
        self._spawn(tap.send_pli(self._video_receiver, self._video_ssrc))

    async def close(self, reason: str = "closed") -> None:
        if self._closed.is_set():
            await self._done.wait()  # another caller is closing: return when it is done
            return
        self.close_reason = reason
        self.state = "closed"
        self._closed.set()
        self._wake.set()
        if self._on_closed is not None:
            self._on_closed(self)  # forgotten at once: the slot is free for a new session
        log.info("whip session %s closed: %s", self.id, reason)
        current = asyncio.current_task()
        for task in [*self._tasks, self._supervisor]:
            if task is not None and task is not current:
                task.cancel()
        try:
            await self.pc.close()
        finally:
            self._done.set()

    # --- wiring (called by WhipIngest) ------------------------------------------------------

    def _attach(self, video: RTCRtpReceiver, audio: RTCRtpReceiver | None) -> None:
        self._video_receiver = video
        tap.attach(video, is_video=True, on_packet=self._on_video_packet, on_frame=self._on_video)
        if audio is not None:
            self.has_audio = True
            tap.attach(
                audio, is_video=False, on_packet=self._on_audio_packet, on_frame=self._on_audio
            )

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._spawn(self.close(f"peer connection {self.pc.connectionState}"))

    def _start(self, on_closed: Callable[[WhipSession], None]) -> None:
        self._on_closed = on_closed
        self._supervisor = asyncio.create_task(self._supervise())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_packet(self, packet: RtpPacket) -> float:
        now = self._clock()
        self._last_packet = now
        self.stats.packets += 1
        if self._epoch is None:
            self._epoch = now
        if self.state in ("new", "disconnected"):
            self.state = "connected"
        return now

    def _on_video_packet(self, packet: RtpPacket) -> None:
        self._video_ssrc = packet.ssrc
        self._video_clock.saw_packet(packet.timestamp, self._on_packet(packet))

    def _on_audio_packet(self, packet: RtpPacket) -> None:
        self._audio_clock.saw_packet(packet.timestamp, self._on_packet(packet))

    def _on_video(self, frame: JitterFrame | None, loss: bool) -> None:
        if loss:
            self.stats.losses += 1
            self._need_keyframe = "loss"
            self.request_keyframe()
        if frame is None or not frame.data or self.closed:  # padding-only packets: no frame
            return
        data = frame.data
        if not is_annexb(data):  # the frame started mid-fragment: unusable
            self._need_keyframe = self._need_keyframe or "loss"
            self._drop_until_keyframe()
            return
        key = is_keyframe(data)
        if self._need_keyframe and not key:
            self._drop_until_keyframe()
            return
        self._need_keyframe = None
        now = self._clock()
        if key:
            self._last_keyframe = now
            data = self._params.complete(data, True)
        pts = self._video_clock.map(frame.timestamp, now, self._epoch or now)
        if self._push(VideoAccessUnit(data=data, pts=pts, dts=pts, keyframe=key)):
            self.stats.video_frames += 1
            self.stats.keyframes += int(key)
            self.stats.video_bytes += len(data)
        else:  # the consumer fell behind: resume at the next (periodic) keyframe
            self._need_keyframe = "overflow"

    def _drop_until_keyframe(self) -> None:
        self.stats.dropped_waiting_keyframe += 1
        if self._need_keyframe != "overflow":
            self.request_keyframe()

    def _on_audio(self, frame: JitterFrame | None, loss: bool) -> None:
        if frame is None or self.closed or not frame.data:
            return
        now = self._clock()
        pts = self._audio_clock.map(frame.timestamp, now, self._epoch or now)
        if self._push(AudioPacket(data=frame.data, pts=pts)):
            self.stats.audio_packets += 1

    def _push(self, unit: MediaUnit) -> bool:
        if len(self._queue) >= self.config.queue_size:
            self.stats.dropped_overflow += 1
            return False
        self._queue.append(unit)
        self._wake.set()
        return True

    async def _supervise(self) -> None:
        cfg = self.config
        while not self.closed:
            await asyncio.sleep(cfg.tick)
            now = self._clock()
            if self._last_packet is None:
                if now - self.created_at >= cfg.connect_timeout:
                    await self.close(f"no media within {cfg.connect_timeout:g} s")
                    return
                continue
            idle = now - self._last_packet
            if idle >= cfg.failed_after:
                await self.close(f"no media for {cfg.failed_after:g} s (ICE failed)")
                return
            if idle >= cfg.disconnected_after:
                self.state = "disconnected"
            interval = cfg.keyframe_interval
            if now - self._last_pli >= interval and now - self._last_keyframe >= interval / 2:
                self.request_keyframe()


class WhipIngest:
    """Bounded set of WHIP sessions."""

    def __init__(self, config: WhipConfig | None = None, *, clock: Clock = time.monotonic):
        self.config = config or WhipConfig()
        self._clock = clock
        self._sessions: dict[str, WhipSession] = {}
        self._pending = 0

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def sessions(self) -> dict[str, WhipSession]:
        return dict(self._sessions)

    def get(self, session_id: str) -> WhipSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise NotFoundError(f"no WHIP session {session_id!r}") from None

    async def offer(self, sdp: str) -> tuple[str, str]:
        """Answer a publisher's offer: returns (answer SDP, session id)."""
        summary = check_offer(sdp, "publish")
        if len(self._sessions) + self._pending >= self.config.max_sessions:
            raise CapacityError(f"WHIP session limit reached ({self.config.max_sessions})")
        self._pending += 1
        try:
            session = await self._negotiate(summary.sdp, summary.has_audio)
        finally:
            self._pending -= 1
        self._sessions[session.id] = session
        session._start(self._forget)
        log.info("whip session %s started (audio=%s)", session.id, session.has_audio)
        assert session.pc.localDescription is not None
        answer = add_nat_candidates(session.pc.localDescription.sdp, self.config.ice.nat_1to1_ips)
        if "a=candidate:" not in answer:
            log.warning("WHIP answer has no ICE candidate: no usable interface (IceConfig)")
        return answer, session.id

    async def _negotiate(self, sdp: str, has_audio: bool) -> WhipSession:
        ice = self.config.ice
        pc = RTCPeerConnection(configuration=ice.rtc_configuration())
        session = WhipSession(secrets.token_urlsafe(16), pc, self.config, self._clock)
        try:
            video = pc.addTransceiver("video", direction="recvonly")
            video.setCodecPreferences(preferred_codecs("video", "publish"))
            audio = None
            if has_audio:
                audio = pc.addTransceiver("audio", direction="recvonly")
                audio.setCodecPreferences(preferred_codecs("audio", "publish"))
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except WebRTCError:
                raise
            except Exception as exc:  # aiortc: ValueError, OperationError, ...
                raise OfferError(f"cannot apply the offer: {exc}") from exc
            session._attach(video.receiver, audio.receiver if audio is not None else None)
            answer = await pc.createAnswer()
            with gathering_scope(ice):
                await pc.setLocalDescription(answer)
        except BaseException:
            await pc.close()
            raise
        return session

    def _forget(self, session: WhipSession) -> None:
        self._sessions.pop(session.id, None)

    async def close(self, session_id: str, reason: str = "deleted") -> None:
        await self.get(session_id).close(reason)

    async def aclose(self) -> None:
        """Close every session (application shutdown)."""
        await asyncio.gather(*(s.close("shutdown") for s in list(self._sessions.values())))
