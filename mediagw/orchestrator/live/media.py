"""One live segment through the pipeline with PyAV (blocking: run it in a worker thread).

``process_segment`` takes one MPEG-TS input segment (a GOP) and returns one MPEG-TS output
segment; ``process_stream`` does the same progressively, reading the input from a blocking
``InputPipe`` that the event loop feeds chunk by chunk and handing each piece of output to
``emit`` as the muxer writes it (packets flushed one by one), so output starts with the first
frames (the demuxer probes at most ``PROBE_BYTES`` / ``PROBE_US`` of input first). The output:
for a pass-through pipeline the input bytes themselves (video packets counted, nothing
decoded); otherwise every video frame is decoded, scaled to the asked size, put through the
effect's Y/U/V lookup tables into a fresh frame (decoded frames are the decoder's references
and are never written to), and encoded by a new libx264 encoder (``superfast``,
``zerolatency``, no B-frames, one keyframe at the start: one GOP per segment), keeping the
input's timestamps. Audio packets are copied unchanged.
"""

from __future__ import annotations

import io
import queue
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from .params import Luts

__all__ = ["InputPipe", "LiveMediaError", "SegmentOutput", "process_segment", "process_stream"]

TS_TIME_BASE = Fraction(1, 90000)
GOP_FRAMES = 100_000  # one keyframe per segment: the first frame of a new encoder
PROBE_BYTES = 2_000_000  # what the demuxer may read before the first frame comes out
# ... in media time (µs); it stops as soon as every stream's parameters are known (the first
# audio packet: the muxer interleaves it a few hundred ms behind the video), so this only caps
# a stream that never shows up (dropped then)
PROBE_US = 1_000_000
_STREAM_INPUT = {"probesize": str(PROBE_BYTES), "analyzeduration": str(PROBE_US),
                 "fpsprobesize": "1"}  # fmt: skip  # the frame rate is not waited for
# each muxed packet reaches ``emit`` at once; no waiting for the other stream to interleave
# (the input's audio runs a few hundred ms behind its video)
_STREAM_OUTPUT = {"flush_packets": "1", "max_interleave_delta": "1"}


class LiveMediaError(Exception):
    """The segment could not be decoded or encoded."""


@dataclass(frozen=True, slots=True)
class SegmentOutput:
    data: bytes
    frames_in: int
    frames_out: int


def _even(value: int) -> int:
    return max(2, value - value % 2)


def _packed(plane: Any) -> bytes:
    """A plane's pixels without the line padding."""
    raw = bytes(plane)
    width, height, stride = plane.width, plane.height, plane.line_size
    if stride == width:
        return raw[: width * height]
    return b"".join(raw[row * stride : row * stride + width] for row in range(height))


def _fill(plane: Any, pixels: bytes) -> None:
    """Write packed pixels into a plane, padding each line to its stride."""
    width, stride = plane.width, plane.line_size
    if stride != width:
        pad = bytes(stride - width)
        pixels = b"".join(
            pixels[row * width : (row + 1) * width] + pad for row in range(plane.height)
        )
    plane.update(pixels)


def _transform(frame: Any, width: int, height: int, luts: Luts | None) -> Any:
    src = frame.reformat(width=width, height=height, format="yuv420p")
    out = av.VideoFrame(width, height, "yuv420p")
    for index, (src_plane, out_plane) in enumerate(zip(src.planes, out.planes, strict=True)):
        pixels = _packed(src_plane)
        _fill(out_plane, pixels if luts is None else pixels.translate(luts[index]))
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out


def _count_video_packets(data: bytes) -> int:
    container: Any = av.open(io.BytesIO(data))
    with container:
        if not container.streams.video:
            return 0
        return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)


class InputPipe(io.RawIOBase):
    """A blocking read end for PyAV in a worker thread; ``feed``/``end`` are called from the
    event loop (``queue.Queue`` is thread-safe). A broken input makes ``read`` raise."""

    _BROKEN = b"broken"

    def __init__(self) -> None:
        super().__init__()
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._buffer = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.put(data)

    def end(self, *, broken: bool = False) -> None:
        self._chunks.put(self._BROKEN if broken else None)

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            if self._ended:
                return 0
            item = self._chunks.get()
            if item is None:
                self._ended = True
                return 0
            if item is self._BROKEN:
                self._ended = True
                raise OSError("the input segment broke off")
            self._buffer = item
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


class _Emitter:
    """A write-only, unseekable file for the muxer: every write goes to ``emit``."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit

    def write(self, data: Any) -> int:
        self._emit(bytes(data))
        return len(data)


def process_stream(
    pipe: InputPipe,
    emit: Callable[[bytes], None],
    *,
    luts: Luts | None,
    size: tuple[int, int] | None,
    preset: str = "superfast",
) -> SegmentOutput:
    """An effect on a segment as it arrives; ``data`` of the result is empty (it went to
    ``emit``). Raises LiveMediaError (also when the input broke off)."""
    try:
        inp: Any = av.open(pipe, format="mpegts", options=_STREAM_INPUT)
        out: Any = av.open(_Emitter(emit), "w", format="mpegts", options=_STREAM_OUTPUT)
        return _run(inp, out, luts, size, preset)
    except av.FFmpegError as exc:
        raise LiveMediaError(exc.strerror or str(exc)) from None
    except (ValueError, OSError) as exc:
        raise LiveMediaError(str(exc)) from None


def process_segment(
    data: bytes,
    *,
    luts: Luts | None,
    size: tuple[int, int] | None,
    passthrough: bool,
    preset: str = "superfast",
) -> SegmentOutput:
    """Raises LiveMediaError."""
    try:
        if passthrough:
            frames = _count_video_packets(data)
            return SegmentOutput(data, frames, frames)
        return _process(data, luts, size, preset)
    except av.FFmpegError as exc:
        raise LiveMediaError(exc.strerror or str(exc)) from None
    except (ValueError, OSError) as exc:
        raise LiveMediaError(str(exc)) from None


def _process(
    data: bytes, luts: Luts | None, size: tuple[int, int] | None, preset: str
) -> SegmentOutput:
    buffer = io.BytesIO()
    inp: Any = av.open(io.BytesIO(data))
    out: Any = av.open(buffer, "w", format="mpegts")
    result = _run(inp, out, luts, size, preset)
    return SegmentOutput(buffer.getvalue(), result.frames_in, result.frames_out)


def _run(inp: Any, out: Any, luts: Luts | None, size: tuple[int, int] | None,
         preset: str) -> SegmentOutput:  # fmt: skip
    """Decode ``inp``, apply the effect, encode to ``out``; closes both. The video stream is
    added at the first decoded frame (its size is known then even after a short probe); audio
    packets that come before it wait for it."""
    with inp:
        try:
            if not inp.streams.video:
                raise LiveMediaError("no video stream in input segment")
            vin = inp.streams.video[0]
            ain = inp.streams.audio[0] if inp.streams.audio else None
            if ain is not None and not ain.codec_context.sample_rate:
                ain = None  # not seen within the probe: video only
            audio = out.add_stream_from_template(ain) if ain is not None else None
            video: Any = None
            held: list[Any] = []  # audio before the video stream exists
            frames_in = frames_out = 0
            streams = [vin] if ain is None else [vin, ain]
            for packet in inp.demux(*streams):
                if packet.stream.type == "audio":
                    if audio is not None and packet.size and packet.pts is not None:
                        packet.stream = audio
                        if video is None:
                            held.append(packet)
                        else:
                            out.mux(packet)
                    continue
                for frame in packet.decode():
                    if frame.pts is None:
                        continue
                    frames_in += 1
                    if video is None:
                        video = _video_stream(out, vin, frame, size, preset)
                        for early in held:
                            out.mux(early)
                        held = []
                    width, height = video.width, video.height
                    for encoded in video.encode(_transform(frame, width, height, luts)):
                        out.mux(encoded)
                    frames_out += 1
            if video is not None:
                for encoded in video.encode(None):
                    out.mux(encoded)
        finally:
            out.close()
    if frames_out == 0:
        raise LiveMediaError("no video frames in input segment")
    return SegmentOutput(b"", frames_in, frames_out)


def _video_stream(out: Any, vin: Any, frame: Any, size: tuple[int, int] | None, preset: str) -> Any:
    width = _even((size[0] if size else 0) or frame.width)
    height = _even((size[1] if size else 0) or frame.height)
    rate = vin.average_rate or vin.guessed_rate or Fraction(30)
    options = {"preset": preset, "tune": "zerolatency", "forced-idr": "1", "bf": "0"}
    video = out.add_stream("libx264", rate=rate, options=options)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.time_base = TS_TIME_BASE
    video.codec_context.gop_size = GOP_FRAMES
    return video
