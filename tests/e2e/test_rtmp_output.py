"""RTMP output of the live AI stream: FFmpeg's RTMP client pushes the AI output to an RTMP server
(here the gateway's own RTMP ingest, a real peer), and a dead server never hurts the stream."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from typing import Any

import av
import pytest
from mediatools import ClipMaker, push, wait_until

from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform.inputs import parse_rtmp_outputs
from mediagw.publish.rtmp_out import RtmpOutput
from segmenter.probe import probe_ts

pytestmark = pytest.mark.ffmpeg


def test_output_urls_are_checked() -> None:
    assert parse_rtmp_outputs("rtmp://a/live/k, rtmps://b:443/app/k2") == [
        "rtmp://a/live/k",
        "rtmps://b:443/app/k2",
    ]
    for bad in ("http://a/x", "file:///etc/passwd", "rtmp://a/x y", ",".join(["rtmp://a/b"] * 5)):
        with pytest.raises(ValueError):
            parse_rtmp_outputs(bad)
    assert RtmpOutput("rtmp://h:1935/live/secret").redacted == "rtmp://h:1935/live/***"


async def test_live_ai_output_is_pushed_over_rtmp(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    async with ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,))
        rtmp = f"rtmp://127.0.0.1:{gw.rtmp_port}/live"
        clip = make_clip(seconds=8)
        code, err = await push(clip, f"{rtmp}/cam?pipeline=noop&rtmpOutput={rtmp}/relayed")
        assert code == 0, err
        assert gw.live_ai is not None
        await wait_until(lambda: "cam" in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        await wait_until(lambda: not gw.hub.get("relayed").live, 15)  # type: ignore[union-attr]
        out = gw.hls.rendition("cam-out", "source")
        relayed = gw.hls.rendition("relayed", "source")
        assert out is not None and relayed is not None
        out_frames = sum(probe_ts(d, decode=False).video_frames for d in out.segments.values())
        relayed_frames = sum(
            probe_ts(d, decode=False).video_frames for d in relayed.segments.values()
        )
        # every frame of the AI output went out over RTMP and came back in through our ingest
        assert out_frames > 100 and relayed_frames == out_frames, (
            out_frames,
            relayed_frames,
            [probe_ts(out.segments[k], decode=False).video_frames for k in sorted(out.segments)],
            [probe_ts(relayed.segments[k]).video_frames for k in sorted(relayed.segments)],
            gw.live_ai.finished["cam"]["gateway_status"],
        )
        outputs = gw.live_ai.finished["cam"]["gateway_status"]["rtmp_outputs"]
        assert outputs[0]["url"].endswith("/live/***") and outputs[0]["restarts"] == 0, outputs
        assert outputs[0]["segments"] == len(out.segments)


async def test_an_unreachable_server_is_retried_and_never_blocks() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    output = RtmpOutput(f"rtmp://127.0.0.1:{port}/live/x", name="t", backoff=0.2)
    output.start()
    segments = [await asyncio.to_thread(_ts, i * 30, 30) for i in range(3)]
    deadline = time.monotonic() + 20
    while output.stats.restarts < 2 and time.monotonic() < deadline:
        started = time.monotonic()
        for data in segments:
            output.push(data)  # never blocks, whatever the server does
        assert time.monotonic() - started < 0.1
        await asyncio.sleep(0.3)
    assert output.stats.restarts >= 2, output.stats
    assert "refused" in output.stats.last_error.lower(), output.stats
    assert "/live/x" not in output.stats.last_error  # the stream key is never shown
    await asyncio.wait_for(output.close(), 10)


def _ts(first_frame: int, frames: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=30, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = first_frame + i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
