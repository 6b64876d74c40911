"""Live AI through the whole gateway: an RTMP publisher asks for a pipeline, the reference
orchestrator runs it, the output plays as HLS, parameters change live, status is reported."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import av
import pytest
from mediatools import ClipMaker, fetch_hls, push, wait_until

from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg


def _mean_luma(data: bytes) -> float:
    with av.open(io.BytesIO(data), format="mpegts") as c:
        frame = next(c.decode(video=0))
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size
    rows = [data[y * stride : y * stride + frame.width] for y in range(frame.height)]
    return sum(sum(r) for r in rows) / (frame.width * frame.height)


async def test_rtmp_to_live_ai_to_hls_with_live_updates(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS, live_status_interval=1.0)
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,))
        base = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/ai1"
        clip = make_clip(seconds=12)
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai1?pipeline=invert"
        pusher = asyncio.create_task(push(clip, url + '&params={"strength":1}'))
        await wait_until(lambda: gw.hls.media_playlist("ai1-out", "source") is not None, 30)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/status") as resp:
                assert resp.status == 200
                status = await resp.json()
            assert status, status
            async with s.post(f"{base}/update", data=b'{"strength": 0}') as resp:
                assert resp.status == 200, await resp.text()
            async with s.post(f"{base}/update", data=b"not json") as resp:
                assert resp.status == 400
            nobody = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/nobody/update"
            async with s.post(nobody, data=b"{}") as resp:
                assert resp.status == 404
        code, err = await pusher
        assert code == 0, err
        await wait_until(lambda: not gw.hub.get("ai1").live, 10)  # type: ignore[union-attr]
        await wait_until(lambda: "ai1" in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        out = await fetch_hls(gw.http_port, "ai1-out")
        assert len(out.segments) >= 4 and all(seg.first_is_key for seg in out.segments)
        rendition = gw.hls.rendition("ai1-out", "source")
        assert rendition is not None
        lumas = [_mean_luma(rendition.segments[s]) for s in sorted(rendition.segments)]
        source = gw.hls.rendition("ai1", "source")
        assert source is not None
        src_luma = _mean_luma(source.segments[min(source.segments)])
        # inverted first (strength 1), then untouched (strength 0) after the live update
        assert abs(lumas[0] - (255 - src_luma)) < 20, (lumas, src_luma)
        assert abs(lumas[-1] - src_luma) < 20, (lumas, src_luma)
        assert orch.stats.live_sessions_started == 1 and orch.stats.live_control_updates >= 1
        # the transcoder left this stream alone
        assert gw.hls.rendition("ai1", "P240p30fps16x9") is None


async def test_ai_output_over_whep_to_an_aiortc_viewer(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

    from webrtc import IceConfig, gathering_scope

    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), webrtc_host_addresses=("127.0.0.1",))
        clip = make_clip(seconds=14)
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai2?pipeline=noop"
        pusher = asyncio.create_task(push(clip, url))
        await wait_until(lambda: gw.hls.media_playlist("ai2-out", "source") is not None, 30)
        ice = IceConfig.loopback()
        pc = RTCPeerConnection(ice.rtc_configuration())
        pc.addTransceiver("video", direction="recvonly")
        frames: list[Any] = []
        readers: list[asyncio.Task[None]] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def read() -> None:
                while True:
                    try:
                        frames.append(await track.recv())
                    except Exception:
                        return

            readers.append(asyncio.ensure_future(read()))

        with gathering_scope(ice):
            await pc.setLocalDescription(await pc.createOffer())
        whep = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/ai2/whep"
        async with aiohttp.ClientSession() as s:
            headers = {"Content-Type": "application/sdp"}
            async with s.post(whep, data=pc.localDescription.sdp, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                answer = await resp.text()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        try:
            await wait_until(lambda: len(frames) >= 30, 20)
            assert (frames[-1].width, frames[-1].height) == (320, 240)
        finally:
            await pc.close()
        code, err = await pusher
        assert code == 0, err


async def test_orchestrator_killed_mid_stream_swaps_and_output_resumes(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as o1, ReferenceOrchestrator(config) as o2:
        gw = await gateway_factory(orch_addr=(o1.url, o2.url))
        clip = make_clip(seconds=16)
        pusher = asyncio.create_task(
            push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai3?pipeline=noop")
        )

        def outputs() -> int:
            rendition = gw.hls.rendition("ai3-out", "source")
            return len(rendition.segments) if rendition else 0

        await wait_until(lambda: outputs() >= 2, 30)
        victim = o1 if o1.stats.live_sessions_started else o2
        survivor = o2 if victim is o1 else o1
        before = outputs()
        await victim.stop()
        await wait_until(lambda: outputs() >= before + 2, 30)  # output resumes on the other O
        code, err = await pusher
        assert code == 0, err
        await wait_until(lambda: "ai3" in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        status = gw.live_ai.finished["ai3"]  # type: ignore[union-attr]
        assert status["gateway_status"]["swaps"] >= 1, status["gateway_status"]
        assert survivor.stats.live_sessions_started == 1
        source = gw.hls.rendition("ai3", "source")
        assert source is not None
        # at most one output segment lost to the swap (the one the killed O was processing)
        assert outputs() >= len(source.segments) - 2, (outputs(), len(source.segments))


async def test_ai_output_ends_with_each_session_and_a_reconnect_continues_it(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,))
        clip = make_clip(seconds=6)
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/ai4?pipeline=noop"

        def ended() -> bool:
            return (gw.hls.media_playlist("ai4-out", "source") or "").endswith("#EXT-X-ENDLIST\n")

        counts = []
        for _ in range(2):
            code, err = await push(clip, url)
            assert code == 0, err
            await wait_until(lambda: not gw.hub.get("ai4").live, 10)  # type: ignore[union-attr]
            await wait_until(lambda: "ai4-out" not in gw.live_ai.outputs, 30)  # type: ignore[union-attr]
            await wait_until(ended, 10)
            out = await fetch_hls(gw.http_port, "ai4-out")
            counts.append(len(out.segments))
        assert counts[0] >= 2 and counts[1] >= counts[0] + 2, counts
        # the second session's output follows the first's, numbered on, after a discontinuity
        assert [s.seq for s in out.segments] == list(range(counts[1]))
        assert out.playlist.count("#EXT-X-DISCONTINUITY\n") == 1
        assert all(s.first_is_key for s in out.segments)
        assert orch.stats.live_sessions_started == 2
