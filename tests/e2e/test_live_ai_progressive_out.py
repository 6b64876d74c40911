"""The AI output flows progressively through the whole gateway: the reference orchestrator
forwards each input chunk as it arrives (noop), the gateway demuxes the output as it arrives
and hands every access unit to the WHEP source at once; an aiortc viewer decodes every frame,
a viewer that joins mid-stream gets the full frame rate within one GOP, HLS and the progress
stream still carry whole segments; the status names the WHEP URL, the playlist its CODECS."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterable
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, fetch_hls, push, wait_until

from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.pipelines.live_ai.attachment import Attachment
from segmenter import Progress, Segment, SegmentProgress, SegmentStart
from webrtc import EncodedSource, VideoAccessUnit

pytestmark = pytest.mark.ffmpeg


class Viewer:
    """An aiortc WHEP viewer that records when each decoded frame arrives."""

    def __init__(self) -> None:
        from aiortc import RTCPeerConnection

        from webrtc import IceConfig

        self.ice = IceConfig.loopback()
        self.pc = RTCPeerConnection(self.ice.rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.frames: list[tuple[float, Any]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        async def read() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                self.frames.append((time.monotonic(), frame))

        self.tasks.append(asyncio.ensure_future(read()))

    async def connect(self, url: str) -> None:
        from aiortc import RTCSessionDescription

        from webrtc import gathering_scope

        with gathering_scope(self.ice):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        headers = {"Content-Type": "application/sdp"}
        offer = self.pc.localDescription.sdp
        async with aiohttp.ClientSession() as s, s.post(url, data=offer, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            answer = await resp.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()


async def test_progressive_output_to_whep_hls_and_progress(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs: list[tuple[float, float]] = []  # per input segment: first byte out, last byte out
    original_write = Attachment._write

    async def timed_write(self: Attachment, body: AsyncIterable[bytes | memoryview]) -> float:
        first = await original_write(self, body)  # the real progressive input
        inputs.append((first, time.monotonic()))
        return first

    monkeypatch.setattr(Attachment, "_write", timed_write)
    pushes: list[tuple[float, int]] = []
    original_push = EncodedSource.push_video

    def record_push(self: EncodedSource, unit: VideoAccessUnit) -> None:
        pushes.append((time.monotonic(), unit.pts))
        original_push(self, unit)

    monkeypatch.setattr(EncodedSource, "push_video", record_push)

    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), webrtc_host_addresses=("127.0.0.1",),
                                   gateway_host="gw.example:8935")  # fmt: skip
        live = gw.live_ai
        assert live is not None
        progress: list[tuple[str, Progress]] = []
        live.on_output_progress = lambda out_id, item: progress.append((out_id, item))
        clip = make_clip(seconds=9)
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai9?pipeline=noop"
        pusher = asyncio.create_task(push(clip, url))
        await wait_until(lambda: gw.hls.media_playlist("ai9-out", "source") is not None, 30)
        out_stream = live.outputs["ai9-out"].output
        base = f"http://127.0.0.1:{gw.http_port}"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/live/video-to-video/ai9/status") as resp:
                status = await resp.json()
            async with s.get(f"{base}/stream/ai9-out.m3u8") as resp:
                master = await resp.text()
        assert status["whep_url"] == "http://gw.example:8935/live/video-to-video/ai9/whep"
        assert 'CODECS="avc1.' in master and ",mp4a.40.2" in master, master

        viewer = Viewer()  # joins mid-stream
        try:
            await viewer.connect(f"{base}/live/video-to-video/ai9/whep")
            await wait_until(lambda: len(viewer.frames) >= 1, 10)
            first = viewer.frames[0][0]
            await wait_until(lambda: viewer.frames[-1][0] - first >= 1.5, 10)
            session = next(iter(gw.whep.sessions.values()))  # type: ignore[union-attr]
            sent = session.subscription.stats.video_frames
            got = [frame for _, frame in viewer.frames]
        finally:
            await viewer.close()
        code, err = await pusher
        assert code == 0, err
        await wait_until(lambda: "ai9" in live.finished, 30)

    # a new viewer: full frame rate within one GOP (1 s segments of 30 fps)
    in_first_gop = sum(1 for t, _ in viewer.frames if t - first < 1.0)
    assert in_first_gop >= 25, [round(t - first, 2) for t, _ in viewer.frames[:40]]
    # every frame it got decoded whole (aiortc drops what it cannot decode)
    assert len(got) >= sent - 5 and all((f.width, f.height) == (320, 240) for f in got)

    # progressive: each output segment's first access unit reached the WHEP source while its
    # input segment was still being sent
    output = live.finished["ai9"]
    firsts = {seq: t for kind, seq, t in out_stream.trace if kind == "first_unit"}
    assert len(firsts) >= 5 and len(inputs) >= len(firsts)
    for seq, t in sorted(firsts.items()):
        started, ended = inputs[seq]
        assert started < t < ended, (seq, started, t, ended)
        assert any(t <= at < ended for at, _ in pushes), seq
    latency = statistics.median(firsts[s] - inputs[s][0] for s in firsts)
    print(f"input segment start -> first output access unit: p50 {latency * 1000:.0f} ms")

    # HLS of the output: whole, decodable segments; the progress stream ends each with them
    hls = await fetch_hls(gw.http_port, "ai9-out")
    assert len(hls.segments) >= 5 and all(seg.first_is_key for seg in hls.segments)
    rendition = gw.hls.rendition("ai9-out", "source")
    assert rendition is not None
    items = [item for out_id, item in progress if out_id == "ai9-out"]
    segments = [item for item in items if isinstance(item, Segment)]
    assert [s.seq for s in segments] == sorted(rendition.segments), output
    for segment in segments:
        assert segment.data == rendition.segments[segment.seq]
        mine = [i for i in items if getattr(i, "seq", None) == segment.seq]
        assert isinstance(mine[0], SegmentStart) and mine[-1] is segment
        packets = [p for i in mine if isinstance(i, SegmentProgress) for p in i.packets]
        assert len(packets) == segment.video_frames + segment.audio_frames
        assert packets[0].keyframe and segment.video is not None and segment.audio is not None
