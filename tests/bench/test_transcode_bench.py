"""A short slice of ``mediagw bench transcode``: segments through the gateway's transcode stack
against a priced ``-instant`` reference orchestrator, with the gateway's CPU time per segment
per run (every result's signature checked, then a share of them) and the ticket signing
figures (their sizes are the benchmark's to measure, not a test's: only that they are there
and positive)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mediatools import need_tool

from mediagw.bench import transcode as transcode_bench
from mediagw.bench.transcode import run_transcode_bench

pytestmark = pytest.mark.ffmpeg


async def test_the_transcode_bench_reports_gateway_cpu_and_signing(tmp_path: Path) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "bench.json"
    code = await run_transcode_bench(segments=3, runs=2, sampled=0.5, json_out=str(out))
    result = json.loads(out.read_text())
    assert code == 0, result
    assert result["tickets_rejected"] == 0 and result["runs"] == 2
    runs = result["gateway_cpu_ms_per_segment_runs"]
    assert len(runs) == 2 and all(ms > 0 for ms in runs)
    assert result["gateway_cpu_ms_per_segment"] > 0
    sampled = result["gateway_cpu_ms_per_segment_sampled_runs"]  # then -verifyResults 0.5
    assert result["sampled_share"] == 0.5 and len(sampled) == 2 and all(ms > 0 for ms in sampled)
    for key in ("ticket_signatures_per_s", "ticket_signatures_per_cpu_s",
                "tickets_built_signed_per_s", "tickets_built_signed_per_cpu_s",
                "gateway_overhead_ms_p50", "gateway_overhead_ms_p99"):  # fmt: skip
        assert result[key] > 0, key


async def test_a_failed_segment_stops_the_orchestrator_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("ffmpeg")
    started: list[Any] = []
    start = transcode_bench._start_orchestrator

    async def recorded(datadir: Path) -> tuple[Any, str]:
        proc, url = await start(datadir)
        started.append(proc)
        return proc, url

    async def failing(*args: Any) -> None:
        raise RuntimeError("segment 0 failed: injected")

    monkeypatch.setattr(transcode_bench, "_start_orchestrator", recorded)
    monkeypatch.setattr(transcode_bench, "_one_segment", failing)
    with pytest.raises(RuntimeError, match="injected"):
        await run_transcode_bench(segments=1, runs=1)
    assert len(started) == 1 and started[0].returncode is not None  # not left running
