"""Synthetic progress streams (``segmenter.Progress``) for the LL-HLS tests: what the segmenter
emits for a 30 fps H.264 stream with AAC beside it, without running it."""

from __future__ import annotations

from segmenter import (
    AudioConfig,
    MediaPacket,
    Progress,
    Segment,
    SegmentProgress,
    SegmentStart,
    VideoConfig,
)

SPS = b"\x67\x64\x00\x1f\xac\xd9\x40"
PPS = b"\x68\xeb\xe3\xcb"
VIDEO = VideoConfig("h264", 320, 240, (SPS,), (PPS,), 100, 31)
AUDIO = AudioConfig("aac", 48000, 2, 2, b"\x11\x90")
FRAME = 3000  # 30 fps
T0 = 900_000  # 10 s
PDT = 1_700_000_000.0


def _frame(pts: int, key: bool) -> MediaPacket:
    sc = b"\x00\x00\x00\x01"
    key_frame = sc + SPS + sc + PPS + sc + b"\x65\x88" + bytes(40)
    data = key_frame if key else sc + b"\x41\x9a" + bytes(10)
    return MediaPacket("video", pts, pts, key, data)


def segment_items(
    seq: int,
    start: int,
    frames: int,
    *,
    audio: bool = False,
    pdt: float | None = PDT,
    discontinuity: bool = False,
    complete: bool = True,
    gop: int = 60,
) -> list[Progress]:
    """A segment's progress stream: frames at 30 fps (a keyframe every ``gop``), AAC frames at
    48 kHz beside them, fed a frame at a time; its ``Segment`` when ``complete``."""
    meta = {"pdt": pdt + (start - T0) / 90000} if pdt is not None else {}
    items: list[Progress] = [
        SegmentStart(seq, start, discontinuity, VIDEO, AUDIO if audio else None, meta)
    ]
    next_audio = start
    for i in range(frames):
        pts = start + i * FRAME
        packets = [_frame(pts, i % gop == 0)]
        while audio and next_audio < pts + FRAME:
            packets.append(MediaPacket("audio", next_audio, next_audio, True, b"\x21" * 20))
            next_audio += 1920
        items.append(SegmentProgress(seq, b"", tuple(packets)))
    if complete:
        duration = frames * FRAME
        items.append(Segment(seq, b"", start, duration, discontinuity, VIDEO, None, frames, 0))
    return items
