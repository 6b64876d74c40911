"""The operator dashboard in headless Chromium: a gateway with a live stream (FFmpeg's RTMP
client) transcoded by the reference orchestrator; ``/dashboard`` opened with the admin key
plays the stream in its hls.js player (frames decoded, time advancing), shows its ingest health,
and lists the orchestrator on its scoreboard. Runs in a private network namespace
(``browser_testkit``); screenshots go into pytest's ``tmp_path`` and ``tests/browser/artifacts/``
(gitignored) for review."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from browser.browser_testkit import HERE, run_in_namespace
from mediatools import ClipMaker

from mediagw.api.dashboard import HLS_JS

pytestmark = pytest.mark.ffmpeg


def test_dashboard_plays_the_live_stream_and_lists_the_orchestrator(
    make_clip: ClipMaker, tmp_path: Any
) -> None:
    clip = make_clip(seconds=40)
    result: Any = run_in_namespace(
        "run_dashboard.py", str(clip), str(tmp_path), "75", hls_js=HLS_JS
    )
    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)
    for shot in result.get("screenshots", []):
        shutil.copy(shot, artifacts / shot.rsplit("/", 1)[-1])
    assert "error" not in result, result
    state = result["state"]
    assert result.get("played") is True, state
    assert state["loaded"] and not state["login_shown"] and state["hls_js"], state
    assert not state["key_in_url"], state  # taken from the fragment, then removed
    assert state["stream"] == result["stream"] and state["player_error"] is None, state
    assert state["current_time"] > 3 and state["frames"] > 60, state
    (row,) = state["orchestrators"]
    assert row[0].startswith(result["orchestrator_url"].split("://")[0]), row
    assert row[4].endswith("%") and float(row[4].rstrip(" %")) > 0, row  # success rate
    assert float(row[2]) > 0 and float(row[3]) >= float(row[2]), row  # p50 <= p99
    assert int(row[5]) > 0, row  # attempts
    health = state["health"]
    assert health["frame rate"] == "30.00 fps", health
    assert health["keyframe interval"] == "1.00 s", health
    assert health["bitrate"].endswith("kbit/s") and health["video"] == "h264 320x240", health
    # the ledger's rows (flushed every second here) drawn as the chart and the per-key table
    assert "minutes in" in state["usage"] and "no usage yet" not in state["usage"], state
    for shot in result["screenshots"]:
        assert (tmp_path / shot.rsplit("/", 1)[-1]).stat().st_size > 10_000
