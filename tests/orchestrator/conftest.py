"""Fixtures for the reference orchestrator tests: generated H.264/AAC TS segments and
orchestrators started on ephemeral ports (off-chain and priced)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from mediatools import need_tool
from orchestrator.orch_testkit import ORCH_KEY

from mediagw.clock import ManualClock
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator


def _make_ts(out: Path, size: str, seconds: float = 2.0) -> bytes:
    ffmpeg = need_tool("ffmpeg")
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
        "-c:a", "aac", "-b:a", "64k", "-f", "mpegts", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120)
    return out.read_bytes()


@pytest.fixture(scope="session")
def segment_720p(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 2 s 1280x720 30 fps H.264 + AAC MPEG-TS segment."""
    return _make_ts(tmp_path_factory.mktemp("orch") / "seg720.ts", "1280x720")


@pytest.fixture(scope="session")
def segment_small(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 2 s 320x180 segment: cheap to transcode, for protocol tests."""
    return _make_ts(tmp_path_factory.mktemp("orch") / "seg180.ts", "320x180")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_750_000_000.0)


@pytest.fixture
async def offchain(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    orch = ReferenceOrchestrator(OrchestratorConfig(work_dir=tmp_path, x264_preset="ultrafast"))
    await orch.start()
    try:
        yield orch
    finally:
        await orch.stop()


@pytest.fixture
async def priced(tmp_path: Path, clock: ManualClock) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        priced=True,
        private_key=ORCH_KEY,
        price_per_unit=3,
        pixels_per_unit=2,
        work_dir=tmp_path,
        clock=clock,
        x264_preset="ultrafast",
    )
    orch = ReferenceOrchestrator(config)
    await orch.start()
    try:
        yield orch
    finally:
        await orch.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
