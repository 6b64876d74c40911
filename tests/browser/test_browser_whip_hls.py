"""Headless Chromium (fake camera) publishes over WHIP; hls.js in the same browser plays the
gateway's HLS of it. Runs in a private network namespace: no packet can leave the machine, and
only ``lo`` exists, so the gateway (default WebRTC settings) must offer loopback candidates by
itself. The page comes from another origin than the gateway: every request is cross-origin."""

from __future__ import annotations

from browser.browser_testkit import run_in_namespace


def _run_in_namespace(*args: str) -> dict[str, object]:
    return run_in_namespace("run_whip_hls.py", *args)


def test_chromium_whip_publish_plays_in_hls_js() -> None:
    result = _run_in_namespace("60")
    assert result.get("whip_status") == 201, result
    assert result.get("webrtc_loopback_only") is True, result
    assert int(result.get("segments", 0)) >= 2, result  # type: ignore[call-overload]
    assert result.get("played") is True, result
    assert int(result["frames"]) > 30 and float(result["current_time"]) > 2, result  # type: ignore[call-overload,arg-type]
    assert not [e for e in result["errors"] if e.endswith(":true")], result  # type: ignore[attr-defined]


def test_chromium_whip_through_noop_plays_over_whep_and_hls_js() -> None:
    """Browser -> WHIP -> live AI (noop on a reference orchestrator) -> WHEP back into the
    browser, and the HLS of the AI output in hls.js."""
    result = _run_in_namespace("90", "noop")
    assert result.get("whip_status") == 201 and result.get("whep_status") == 201, result
    assert result.get("webrtc_loopback_only") is True, result
    assert int(result.get("ai_segments_out", 0)) >= 2, result  # type: ignore[call-overload]
    assert int(result["whep_frames"]) > 30, result  # type: ignore[call-overload]
    assert result.get("played") is True, result
    assert not [e for e in result["errors"] if e.endswith(":true")], result  # type: ignore[attr-defined]


def test_page_on_another_origin_ends_whip_and_whep_sessions_with_delete() -> None:
    """RFC 9725 from a browser app on another origin: it reads ``Location`` of its WHIP and WHEP
    sessions (exposed through CORS) and ends both with DELETE (preflighted); the stream ends on
    the gateway although the browser still holds its peer connections."""
    result = _run_in_namespace("90", "noop", "--end")
    assert result.get("whip_status") == 201 and result.get("whep_status") == 201, result
    assert not str(result["page_origin"]).startswith("http://127.0.0.1:"), result
    whip, whep = str(result["whip_location"]), str(result["whep_location"])
    assert whip.startswith("/live/video-to-video/browser/whip/"), result
    assert whep.startswith("/live/video-to-video/browser/whep/"), result
    assert str(result["whip_etag"]).startswith('W/"'), result
    assert int(result["whep_frames"]) > 30, result  # type: ignore[call-overload]
    assert result["whep_delete_status"] == 200 and result["whip_delete_status"] == 200, result
    assert result["live_after_delete"] is False and result["endlist"] is True, result
    assert result["whip_sessions_after_delete"] == 0, result
    assert result["whep_sessions_after_delete"] == 0, result
    assert not result["errors"], result
