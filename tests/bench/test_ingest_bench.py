"""A short slice of ``mediagw bench ingest``: stored streams of a customer's key pushed with the
usage ledger, plan limits and quotas off, then on, in one command; nothing is lost either way
and the ratio of their CPU is reported (its size is the benchmark's to measure, not a test's)."""

from __future__ import annotations

import json
from pathlib import Path

from mediatools import need_tool

from mediagw.bench.ingest import run_ingest_bench


async def test_the_ingest_bench_compares_metering_on_and_off(tmp_path: Path) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "bench.json"
    code = await run_ingest_bench(streams=2, seconds=4, size="320x240", fps=30, json_out=str(out))
    result = json.loads(out.read_text())
    assert code == 0, result
    assert result["segments_lost"] == 0 and result["publishers_failed"] == 0
    assert result["cpu_seconds_metering_off"] > 0 and result["metering_cpu_ratio"] > 0
