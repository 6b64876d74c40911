"""A short slice of ``mediagw bench soak``: the gateway, two reference orchestrators and two
ffmpeg publishers as processes (one stream transcoded, one live AI), an HLS and a WHEP viewer
coming and going; the table has a row per sample with sane figures and no segment is lost.
(Growth is not asserted: 9 s is no soak, the warm-up is barely over.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mediatools import need_tool

from mediagw.bench.soak import HEADER, growth, run_soak_bench
from mediagw.bench.soak_kit import Sample

pytestmark = pytest.mark.ffmpeg


async def test_a_soak_slice_loses_no_segment_and_samples_the_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "soak.json"
    await run_soak_bench(
        minutes=0.15, streams=2, live_ai=1, hls_viewers=1, whep_viewers=1, sample_seconds=2.0,
        json_out=str(out),
    )  # fmt: skip
    doc = json.loads(out.read_text())
    samples = doc["samples"]
    assert len(samples) >= 6, samples  # t = 0, 2, 4, 6, 8, 9 s
    for s in samples:
        assert 20 < s["rss_mb"] < 4000 and 5 < s["fds"] < 1000, s
        assert 1 <= s["threads"] < 200 and 1 <= s["tasks"] < 10_000, s
    last = samples[-1]
    assert last["source_segments"] >= 5 and last["output_segments"] >= 5, last
    assert set(doc["growth"]) == {"rss_mb", "fds", "threads", "tasks"}, doc["growth"]
    streams = {st["stream"]: st for st in doc["streams"]}
    assert set(streams) == {"ai0", "s01"}
    for st in streams.values():
        assert st["lost"] == 0 and st["ended"] and st["source_segments"] >= 3, st
    assert streams["s01"]["144p_segments"] >= 3 and streams["s01"]["90p_segments"] >= 3
    assert streams["ai0"]["ai_in"] >= 3 and streams["ai0"]["out_segments"] >= 2
    assert doc["publishers_exited_early"] == {}
    assert doc["viewers"]["hls_segments"] > 0 and doc["viewers"]["whep_frames"] > 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split(" | ")[0].strip() == HEADER[0] and "RSS MB" in table[0]
    rows = [line for line in table[2:] if line.count("|") == len(HEADER) - 1]
    assert len(rows) == len(samples)


def test_growth_compares_medians_after_the_warm_up() -> None:
    def s(t: float, rss: float, fds: int) -> Sample:
        return Sample(t, rss, fds, 10, 100, 0.0, 0.0, 0.0, 0, 0, 0)

    flat = [s(0, 50, 10), *(s(60 * i, 100 + i % 2, 40 + (i == 3) * 9) for i in range(1, 9))]
    g = growth(flat, warmup=60)
    assert g["rss_mb"]["ok"] and g["fds"]["ok"], g  # one-off spike (fds 49 at minute 3): median
    leak = [s(60 * i, 100 + 3 * i, 40 + i) for i in range(0, 9)]
    g = growth(leak, warmup=60)
    assert not g["rss_mb"]["ok"] and not g["fds"]["ok"], g
    assert g["threads"]["ok"] and g["threads"]["growth_pct"] == 0.0
    assert growth(flat[:2], warmup=60) == {}  # one sample after the warm-up: nothing to compare
