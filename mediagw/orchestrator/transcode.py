"""CPU transcoding of one segment into every requested rendition, with PyAV (blocking; run it
in a worker thread).

The input is decoded once; each rendition scales the frames (``VideoFrame.reformat``), changes
the frame rate when the profile asks for one (0 = pass-through), encodes with libx264 and muxes
MPEG-TS (or MP4). Audio packets are copied unchanged into every output. Timestamps keep the
input's, so renditions line up with the source. ``pixels`` = encoded width x height x frames.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from .errors import TranscodeError
from .segcreds import Rendition

__all__ = ["Clip", "Output", "transcode"]

TS_TIME_BASE = Fraction(1, 90000)
MIN_OUTPUT_BYTES = 25  # go-livepeer: a smaller rendition is "ZeroSegments"
_PROFILES = {1: "baseline", 2: "main", 3: "high", 4: "high"}


@dataclass(frozen=True, slots=True)
class Output:
    data: bytes
    pixels: int
    width: int
    height: int
    frames: int


@dataclass(frozen=True, slots=True)
class Clip:
    """SegParameters: keep [from_ms, to_ms) of the segment (to_ms 0 = to the end)."""

    from_ms: int = 0
    to_ms: int = 0

    def keeps(self, t: float) -> bool:
        ms = t * 1000
        return ms >= self.from_ms and (self.to_ms <= 0 or ms < self.to_ms)


def _even(value: int, fallback: int) -> int:
    value = value if value > 0 else fallback
    return max(2, value - value % 2)


@dataclass
class _Encoder:
    rendition: Rendition
    container: Any
    video: Any
    audio: Any | None
    buffer: io.BytesIO
    rate: Fraction | None  # None = pass-through
    frames: int = 0
    start: float | None = None
    pending: Any | None = None  # fps conversion: the latest frame not yet emitted
    pending_t: float = 0.0
    next_slot: int = 0
    last_gap: float = field(default=1 / 30)

    def encode(self, frame: Any, pts: int) -> None:
        out = frame.reformat(width=self.video.width, height=self.video.height, format="yuv420p")
        out.pts = pts
        out.time_base = TS_TIME_BASE
        for packet in self.video.encode(out):
            self.container.mux(packet)
        self.frames += 1

    def take(self, frame: Any, t: float) -> None:
        """A decoded frame at ``t`` seconds; emit what the output frame rate asks for."""
        if self.rate is None:
            self.encode(frame, round(t / TS_TIME_BASE))
            return
        if self.start is None:
            self.start = t
        elif self.pending is not None:
            self.last_gap = max(t - self.pending_t, 1e-3)
            self._emit_until(t)
        self.pending, self.pending_t = frame, t

    def _emit_until(self, t: float) -> None:
        assert self.start is not None and self.rate is not None
        while True:
            slot_t = self.start + self.next_slot / self.rate
            if slot_t >= t - 1e-6:
                return
            self.encode(self.pending, round(slot_t / TS_TIME_BASE))
            self.next_slot += 1

    def finish(self) -> Output:
        if self.rate is not None and self.pending is not None:
            self._emit_until(self.pending_t + self.last_gap)
        for packet in self.video.encode(None):
            self.container.mux(packet)
        self.container.close()
        data = self.buffer.getvalue()
        if len(data) < MIN_OUTPUT_BYTES or self.frames == 0:
            raise TranscodeError("ZeroSegments")
        w, h = self.video.width, self.video.height
        return Output(data, w * h * self.frames, w, h, self.frames)


def _open_encoder(r: Rendition, vin: Any, ain: Any | None, preset: str) -> _Encoder:
    if r.encoder != 0:
        raise TranscodeError(f"unsupported video codec for profile {r.name} (H.264 only)")
    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="mp4" if r.mp4 else "mpegts")
    rate = Fraction(r.fps, r.fps_den or 1) if r.fps > 0 else None
    nominal = rate or vin.average_rate or vin.guessed_rate or Fraction(30)
    options = {"preset": preset, "tune": "zerolatency"}
    if r.profile in _PROFILES:
        options["profile"] = _PROFILES[r.profile]
    if r.quality > 0:
        options["crf"] = str(r.quality)
        if r.bitrate > 0:
            options["maxrate"] = str(r.bitrate)
            options["bufsize"] = str(2 * r.bitrate)
    video = container.add_stream("libx264", rate=nominal, options=options)
    video.width = _even(r.width, vin.codec_context.width)
    video.height = _even(r.height, vin.codec_context.height)
    video.pix_fmt = "yuv420p"
    if r.bitrate > 0 and r.quality == 0:
        video.bit_rate = r.bitrate
    video.codec_context.time_base = TS_TIME_BASE
    if r.gop_ms < 0:
        video.codec_context.gop_size = 1
    elif r.gop_ms > 0:
        video.codec_context.gop_size = max(1, round(r.gop_ms / 1000 * float(nominal)))
    else:
        video.codec_context.gop_size = 250  # x264's own default keyint
    audio = container.add_stream_from_template(ain) if ain is not None else None
    return _Encoder(r, container, video, audio, buffer, rate)


def _decoded(container: Any, vin: Any, ain: Any | None) -> Iterator[tuple[Any, Any]]:
    """(video frame, None) or (None, audio packet), in demux order."""
    streams = [vin] if ain is None else [vin, ain]
    for packet in container.demux(*streams):
        if packet.stream.type == "audio":
            if packet.size and packet.pts is not None:
                yield None, packet
            continue
        for frame in packet.decode():
            yield frame, None


def transcode(
    data: bytes,
    renditions: Sequence[Rendition],
    *,
    preset: str = "veryfast",
    clip: Clip | None = None,
) -> list[Output]:
    """Transcode one segment (TS or MP4 bytes) into ``renditions``; raises TranscodeError."""
    try:
        return _transcode(data, renditions, preset, clip or Clip())
    except TranscodeError:
        raise
    except av.FFmpegError as exc:
        raise TranscodeError(exc.strerror or str(exc)) from None
    except (ValueError, OSError) as exc:
        raise TranscodeError(str(exc)) from None


def _copy_audio(packet: Any, encoders: list[_Encoder]) -> None:
    raw = bytes(packet)
    for enc in encoders:
        copy = av.Packet(raw)
        copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
        if enc.audio is not None:
            copy.stream = enc.audio
            enc.container.mux(copy)


def _transcode(
    data: bytes, renditions: Sequence[Rendition], preset: str, clip: Clip
) -> list[Output]:
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.video:
            raise TranscodeError("No video stream in input")
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        ain = container.streams.audio[0] if container.streams.audio else None
        encoders = [_open_encoder(r, vin, ain, preset) for r in renditions]
        first: float | None = None
        decoded = 0
        for frame, packet in _decoded(container, vin, ain):
            if packet is not None:
                t = float(packet.pts * packet.time_base)
                if first is None or clip.keeps(t - first):
                    _copy_audio(packet, encoders)
                continue
            if frame.pts is None or frame.time_base is None:
                continue
            t = float(frame.pts * frame.time_base)
            first = t if first is None else first
            decoded += 1
            if clip.keeps(t - first):
                for enc in encoders:
                    enc.take(frame, t)
        if decoded == 0:
            raise TranscodeError("No keyframes in input")
        return [enc.finish() for enc in encoders]
