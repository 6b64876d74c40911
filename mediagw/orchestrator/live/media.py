"""One live segment through the pipeline with PyAV (blocking: run it in a worker thread).

``process_segment`` takes one MPEG-TS input segment (a GOP) and returns one MPEG-TS output
segment: for a pass-through pipeline the input bytes themselves (video packets counted, nothing
decoded); otherwise every video frame is decoded, scaled to the asked size, put through the
effect's Y/U/V lookup tables into a fresh frame (decoded frames are the decoder's references
and are never written to), and encoded by a new libx264 encoder (``superfast``,
``zerolatency``, no B-frames, one keyframe at the start: one GOP per segment), keeping the
input's timestamps. Audio packets are copied unchanged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from .params import Luts

__all__ = ["LiveMediaError", "SegmentOutput", "process_segment"]

TS_TIME_BASE = Fraction(1, 90000)
GOP_FRAMES = 100_000  # one keyframe per segment: the first frame of a new encoder


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
    with inp:
        if not inp.streams.video:
            raise LiveMediaError("no video stream in input segment")
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        width = _even((size[0] if size else 0) or vin.codec_context.width)
        height = _even((size[1] if size else 0) or vin.codec_context.height)
        out = av.open(buffer, "w", format="mpegts")
        try:
            rate = vin.average_rate or vin.guessed_rate or Fraction(30)
            options = {"preset": preset, "tune": "zerolatency", "forced-idr": "1", "bf": "0"}
            video = out.add_stream("libx264", rate=rate, options=options)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.time_base = TS_TIME_BASE
            video.codec_context.gop_size = GOP_FRAMES
            audio = out.add_stream_from_template(ain) if ain is not None else None
            frames_in = frames_out = 0
            streams = [vin] if ain is None else [vin, ain]
            for packet in inp.demux(*streams):
                if packet.stream.type == "audio":
                    if audio is not None and packet.size and packet.pts is not None:
                        packet.stream = audio
                        out.mux(packet)
                    continue
                for frame in packet.decode():
                    if frame.pts is None:
                        continue
                    frames_in += 1
                    for encoded in video.encode(_transform(frame, width, height, luts)):
                        out.mux(encoded)
                    frames_out += 1
            for encoded in video.encode(None):
                out.mux(encoded)
        finally:
            out.close()
    if frames_out == 0:
        raise LiveMediaError("no video frames in input segment")
    return SegmentOutput(buffer.getvalue(), frames_in, frames_out)
