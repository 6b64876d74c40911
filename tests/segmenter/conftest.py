"""Fixtures for the segmenter tests: media generated at test time with the ffmpeg CLI.

Without ffmpeg the media tests are skipped, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mediatools import need_tool

from segmenter import FlvDemuxer, Segment, Segmenter, read_flv_file


def _need_ffmpeg() -> str:
    return need_tool("ffmpeg")


MakeFlv = Callable[..., Path]


@pytest.fixture(scope="session")
def make_flv(tmp_path_factory: pytest.TempPathFactory) -> MakeFlv:
    """Build (and cache per session) an FLV test file with ffmpeg's lavfi sources."""
    ffmpeg = _need_ffmpeg()
    root = tmp_path_factory.mktemp("flv")
    cache: dict[tuple[object, ...], Path] = {}

    def make(
        *,
        size: str = "320x240",
        rate: int = 30,
        seconds: float = 6.0,
        video: bool = True,
        audio: bool = True,
        gop: int = 30,
        bframes: int = 2,
        extra: tuple[str, ...] = (),
        sample_rate: int = 44100,
        vcodec: str = "libx264",
        acodec: str = "aac",
    ) -> Path:
        key = (size, rate, seconds, video, audio, gop, bframes, extra, sample_rate, vcodec, acodec)
        if key in cache:
            return cache[key]
        out = root / f"in{len(cache)}.flv"
        cmd = [ffmpeg, "-loglevel", "error", "-y"]
        if video:
            cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
        if audio:
            cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}"]
        cmd += ["-t", str(seconds)]
        if video:
            cmd += ["-c:v", vcodec]
            if vcodec == "libx264":
                cmd += ["-preset", "ultrafast", "-g", str(gop), "-bf", str(bframes)]
                cmd += ["-pix_fmt", "yuv420p"]
        if audio:
            cmd += ["-c:a", acodec]
        cmd += [*extra, "-f", "flv", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        cache[key] = out
        return out

    return make


def run_file(
    path: Path | str, seg: Segmenter | None = None, *, flush: bool = True
) -> tuple[list[Segment], Segmenter]:
    """Feed a whole FLV file through a fresh FlvDemuxer into ``seg``."""
    seg = seg or Segmenter(2.0)
    demux = FlvDemuxer()
    out: list[Segment] = []
    for tag_type, ts, payload in read_flv_file(path):
        for item in demux.feed(tag_type, ts, payload):
            out += seg.push(item)
    if flush:
        out += seg.flush()
    return out, seg


@pytest.fixture
def segment_file() -> Callable[..., tuple[list[Segment], Segmenter]]:
    return run_file
