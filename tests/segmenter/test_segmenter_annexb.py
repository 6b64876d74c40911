"""Annex B access units (as a WebRTC depacketizer hands them over) -> segments, decoded back."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import pytest
from mediatools import need_tool

from segmenter import AnnexBVideo, MalformedMedia, MediaPacket, Segmenter, VideoConfig


def _clip(tmp_path: Path, size: str, seconds: float, name: str) -> Path:
    out = tmp_path / name
    subprocess.run(
        [need_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate=30", "-t", str(seconds), "-c:v", "libx264",
         "-profile:v", "baseline", "-g", "30", "-bf", "0", "-f", "mpegts", str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


def _access_units(path: Path, offset: int = 0) -> list[tuple[bytes, int]]:
    with av.open(str(path)) as c:
        return [
            (bytes(p), int(p.pts) + offset)
            for p in c.demux(video=0)
            if p.size and p.pts is not None
        ]


def _decode(data: bytes) -> tuple[int, bool, tuple[int, int]]:
    with av.open(io.BytesIO(data), format="mpegts") as c:
        frames = list(c.decode(video=0))
    return len(frames), bool(frames[0].key_frame), (frames[0].width, frames[0].height)


def test_access_units_become_decodable_segments(tmp_path: Path) -> None:
    units = _access_units(_clip(tmp_path, "320x240", 5, "a.ts"))
    adapter, seg = AnnexBVideo(), Segmenter(2.0)
    segments = []
    for data, pts in units:
        for item in adapter.feed(data, pts):
            segments += seg.push(item)
    segments += seg.flush()
    assert adapter.video is not None and (adapter.video.width, adapter.video.height) == (320, 240)
    decoded = [_decode(s.data) for s in segments]
    assert sum(n for n, _, _ in decoded) == len(units) == 150
    assert all(key for _, key, _ in decoded)


def test_resolution_change_in_band_is_a_discontinuity(tmp_path: Path) -> None:
    first = _access_units(_clip(tmp_path, "320x240", 3, "a.ts"))
    second = _access_units(_clip(tmp_path, "640x360", 3, "b.ts"), offset=first[-1][1] + 3000)
    adapter, seg = AnnexBVideo(), Segmenter(2.0)
    configs, segments = [], []
    for data, pts in first + second:
        for item in adapter.feed(data, pts):
            if isinstance(item, VideoConfig):
                configs.append((item.width, item.height))
            segments += seg.push(item)
    segments += seg.flush()
    assert configs == [(320, 240), (640, 360)]
    sizes = [_decode(s.data)[2] for s in segments]
    assert sizes[0] == (320, 240) and sizes[-1] == (640, 360)
    changed = [s for s in segments if s.video and s.video.width == 640]
    assert changed[0].discontinuity


def test_frames_before_parameter_sets_are_dropped(tmp_path: Path) -> None:
    units = _access_units(_clip(tmp_path, "320x240", 2, "a.ts"))
    adapter = AnnexBVideo()
    p_frame = next(d for d, _ in units[1:] if b"\x00\x00\x01\x65" not in d)
    assert adapter.feed(p_frame, 0) == [] and adapter.dropped == 1
    items = adapter.feed(units[0][0], 3000)
    assert isinstance(items[0], VideoConfig) and isinstance(items[1], MediaPacket)
    assert items[1].keyframe


def test_bad_access_units_raise_segmenter_errors() -> None:
    adapter = AnnexBVideo()
    with pytest.raises(MalformedMedia):
        adapter.feed(b"no start code here", 0)
    adapter.feed(b"\x00\x00\x01\x09\xf0", 900)
    with pytest.raises(MalformedMedia, match="goes back"):
        adapter.video = VideoConfig("h264", 2, 2, (b"",), (b"",))
        adapter.feed(b"\x00\x00\x01\x41\x00", 1000)
        adapter.feed(b"\x00\x00\x01\x41\x00", 10)
