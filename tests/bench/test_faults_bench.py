"""A short slice of ``mediagw bench faults``: cheap orchestrator faults against a live stream on
two reference orchestrators lose no segment, and the table names each cause in status and
logs; the same fault with no other orchestrator loses segments, and the table says so."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from mediatools import need_tool

from mediagw.bench.fault_cases import CASES, Killed
from mediagw.bench.faults import _run_case, format_table, run_faults_bench
from mediagw.bench.ingest import make_clip

SLICE = ("orchestrator-killed", "orchestrator-5xx", "orchestrator-garbage")


async def test_cheap_faults_lose_no_segment_with_another_orchestrator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "faults.json"
    code = await run_faults_bench(faults=SLICE, seconds=6, json_out=str(out))
    rows = json.loads(out.read_text())["faults"]
    assert code == 0, rows
    assert [r["fault"] for r in rows] == list(SLICE)
    for row in rows:
        assert row["error"] == "" and row["orchestrators"] == 2, row
        assert row["segments_lost"] == 0 and row["source_segments"] >= 3, row
        assert row["recovery_s"] is not None and row["output_gap_s"] is not None, row
        assert row["status_cause"] and row["log_cause"], row
    assert "not a TranscodeResult" in rows[2]["log_cause"]
    table = capsys.readouterr().out
    header = table.splitlines()[0]
    for column in ("fault", "segments lost", "output gap", "recovery", "status", "logs"):
        assert column in header
    assert all(name in table for name in SLICE)


class _Alone(Killed):
    orchestrators = 1


async def test_a_killed_orchestrator_with_no_other_loses_segments_and_the_table_shows_it(
    tmp_path: Path,
) -> None:
    need_tool("ffmpeg")
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    clip = tmp_path / "clip.flv"
    await asyncio.to_thread(make_clip, clip, 6, "320x180", 30, ffmpeg)
    result = await _run_case(_Alone(), tmp_path / "alone", clip, ffmpeg, 6, "")
    assert result.error == "" and result.segments_lost is not None, result
    assert result.segments_lost >= 1 and result.recovery_s is None, result
    assert result.log_cause, result
    row = format_table([result]).splitlines()[2]
    assert f"{result.segments_lost}/{result.source_segments}" in row


def test_every_fault_of_the_issue_is_in_the_matrix() -> None:
    assert set(CASES) == {
        "orchestrator-killed", "orchestrator-stalled", "orchestrator-5xx", "orchestrator-garbage",
        "price-above-cap", "ticket-params-expired", "certificate-change", "signer-down",
        "webhook-down", "database-restart", "disk-full-recording",
    }  # fmt: skip
