"""Shared test helpers: tool discovery (skip locally, fail under CI) and generated media clips."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mediatools import ClipMaker, need_tool
from redis_testkit import fresh_redis

from mediagw.platform.shared.redis import SharedRedis

# secret_scan: no secret of the run in its logs (see its doc); pytester: the scan's own test
pytest_plugins = ["secret_scan", "pytester"]


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipMaker:
    """Encode a test clip once per session (cached by its parameters) and return its path.

    The clip is an FLV with H.264 (+ AAC unless audio=False) made from lavfi sources, so frame
    counts are known exactly: seconds * fps video frames.
    """
    root = tmp_path_factory.mktemp("clips")

    def make(
        seconds: float = 6.0,
        size: str = "320x240",
        fps: int = 30,
        gop: int = 30,
        audio: bool = True,
        bframes: int = 0,
        fmt: str = "flv",
    ) -> Path:
        ffmpeg = need_tool("ffmpeg")
        key = hashlib.sha1(
            repr((seconds, size, fps, gop, audio, bframes, fmt)).encode()
        ).hexdigest()
        out = root / f"clip-{key[:10]}.{fmt}"
        if out.exists():
            return out
        cmd = [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={fps}",
        ]
        if audio:
            cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        cmd += [
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-bf",
            str(bframes),
        ]
        if bframes:
            cmd += ["-x264-params", f"bframes={bframes}:rc-lookahead=4"]
        if audio:
            cmd += ["-c:a", "aac", "-b:a", "64k"]
        cmd += ["-f", fmt, str(out)]
        subprocess.run(cmd, check=True, timeout=300)
        return out

    return make


@pytest.fixture
async def shared_redis() -> AsyncIterator[SharedRedis]:
    """A client of the test Redis under a fresh key prefix (``redis_testkit.fresh_redis``)."""
    async with fresh_redis() as shared:
        yield shared
