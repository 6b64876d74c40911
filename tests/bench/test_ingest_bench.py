"""Short slices of ``mediagw bench ingest`` with the light publisher: stored streams of a
customer's key pushed with the usage ledger, plan limits and quotas off, then on, in one command
(nothing is lost either way and the ratio of their CPU is reported: its size is the benchmark's
to measure, not a test's); and the same pushes into nginx-rtmp beside mediagw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mediatools import IN_CI, need_tool

from mediagw.bench.ingest import run_ingest_bench
from mediagw.bench.nginx_rtmp import NGINX, RTMP_MODULE


async def test_the_ingest_bench_compares_metering_on_and_off(tmp_path: Path) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "bench.json"
    interval = sys.getswitchinterval()
    code = await run_ingest_bench(
        streams=2, seconds=4, size="320x240", fps=30, json_out=str(out), extras=True
    )
    result = json.loads(out.read_text())
    assert code == 0, result
    assert sys.getswitchinterval() == interval  # mediagw run's GIL setting, for its run only
    step = result["steps"][0]
    ours = step["mediagw"]
    assert ours["segments_lost"] == 0 and ours["publishers_failed"] == 0
    assert ours["frames_lost"] == 0
    assert step["cpu_seconds_metering_off"] > 0 and step["metering_cpu_ratio"] > 0
    # latency from the light publisher's keyframe send times: one sample per keyframe-closed
    # segment (a 4 s clip in 2 s segments: the first of each stream)
    assert ours["latency_samples"] == 2 and ours["segment_latency_ms_p50"] >= 0
    assert ours["publisher_cpu_seconds"] > 0
    assert result["extras"]["segmenter_ratio_vs_ffmpeg"] > 0
    assert result["highest_count_reached"] == {"mediagw": 2}


def _need_nginx_rtmp() -> None:
    if os.path.exists(NGINX) and os.path.exists(RTMP_MODULE):
        return
    if IN_CI:
        pytest.fail("nginx with libnginx-mod-rtmp is required under CI (.ci/run installs it)")
    pytest.skip("nginx or libnginx-mod-rtmp not installed")


async def test_the_ingest_bench_runs_nginx_rtmp_beside_mediagw(tmp_path: Path) -> None:
    need_tool("ffmpeg")
    _need_nginx_rtmp()
    out = tmp_path / "bench.json"
    code = await run_ingest_bench(
        streams=[2, 3], seconds=4, size="320x240", fps=30, json_out=str(out),
        baseline="nginx-rtmp",
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert code == 0, result
    assert [s["streams"] for s in result["steps"]] == [2, 3]
    for step in result["steps"]:
        theirs = step["nginx-rtmp"]
        assert theirs["publishers_failed"] == 0 and theirs["segments_lost"] == 0, theirs
        assert theirs["latency_samples"] == step["streams"]  # nginx's fragments were matched
        assert step["mediagw"]["latency_samples"] == step["streams"]
    # nginx's CPU is read from /proc (clock ticks): some over the two steps
    assert sum(s["nginx-rtmp"]["cpu_seconds"] for s in result["steps"]) > 0
    assert set(result["highest_count_reached"]) == {"mediagw", "nginx-rtmp"}
