"""A short slice of ``mediagw bench fuzzlive``: fuzzed RTMP sessions and HTTP requests against a
``mediagw run`` child process beside a clean ffmpeg publisher; the clean stream loses no frame,
no answer is a 500, the gateway stays up and logs no error. And the fuzzers themselves: every
strategy and route drawn, deterministic for a seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from mediatools import need_tool

from mediagw.bench.fuzzlive import run_fuzzlive_bench
from mediagw.bench.fuzzlive_http import RequestFuzzer, seeds
from mediagw.bench.fuzzlive_rtmp import STRATEGIES, SessionFuzzer

SLICE = 300


@pytest.mark.slow
async def test_slice_loses_no_frame_and_answers_no_500(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "fuzzlive.json"
    code = await run_fuzzlive_bench(
        sessions=SLICE, requests=SLICE, concurrency=16, clip_seconds=4, json_out=str(out)
    )
    rep = json.loads(out.read_text())
    assert code == 0, rep["failures"]
    assert rep["sessions"] == SLICE and rep["requests"] == SLICE
    assert rep["http_500"] == 0 and rep["gateway_up"] and rep["gateway_exit"] == 0
    assert rep["frames_got"] == rep["frames_expected"] and rep["frames_expected"][0] >= 120
    assert rep["log_errors"] == 0 and rep["tracebacks"] == [] and rep["stuck_live"] == []
    assert sum(rep["http_answers"].values()) == SLICE
    assert rep["http_answers"].get("4xx", 0) > 0 and rep["http_answers"].get("2xx", 0) > 0
    assert rep["rtmp_outcomes"].get("closed", 0) > 0  # sessions reached an answer
    table = capsys.readouterr().out
    for row in ("RTMP sessions", "HTTP 500", "clean frames got", "threads before/peak/after"):
        assert row in table


def test_fuzzers_draw_every_strategy_and_route_deterministically() -> None:
    rtmp = SessionFuzzer(random.Random(3), ["fz0"])
    sessions = [rtmp.session() for _ in range(1500)]
    assert {s.strategy for s in sessions} == set(STRATEGIES)
    assert all(s.size <= 256 * 1024 and s.name == "fz0" for s in sessions)
    valid = next(s for s in sessions if s.strategy == "valid")
    assert valid.fin and b"".join(valid.parts)[:1] == b"\x03"
    http = RequestFuzzer(random.Random(3), ["fz0"], ["fz0", "clean"])
    kinds = {http.request().kind for _ in range(4000)}
    assert {s.kind for s in seeds()} <= kinds and "flood-raw" in kinds
    again = SessionFuzzer(random.Random(3), ["fz0"])
    assert [again.session().parts for _ in range(50)] == [s.parts for s in sessions[:50]]
