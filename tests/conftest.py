"""Shared test helpers: tool discovery (skip locally, fail under CI) and generated media clips."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mediatools import IN_CI, ClipMaker, need_tool

from mediagw.platform.shared.redis import SharedRedis


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


REDIS_ENV = "MEDIAGW_TEST_REDIS_URL"


def redis_url() -> str:
    """The Redis the tests may use (``.ci/run`` starts one); skip without it on a laptop, fail
    under CI."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"{REDIS_ENV} is required under CI (a Redis the tests may write to)")
        pytest.skip(f"{REDIS_ENV} not set")
    return url


@pytest.fixture
async def shared_redis() -> AsyncIterator[SharedRedis]:
    """A client of the test Redis under a fresh key prefix; the prefix's keys are deleted after
    the test."""
    shared = SharedRedis(redis_url(), prefix=f"mediagw-test:{uuid.uuid4().hex[:12]}:")
    try:
        yield shared
    finally:
        keys = [key async for key in shared.client.scan_iter(match=shared.prefix + "*")]
        if keys:
            await shared.client.delete(*keys)
        await shared.close()
