"""One encoded stream fanned out to every WHEP viewer, without re-encoding.

The application pushes H.264 access units (Annex B, 90 kHz) and optional Opus packets in real
time (see :class:`webrtc.pacing.Pacer` for media that arrives in bursts, e.g. segments). Each
access unit becomes one ``av.Packet`` shared by all viewers; aiortc's RTP sender packetizes a
packet it receives from a track instead of encoding a frame.

Each viewer has a bounded queue: a viewer that falls behind drops its backlog, is counted, and
resumes at the next keyframe; the publisher and other viewers never wait. A viewer starts at the
first keyframe after its sender starts pulling (after ICE/DTLS), so it gets no stale burst.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from .media import (
    OPUS_CLOCK_RATE,
    VIDEO_CLOCK_RATE,
    AudioPacket,
    ParameterSetCache,
    VideoAccessUnit,
)

VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)


class _Continuity:
    """Keeps output timestamps increasing across source discontinuities (restarts, swaps)."""

    def __init__(self, rate: int, step: int, max_gap: float) -> None:
        self._step = step
        self._max_gap = round(max_gap * rate)
        self._offset = 0
        self._last_in: int | None = None
        self._last_out = 0

    def map(self, pts: int) -> int:
        if self._last_in is None:
            self._offset = -pts
        else:
            delta = pts - self._last_in
            if delta <= 0 or delta > self._max_gap:
                self._offset = self._last_out + self._step - pts
        self._last_in = pts
        self._last_out = pts + self._offset
        return self._last_out


@dataclass
class SubscriberStats:
    video_frames: int = 0
    audio_packets: int = 0
    dropped_video: int = 0  # dropped because the viewer fell behind
    dropped_audio: int = 0
    skipped_to_keyframe: int = 0  # frames skipped while waiting for a keyframe


class Subscription:
    """One viewer's bounded view of an :class:`EncodedSource`."""

    def __init__(self, source: EncodedSource, *, audio: bool, video_size: int, audio_size: int):
        self._source = source
        self._audio_enabled = audio
        self._video_size = video_size
        self._audio_size = audio_size
        self._video: deque[av.Packet[Any]] = deque()
        self._audio: deque[av.Packet[Any]] = deque()
        self._video_wake = asyncio.Event()
        self._audio_wake = asyncio.Event()
        self.stats = SubscriberStats()
        self.active = False  # set when the viewer's sender first pulls a video frame
        self.waiting_keyframe = True
        self.closed = False

    async def next_video(self) -> av.Packet[Any] | None:
        """The next video packet, or None once closed."""
        self.active = True
        return await self._next(self._video, self._video_wake)

    async def next_audio(self) -> av.Packet[Any] | None:
        return await self._next(self._audio, self._audio_wake)

    async def _next(
        self, queue: deque[av.Packet[Any]], wake: asyncio.Event
    ) -> av.Packet[Any] | None:
        while not queue:
            if self.closed:
                return None
            wake.clear()
            await wake.wait()
        return queue.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._video_wake.set()
            self._audio_wake.set()
            self._source._unsubscribe(self)

    def _offer_video(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self.closed or not self.active:
            return
        if self.waiting_keyframe:
            if not keyframe:
                self.stats.skipped_to_keyframe += 1
                return
            self.waiting_keyframe = False
        if len(self._video) >= self._video_size:
            # Behind by a whole queue: drop the backlog, restart at a keyframe.
            self.stats.dropped_video += len(self._video)
            self._video.clear()
            self._audio.clear()
            if not keyframe:
                self.stats.dropped_video += 1
                self.waiting_keyframe = True
                return
        self._video.append(packet)
        self.stats.video_frames += 1
        self._video_wake.set()

    def _offer_audio(self, packet: av.Packet[Any]) -> None:
        if self.closed or not self._audio_enabled or self.waiting_keyframe:
            return
        if len(self._audio) >= self._audio_size:
            self.stats.dropped_audio += 1
            return
        self._audio.append(packet)
        self.stats.audio_packets += 1
        self._audio_wake.set()


class EncodedSource:
    """Fan-out point for one stream's encoded media."""

    def __init__(self, *, has_audio: bool = False, max_gap: float = 2.0) -> None:
        self.has_audio = has_audio
        self.closed = False
        self.frames_in = 0
        self.keyframes_in = 0
        self.audio_in = 0
        self._subs: set[Subscription] = set()
        self._params = ParameterSetCache()
        self._video_time = _Continuity(VIDEO_CLOCK_RATE, VIDEO_CLOCK_RATE // 30, max_gap)
        self._audio_time = _Continuity(OPUS_CLOCK_RATE, OPUS_CLOCK_RATE // 50, max_gap)

    @property
    def viewers(self) -> int:
        return len(self._subs)

    def set_parameter_sets(self, annexb: bytes) -> None:
        """SPS/PPS known out of band (e.g. codec extradata converted to Annex B)."""
        self._params.set_from(annexb)

    def push_video(self, unit: VideoAccessUnit) -> None:
        """Fan one access unit out to every viewer (never blocks)."""
        if self.closed:
            return
        data = self._params.complete(unit.data, unit.keyframe)
        packet = av.Packet(data)
        packet.pts = packet.dts = self._video_time.map(unit.pts)
        packet.time_base = VIDEO_TIME_BASE
        self.frames_in += 1
        self.keyframes_in += int(unit.keyframe)
        for sub in list(self._subs):
            sub._offer_video(packet, unit.keyframe)

    def push_audio(self, unit: AudioPacket) -> None:
        if self.closed or not self.has_audio:
            return
        packet = av.Packet(unit.data)
        packet.pts = packet.dts = self._audio_time.map(
            unit.pts * OPUS_CLOCK_RATE // unit.clock_rate
        )
        packet.time_base = Fraction(1, OPUS_CLOCK_RATE)
        self.audio_in += 1
        for sub in list(self._subs):
            sub._offer_audio(packet)

    def subscribe(
        self, *, audio: bool = True, video_size: int = 90, audio_size: int = 150
    ) -> Subscription:
        sub = Subscription(
            self, audio=audio and self.has_audio, video_size=video_size, audio_size=audio_size
        )
        if self.closed:
            sub.close()
        else:
            self._subs.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close(self) -> None:
        """End the stream: every viewer's tracks end."""
        self.closed = True
        for sub in list(self._subs):
            sub.close()
