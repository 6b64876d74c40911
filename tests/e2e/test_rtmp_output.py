"""RTMP output of the live AI stream: FFmpeg's RTMP client pushes the AI output to an RTMP server
(here the gateway's own RTMP ingest, a real peer), and a dead server never hurts the stream."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from mediatools import ClipMaker, need_tool, push, wait_until

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
        gw = await gateway_factory(orch_addr=(orch.url,), webhook_allow_private=True)
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
    events: list[tuple[str, str]] = []
    output = RtmpOutput(
        f"rtmp://127.0.0.1:{port}/live/x", name="t", backoff=0.2, allow_private=True,
        on_event=lambda event, error: events.append((event, error)),
    )  # fmt: skip
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
    # one error for the failure, not one per retry; never connected, so never disconnected
    assert events == [("error", events[0][1])] and "refused" in events[0][1].lower(), events
    assert "/live/x" not in events[0][1]


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (read from /proc: a probe connection would
    be taken by a one-shot server as its client)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _rtmp_server(port: int, out: Path) -> asyncio.subprocess.Process:
    """FFmpeg as a one-publisher RTMP server writing what it receives to ``out``."""
    ffmpeg = need_tool("ffmpeg")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-listen", "1",
        "-f", "flv", "-i", f"rtmp://127.0.0.1:{port}/live/secretkey",
        "-c", "copy", "-f", "mpegts", str(out),
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_until(lambda: _listening(port), 10)
    return proc


async def _feed_until(output: RtmpOutput, cond: Callable[[], bool], first: int = 0) -> int:
    """Push 1 s segments (live pace, faster) until ``cond``; the next frame number."""
    frame = first
    deadline = time.monotonic() + 30
    while not cond() and time.monotonic() < deadline:
        output.push(await asyncio.to_thread(_ts, frame, 30))
        frame += 30
        await asyncio.sleep(0.2)
    assert cond()
    return frame


async def test_an_output_reports_connected_then_disconnected(tmp_path: Path) -> None:
    port = _free_port()
    server = await _rtmp_server(port, tmp_path / "got.ts")
    events: list[tuple[str, str]] = []
    output = RtmpOutput(
        f"rtmp://127.0.0.1:{port}/live/secretkey", name="t", allow_private=True,
        on_event=lambda event, error: events.append((event, error)),
    )  # fmt: skip
    output.start()
    try:
        await _feed_until(output, lambda: bool(events))
        assert events == [("connected", "")] and output.connected
        await asyncio.wait_for(output.close(), 10)
        assert events == [("connected", ""), ("disconnected", "")]
        await asyncio.wait_for(server.wait(), 10)
        got = probe_ts((tmp_path / "got.ts").read_bytes(), decode=False)
        assert got.video_frames >= 30  # the server did receive media
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def test_a_lost_server_is_one_error_and_the_end_is_disconnected(tmp_path: Path) -> None:
    port = _free_port()
    server = await _rtmp_server(port, tmp_path / "got.ts")
    events: list[tuple[str, str]] = []
    output = RtmpOutput(
        f"rtmp://127.0.0.1:{port}/live/secretkey", name="t", backoff=0.2, allow_private=True,
        on_event=lambda event, error: events.append((event, error)),
    )  # fmt: skip
    output.start()
    try:
        frame = await _feed_until(output, lambda: bool(events))
        server.kill()  # the destination goes away mid-stream; it refuses the retries
        await server.wait()
        await _feed_until(output, lambda: output.stats.restarts >= 3, frame)
        await asyncio.wait_for(output.close(), 10)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert [e for e, _ in events] == ["connected", "error", "disconnected"], events
    assert events[1][1] and "secretkey" not in events[1][1], events


@pytest.mark.parametrize("allow", [False, True])
async def test_an_output_to_loopback_never_connects_unless_allowed(allow: bool) -> None:
    accepted: list[object] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[tuple[str, str]] = []
    output = RtmpOutput(  # 2130706433 = 127.0.0.1 spelt as a decimal, as FFmpeg would resolve it
        f"rtmp://2130706433:{port}/live/k", name="t", backoff=0.2, allow_private=allow,
        on_event=lambda event, error: events.append((event, error)),
    )  # fmt: skip
    output.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        frame = 0
        while not events and not accepted and loop.time() < deadline:
            output.push(await asyncio.to_thread(_ts, frame, 30))
            frame += 30
            await asyncio.sleep(0.2)
    finally:
        await asyncio.wait_for(output.close(), 10)
        server.close()
    if allow:
        assert accepted, events  # the spelling does reach 127.0.0.1
    else:
        assert not accepted and events and "loopback" in events[0][1], events


def _ts(first_frame: int, frames: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=30, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(64, 64, "yuv420p")  # filled: the same bytes every run
            x0 = ((first_frame + i) * 4) % 56
            frame.planes[0].update((b"\x30" * x0 + b"\xd0" * 8 + b"\x30" * (56 - x0)) * 64)
            for plane in frame.planes[1:]:
                plane.update(b"\x80" * plane.buffer_size)
            frame.pts = first_frame + i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
