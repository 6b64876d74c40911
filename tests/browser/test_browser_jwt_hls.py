"""hls.js in headless Chromium plays a JWT-gated stream given only ``?jwt=`` on Studio's
playback URL (the gateway carries the token into every playlist and segment URI), and gets
nothing without it. Runs in a private network namespace (``browser_testkit``); the page comes
from another origin than the gateway, so every request is cross-origin."""

from __future__ import annotations

from typing import Any

import pytest
from browser.browser_testkit import run_in_namespace
from mediatools import ClipMaker

pytestmark = pytest.mark.ffmpeg


def test_hls_js_plays_a_jwt_gated_stream_with_only_the_query_token(make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=30)
    result: Any = run_in_namespace("run_jwt_hls.py", str(clip), "90")
    assert "error" not in result, result
    token, good, bad = result["token"], result["with_token"], result["without_token"]
    assert good["played"] is True and good["frames"] > 30 and good["current_time"] > 2, good
    assert not good["fatal"], good
    segments = [u for u in good["urls"] if u.split("?")[0].endswith(".ts")]
    playlists = [u for u in good["urls"] if ".m3u8" in u]
    assert len(segments) >= 2 and len(playlists) >= 2, good  # multivariant, media (reloaded)
    assert all(f"jwt={token}" in u for u in good["urls"]), good["urls"]
    assert all(f"/hls/{u.split('/hls/')[1].split('/')[0]}/" in u for u in good["urls"])
    # without a token: a fatal error at the multivariant (401), not a frame
    assert bad["fatal"] is True and bad["frames"] == 0 and bad["played"] is False, bad
    assert any(e.startswith("networkError:manifestLoadError:true:401") for e in bad["errors"]), bad
