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
from mediagw.errors import ConfigError


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


async def test_the_ingest_bench_runs_mediagw_as_workers_beside_nginx_workers(
    tmp_path: Path,
) -> None:
    """``--workers 2``: mediagw as ``mediagw run -workers 2`` (on a database of the test
    PostgreSQL and the test Redis), nginx-rtmp with two worker processes; every stream is
    measured, whichever worker the kernel gave it to."""
    need_tool("ffmpeg")
    _need_nginx_rtmp()
    from nodes_testkit import pg_admin_url, redis_database

    out = tmp_path / "bench.json"
    async with redis_database() as redis:
        code = await run_ingest_bench(
            streams=4, seconds=4, size="320x240", fps=30, json_out=str(out),
            baseline="nginx-rtmp", workers=2, postgres=pg_admin_url(), redis=redis,
        )  # fmt: skip
    result = json.loads(out.read_text())
    assert code == 0, result
    step = result["steps"][0]
    ours, theirs = step["mediagw"], step["nginx-rtmp"]
    assert ours["workers"] == 2
    spread = [int(n) for n in ours["streams_per_worker"].split("/")]
    assert len(spread) == 2 and sum(spread) == 4  # each stream on one worker, none twice
    assert ours["segments_lost"] == ours["frames_lost"] == ours["publishers_failed"] == 0
    assert ours["latency_samples"] == 4  # every stream's listing reached the bench
    assert ours["cpu_seconds"] > 0  # the workers' CPU, from /proc
    assert theirs["segments_lost"] == theirs["publishers_failed"] == 0
    assert theirs["latency_samples"] == 4


async def test_the_ingest_bench_refuses_workers_without_postgres_and_redis() -> None:
    with pytest.raises(ConfigError, match="give --postgres"):
        await run_ingest_bench(streams=2, seconds=4, size="320x240", fps=30, workers=2)
